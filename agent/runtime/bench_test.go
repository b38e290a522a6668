package runtime_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/handler"
	wruntime "github.com/weft-dev/weft/agent/runtime"
	"github.com/weft-dev/weft/agent/sdk"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
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
func retained(b *testing.B, src *adminv1.PackageSource) float64 {
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
// comparison, compiled: directly, through Invoke's worker goroutine (jobs,
// weftctl invoke) and through InvokeHere on the caller's goroutine with its
// deadline watch (channels).
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
	late := lateFunc(func(err error) { b.Errorf("answered late: %v", err) })
	for _, kind := range []struct {
		name string
		svc  *handler.Service
	}{{"interpreted", p.Services["orders.echo"]}, {"compiled", compiled}} {
		for _, way := range []struct {
			name   string
			invoke func(*handler.Service) error
		}{
			{"direct", func(svc *handler.Service) error {
				_, err := svc.Invoke(sdk.NewContext(ctx, sdk.Request{CID: "c", Service: "echo"}), input)
				return err
			}},
			{"Invoke", func(svc *handler.Service) error {
				_, err := wruntime.Invoke(ctx, svc, sdk.NewContext(ctx, sdk.Request{CID: "c", Service: "echo"}), input)
				return err
			}},
			{"InvokeHere", func(svc *handler.Service) error {
				call := wruntime.NewCall(ctx, time.Now(), time.Minute)
				defer call.Cancel()
				_, err := wruntime.InvokeHere(call, svc, sdk.NewContext(call, sdk.Request{CID: "c", Service: "echo"}), input, late)
				return err
			}},
		} {
			b.Run(kind.name+"/"+way.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := way.invoke(kind.svc); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
