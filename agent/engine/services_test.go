package engine

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

const chainSrc = `package chain

import (
	"context"

	"github.com/weft-dev/weft/agent/sdk"
)

type In struct {
	N int ` + "`json:\"n\"`" + `
}

type Out struct {
	N int ` + "`json:\"n\"`" + `
}

func init() {
	sdk.Register("chain.inner", func(ctx *sdk.Context, in In) (Out, error) {
		if in.N < 0 {
			return Out{}, sdk.Errorf(422, "negative")
		}
		return Out{N: in.N * 2}, nil
	})
	sdk.Register("chain.outer", func(ctx *sdk.Context, in In) (Out, error) {
		var out Out
		if err := ctx.Invoke("chain.inner", in, &out); err != nil {
			return Out{}, err
		}
		ctx.Cache().Set("last", out.N, 0)
		return out, nil
	})
	sdk.Register("chain.stubborn", func(ctx *sdk.Context, in In) (Out, error) {
		cache := ctx.Cache()
		err := ctx.Go(func(gctx context.Context) {
			for i := 0; ; i++ {
				cache.Set("tick", i, 0)
			}
		})
		return Out{}, err
	})
	sdk.Register("chain.background", func(ctx *sdk.Context, in In) (Out, error) {
		cache := ctx.Cache()
		err := ctx.Go(func(gctx context.Context) {
			cache.Set("running", true, 0)
			<-gctx.Done()
			cache.Set("stopped", true, 0)
		})
		return Out{}, err
	})
}
`

func chainPackage(version int64, comment string) *adminv1.Package {
	files := []*adminv1.SourceFile{{Name: "chain.go", Content: []byte(chainSrc + comment)}}
	return &adminv1.Package{Name: "chain", Version: version, Sha256: snapshot.PackageHash(files),
		Services: []string{"chain.background", "chain.inner", "chain.outer", "chain.stubborn"}, Sources: files}
}

func TestServicesInvokeCacheAndGoroutines(t *testing.T) {
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	if _, errs := e.Apply(context.Background(), snap(1, []*adminv1.Package{chainPackage(1, "")})); len(errs) > 0 {
		t.Fatal(errs)
	}
	out := e.Invoke(context.Background(), "chain.outer", sdk.Request{}, []byte(`{"n":21}`), 0)
	if out.Status != 200 || string(out.Output) != `{"n":42}` {
		t.Fatalf("outer = %d %s %s", out.Status, out.Output, out.Error)
	}
	if v, ok := e.cache.Get("last"); !ok || v != 42 {
		t.Fatalf("cache last = %v, %v; want 42", v, ok)
	}
	out = e.Invoke(context.Background(), "chain.outer", sdk.Request{}, []byte(`{"n":-1}`), 0)
	if out.Status != 422 || !strings.Contains(out.Error, "negative") {
		t.Fatalf("outer with a failing inner = %d %s; want 422 from the inner service", out.Status, out.Error)
	}

	if out := e.Invoke(context.Background(), "chain.background", sdk.Request{}, nil, 0); out.Status != 200 {
		t.Fatalf("background = %d %s", out.Status, out.Error)
	}
	await(t, func() bool { _, ok := e.cache.Get("running"); return ok })
	if _, ok := e.cache.Get("stopped"); ok {
		t.Fatal("the goroutine stopped before its package was replaced")
	}
	// A new version replaces the package: its goroutines are told to stop.
	if _, errs := e.Apply(context.Background(), snap(2, []*adminv1.Package{chainPackage(2, "// v2\n")})); len(errs) > 0 {
		t.Fatal(errs)
	}
	await(t, func() bool { _, ok := e.cache.Get("stopped"); return ok })
}

// TestReplacedPackageStops checks that a goroutine ignoring its context
// stops too once a new version replaces its package: the old interpreter
// is closed when the calls on the old state have ended.
func TestReplacedPackageStops(t *testing.T) {
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	if _, errs := e.Apply(context.Background(), snap(1, []*adminv1.Package{chainPackage(1, "")})); len(errs) > 0 {
		t.Fatal(errs)
	}
	if out := e.Invoke(context.Background(), "chain.stubborn", sdk.Request{}, nil, 0); out.Status != 200 {
		t.Fatalf("stubborn = %d %s", out.Status, out.Error)
	}
	ticking := func() bool {
		a, _ := e.cache.Get("tick")
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if b, _ := e.cache.Get("tick"); b != a {
				return true
			}
			runtime.Gosched()
		}
		return false
	}
	if !ticking() {
		t.Fatal("the stubborn goroutine does not run")
	}
	if _, errs := e.Apply(context.Background(), snap(2, []*adminv1.Package{chainPackage(2, "// v2\n")})); len(errs) > 0 {
		t.Fatal(errs)
	}
	// Stopped: two reads far enough apart see the same tick.
	var last any = -1
	await(t, func() bool {
		now, _ := e.cache.Get("tick")
		same := now == last
		last = now
		return same
	})
	if out := e.Invoke(context.Background(), "chain.outer", sdk.Request{}, []byte(`{"n":1}`), 0); out.Status != 200 {
		t.Fatalf("the new version after the old one closed: %d %s", out.Status, out.Error)
	}
}

// await waits until cond holds (see testenv.Await).
func await(t *testing.T, cond func() bool) {
	t.Helper()
	testenv.Await(t, time.Minute, "the condition", func() (bool, string) { return cond(), "not yet" })
}
