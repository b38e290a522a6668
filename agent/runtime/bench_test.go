package runtime_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/handler"
	wruntime "github.com/weft-dev/weft/agent/runtime"
	"github.com/weft-dev/weft/agent/sdk"
)

// BenchmarkLoad loads testdata/orders (a service of about 200 lines). Its
// retained-B/pkg metric is the heap a loaded package keeps alive.
func BenchmarkLoad(b *testing.B) {
	src := dirSource(b, "testdata/orders")
	kept := retained(b, src)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wruntime.Load(context.Background(), src); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(kept, "retained-B/pkg")
}

// retained returns the heap kept alive per package by a few loads of src.
func retained(b *testing.B, src wruntime.Source) float64 {
	const n = 10
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	pkgs := make([]*wruntime.Package, n)
	for i := range pkgs {
		pkgs[i] = load(b, src)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(pkgs)
	return float64(after.HeapAlloc-before.HeapAlloc) / n
}

type echoIn struct {
	Text string `json:"text"`
}

type echoOut struct {
	Text string `json:"text"`
}

// BenchmarkInvoke calls a small handler (orders.echo) interpreted and, for
// comparison, compiled; directly and through Invoke's goroutine.
func BenchmarkInvoke(b *testing.B) {
	p := load(b, dirSource(b, "testdata/orders"))
	compiled, err := handler.New("echo", func(_ *sdk.Context, in echoIn) (echoOut, error) {
		return echoOut(in), nil
	})
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(`{"text":"hello"}`)
	// Agents always call with a deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, bc := range []struct {
		name   string
		svc    *handler.Service
		direct bool
	}{
		{"interpreted/direct", p.Services["orders.echo"], true},
		{"interpreted/Invoke", p.Services["orders.echo"], false},
		{"compiled/direct", compiled, true},
		{"compiled/Invoke", compiled, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := sdk.NewContext(ctx, sdk.Request{CID: "c", Service: "echo"})
				var err error
				if bc.direct {
					_, err = bc.svc.Invoke(c, input)
				} else {
					_, err = wruntime.Invoke(ctx, bc.svc, c, input)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
