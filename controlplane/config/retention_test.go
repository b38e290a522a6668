package config

import (
	"strings"
	"testing"
	"time"
)

func TestStatsFlags(t *testing.T) {
	def := DefaultRetention()
	tests := []struct {
		name    string
		env     string // WEFT_STATS_RETENTION
		args    []string
		want    Retention
		metrics string
		err     string // words of the error; "" for none
	}{
		{"defaults", "", nil, def, "", ""},
		{"one resolution", "", []string{"--stats-retention", "1m=72h"}, Retention{Minute: 72 * time.Hour, Hour: def.Hour, Day: def.Day}, "", ""},
		{"every resolution in days", "", []string{"--stats-retention", "1m=3d, 1h=60d,1d=730d"}, Retention{Minute: 72 * time.Hour, Hour: 60 * day, Day: 730 * day}, "", ""},
		{"the flag over the environment", "1m=1h,1d=10d", []string{"--stats-retention", "1m=2h"}, Retention{Minute: 2 * time.Hour, Hour: def.Hour, Day: 10 * day}, "", ""},
		{"metrics", "", []string{"--metrics", "127.0.0.1:9400"}, def, "127.0.0.1:9400", ""},
		{"unknown resolution", "", []string{"--stats-retention", "5m=1h"}, def, "", `resolution "5m": want 1m, 1h or 1d`},
		{"no duration", "", []string{"--stats-retention", "1h"}, def, "", `"1h": want resolution=duration, such as 1m=48h`},
		{"bad duration", "", []string{"--stats-retention", "1h=forever"}, def, "", `1h: "forever": want a duration such as 48h or 35d`},
		{"zero", "", []string{"--stats-retention", "1d=0d"}, def, "", "1d=0d: must be positive"},
		{"bad environment", "1m", nil, def, "", "WEFT_STATS_RETENTION: \"1m\": want resolution=duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WEFT_STATS_RETENTION", tt.env)
			t.Setenv("WEFT_METRICS", "")
			cfg, err := Parse(append([]string{"--db", "sqlite:weft.db"}, tt.args...))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse = %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.StatsRetention != tt.want || cfg.Metrics != tt.metrics {
				t.Fatalf("retention %+v, metrics %q; want %+v, %q", cfg.StatsRetention, cfg.Metrics, tt.want, tt.metrics)
			}
		})
	}
	r := DefaultRetention()
	if got := r.String(); got != "1m=2d,1h=35d,1d=400d" {
		t.Errorf("String() = %q", got)
	}
}
