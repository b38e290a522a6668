package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	yaml "go.yaml.in/yaml/v3"
)

// ctlConfig is weftctl's own config file: the control planes it knows,
// as contexts, and which one it uses when neither flags nor environment
// say otherwise. It holds tokens, so it is written 0600.
type ctlConfig struct {
	// CurrentContext names the context used by default; empty for none.
	CurrentContext string `yaml:"current-context,omitempty"`
	// Contexts are the known control planes, in the order they were added.
	Contexts []ctlContext `yaml:"contexts"`
}

// ctlContext is how to reach and authenticate to one control plane.
type ctlContext struct {
	// Name names the context.
	Name string `yaml:"name"`
	// Address is the control plane's host:port.
	Address string `yaml:"address"`
	// CA is the absolute path of the PEM file of the CA that signed the
	// control plane's certificate; empty for the system roots.
	CA string `yaml:"ca,omitempty"`
	// Token is the bearer token's secret; empty to send none.
	Token string `yaml:"token,omitempty"`
}

// contextName is what a context name may hold: it is typed on command
// lines and shown in tables.
var contextName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// checkContextName refuses a name a context cannot have.
func checkContextName(name string) error {
	if !contextName.MatchString(name) {
		return fmt.Errorf("context name %q: want letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	return nil
}

// configFileHeader opens the file weftctl writes, so that whoever opens
// it knows what it holds.
const configFileHeader = "# weftctl contexts (see weftctl context --help). It holds tokens: keep it private.\n"

// configPath returns the path of weftctl's config file: $WEFT_CONFIG,
// else $XDG_CONFIG_HOME/weft/config.yaml, else ~/.config/weft/config.yaml.
func (a *app) configPath() (string, error) {
	if p := a.getenv("WEFT_CONFIG"); p != "" {
		return p, nil
	}
	if x := a.getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "weft", "config.yaml"), nil
	}
	if a.userHome == nil {
		return "", errors.New("cannot locate weftctl's config file: no home directory (set WEFT_CONFIG)")
	}
	home, err := a.userHome()
	if err != nil || home == "" {
		return "", fmt.Errorf("cannot locate weftctl's config file: no home directory (set WEFT_CONFIG): %v", err)
	}
	return filepath.Join(home, ".config", "weft", "config.yaml"), nil
}

// loadConfig reads weftctl's config file. A file that does not exist is
// an empty config. It warns on stderr when a file holding tokens can be
// read by others.
func (a *app) loadConfig() (path string, cfg *ctlConfig, err error) {
	path, err = a.configPath()
	if err != nil {
		return "", nil, err
	}
	cfg = &ctlConfig{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, cfg, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("read weftctl config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file (or one of comments) decodes to io.EOF: no contexts.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return "", nil, fmt.Errorf("weftctl config %s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, c := range cfg.Contexts {
		if err := checkContextName(c.Name); err != nil {
			return "", nil, fmt.Errorf("weftctl config %s: contexts[%d]: %w", path, i, err)
		}
		if seen[c.Name] {
			return "", nil, fmt.Errorf("weftctl config %s: context %q is listed twice", path, c.Name)
		}
		seen[c.Name] = true
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 && cfg.hasTokens() {
		fmt.Fprintf(a.stderr, "weftctl: warning: %s holds tokens and others may read it (mode %04o): chmod 600 %s\n",
			path, st.Mode().Perm(), path)
	}
	return path, cfg, nil
}

// hasTokens reports whether any context holds a token.
func (c *ctlConfig) hasTokens() bool {
	return slices.ContainsFunc(c.Contexts, func(x ctlContext) bool { return x.Token != "" })
}

// find returns the context named name, or nil.
func (c *ctlConfig) find(name string) *ctlContext {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			return &c.Contexts[i]
		}
	}
	return nil
}

// saveConfig writes cfg to path atomically, readable by its owner alone,
// creating its directory (0700) if need be.
func saveConfig(path string, cfg *ctlConfig) error {
	var b bytes.Buffer
	b.WriteString(configFileHeader)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return fmt.Errorf("write weftctl config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write weftctl config: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write weftctl config: %w", err)
	}
	// Write a temporary file beside it and rename it over: a reader sees
	// the old file or the new one, never half of one.
	tmp, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("write weftctl config: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write weftctl config: %w", err)
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write weftctl config %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write weftctl config %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write weftctl config %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write weftctl config: %w", err)
	}
	return nil
}
