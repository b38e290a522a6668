package recent

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/weft-dev/weft/agent/observe"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Which list of samples: the failed or the slow invocations.
const (
	Failed = "failed"
	Slow   = "slow"
)

// PerService is how many failed, and how many slow, invocations Samples
// keeps of each service.
const PerService = 100

// DefaultSlowThreshold is how long an invocation may take before it is
// slow, for a service that sets no sdk.SlowAfter and an agent that sets no
// threshold.
const DefaultSlowThreshold = time.Second

// DefaultMaxBytes bounds the memory Samples holds over all services: each
// service keeps up to 2×PerService invocations, but the services are known
// only from the events, so their number is not.
const DefaultMaxBytes = 16 << 20

// entryOverhead is what one kept invocation costs beside its texts, about.
const entryOverhead = 256

// SamplesConfig tunes Samples. Zero fields take the defaults.
type SamplesConfig struct {
	// SampleBytes bounds each request and response sample (--sample-bytes).
	SampleBytes int
	// SlowThreshold is how long an invocation may take before it is slow,
	// for a service that sets no threshold of its own (--slow-threshold).
	SlowThreshold time.Duration
	// SlowAfter returns a service's own threshold (its sdk.SlowAfter), 0
	// for none. It is called for every service invocation, so it must be
	// quick; nil means no service has one.
	SlowAfter func(service string) time.Duration
	// MaxBytes bounds the memory of everything kept, about; the oldest
	// invocations of any service go first.
	MaxBytes int64
}

// Samples is an observe.Observer that keeps, per service, the last
// PerService failed and the last PerService slow invocations, each with
// redacted samples of its input and output. It is safe for concurrent use.
type Samples struct {
	cfg SamplesConfig

	mu       sync.Mutex
	seq      uint64
	services map[string]*kept
	order    []*entry // what was kept, oldest first, including entries gone since
	live     int      // entries of order not gone
	bytes    int64    // the size of those
}

var _ observe.Observer = (*Samples)(nil)

// kept holds one service's samples.
type kept struct {
	failed, slow ring
}

func (k *kept) ring(which string) *ring {
	switch which {
	case Failed:
		return &k.failed
	case Slow:
		return &k.slow
	}
	return nil
}

// entry is one kept invocation in one ring.
type entry struct {
	inv     *agentv1.Invocation
	seq     uint64
	size    int64
	service string
	which   string
	gone    bool // evicted from its ring
}

// ring holds the last PerService entries.
type ring struct {
	items [PerService]*entry
	head  int // the oldest
	n     int
}

// push adds e and returns the entry it evicted, if any.
func (r *ring) push(e *entry) (evicted *entry) {
	if r.n == PerService {
		evicted = r.popOldest()
	}
	r.items[(r.head+r.n)%PerService] = e
	r.n++
	return evicted
}

func (r *ring) popOldest() *entry {
	e := r.items[r.head]
	r.items[r.head] = nil
	r.head = (r.head + 1) % PerService
	r.n--
	return e
}

// newest returns up to limit entries, newest first; limit <= 0 means all.
func (r *ring) newest(limit int) []*entry {
	n := r.n
	if limit > 0 && limit < n {
		n = limit
	}
	out := make([]*entry, n)
	for i := range n {
		out[i] = r.items[(r.head+r.n-1-i)%PerService]
	}
	return out
}

// NewSamples returns an empty Samples.
func NewSamples(cfg SamplesConfig) *Samples {
	if cfg.SampleBytes <= 0 {
		cfg.SampleBytes = DefaultSampleBytes
	}
	if cfg.SlowThreshold <= 0 {
		cfg.SlowThreshold = DefaultSlowThreshold
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	return &Samples{cfg: cfg, services: map[string]*kept{}}
}

// SlowThreshold returns how long an invocation of service may take before
// it is slow: the service's own threshold, else the agent's.
func (s *Samples) SlowThreshold(service string) time.Duration {
	if f := s.cfg.SlowAfter; f != nil {
		if d := f(service); d > 0 {
			return d
		}
	}
	return s.cfg.SlowThreshold
}

// Observe keeps e when it is a service invocation that failed or was slow.
// Anything else costs a comparison.
func (s *Samples) Observe(e *observe.Event) {
	if e.Kind != observe.KindService {
		return
	}
	slow := e.Duration > s.SlowThreshold(e.Service)
	if !e.Failed && !slow {
		return
	}
	inv := invocation(e, s.cfg.SampleBytes, true) // outside the lock: it redacts
	size := int64(entryOverhead + len(inv.RequestSample) + len(inv.ResponseSample) + len(inv.Error) + len(inv.Stack) +
		len(inv.Cid) + len(inv.Service) + len(inv.Channel) + len(inv.Job))
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Failed {
		s.keep(e.Service, Failed, inv, size)
	}
	if slow {
		s.keep(e.Service, Slow, inv, size)
	}
	s.bound()
}

// keep adds inv to service's which ring.
func (s *Samples) keep(service, which string, inv *agentv1.Invocation, size int64) {
	k := s.services[service]
	if k == nil {
		k = &kept{}
		s.services[service] = k
	}
	s.seq++
	e := &entry{inv: inv, seq: s.seq, size: size, service: service, which: which}
	if old := k.ring(which).push(e); old != nil {
		s.forget(old)
	}
	s.order = append(s.order, e)
	s.live++
	s.bytes += size
}

// forget accounts for an entry that left its ring.
func (s *Samples) forget(e *entry) {
	e.gone = true
	s.live--
	s.bytes -= e.size
}

// bound evicts the oldest entries of any service while the total is over
// MaxBytes, and drops what order holds of entries gone.
func (s *Samples) bound() {
	for s.bytes > s.cfg.MaxBytes && len(s.order) > 0 {
		e := s.order[0]
		s.order[0] = nil
		s.order = s.order[1:]
		if e.gone {
			continue
		}
		// Entries enter order and their ring in the same order, so the
		// oldest live entry of order is the oldest of its ring.
		k := s.services[e.service]
		k.ring(e.which).popOldest()
		s.forget(e)
		if k.failed.n == 0 && k.slow.n == 0 {
			delete(s.services, e.service)
		}
	}
	if len(s.order) > 2*s.live+64 {
		live := make([]*entry, 0, s.live)
		for _, e := range s.order {
			if !e.gone {
				live = append(live, e)
			}
		}
		s.order = live
	}
}

// List returns the kept invocations of service (all services when it is
// empty), which is Failed or Slow, newest first; at most limit of them
// when limit > 0. Another which lists nothing. The invocations are shared:
// the caller must not change them.
func (s *Samples) List(service, which string, limit int) []*agentv1.Invocation {
	s.mu.Lock()
	var es []*entry
	if service != "" {
		if k := s.services[service]; k != nil && k.ring(which) != nil {
			es = k.ring(which).newest(limit)
		}
	} else {
		for _, k := range s.services {
			if r := k.ring(which); r != nil {
				es = append(es, r.newest(limit)...)
			}
		}
	}
	s.mu.Unlock()
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(b.seq, a.seq) })
	if limit > 0 && len(es) > limit {
		es = es[:limit]
	}
	out := make([]*agentv1.Invocation, len(es))
	for i, e := range es {
		out[i] = e.inv
	}
	return out
}
