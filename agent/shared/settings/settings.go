// Package settings gives both binaries, the control plane and the agent,
// one way to read their settings: the YAML file that --config names (or
// its environment variable), then the environment, then the command line,
// each over the one before. Every flag has an environment variable: the
// one its usage names as "(env NAME)", or else WEFT_ and the flag's name
// in capitals with - as _, which Parse adds to its usage. A setting of the
// file is named as its flag; a list is a YAML sequence, labels a mapping.
// On SIGHUP a binary parses again (Parse) and applies what it can (Diff).
package settings

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"
)

// envInUsage finds the "(env NAME)" or "(env NAME; …)" of a flag's usage.
var envInUsage = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)[);]`)

// Env is the environment variable of flag f: the one its usage names, or
// WEFT_ and its name in capitals with - as _.
func Env(f *flag.Flag) string {
	if m := envInUsage.FindStringSubmatch(f.Usage); m != nil {
		return m[1]
	}
	return "WEFT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}

// Parse sets fs's flags from the settings file, the environment and args,
// in that order, and returns what each flag is set to, by name. fileEnv is
// the environment variable that may name the file instead of --config.
// The flags that name their environment variable read it themselves (as
// their default); Parse reads the others', and gives every flag's usage
// its variable. A bad setting is an error naming the file and line, or
// the variable.
func Parse(fs *flag.FlagSet, args []string, fileEnv string) (map[string]string, error) {
	file := fs.String("config", os.Getenv(fileEnv), "YAML file of settings, each named as its flag; the environment and the command line win over it (env "+fileEnv+")")
	own := map[string]bool{} // flags that read their variable themselves
	fs.VisitAll(func(f *flag.Flag) {
		if envInUsage.MatchString(f.Usage) {
			own[f.Name] = true
		} else {
			f.Usage += " (env " + Env(f) + ")"
		}
	})
	if name := configFlag(args, *file); name != "" {
		if err := readFile(fs, name); err != nil {
			return nil, err
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if own[f.Name] || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(Env(f)); ok && v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %v", Env(f), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	values := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { values[f.Name] = f.Value.String() })
	return values, nil
}

// configFlag is the file args name with --config, else def.
func configFlag(args []string, def string) string {
	for i, a := range args {
		switch {
		case a == "--":
			return def
		case a == "--config" || a == "-config":
			if i+1 < len(args) {
				return args[i+1]
			}
		case strings.HasPrefix(a, "--config="), strings.HasPrefix(a, "-config="):
			return a[strings.Index(a, "=")+1:]
		}
	}
	return def
}

// readFile sets fs's flags from the YAML file name, but not those whose
// environment variable is set: the environment wins over the file.
func readFile(fs *flag.FlagSet, name string) error {
	text, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: want a mapping of settings, each named as its flag", name, top.Line)
	}
	var errs []error
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		f := fs.Lookup(k.Value)
		switch {
		case f == nil || k.Value == "config":
			errs = append(errs, fmt.Errorf("%s:%d: unknown setting %q (the settings are named as the flags: see --help)", name, k.Line, k.Value))
			continue
		case os.Getenv(Env(f)) != "":
			continue // the environment wins
		}
		value, err := valueText(v)
		if err == nil {
			err = fs.Set(f.Name, value)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %v", name, v.Line, k.Value, err))
		}
	}
	return errors.Join(errs...)
}

// valueText is a setting's value as its flag reads it: a scalar as it is, a
// sequence comma-separated, a mapping as k=v pairs.
func valueText(v *yaml.Node) (string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		return v.Value, nil
	case yaml.SequenceNode:
		var parts []string
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode {
				return "", errors.New("want a list of plain values")
			}
			parts = append(parts, e.Value)
		}
		return strings.Join(parts, ","), nil
	case yaml.MappingNode:
		var parts []string
		for i := 0; i+1 < len(v.Content); i += 2 {
			if v.Content[i+1].Kind != yaml.ScalarNode {
				return "", errors.New("want a mapping of plain values")
			}
			parts = append(parts, v.Content[i].Value+"="+v.Content[i+1].Value)
		}
		return strings.Join(parts, ","), nil
	}
	return "", errors.New("want a value, a list or a mapping")
}

// Diff names the settings that differ between old and next, sorted.
func Diff(old, next map[string]string) []string {
	var out []string
	for k, v := range next {
		if old[k] != v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// OnHangup reloads the settings (Reload) on each SIGHUP until ctx ends,
// starting from current; a SIGHUP no longer ends the process.
func OnHangup(ctx context.Context, parse func() (map[string]string, error), current map[string]string, level *slog.LevelVar, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				current = Reload(parse, current, level, log)
			}
		}
	}()
}

// Reload is what a binary does on SIGHUP: it parses its settings again,
// sets the log level at once, and says which other changes wait for a
// restart. A parse that fails changes nothing and is logged.
func Reload(parse func() (map[string]string, error), current map[string]string, level *slog.LevelVar, log *slog.Logger) map[string]string {
	next, err := parse()
	if err != nil {
		log.Error("SIGHUP: the settings do not parse; nothing changed", "err", err)
		return current
	}
	changed := Diff(current, next)
	var later []string
	for _, name := range changed {
		if name != "log-level" {
			later = append(later, "--"+name)
			continue
		}
		var l slog.Level
		if err := l.UnmarshalText([]byte(next[name])); err != nil {
			log.Error("SIGHUP: --log-level: want debug, info, warn or error", "value", next[name])
			continue
		}
		level.Set(l)
		log.Info("SIGHUP: log level changed", "from", current[name], "to", next[name])
	}
	if len(later) > 0 {
		log.Warn("SIGHUP: these changes take effect at the next restart", "settings", strings.Join(later, " "))
	}
	if len(changed) == 0 {
		log.Info("SIGHUP: the settings are unchanged")
	}
	return next
}
