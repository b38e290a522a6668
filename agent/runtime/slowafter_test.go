package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/runtime"
	"github.com/weft-dev/weft/agent/shared/svcpkg"
)

func TestRegisterOptions(t *testing.T) {
	src := source("svc.go", header+`import "time"

func init() {
	sdk.Register("plain", h)
	sdk.Register("slow", h, sdk.SlowAfter(3*time.Second))
	sdk.Register("both", h, sdk.Timeout(time.Minute), sdk.SlowAfter(250*time.Millisecond))
	sdk.Register("later.wins", h, sdk.SlowAfter(time.Second), sdk.Timeout(time.Hour), sdk.SlowAfter(2*time.Second))
}

func h(*sdk.Context, map[string]any) (map[string]any, error) { return nil, nil }
`)
	p := load(t, src)
	tests := []struct {
		service            string
		timeout, slowAfter time.Duration
	}{
		{"plain", 0, 0},
		{"slow", 0, 3 * time.Second},
		{"both", time.Minute, 250 * time.Millisecond},
		{"later.wins", time.Hour, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			svc := p.Services[tt.service]
			if svc == nil {
				t.Fatalf("no service %q in %q", tt.service, p.ServiceNames())
			}
			if svc.Timeout != tt.timeout || svc.SlowAfter != tt.slowAfter {
				t.Fatalf("Timeout %s, SlowAfter %s; want %s, %s", svc.Timeout, svc.SlowAfter, tt.timeout, tt.slowAfter)
			}
		})
	}
}

func TestRegisterNegativeSlowAfter(t *testing.T) {
	src := source("svc.go", header+`import "time"

func init() { sdk.Register("x", h, sdk.SlowAfter(-time.Second)) }

func h(*sdk.Context, map[string]any) (map[string]any, error) { return nil, nil }
`)
	_, err := runtime.Load(context.Background(), src)
	var le *svcpkg.LoadError
	if !errors.As(err, &le) || len(le.Problems) != 1 || !strings.Contains(le.Problems[0].String(), `service "x": sdk.SlowAfter(-1s) must not be negative`) {
		t.Fatalf("Load = %v; want one problem about the negative SlowAfter", err)
	}
}
