package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecretsKeyPath(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // the path, or with err the error's words
		err  bool
	}{
		{"flag wins", Config{DB: "sqlite:/var/lib/weft/weft.db", SecretsKey: "/etc/weft/key"}, "/etc/weft/key", false},
		{"beside the SQLite file", Config{DB: "sqlite:/var/lib/weft/weft.db"}, filepath.FromSlash("/var/lib/weft/weft-secrets.key"), false},
		{"beside a relative SQLite file", Config{DB: "sqlite:weft.db"}, "weft-secrets.key", false},
		{"SQLite parameters left out", Config{DB: "sqlite:/data/weft.db?_pragma=cache_size(-2000)/x"}, filepath.FromSlash("/data/weft-secrets.key"), false},
		{"MySQL with the flag", Config{DB: "mysql:root@tcp(db:3306)/weft", SecretsKey: "/etc/weft/key"}, "/etc/weft/key", false},
		{"MySQL needs the flag", Config{DB: "mysql:root@tcp(db:3306)/weft"}, "--secrets-key (env WEFT_SECRETS_KEY) is required with a MySQL database", true},
		{"unknown database", Config{DB: "postgres:host=db"}, `--db: unknown kind "postgres"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.SecretsKeyPath()
			if tt.err {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("SecretsKeyPath = %q, %v; want an error containing %q", got, err, tt.want)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("SecretsKeyPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseSecretsKey(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		args    []string
		want    string // SecretsKey, or the error's words
		wantErr bool
	}{
		{"unset", "", []string{"--db", "sqlite:weft.db"}, "", false},
		{"flag", "", []string{"--secrets-key", "/k/flag"}, "/k/flag", false},
		{"environment", "/k/env", nil, "/k/env", false},
		{"flag over environment", "/k/env", []string{"--secrets-key", "/k/flag"}, "/k/flag", false},
		{"MySQL from the environment", "/k/env", []string{"--db", "mysql:root@tcp(db:3306)/weft"}, "/k/env", false},
		{"MySQL without a key", "", []string{"--db", "mysql:root@tcp(db:3306)/weft"}, "--secrets-key (env WEFT_SECRETS_KEY) is required", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WEFT_SECRETS_KEY", tt.env)
			t.Setenv("WEFT_DB", "")
			cfg, err := Parse(tt.args)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Parse = %+v, %v; want an error containing %q", cfg, err, tt.want)
				}
				return
			}
			if err != nil || cfg.SecretsKey != tt.want {
				t.Fatalf("Parse: SecretsKey = %q, %v; want %q", cfg.SecretsKey, err, tt.want)
			}
		})
	}
}

func TestParseJobLease(t *testing.T) {
	tests := []struct {
		args []string
		want time.Duration // 0: an error naming --job-lease
	}{
		{nil, 15 * time.Second},
		{[]string{"--job-lease", "2s"}, 2 * time.Second},
		{[]string{"--job-lease", "100ms"}, 0},
		{[]string{"--job-lease", "2h"}, 0},
	}
	for _, tt := range tests {
		t.Setenv("WEFT_SECRETS_KEY", "")
		t.Setenv("WEFT_DB", "")
		cfg, err := Parse(tt.args)
		if tt.want == 0 {
			if err == nil || !strings.Contains(err.Error(), "--job-lease") {
				t.Errorf("Parse(%q) = %v; want an error naming --job-lease", tt.args, err)
			}
			continue
		}
		if err != nil || cfg.JobLease != tt.want {
			t.Errorf("Parse(%q): JobLease = %s, %v; want %s", tt.args, cfg.JobLease, err, tt.want)
		}
	}
}

func TestParseEvalLimits(t *testing.T) {
	tests := []struct {
		args []string
		want string // an error's words; "" for none
	}{
		{nil, ""},
		{[]string{"--eval-cpu-limit", "3s", "--eval-memory-limit", "256", "--deploy-timeout", "1m"}, ""},
		{[]string{"--eval-cpu-limit", "500ms"}, "--eval-cpu-limit 500ms: want 1s or more"},
		{[]string{"--eval-memory-limit", "64"}, "--eval-memory-limit 64: want 128 (MiB) or more"},
		{[]string{"--deploy-timeout", "0s"}, "--deploy-timeout 0s: must be positive"},
	}
	for _, tt := range tests {
		t.Setenv("WEFT_SECRETS_KEY", "")
		t.Setenv("WEFT_DB", "")
		cfg, err := Parse(tt.args)
		if tt.want != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v; want an error containing %q", tt.args, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.args, err)
		}
		if tt.args == nil && (cfg.EvalCPULimit != 10*time.Second || cfg.EvalMemoryLimit != 512 || cfg.DeployTimeout != 20*time.Second) {
			t.Errorf("defaults: CPU %s, memory %d MiB, timeout %s", cfg.EvalCPULimit, cfg.EvalMemoryLimit, cfg.DeployTimeout)
		}
	}
}
