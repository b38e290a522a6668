package settings

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// flags is a flag set like a binary's: one flag that reads its own
// variable, others that leave it to Parse.
func flags() (*flag.FlagSet, *string, *time.Duration, *string, *string) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	addr := fs.String("listen", envOr("WEFT_TEST_LISTEN", "127.0.0.1:1"), "address (env WEFT_TEST_LISTEN)")
	poll := fs.Duration("poll-interval", time.Second, "how often")
	labels := fs.String("labels", "", "labels k=v,k=v")
	hosts := fs.String("tls-hosts", "", "hosts, comma-separated")
	return fs, addr, poll, labels, hosts
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "settings.yaml")
	if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestOrder: the file, then the environment, then the command line, each
// over the one before; lists and mappings in the file.
func TestOrder(t *testing.T) {
	file := writeFile(t, "listen: 127.0.0.1:2\npoll-interval: 3s\nlabels:\n  site: berlin\n  env: prod\ntls-hosts: [a.example, b.example]\n")
	t.Run("the file", func(t *testing.T) {
		fs, addr, poll, labels, hosts := flags()
		values, err := Parse(fs, []string{"--config", file}, "WEFT_TEST_CONFIG")
		if err != nil {
			t.Fatal(err)
		}
		if *addr != "127.0.0.1:2" || *poll != 3*time.Second || *labels != "site=berlin,env=prod" || *hosts != "a.example,b.example" {
			t.Fatalf("from the file: %s %s %s %s", *addr, *poll, *labels, *hosts)
		}
		if values["poll-interval"] != "3s" {
			t.Fatalf("values = %v", values)
		}
	})
	t.Run("the environment over the file", func(t *testing.T) {
		t.Setenv("WEFT_TEST_CONFIG", file)
		t.Setenv("WEFT_TEST_LISTEN", "127.0.0.1:4")
		t.Setenv("WEFT_POLL_INTERVAL", "5s")
		fs, addr, poll, _, _ := flags()
		if _, err := Parse(fs, nil, "WEFT_TEST_CONFIG"); err != nil {
			t.Fatal(err)
		}
		if *addr != "127.0.0.1:4" || *poll != 5*time.Second {
			t.Fatalf("listen %s, poll %s; want the environment's", *addr, *poll)
		}
	})
	t.Run("the command line over both", func(t *testing.T) {
		t.Setenv("WEFT_POLL_INTERVAL", "5s")
		fs, _, poll, _, _ := flags()
		if _, err := Parse(fs, []string{"--config=" + file, "--poll-interval", "7s"}, "WEFT_TEST_CONFIG"); err != nil {
			t.Fatal(err)
		}
		if *poll != 7*time.Second {
			t.Fatalf("poll %s; want the flag's 7s", *poll)
		}
	})
}

// TestEveryFlagHasAVariable: Parse names each flag's variable in its usage.
func TestEveryFlagHasAVariable(t *testing.T) {
	fs, _, _, _, _ := flags()
	if _, err := Parse(fs, nil, "WEFT_TEST_CONFIG"); err != nil {
		t.Fatal(err)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Count(f.Usage, "(env ") != 1 || !strings.Contains(f.Usage, "(env "+Env(f)) {
			t.Errorf("--%s: usage %q; want its variable %s named once", f.Name, f.Usage, Env(f))
		}
	})
	if got := Env(fs.Lookup("poll-interval")); got != "WEFT_POLL_INTERVAL" {
		t.Errorf("the variable of --poll-interval is %s", got)
	}
}

// TestBadSettings: each bad setting is named by file and line, or by its
// variable.
func TestBadSettings(t *testing.T) {
	for _, tt := range []struct {
		name, text, env, want string
	}{
		{name: "unknown", text: "listen: x\nlisten-to: y\n", want: `settings.yaml:2: unknown setting "listen-to"`},
		{name: "bad value", text: "poll-interval: soon\n", want: `settings.yaml:1: poll-interval: parse error`},
		{name: "not a mapping", text: "- listen\n", want: "settings.yaml:1: want a mapping of settings"},
		{name: "bad YAML", text: "listen: [\n", want: "settings.yaml"},
		{name: "bad variable", env: "soon", want: `WEFT_POLL_INTERVAL="soon"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WEFT_POLL_INTERVAL", tt.env)
			fs, _, _, _, _ := flags()
			args := []string{}
			if tt.text != "" {
				args = []string{"--config", writeFile(t, tt.text)}
			}
			_, err := Parse(fs, args, "WEFT_TEST_CONFIG")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse: %v; want an error with %q", err, tt.want)
			}
		})
	}
}

// TestReload: the log level changes at once; other changes are named as
// waiting for a restart; settings that do not parse change nothing.
func TestReload(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	level := new(slog.LevelVar)
	current := map[string]string{"log-level": "info", "poll-interval": "1s"}
	next := map[string]string{"log-level": "debug", "poll-interval": "2s"}
	got := Reload(func() (map[string]string, error) { return next, nil }, current, level, log)
	if level.Level() != slog.LevelDebug || got["log-level"] != "debug" {
		t.Fatalf("level %v, settings %v; want debug", level.Level(), got)
	}
	if !strings.Contains(logs.String(), "log level changed") || !strings.Contains(logs.String(), "--poll-interval") {
		t.Fatalf("log:\n%s", logs.String())
	}
	logs.Reset()
	kept := Reload(func() (map[string]string, error) { return nil, os.ErrNotExist }, got, level, log)
	if kept["log-level"] != "debug" || !strings.Contains(logs.String(), "nothing changed") {
		t.Fatalf("a failed parse: settings %v, log:\n%s", kept, logs.String())
	}
}
