package config

import (
	"strings"
	"testing"
)

func TestBackupsSetting(t *testing.T) {
	tests := []struct {
		name    string
		env     string // WEFT_BACKUPS
		args    []string
		want    int
		wantErr string
	}{
		{name: "default", want: 100},
		{name: "flag", args: []string{"--backups", "7"}, want: 7},
		{name: "zero disables", args: []string{"--backups", "0"}, want: 0},
		{name: "env", env: "12", want: 12},
		{name: "flag beats env", env: "12", args: []string{"--backups", "3"}, want: 3},
		{name: "negative flag", args: []string{"--backups", "-1"}, wantErr: "--backups -1: must not be negative"},
		{name: "negative env", env: "-4", wantErr: "--backups -4: must not be negative"},
		{name: "env not a number", env: "many", wantErr: `WEFT_BACKUPS="many": want a whole number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WEFT_BACKUPS", tt.env)
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
			if c.Backups != tt.want {
				t.Fatalf("Backups = %d, want %d", c.Backups, tt.want)
			}
		})
	}
}
