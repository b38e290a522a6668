package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/metrics"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/agent/stats"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// BenchmarkServeJSONChannel is one request through a JSON channel to the
// interpreted service of tests/bench (decode, transform, encode), with no
// network: what the agent itself spends per request; "weft+observe" is the
// same with the agent's observers on (statistics and Prometheus metrics,
// as --stats and --metrics turn them on), and "plain" is the same work in
// a compiled net/http handler.
//
//	go test -run '^$' -bench ServeJSONChannel -benchmem ./agent/engine/
func BenchmarkServeJSONChannel(b *testing.B) {
	src, err := os.ReadFile("../../tests/bench/testdata/transform/transform.go")
	if err != nil {
		b.Fatal(err)
	}
	files := []*adminv1.SourceFile{{Name: "transform.go", Content: src}}
	pkg := &adminv1.Package{Name: "transform", Version: 1, Sha256: snapshot.PackageHash(files), Services: []string{"bench.transform"}, Sources: files}
	ch := &adminv1.Channel{Name: "bench", Path: "/bench", Methods: []string{"POST"}, Service: "bench.transform", Active: proto.Bool(true)}
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	if _, errs := e.Apply(context.Background(), &agentv1.Desired{Revision: 1, Packages: []*adminv1.Package{pkg}, Channels: []*adminv1.Channel{ch}}); len(errs) > 0 {
		b.Fatal(errs)
	}
	weft := &channel.Handler{Current: e.Route, MaxBodyBytes: 1 << 20, NewCID: NewCID, Log: slog.New(slog.DiscardHandler)}
	observers := observe.Observers{stats.NewRecorder(), metrics.New(func() int64 { return 1 })}
	observed := &channel.Handler{Current: e.Route, MaxBodyBytes: 1 << 20, NewCID: NewCID, Log: slog.New(slog.DiscardHandler), Observer: observers}
	for _, h := range []struct {
		name     string
		h        http.Handler
		observer observe.Observer // the engine's
	}{{"weft", weft, nil}, {"weft+observe", observed, observers}, {"plain", http.HandlerFunc(plainTransform), nil}} {
		e.Observer = h.observer // no request runs in between
		b.Run(h.name, func(b *testing.B) {
			const body = `{"customer":"ada","item":"widget","quantity":120,"price":2.5}`
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/bench", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		})
	}
}

// plainTransform is what tests/bench/plainserver does: the baseline.
func plainTransform(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Customer string  `json:"customer"`
		Item     string  `json:"item"`
		Quantity int     `json:"quantity"`
		Price    float64 `json:"price"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out := struct {
		Customer string  `json:"customer"`
		Item     string  `json:"item"`
		Total    float64 `json:"total"`
		Bulk     bool    `json:"bulk"`
	}{strings.ToUpper(in.Customer), in.Item, float64(in.Quantity) * in.Price, in.Quantity >= 100}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
