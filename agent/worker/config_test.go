package worker

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestArgsParseRoundTrip(t *testing.T) {
	// Every field differs from Parse's default, so that a flag Args leaves
	// out or Parse reads into the wrong field shows.
	want := Config{
		Index:           3,
		InvokeTimeout:   7 * time.Second,
		MaxBodyBytes:    12345,
		MaxPackageBytes: 67890,
		HTTPReadTimeout: 11 * time.Second,
		ShutdownTimeout: 13 * time.Second,
		GCPercent:       -1,
		MemoryLimit:     512 << 20,
		SlowThreshold:   250 * time.Millisecond,
		LogLevel:        slog.LevelDebug,
		Stats:           false,
		Metrics:         true,
		ProfileDir:      "/var/tmp/weft-profiles",
	}
	args := want.Args()
	if args[0] != Command {
		t.Fatalf("Args()[0] = %q, want %q", args[0], Command)
	}
	got, err := Parse(args[1:])
	if err != nil {
		t.Fatalf("Parse(%q): %v", args[1:], err)
	}
	if got != want {
		t.Fatalf("Parse(Args()) = %+v, want %+v", got, want)
	}

	// And the other way round for the booleans and a level with an offset.
	want.Stats, want.Metrics, want.LogLevel = true, false, slog.LevelWarn+2
	if got, err = Parse(want.Args()[1:]); err != nil || got != want {
		t.Fatalf("Parse(Args()) = %+v, %v; want %+v", got, err, want)
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"extra argument", []string{"--index", "2", "stray"}, `unexpected argument "stray"`},
		{"bad level", []string{"--log-level", "loud"}, `--log-level "loud"`},
		{"unknown flag", []string{"--nope"}, "nope"},
		{"bad duration", []string{"--invoke-timeout", "soon"}, "invoke-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}
