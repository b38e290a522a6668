package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "512MiB", want: 512 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "1G", want: 1 << 30},
		{in: "64M", want: 64 << 20},
		{in: "8KiB", want: 8 << 10},
		{in: "1TiB", want: 1 << 40},
		{in: "1048576", want: 1 << 20},
		{in: "100B", want: 100},
		{in: " 256 MiB ", want: 256 << 20},
		{in: "", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "0", wantErr: true},
		{in: "0MiB", wantErr: true},
		{in: "12XB", wantErr: true},
		{in: "MiB", wantErr: true},
		{in: "1.5GiB", wantErr: true},
		{in: "99999999999TiB", wantErr: true}, // overflows
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBytes(tt.in)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "want a positive size") || !strings.Contains(err.Error(), `"`+tt.in+`"`) {
					t.Fatalf("ParseBytes(%q) = %d, %v; want an error quoting the input", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDefaultWorkers(t *testing.T) {
	if n := DefaultWorkers(); n < 1 {
		t.Fatalf("DefaultWorkers() = %d, want at least 1", n)
	}
	if n := DefaultWorkerMemoryLimit(1); n < 256<<20 {
		t.Fatalf("DefaultWorkerMemoryLimit(1) = %d, want at least 256 MiB", n)
	}
	if a, b := DefaultWorkerMemoryLimit(1), DefaultWorkerMemoryLimit(7); b > a {
		t.Fatalf("more workers got more memory each: %d for 1, %d for 7", a, b)
	}
}

func TestWorkerSettings(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		workers int
		limit   int64
		wantErr string
	}{
		{name: "flags", args: []string{"--workers", "3", "--worker-memory-limit", "512MiB"}, workers: 3, limit: 512 << 20},
		{name: "env", env: map[string]string{"WEFT_WORKERS": "2", "WEFT_WORKER_MEMORY_LIMIT": "1GiB"}, workers: 2, limit: 1 << 30},
		{name: "flag beats env", env: map[string]string{"WEFT_WORKERS": "2"}, args: []string{"--workers", "4", "--worker-memory-limit", "64MiB"}, workers: 4, limit: 64 << 20},
		{name: "no workers", args: []string{"--workers", "0"}, wantErr: "--workers 0: at least 1"},
		{name: "negative workers", args: []string{"--workers", "-2"}, wantErr: "--workers -2: at least 1"},
		{name: "bad env workers", env: map[string]string{"WEFT_WORKERS": "many"}, wantErr: `WEFT_WORKERS="many"`},
		{name: "limit too small", args: []string{"--worker-memory-limit", "1MiB"}, wantErr: "--worker-memory-limit 1MiB: at least 64 MiB"},
		{name: "limit unreadable", args: []string{"--worker-memory-limit", "lots"}, wantErr: `--worker-memory-limit: "lots"`},
		{name: "limit from env too small", env: map[string]string{"WEFT_WORKER_MEMORY_LIMIT": "1MiB"}, wantErr: "--worker-memory-limit 1MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WEFT_WORKERS", tt.env["WEFT_WORKERS"])
			t.Setenv("WEFT_WORKER_MEMORY_LIMIT", tt.env["WEFT_WORKER_MEMORY_LIMIT"])
			c, err := Parse(append([]string{"--id", "edge-1"}, tt.args...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse: %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Workers != tt.workers || c.WorkerMemoryLimit != tt.limit {
				t.Fatalf("workers %d with %d bytes each, want %d with %d", c.Workers, c.WorkerMemoryLimit, tt.workers, tt.limit)
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		t.Setenv("WEFT_WORKERS", "")
		t.Setenv("WEFT_WORKER_MEMORY_LIMIT", "")
		c, err := Parse([]string{"--id", "edge-1"})
		if err != nil {
			t.Fatal(err)
		}
		if c.Workers != DefaultWorkers() || c.WorkerMemoryLimit != DefaultWorkerMemoryLimit(c.Workers) {
			t.Fatalf("workers %d with %d bytes each, want the defaults %d with %d", c.Workers, c.WorkerMemoryLimit, DefaultWorkers(), DefaultWorkerMemoryLimit(c.Workers))
		}
	})
}

func TestWorkerProfileSetting(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  string
		args []string
		want string
	}{
		{name: "off by default", want: ""},
		{name: "flag", args: []string{"--worker-profile", "/var/tmp/prof"}, want: "/var/tmp/prof"},
		{name: "env", env: "/var/tmp/env", want: "/var/tmp/env"},
		{name: "flag beats env", env: "/var/tmp/env", args: []string{"--worker-profile", "/var/tmp/flag"}, want: "/var/tmp/flag"},
		// A worker runs in /, so a relative directory is the agent's.
		{name: "relative", args: []string{"--worker-profile", "prof"}, want: filepath.Join(wd, "prof")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WEFT_WORKER_PROFILE", tt.env)
			c, err := Parse(append([]string{"--id", "edge-1"}, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			if c.WorkerProfileDir != tt.want {
				t.Fatalf("WorkerProfileDir = %q, want %q", c.WorkerProfileDir, tt.want)
			}
		})
	}
}
