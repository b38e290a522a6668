package channel

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// limiters holds the rate limit buckets of every channel, per client
// address. They live in the Handler rather than in a Router, so that a
// deploy that leaves a channel's limit as it was keeps its buckets: a
// client over the limit stays over it. The zero value is ready to use.
//
// Memory stays bounded: a channel tracks at most maxClients clients, and
// the first request served under a newer Router drops the buckets of the
// channels it does not limit (gone, inactive, or no limit any more).
type limiters struct {
	mu       sync.Mutex
	channels map[string]*channelLimiter // by channel name
	gen      atomic.Uint64              // the newest Router's gen seen; written under mu
}

// channelLimiter is one channel's buckets, the least recently seen client
// last in seen.
type channelLimiter struct {
	limit   rate.Limit
	burst   int
	clients map[string]*list.Element // by client address; values are *bucket
	seen    list.List
}

// bucket is one client's tokens.
type bucket struct {
	client string
	lim    *rate.Limiter
}

// maxClients is how many clients a channel tracks at most. A client over it
// evicts the least recently seen one, which starts again with a full
// bucket if it comes back.
const maxClients = 10000

// routerGen numbers Routers in the order they are built, so that limiters
// can tell a newer one from a request still served under an older one.
var routerGen atomic.Uint64

// allow takes a token for the client of r on channel ch of router. When
// there is none, it returns false and how long until there is. now is
// read only for a channel with a limit.
func (l *limiters) allow(router *Router, ch *adminv1.Channel, r *http.Request, now func() time.Time) (bool, time.Duration) {
	if router.gen > l.gen.Load() {
		l.forget(router)
	}
	if ch.GetRateLimit() <= 0 {
		return true, 0
	}
	limit := rate.Limit(ch.GetRateLimit())
	burst := int(ch.GetRateBurst())
	if burst <= 0 {
		burst = max(1, int(math.Ceil(ch.GetRateLimit())))
	}
	client := clientAddress(r)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.channels == nil {
		l.channels = map[string]*channelLimiter{}
	}
	cl := l.channels[ch.GetName()]
	if cl == nil || cl.limit != limit || cl.burst != burst {
		cl = &channelLimiter{limit: limit, burst: burst, clients: map[string]*list.Element{}}
		l.channels[ch.GetName()] = cl
	}
	t := now() // only here: reading the clock costs, on every request
	lim := cl.bucket(client, t)
	res := lim.ReserveN(t, 1)
	if delay := res.DelayFrom(t); delay > 0 {
		res.CancelAt(t)
		return false, delay
	}
	return true, 0
}

// forget drops the buckets of the channels that router does not limit,
// unless a newer Router was seen already.
func (l *limiters) forget(router *Router) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if router.gen <= l.gen.Load() {
		return // another request got there first, or router is older
	}
	l.gen.Store(router.gen)
	if len(l.channels) == 0 {
		return
	}
	limited := make(map[string]bool, len(router.routes))
	for _, rt := range router.routes {
		if rt.Channel.GetRateLimit() > 0 {
			limited[rt.Channel.GetName()] = true
		}
	}
	for name := range l.channels {
		if !limited[name] {
			delete(l.channels, name)
		}
	}
}

// bucket returns client's bucket, marked as the most recently seen. A new
// client's bucket first drops the least recently seen buckets that are
// full again (a new bucket would be the same), then, with maxClients still
// tracked, the least recently seen one.
func (cl *channelLimiter) bucket(client string, now time.Time) *rate.Limiter {
	if e := cl.clients[client]; e != nil {
		cl.seen.MoveToFront(e)
		return e.Value.(*bucket).lim
	}
	for e := cl.seen.Back(); e != nil; e = cl.seen.Back() {
		b := e.Value.(*bucket)
		if len(cl.clients) < maxClients && b.lim.TokensAt(now) < float64(cl.burst) {
			break
		}
		cl.seen.Remove(e)
		delete(cl.clients, b.client)
	}
	b := &bucket{client: client, lim: rate.NewLimiter(cl.limit, cl.burst)}
	cl.clients[client] = cl.seen.PushFront(b)
	return b.lim
}

// clientAddress is who the rate limit counts: the host of the request's
// remote address, or for IPv6 its /64 network, since one host commonly
// holds a whole /64 and could otherwise fill the agent's memory with
// buckets. Headers such as X-Forwarded-For are not trusted: any client can
// set them.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Unmap().Is4() {
		return host
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return host
	}
	return p.String()
}

// retryAfter is the Retry-After value for a wait: whole seconds, at least 1.
func retryAfter(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
