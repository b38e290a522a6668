package config

import (
	"strings"
	"testing"
	"time"
)

func TestStatsAndMetricsSettings(t *testing.T) {
	tests := []struct {
		name     string
		env      string // WEFT_METRICS
		args     []string
		stats    bool
		interval time.Duration
		metrics  string
		wantErr  string
	}{
		{name: "default", stats: true, interval: 10 * time.Second},
		{name: "stats off", args: []string{"--stats=false"}, interval: 10 * time.Second},
		{name: "interval", args: []string{"--stats-interval", "1m"}, stats: true, interval: time.Minute},
		{name: "interval zero", args: []string{"--stats-interval", "0s"}, wantErr: "--stats-interval 0s: must be positive"},
		{name: "interval unused when off", args: []string{"--stats=false", "--stats-interval", "0s"}},
		{name: "metrics flag", args: []string{"--metrics", "127.0.0.1:9100"}, stats: true, interval: 10 * time.Second, metrics: "127.0.0.1:9100"},
		{name: "metrics env", env: ":9100", stats: true, interval: 10 * time.Second, metrics: ":9100"},
		{name: "flag beats env", env: ":9100", args: []string{"--metrics", ""}, stats: true, interval: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WEFT_METRICS", tt.env)
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
			if c.Stats != tt.stats || c.StatsInterval != tt.interval || c.MetricsAddr != tt.metrics {
				t.Fatalf("stats %v every %s, metrics %q; want %v every %s, %q", c.Stats, c.StatsInterval, c.MetricsAddr, tt.stats, tt.interval, tt.metrics)
			}
		})
	}
}
