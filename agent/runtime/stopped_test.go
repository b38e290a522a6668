package runtime

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/sdk"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestStoppedLate: a call that a closed package stopped after its
// deadline had passed overran like the runaway that closed it, and says
// so, even when its own deadline's timer had not fired yet (as with more
// runaway calls than cores); before its deadline it was merely closed.
func TestStoppedLate(t *testing.T) {
	svc, err := handler.New("x", func(*sdk.Context, map[string]any) (map[string]any, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Errorf("x: %w", handler.ErrClosed)
	other := errors.New("other")
	past := NewCall(context.Background(), time.Now().Add(-time.Second), time.Millisecond)
	ahead := NewCall(context.Background(), time.Now(), time.Hour)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want int // the status of what stoppedLate returns; 0 for nil
	}{
		{"returned in time", past, nil, 0},
		{"closed past its deadline", past, closed, 504},
		{"closed before its deadline", ahead, closed, 503},
		{"closed with no deadline", context.Background(), closed, 503},
		{"failed past its deadline", past, other, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := stoppedLate(tc.ctx, svc, tc.err)
			if got == nil && tc.want != 0 || got != nil && handler.Status(got) != tc.want {
				t.Fatalf("stoppedLate(%v) = %v, want status %d", tc.err, got, tc.want)
			}
			if tc.want == 504 && !errors.Is(got, ErrDeadline) {
				t.Fatalf("stoppedLate(%v) = %v, want ErrDeadline", tc.err, got)
			}
		})
	}
}

// TestCloseOnce: closing a closed package does nothing and says so, so
// that the runaways of one interpreter close it once.
func TestCloseOnce(t *testing.T) {
	p, err := Load(context.Background(), &adminv1.PackageSource{Name: "x", Files: []*adminv1.SourceFile{{Name: "x.go", Content: []byte(`package x

import "github.com/weft-dev/weft/agent/sdk"

func init() {
	sdk.Register("x.ok", func(ctx *sdk.Context, in map[string]any) (map[string]any, error) { return in, nil })
}
`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Close() {
		t.Fatal("the first Close says the package was closed already")
	}
	if p.Close() {
		t.Fatal("the second Close says it closed the package")
	}
	if _, err := p.Services["x.ok"].Invoke(nil, nil); !errors.Is(err, handler.ErrClosed) {
		t.Fatalf("a call after Close = %v, want ErrClosed", err)
	}
}
