package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// readConfigFile decodes weftctl's config file at path.
func readConfigFile(t *testing.T, path string) ctlConfig {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg ctlConfig
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return cfg
}

func TestContextLifecycle(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ca := newTestCA(t, "weft-ca")
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), mustRead(t, ca.file), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte("prod-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "conf", "weft", "config.yaml")
	env := map[string]string{"WEFT_CONFIG": path}

	// A relative CA path is kept absolute; the token file's line break
	// is dropped.
	stdout, _, err := runApp(env, "context", "add", "prod", "--addr", "cp.example.com:7400", "--ca", "ca.pem", "--token-file", "admin.token", "--use")
	if err != nil {
		t.Fatal(err)
	}
	caAbs := filepath.Join(dir, "ca.pem")
	want := `added context "prod" to ` + path + ": cp.example.com:7400, CA " + caAbs + ", token set\n" + `switched to context "prod"` + "\n"
	if stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
	}
	if strings.Contains(stdout, "prod-secret") {
		t.Error("context add printed the token")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config file mode = %04o, want 0600", st.Mode().Perm())
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("config directory: %v, %v; want mode 0700", st.Mode(), err)
	}
	cfg := readConfigFile(t, path)
	wantCfg := ctlConfig{CurrentContext: "prod", Contexts: []ctlContext{{Name: "prod", Address: "cp.example.com:7400", CA: caAbs, Token: "prod-secret"}}}
	if !equalConfig(cfg, wantCfg) {
		t.Errorf("config = %+v, want %+v", cfg, wantCfg)
	}

	// From standard input; not made current.
	stdout, _, err = runAppStdin(env, "staging-secret\n", "context", "add", "staging", "--addr", "10.0.0.5:7400", "--token-file", "-")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout, `added context "staging" to `+path+": 10.0.0.5:7400, the system's roots, token set\n") {
		t.Errorf("stdout = %s", stdout)
	}
	if _, _, err := runApp(env, "context", "add", "bare", "--addr", "localhost:7400"); err != nil {
		t.Fatal(err)
	}

	stdout, _, err = runApp(env, "context", "list")
	if err != nil {
		t.Fatal(err)
	}
	want = "CURRENT  NAME     ADDRESS              CA" + strings.Repeat(" ", len(caAbs)-2) + "  TOKEN\n" +
		"*        prod     cp.example.com:7400  " + caAbs + "  set\n" +
		"-        staging  10.0.0.5:7400        -" + strings.Repeat(" ", len(caAbs)-1) + "  set\n" +
		"-        bare     localhost:7400       -" + strings.Repeat(" ", len(caAbs)-1) + "  none\n"
	if stdout != want {
		t.Errorf("context list =\n%s\nwant\n%s", stdout, want)
	}
	stdout, _, err = runApp(env, "context", "list", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout, "secret") {
		t.Errorf("context list -o json shows a token:\n%s", stdout)
	}
	var listed struct {
		CurrentContext string        `json:"current_context"`
		Contexts       []contextView `json:"contexts"`
	}
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	wantViews := []contextView{
		{Name: "prod", Address: "cp.example.com:7400", CA: caAbs, TokenSet: true, Current: true},
		{Name: "staging", Address: "10.0.0.5:7400", TokenSet: true},
		{Name: "bare", Address: "localhost:7400"},
	}
	if listed.CurrentContext != "prod" || !slices.Equal(listed.Contexts, wantViews) {
		t.Errorf("context list -o json = %+v", listed)
	}

	stdout, _, err = runApp(env, "context", "use", "staging")
	if err != nil || stdout != "switched to context \"staging\" (10.0.0.5:7400)\n" {
		t.Errorf("context use = %q, %v", stdout, err)
	}
	if cfg := readConfigFile(t, path); cfg.CurrentContext != "staging" {
		t.Errorf("current-context = %q, want staging", cfg.CurrentContext)
	}

	// --replace overwrites, keeping the order.
	if _, _, err := runApp(env, "context", "add", "prod", "--addr", "cp2.example.com:7400", "--token", "new-secret", "--replace"); err != nil {
		t.Fatal(err)
	}
	if cfg := readConfigFile(t, path); cfg.Contexts[0] != (ctlContext{Name: "prod", Address: "cp2.example.com:7400", Token: "new-secret"}) {
		t.Errorf("replaced context = %+v", cfg.Contexts[0])
	}

	stdout, _, err = runApp(env, "context", "remove", "staging")
	if err != nil {
		t.Fatal(err)
	}
	if want := "removed context \"staging\" from " + path + "\nno context is current now: pick one with weftctl context use NAME\n"; stdout != want {
		t.Errorf("context remove = %q, want %q", stdout, want)
	}
	cfg = readConfigFile(t, path)
	if cfg.CurrentContext != "" || len(cfg.Contexts) != 2 || cfg.find("staging") != nil {
		t.Errorf("after remove: %+v", cfg)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("config file after rewrites: %v, %v; want mode 0600", st.Mode(), err)
	}
	// No temporary files are left beside it.
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("config directory holds %v, want the config file alone", entries)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func equalConfig(a, b ctlConfig) bool {
	return a.CurrentContext == b.CurrentContext && slices.Equal(a.Contexts, b.Contexts)
}

func TestContextRefusals(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "weft-ca")
	notPEM := filepath.Join(dir, "not.pem")
	empty := filepath.Join(dir, "empty.token")
	for _, f := range []string{notPEM, empty} {
		if err := os.WriteFile(f, []byte("\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "config.yaml")
	env := map[string]string{"WEFT_CONFIG": path}
	if _, _, err := runApp(env, "context", "add", "prod", "--addr", "cp:7400", "--token", "s", "--use"); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, path)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no addr", args: []string{"context", "add", "x"}, wantErr: "--addr is required: the control plane's host:port"},
		{name: "empty addr", args: []string{"context", "add", "x", "--addr", " "}, wantErr: "--addr is required"},
		{name: "addr without port", args: []string{"context", "add", "x", "--addr", "cp"}, wantErr: `--addr "cp": want host:port`},
		{name: "bad name", args: []string{"context", "add", "a b", "--addr", "cp:1"}, wantErr: `context name "a b": want letters, digits`},
		{name: "empty name", args: []string{"context", "add", "", "--addr", "cp:1"}, wantErr: "NAME must not be empty"},
		{name: "both tokens", args: []string{"context", "add", "x", "--addr", "cp:1", "--token", "s", "--token-file", empty}, wantErr: "give --token or --token-file, not both"},
		{name: "empty token", args: []string{"context", "add", "x", "--addr", "cp:1", "--token", ""}, wantErr: "--token is empty"},
		{name: "empty token file", args: []string{"context", "add", "x", "--addr", "cp:1", "--token-file", empty}, wantErr: "--token-file " + empty + ": the file is empty"},
		{name: "missing token file", args: []string{"context", "add", "x", "--addr", "cp:1", "--token-file", "/nonexistent/t"}, wantErr: "--token-file: open /nonexistent/t: no such file or directory"},
		{name: "token with a space", args: []string{"context", "add", "x", "--addr", "cp:1", "--token", "a b"}, wantErr: "--token: the token holds a space"},
		{name: "missing CA", args: []string{"context", "add", "x", "--addr", "cp:1", "--ca", "/nonexistent/ca.pem"}, wantErr: "--ca: open /nonexistent/ca.pem: no such file or directory"},
		{name: "CA not PEM", args: []string{"context", "add", "x", "--addr", "cp:1", "--ca", notPEM}, wantErr: "--ca " + notPEM + ": holds no PEM CERTIFICATE block"},
		{name: "exists", args: []string{"context", "add", "prod", "--addr", "cp:1", "--ca", ca.file}, wantErr: `context "prod" exists in ` + path + " (give --replace to overwrite it)"},
		{name: "use unknown", args: []string{"context", "use", "nope"}, wantErr: `context "nope" not found in ` + path + " (see weftctl context list)"},
		{name: "remove unknown", args: []string{"context", "remove", "nope"}, wantErr: `context "nope" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runApp(env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if after := mustRead(t, path); string(after) != string(before) {
				t.Errorf("the config file changed:\n%s", after)
			}
		})
	}
}

func TestContextConfigFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		env     map[string]string
		content string
		wantErr string
		// wantPath is where the config file is; checked when content is "".
		wantPath string
	}{
		{name: "WEFT_CONFIG", env: map[string]string{"WEFT_CONFIG": filepath.Join(dir, "a.yaml"), "XDG_CONFIG_HOME": filepath.Join(dir, "xdg")}, wantPath: filepath.Join(dir, "a.yaml")},
		{name: "XDG_CONFIG_HOME", env: map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "xdg")}, wantPath: filepath.Join(dir, "xdg", "weft", "config.yaml")},
		{name: "no home", env: nil, wantErr: "cannot locate weftctl's config file: no home directory (set WEFT_CONFIG)"},
		{name: "unknown field", env: map[string]string{"WEFT_CONFIG": filepath.Join(dir, "b.yaml")}, content: "contexts:\n- name: a\n  adress: x:1\n", wantErr: "field adress not found"},
		{name: "twice", env: map[string]string{"WEFT_CONFIG": filepath.Join(dir, "c.yaml")}, content: "contexts:\n- name: a\n- name: a\n", wantErr: `context "a" is listed twice`},
		{name: "comments only", env: map[string]string{"WEFT_CONFIG": filepath.Join(dir, "d.yaml")}, content: "# nothing yet\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.content != "" {
				if err := os.WriteFile(tt.env["WEFT_CONFIG"], []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err := runApp(tt.env, "context", "add", "x", "--addr", "cp:1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantPath != "" {
				if cfg := readConfigFile(t, tt.wantPath); cfg.find("x") == nil {
					t.Errorf("%s lacks the context: %+v", tt.wantPath, cfg)
				}
			}
		})
	}
}

func TestContextFileReadableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("contexts:\n- name: a\n  address: cp:1\n  token: s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runApp(map[string]string{"WEFT_CONFIG": path}, "context", "list")
	if err != nil {
		t.Fatal(err)
	}
	want := "weftctl: warning: " + path + " holds tokens and others may read it (mode 0644): chmod 600 " + path + "\n"
	if stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

// TestConnectionPrecedence checks that each setting comes from its flag,
// else its environment variable, else the context, and that the token
// reaches the server as a bearer header.
func TestConnectionPrecedence(t *testing.T) {
	e := authEnv(t, func(e *testEnv) {
		e.access.addToken("flag-secret", "from-flag", adminv1.Role_ROLE_VIEWER)
		e.access.addToken("env-secret", "from-env", adminv1.Role_ROLE_VIEWER)
		e.access.addToken("ctx-secret", "from-context", adminv1.Role_ROLE_VIEWER)
		e.access.addToken("other-secret", "from-other", adminv1.Role_ROLE_VIEWER)
	})
	dead := deadAddr(t)
	dir := t.TempDir()
	live := filepath.Join(dir, "live.yaml")
	writeConfig := func(path string, cfg ctlConfig) {
		if err := saveConfig(path, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(live, ctlConfig{CurrentContext: "main", Contexts: []ctlContext{
		{Name: "main", Address: e.addr, CA: e.caFile, Token: "ctx-secret"},
		{Name: "other", Address: e.addr, CA: e.caFile, Token: "other-secret"},
		{Name: "dead", Address: dead, CA: e.caFile, Token: "ctx-secret"},
	}})
	deadFile := filepath.Join(dir, "dead.yaml")
	writeConfig(deadFile, ctlConfig{CurrentContext: "dead", Contexts: []ctlContext{
		{Name: "dead", Address: dead, CA: "/nonexistent/ca.pem", Token: "ctx-secret"},
	}})
	gone := filepath.Join(dir, "gone.yaml")
	writeConfig(gone, ctlConfig{CurrentContext: "gone", Contexts: []ctlContext{{Name: "dead", Address: dead}}})
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string // the token name whoami reports
		wantErr string
	}{
		{name: "all from the current context", env: map[string]string{"WEFT_CONFIG": live}, want: "from-context"},
		{name: "env token beats the context", env: map[string]string{"WEFT_CONFIG": live, "WEFT_TOKEN": "env-secret"}, want: "from-env"},
		{name: "flag token beats env", env: map[string]string{"WEFT_CONFIG": live, "WEFT_TOKEN": "env-secret"}, args: []string{"--token", "flag-secret"}, want: "from-flag"},
		{name: "WEFT_CONTEXT picks a context", env: map[string]string{"WEFT_CONFIG": live, "WEFT_CONTEXT": "other"}, want: "from-other"},
		{name: "--context beats WEFT_CONTEXT", env: map[string]string{"WEFT_CONFIG": live, "WEFT_CONTEXT": "dead"}, args: []string{"--context", "other"}, want: "from-other"},
		{name: "env address and CA beat the context", env: map[string]string{"WEFT_CONFIG": deadFile, "WEFT_ADDR": e.addr, "WEFT_CA": e.caFile, "WEFT_TOKEN": "env-secret"}, want: "from-env"},
		{name: "flag address beats env", env: map[string]string{"WEFT_CONFIG": deadFile, "WEFT_ADDR": dead, "WEFT_CA": e.caFile, "WEFT_TOKEN": "env-secret"}, args: []string{"--addr", e.addr}, want: "from-env"},
		{name: "the context's token follows its own address given by flag", env: map[string]string{"WEFT_CONFIG": live}, args: []string{"--addr", e.addr}, want: "from-context"},
		{name: "the context's token never goes to another address", env: map[string]string{"WEFT_CONFIG": deadFile, "WEFT_CA": e.caFile}, args: []string{"--addr", e.addr}, wantErr: "the control plane refused the credentials"},
		{name: "flag CA beats env", env: map[string]string{"WEFT_ADDR": e.addr, "WEFT_CA": "/nonexistent/ca.pem", "WEFT_TOKEN": "env-secret"}, args: []string{"--ca", e.caFile}, want: "from-env"},
		{name: "context address", env: map[string]string{"WEFT_CONFIG": live, "WEFT_CONTEXT": "dead"}, wantErr: "cannot reach the control plane at " + dead + ": connection refused"},
		{name: "unknown --context", env: map[string]string{"WEFT_CONFIG": live}, args: []string{"--context", "nope"}, wantErr: `--context names context "nope", which ` + live + " does not hold (see weftctl context list)"},
		{name: "unknown WEFT_CONTEXT", env: map[string]string{"WEFT_CONFIG": live, "WEFT_CONTEXT": "nope"}, wantErr: `WEFT_CONTEXT names context "nope"`},
		{name: "current context missing", env: map[string]string{"WEFT_CONFIG": gone}, wantErr: "current-context in " + gone + ` names context "gone", which ` + gone + " does not hold"},
		{name: "empty --context", env: map[string]string{"WEFT_CONFIG": live}, args: []string{"--context", ""}, wantErr: "--context is empty"},
		{name: "context CA file missing", env: map[string]string{"WEFT_CONFIG": deadFile}, wantErr: `context "dead" ca: open /nonexistent/ca.pem: no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.access.headersSeen())
			stdout, _, err := runCtl(tt.env, "", append(tt.args, "whoami", "-o", "json")...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var who struct{ Name string }
			if err := json.Unmarshal([]byte(stdout), &who); err != nil || who.Name != tt.want {
				t.Errorf("whoami = %s (%v), want token %s", stdout, err, tt.want)
			}
			headers := e.access.headersSeen()[before:]
			secret := map[string]string{"from-flag": "flag-secret", "from-env": "env-secret", "from-context": "ctx-secret", "from-other": "other-secret"}[tt.want]
			if !slices.Equal(headers, []string{"Bearer " + secret}) {
				t.Errorf("authorization headers = %q, want the %s token as a bearer", headers, tt.want)
			}
		})
	}
}
