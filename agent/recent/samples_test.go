package recent

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/runtime"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// t0 is when the events of these tests end, give or take.
var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// serviceEvent is an invocation of service that took d.
func serviceEvent(service, cid string, d time.Duration, failed bool) *observe.Event {
	e := &observe.Event{
		Kind: observe.KindService, Origin: observe.OriginInvoke, Name: service, Service: service,
		CID: cid, Status: 200, Duration: d, End: t0,
		Input: []byte(`{"user":"ann","password":"hunter2"}`), Output: []byte(`{"ok":true}`),
	}
	if failed {
		e.Failed, e.Status, e.Error = true, 500, "boom"
	}
	return e
}

func cids(invs []*agentv1.Invocation) []string {
	var out []string
	for _, inv := range invs {
		out = append(out, inv.GetCid())
	}
	return out
}

func TestSamplesKeepTheLastHundredNewestFirst(t *testing.T) {
	s := NewSamples(SamplesConfig{})
	for i := range 150 {
		s.Observe(serviceEvent("a", fmt.Sprint(i), time.Millisecond, true))
		s.Observe(serviceEvent("b", fmt.Sprint("b", i), time.Millisecond, i%2 == 0))
	}
	got := s.List("a", Failed, 0)
	var want []string
	for i := 149; i >= 50; i-- {
		want = append(want, fmt.Sprint(i))
	}
	if !slices.Equal(cids(got), want) {
		t.Fatalf("failed of a = %v\nwant %v", cids(got), want)
	}
	if got := cids(s.List("a", Failed, 3)); !slices.Equal(got, []string{"149", "148", "147"}) {
		t.Errorf("limit 3 = %v", got)
	}
	if got := s.List("a", Slow, 0); len(got) != 0 {
		t.Errorf("slow of a = %v, want none: 1ms is fast", cids(got))
	}
	if got := cids(s.List("", Failed, 4)); !slices.Equal(got, []string{"149", "b148", "148", "147"}) {
		t.Errorf("all services, limit 4 = %v", got)
	}
	if got := s.List("", Failed, 0); len(got) != 175 {
		t.Errorf("all services: %d kept, want 100 of a and 75 of b", len(got))
	}
	if got := s.List("a", "odd", 0); len(got) != 0 {
		t.Errorf("which odd = %v", cids(got))
	}
	if got := s.List("nobody", Failed, 0); len(got) != 0 {
		t.Errorf("unknown service = %v", cids(got))
	}
}

func TestSamplesInvocation(t *testing.T) {
	s := NewSamples(SamplesConfig{SampleBytes: 20})
	e := serviceEvent("a", "c1", 2*time.Second, true)
	e.Origin, e.Channel, e.Stack, e.BytesIn = observe.OriginChannel, "orders", "goroutine 1", 1000
	s.Observe(e)
	e.Input[0] = 'X' // the caller's buffer, reused
	want := &agentv1.Invocation{
		Cid: "c1", Kind: "channel", Service: "a", Channel: "orders", Status: 500, DurationUs: 2e6, AtUnixMs: t0.UnixMilli(),
		Error: "boom", Stack: "goroutine 1", BytesIn: 1000, BytesOut: 11,
		RequestSample: []byte(`{"user":"ann","passw`), ResponseSample: []byte(`{"ok":true}`), Truncated: true,
	}
	for _, which := range []string{Failed, Slow} {
		got := s.List("a", which, 0)
		if len(got) != 1 || got[0].String() != want.String() {
			t.Fatalf("%s = %v\nwant %v", which, got, want)
		}
	}
}

func TestSamplesSlowThresholds(t *testing.T) {
	p, err := runtime.Load(context.Background(), &adminv1.PackageSource{Name: "svc", Files: []*adminv1.SourceFile{{Name: "svc.go", Content: []byte(`package svc

import (
	"time"

	"github.com/weft-dev/weft/agent/sdk"
)

func init() {
	sdk.Register("quick", h, sdk.SlowAfter(50*time.Millisecond))
	sdk.Register("patient", h, sdk.SlowAfter(10*time.Second))
	sdk.Register("plain", h)
}

func h(*sdk.Context, map[string]any) (map[string]any, error) { return nil, nil }
`)}}})
	if err != nil {
		t.Fatal(err)
	}
	slowAfter := func(service string) time.Duration {
		if svc := p.Services[service]; svc != nil {
			return svc.SlowAfter
		}
		return 0
	}
	s := NewSamples(SamplesConfig{SlowThreshold: time.Second, SlowAfter: slowAfter})
	tests := []struct {
		service   string
		took      time.Duration
		slow      bool
		threshold time.Duration
	}{
		{"quick", 40 * time.Millisecond, false, 50 * time.Millisecond},
		{"quick", 60 * time.Millisecond, true, 50 * time.Millisecond},
		{"patient", 5 * time.Second, false, 10 * time.Second},
		{"patient", 11 * time.Second, true, 10 * time.Second},
		{"plain", 500 * time.Millisecond, false, time.Second},
		{"plain", time.Second, false, time.Second}, // longer than, not as long as
		{"plain", 1500 * time.Millisecond, true, time.Second},
		{"undeployed", 1500 * time.Millisecond, true, time.Second},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(tt.service, " ", tt.took), func(t *testing.T) {
			if got := s.SlowThreshold(tt.service); got != tt.threshold {
				t.Fatalf("threshold %s, want %s", got, tt.threshold)
			}
			cid := fmt.Sprint(i)
			s.Observe(serviceEvent(tt.service, cid, tt.took, false))
			list := s.List(tt.service, Slow, 1)
			if kept := len(list) == 1 && list[0].GetCid() == cid; kept != tt.slow {
				t.Fatalf("kept as slow: %v, want %v", kept, tt.slow)
			}
			if len(s.List(tt.service, Failed, 0)) != 0 {
				t.Fatal("kept as failed")
			}
		})
	}
}

func TestSamplesKeepOnlyServiceInvocations(t *testing.T) {
	s := NewSamples(SamplesConfig{})
	for _, kind := range []string{observe.KindChannel, observe.KindJob} {
		e := serviceEvent("a", kind, time.Hour, true)
		e.Kind = kind
		s.Observe(e)
	}
	if got := s.List("", Failed, 0); len(got) != 0 {
		t.Fatalf("kept %v", cids(got))
	}
}

func TestSamplesTotalBound(t *testing.T) {
	// Each invocation costs about entryOverhead plus its samples and texts.
	s := NewSamples(SamplesConfig{MaxBytes: 20 * (entryOverhead + 64)})
	for i := range 30 {
		s.Observe(serviceEvent(fmt.Sprint("svc", i), fmt.Sprint(i), time.Millisecond, true))
	}
	got := s.List("", Failed, 0)
	if len(got) == 0 || len(got) >= 30 || got[0].GetCid() != "29" {
		t.Fatalf("kept %v; want the newest, fewer than 30", cids(got))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.services) != len(got) || s.bytes > s.cfg.MaxBytes || s.live != len(got) {
		t.Fatalf("%d services, %d live, %d bytes for %d kept", len(s.services), s.live, s.bytes, len(got))
	}
}

func TestSamplesOrderStaysBounded(t *testing.T) {
	s := NewSamples(SamplesConfig{})
	s.Observe(serviceEvent("old", "first", time.Millisecond, true)) // never evicted
	for i := range 10_000 {
		s.Observe(serviceEvent("busy", fmt.Sprint(i), time.Millisecond, true))
	}
	s.mu.Lock()
	n := len(s.order)
	s.mu.Unlock()
	if n > 2*101+64 {
		t.Fatalf("order holds %d entries for 101 kept", n)
	}
	if got := cids(s.List("old", Failed, 0)); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("old = %v", got)
	}
}

func TestSamplesNeverKeepASecret(t *testing.T) {
	s := NewSamples(SamplesConfig{SampleBytes: 30})
	e := serviceEvent("a", "c", time.Hour, true)
	e.Input = []byte(`<login><user>ann</user><password>hunter2</password></login>`)
	e.Output = []byte(`{"token":"hunter2"}`)
	s.Observe(e)
	for _, inv := range s.List("a", Failed, 0) {
		if bytes.Contains(inv.GetRequestSample(), []byte("hunter")) || bytes.Contains(inv.GetResponseSample(), []byte("hunter")) {
			t.Fatalf("a secret shows: %v", inv)
		}
	}
}

func TestSamplesOkFastEventCostsNoAllocation(t *testing.T) {
	s := NewSamples(SamplesConfig{SlowAfter: func(string) time.Duration { return 0 }})
	e := serviceEvent("a", "c", time.Millisecond, false)
	if n := testing.AllocsPerRun(100, func() { s.Observe(e) }); n != 0 {
		t.Fatalf("%v allocations per ok event", n)
	}
}

func BenchmarkSamplesObserveOK(b *testing.B) {
	s := NewSamples(SamplesConfig{})
	e := serviceEvent("a", "c", time.Millisecond, false)
	b.ReportAllocs()
	for b.Loop() {
		s.Observe(e)
	}
}

func BenchmarkSamplesObserveFailed(b *testing.B) {
	s := NewSamples(SamplesConfig{})
	e := serviceEvent("a", "c", time.Millisecond, true)
	b.ReportAllocs()
	for b.Loop() {
		s.Observe(e)
	}
}
