package sdktest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/sdk/internal/registry"
)

// services is the sdk.Services of a test: other services are the handlers
// registered in the test binary, the cache lives for the test, and
// goroutines started with Go are stopped and awaited when the test ends.
type services struct {
	t     testing.TB
	cache *sdk.Cache
	wg    sync.WaitGroup
	async atomic.Int64
}

var _ sdk.Services = (*services)(nil)

func newServices(t testing.TB) *services {
	s := &services{t: t, cache: sdk.NewCache(nil)}
	t.Cleanup(s.wg.Wait) // t.Context() is cancelled just before cleanups run
	return s
}

func (s *services) Invoke(ctx context.Context, service string, input []byte) ([]byte, error) {
	svc := lookup(service)
	if svc == nil {
		return nil, sdk.Errorf(404, "service %q is not registered in this test binary", service)
	}
	c := sdk.NewContext(ctx, sdk.Request{CID: "test", Service: service, Logger: slog.New(slog.NewTextHandler(s.t.Output(), nil)), Services: s})
	out, err := svc.Invoke(c, input)
	if err != nil {
		return nil, &sdk.Error{Status: handler.Status(err), Message: err.Error()}
	}
	return out, nil
}

func (s *services) InvokeAsync(service string, input []byte) (string, error) {
	if lookup(service) == nil {
		return "", sdk.Errorf(404, "service %q is not registered in this test binary", service)
	}
	cid := fmt.Sprintf("test-async-%d", s.async.Add(1))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if _, err := s.Invoke(s.t.Context(), service, input); err != nil {
			s.t.Logf("sdktest: async %s (%s): %v", service, cid, err)
		}
	}()
	return cid, nil
}

func (s *services) Go(fn func(ctx context.Context)) error {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			if v := recover(); v != nil {
				s.t.Errorf("sdktest: goroutine panicked: %v", v)
			}
		}()
		fn(s.t.Context())
	}()
	return nil
}

func (s *services) Cache() *sdk.Cache { return s.cache }

// lookup returns the registered service name, or nil.
func lookup(name string) *handler.Service {
	fn, ok := registry.Lookup(name)
	if !ok {
		return nil
	}
	svc, err := handler.New(name, fn)
	if err != nil {
		return nil
	}
	return svc
}
