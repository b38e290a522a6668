package outgoing

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/weft-dev/weft/agent/shared/outgoingconf"
)

func TestDefaults(t *testing.T) {
	c, err := New(Config{Name: "crm", Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := c.Config()
	if got.Method != "GET" || got.Format != outgoingconf.FormatJSON || got.Timeout != 30*time.Second || got.PoolSize != 10 {
		t.Fatalf("defaults: %+v", got)
	}
	if c.tr.MaxConnsPerHost != 10 || c.tr.MaxIdleConnsPerHost != 10 {
		t.Fatalf("pool: MaxConnsPerHost %d, MaxIdleConnsPerHost %d", c.tr.MaxConnsPerHost, c.tr.MaxIdleConnsPerHost)
	}
	if c.tr.TLSClientConfig.InsecureSkipVerify {
		t.Fatal("zero Config skips TLS verification")
	}
}

func TestExcerpt(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"short", `{"error":"no"}`},
		{"ascii long", strings.Repeat("a", 2000)},
		{"multibyte cut", strings.Repeat("é", 1000)},           // 2 bytes each: 512 lands on a boundary
		{"multibyte cut odd", "x" + strings.Repeat("€", 1000)}, // 3 bytes each: cut inside
		{"invalid bytes", strings.Repeat("\xff", 600)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := excerpt([]byte(tt.in))
			if len(got) > excerptLen {
				t.Fatalf("len %d > %d", len(got), excerptLen)
			}
			if !strings.HasPrefix(tt.in, got) && !strings.Contains(tt.name, "invalid") {
				t.Fatalf("excerpt is not a prefix of the body")
			}
			if !utf8.ValidString(got) {
				t.Fatalf("excerpt is not valid UTF-8: %q", got)
			}
		})
	}
}
