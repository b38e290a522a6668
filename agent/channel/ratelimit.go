package channel

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// limiters holds the rate limit buckets of every channel, per client
// address. They live in the Handler rather than in a Router, so that a
// deploy that leaves a channel's limit as it was keeps its buckets: a
// client over the limit stays over it. The zero value is ready to use.
type limiters struct {
	mu       sync.Mutex
	channels map[string]*channelLimiter // by channel name
}

// channelLimiter is one channel's buckets.
type channelLimiter struct {
	limit   rate.Limit
	burst   int
	clients map[string]*rate.Limiter // by client address
	adds    int                      // clients added since the last sweep
}

// sweepEvery is how many new clients trigger a sweep of the idle ones.
const sweepEvery = 1024

// allow takes a token for the client of r on channel ch. When there is
// none, it returns false and how long until there is.
func (l *limiters) allow(ch *agentv1.Channel, r *http.Request, now time.Time) (bool, time.Duration) {
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
		cl = &channelLimiter{limit: limit, burst: burst, clients: map[string]*rate.Limiter{}}
		l.channels[ch.GetName()] = cl
	}
	lim := cl.clients[client]
	if lim == nil {
		cl.sweep(now)
		lim = rate.NewLimiter(limit, burst)
		cl.clients[client] = lim
	}
	res := lim.ReserveN(now, 1)
	if delay := res.DelayFrom(now); delay > 0 {
		res.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// sweep drops, every sweepEvery new clients, the buckets that are full
// again: a new bucket would be the same.
func (cl *channelLimiter) sweep(now time.Time) {
	cl.adds++
	if cl.adds < sweepEvery {
		return
	}
	cl.adds = 0
	for addr, lim := range cl.clients {
		if lim.TokensAt(now) >= float64(cl.burst) {
			delete(cl.clients, addr)
		}
	}
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
