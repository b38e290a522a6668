package config

import (
	"strings"
	"testing"
)

func TestEnrollmentSettings(t *testing.T) {
	const fp = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name            string
		env             map[string]string
		args            []string
		wantToken       string
		wantFingerprint string
		wantCA          string
		wantErr         string
	}{
		{name: "none"},
		{name: "join with fingerprint", args: []string{"--join", "tok", "--ca-fingerprint", fp}, wantToken: "tok", wantFingerprint: fp},
		{name: "join with a CA file", args: []string{"--join", "tok", "--ca", "/etc/weft/ca.pem"}, wantToken: "tok", wantCA: "/etc/weft/ca.pem"},
		{name: "env", env: map[string]string{"WEFT_JOIN_TOKEN": "tok", "WEFT_CA_FINGERPRINT": fp}, wantToken: "tok", wantFingerprint: fp},
		{name: "env CA file", env: map[string]string{"WEFT_JOIN_TOKEN": "tok", "WEFT_CA": "ca.pem"}, wantToken: "tok", wantCA: "ca.pem"},
		{name: "fingerprint without join", args: []string{"--ca-fingerprint", fp}, wantFingerprint: fp},
		{name: "upper case and colons are normalised",
			args:            []string{"--ca-fingerprint", "SHA256:" + strings.ToUpper(colons(fp[len("sha256:"):]))},
			wantFingerprint: fp},
		{name: "join without trust", args: []string{"--join", "tok"},
			wantErr: "--join needs --ca-fingerprint sha256:HEX (weftctl agent token create prints it) or --ca FILE"},
		{name: "join without trust from env", env: map[string]string{"WEFT_JOIN_TOKEN": "tok"}, wantErr: "--join needs --ca-fingerprint"},
		{name: "fingerprint and CA file", args: []string{"--ca-fingerprint", fp, "--ca", "ca.pem"}, wantErr: "--ca-fingerprint and --ca are both set: give one"},
		{name: "no prefix", args: []string{"--ca-fingerprint", fp[len("sha256:"):]},
			wantErr: `--ca-fingerprint "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": want sha256: and 64 hex digits`},
		{name: "another hash", args: []string{"--ca-fingerprint", "sha1:0123456789abcdef0123456789abcdef01234567"}, wantErr: "--ca-fingerprint \"sha1:"},
		{name: "too short", args: []string{"--ca-fingerprint", fp[:len(fp)-2]}, wantErr: "want sha256: and 64 hex digits"},
		{name: "not hex", args: []string{"--ca-fingerprint", fp[:len(fp)-1] + "g"}, wantErr: "want sha256: and 64 hex digits"},
		{name: "bad env fingerprint", env: map[string]string{"WEFT_CA_FINGERPRINT": "sha256:xyz"}, wantErr: `--ca-fingerprint "sha256:xyz": want sha256:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range []string{"WEFT_JOIN_TOKEN", "WEFT_CA_FINGERPRINT", "WEFT_CA"} {
				t.Setenv(name, tt.env[name])
			}
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
			if c.JoinToken != tt.wantToken || c.CAFingerprint != tt.wantFingerprint || c.CAFile != tt.wantCA {
				t.Fatalf("join %q, fingerprint %q, CA %q; want %q, %q, %q", c.JoinToken, c.CAFingerprint, c.CAFile, tt.wantToken, tt.wantFingerprint, tt.wantCA)
			}
		})
	}
}

// colons writes hex as pairs separated by colons, as openssl does.
func colons(hex string) string {
	var pairs []string
	for i := 0; i < len(hex); i += 2 {
		pairs = append(pairs, hex[i:i+2])
	}
	return strings.Join(pairs, ":")
}
