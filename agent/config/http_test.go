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

func TestListeners(t *testing.T) {
	tls := []string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}
	tests := []struct {
		name            string
		env             string // WEFT_HTTP
		args            []string
		wantHTTP, wantS string
		wantErr         string
	}{
		{name: "default", wantHTTP: "127.0.0.1:8080"},
		{name: "https alone turns plain off", args: append([]string{"--https", ":8443"}, tls...), wantS: ":8443"},
		{name: "both when plain is asked for", args: append([]string{"--https", ":8443", "--http", ":8080"}, tls...), wantHTTP: ":8080", wantS: ":8443"},
		{name: "plain from the environment", env: ":9090", args: append([]string{"--https", ":8443"}, tls...), wantHTTP: ":9090", wantS: ":8443"},
		{name: "https without a certificate", args: []string{"--https", ":8443"}, wantErr: "--https :8443 needs --tls-cert and --tls-key"},
		{name: "https without a key", args: []string{"--https", ":8443", "--tls-cert", "c.pem"}, wantErr: "needs --tls-cert and --tls-key"},
		{name: "a certificate without https", args: tls, wantErr: "--tls-cert and --tls-key are for --https"},
		{name: "nowhere", args: []string{"--http", ""}, wantErr: "--http and --https are both empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WEFT_HTTP", tt.env)
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
			if c.HTTP != tt.wantHTTP || c.HTTPS != tt.wantS {
				t.Fatalf("HTTP %q HTTPS %q, want %q and %q", c.HTTP, c.HTTPS, tt.wantHTTP, tt.wantS)
			}
		})
	}
}
