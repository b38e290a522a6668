package stats

import (
	"sync"
	"time"

	"github.com/weft-dev/weft/agent/shared/statscale"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Source is what a Reporter reports: a Recorder, or a Gathered.
type Source interface {
	// Take returns what was counted since the last Take (see
	// Recorder.Take) and forgets it.
	Take(now time.Time) []*agentv1.StatsBucket
	// TakeAll returns everything counted and forgets it.
	TakeAll() []*agentv1.StatsBucket
}

var (
	_ Source = (*Recorder)(nil)
	_ Source = (*Gathered)(nil)
)

// Gathered is a Recorder's buckets together with buckets counted
// elsewhere and handed in with Add: an agent's own (job runs, worker
// exits) and its worker processes'. Buckets of one object and minute are
// added up, so that a report carries one bucket per object and minute
// however many workers counted it. It is safe for concurrent use.
type Gathered struct {
	rec *Recorder

	mu    sync.Mutex
	added map[gatheredKey]*agentv1.StatsBucket
	order []gatheredKey // the order they came in
}

type gatheredKey struct {
	kind, name string
	startMs    int64
}

// Gather returns a Gathered around rec.
func Gather(rec *Recorder) *Gathered {
	return &Gathered{rec: rec, added: map[gatheredKey]*agentv1.StatsBucket{}}
}

// Add adds buckets counted elsewhere; it keeps them (the caller must not
// change them after).
func (g *Gathered) Add(buckets []*agentv1.StatsBucket) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range buckets {
		k := gatheredKey{b.GetKind(), b.GetName(), b.GetStartUnixMs()}
		if sum := g.added[k]; sum != nil {
			addBucket(sum, b)
			continue
		}
		g.added[k] = b
		g.order = append(g.order, k)
	}
}

// Take returns the Recorder's Take and what was added since the last
// Take, and forgets them.
func (g *Gathered) Take(now time.Time) []*agentv1.StatsBucket {
	return g.drain(g.rec.Take(now))
}

// TakeAll returns the Recorder's TakeAll and what was added, and forgets
// them.
func (g *Gathered) TakeAll() []*agentv1.StatsBucket {
	return g.drain(g.rec.TakeAll())
}

func (g *Gathered) drain(out []*agentv1.StatsBucket) []*agentv1.StatsBucket {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range g.order {
		out = append(out, g.added[k])
	}
	clear(g.added)
	g.order = g.order[:0]
	return out
}

// addBucket adds b's counts to sum, of the same object and minute.
func addBucket(sum, b *agentv1.StatsBucket) {
	sum.Count += b.GetCount()
	sum.Errors += b.GetErrors()
	sum.SumUs += b.GetSumUs()
	sum.MaxUs = max(sum.GetMaxUs(), b.GetMaxUs())
	sum.BytesIn += b.GetBytesIn()
	sum.BytesOut += b.GetBytesOut()
	if len(b.GetHistogram()) > 0 && sum.Histogram == nil {
		sum.Histogram = map[int32]int64{}
	}
	statscale.Merge(sum.Histogram, b.GetHistogram())
	if len(b.GetStatuses()) > 0 && sum.Statuses == nil {
		sum.Statuses = map[int32]int64{}
	}
	statscale.Merge(sum.Statuses, b.GetStatuses())
}
