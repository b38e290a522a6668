package config

import (
	"strings"
	"testing"
	"time"
)

func TestHTTPReadTimeout(t *testing.T) {
	tests := []struct {
		name    string
		env     string // WEFT_HTTP_READ_TIMEOUT
		args    []string
		want    time.Duration
		wantErr string
	}{
		{name: "default", want: DefaultHTTPReadTimeout},
		{name: "flag", args: []string{"--http-read-timeout", "5s"}, want: 5 * time.Second},
		{name: "env", env: "2m", want: 2 * time.Minute},
		{name: "flag beats env", env: "2m", args: []string{"--http-read-timeout", "1s"}, want: time.Second},
		{name: "zero", args: []string{"--http-read-timeout", "0s"}, wantErr: "--http-read-timeout 0s: must be positive"},
		{name: "negative", args: []string{"--http-read-timeout", "-1s"}, wantErr: "--http-read-timeout -1s: must be positive"},
		{name: "bad env", env: "soon", wantErr: `WEFT_HTTP_READ_TIMEOUT="soon": want a duration such as 30s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WEFT_HTTP_READ_TIMEOUT", tt.env)
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
			if c.HTTPReadTimeout != tt.want {
				t.Fatalf("HTTPReadTimeout = %s, want %s", c.HTTPReadTimeout, tt.want)
			}
		})
	}
}
