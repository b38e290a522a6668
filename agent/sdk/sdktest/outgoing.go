package sdktest

import (
	"net/http"
	"sync"
	"testing"

	"github.com/weft-dev/weft/agent/outgoing"
	"github.com/weft-dev/weft/agent/sdk"
)

// test outgoing connections by name, set with Outgoing.
var (
	outgoingMu    sync.Mutex
	outgoingConns = map[string]*outgoing.Conn{}
)

// Outgoing makes the outgoing connection cfg available to the services a
// test invokes, as ctx.Outgoing(cfg.Name), until the test ends. Point its
// Address at an httptest.Server. Tests that set a connection of the same
// name must not run in parallel.
func Outgoing(t testing.TB, cfg outgoing.Config) {
	t.Helper()
	c, err := outgoing.New(cfg)
	if err != nil {
		t.Fatalf("sdktest.Outgoing: %v", err)
	}
	outgoingMu.Lock()
	outgoingConns[cfg.Name] = c
	outgoingMu.Unlock()
	t.Cleanup(func() {
		outgoingMu.Lock()
		if outgoingConns[cfg.Name] == c {
			delete(outgoingConns, cfg.Name)
		}
		outgoingMu.Unlock()
		c.Close()
	})
}

func (s *services) Outgoing(name string) (sdk.OutgoingConn, error) {
	outgoingMu.Lock()
	defer outgoingMu.Unlock()
	c := outgoingConns[name]
	if c == nil {
		return nil, sdk.Errorf(http.StatusInternalServerError, "outgoing connection %q is not set in this test; call sdktest.Outgoing", name)
	}
	return c.ForService(), nil
}
