package security

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/shared/secdef"
)

// TestIntrospectionCacheBound keeps the cache within its bound, dropping
// stale answers first, and always keeps the answer just stored.
func TestIntrospectionCacheBound(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v := newIntrospectionVerifier(secdef.Definition{Name: "idp", Kind: secdef.KindBearer, IntrospectionURL: "https://idp.test/i"},
		buildOptions([]Option{WithClock(func() time.Time { return now })}))
	v.maxEntries = 16
	key := func(i int) [sha256.Size]byte { return sha256.Sum256(fmt.Appendf(nil, "token-%d", i)) }

	// Inactive answers go stale after 10 s; active ones last a minute.
	for i := range 8 {
		v.remember(key(i), &introspection{}, now)
	}
	for i := 8; i < 16; i++ {
		v.remember(key(i), &introspection{active: true}, now)
	}
	now = now.Add(11 * time.Second)
	v.remember(key(16), &introspection{active: true}, now)
	if n := len(v.cache); n != 9 {
		t.Fatalf("after the stale answers were dropped the cache holds %d, want 9", n)
	}
	for i := 8; i <= 16; i++ {
		if _, ok := v.cached(key(i), now); !ok {
			t.Errorf("fresh answer %d was dropped", i)
		}
	}
	for i := 17; i < 1000; i++ {
		v.remember(key(i), &introspection{active: true}, now)
		if len(v.cache) > v.maxEntries {
			t.Fatalf("the cache holds %d, more than %d", len(v.cache), v.maxEntries)
		}
		if _, ok := v.cached(key(i), now); !ok {
			t.Fatalf("answer %d was dropped as it was stored", i)
		}
	}
}
