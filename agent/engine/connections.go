package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/outgoing"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/outgoingconf"
	"github.com/weft-dev/weft/agent/shared/secdef"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// connections are a state's security definitions and outgoing connections,
// built from its snapshot. A definition or connection that did not change
// since the state before is carried over as it is, so a JWKS key set or an
// OAuth2 token already fetched, and a connection's idle pool, survive an
// unrelated deploy.
type connections struct {
	defs      map[string]*adminv1.SecurityDefinition
	verifiers map[string]security.Verifier      // inbound definitions
	auths     map[string]security.Authenticator // outbound definitions
	certs     map[string]*tls.Certificate       // tls_client_cert definitions

	outgoing map[string]*adminv1.OutgoingConnection
	conns    map[string]*outgoing.Conn // active connections
}

// buildConnections builds the connections of snap, reusing from prev what
// did not change. fail records one error per object at fault.
func buildConnections(prev *connections, snap *agentv1.Desired, log *slog.Logger, fail func(kind, name, format string, args ...any)) *connections {
	if prev == nil {
		prev = &connections{}
	}
	next := &connections{
		defs:      map[string]*adminv1.SecurityDefinition{},
		verifiers: map[string]security.Verifier{},
		auths:     map[string]security.Authenticator{},
		certs:     map[string]*tls.Certificate{},
		outgoing:  map[string]*adminv1.OutgoingConnection{},
		conns:     map[string]*outgoing.Conn{},
	}
	changedDefs := map[string]bool{}
	for _, p := range snap.GetSecurity() {
		name := p.GetName()
		if next.defs[name] != nil {
			fail("security", name, "the snapshot holds two definitions of this name")
			continue
		}
		next.defs[name] = p
		if old := prev.defs[name]; old != nil && proto.Equal(old, p) {
			carry(next.verifiers, prev.verifiers, name)
			carry(next.auths, prev.auths, name)
			carry(next.certs, prev.certs, name)
			continue
		}
		changedDefs[name] = true
		def := secdef.Of(p)
		if err := def.Validate(); err != nil {
			fail("security", name, "%v", err)
			continue
		}
		opts := []security.Option{security.WithLogger(log)}
		if def.Inbound() {
			v, err := security.NewVerifier(def, opts...)
			if err != nil {
				fail("security", name, "%v", err)
				continue
			}
			next.verifiers[name] = v
		}
		if def.Outbound() {
			a, err := security.NewAuthenticator(def, opts...)
			if err != nil {
				fail("security", name, "%v", err)
				continue
			}
			next.auths[name] = a
		}
		if def.Kind == secdef.KindTLSClientCert && def.Outbound() {
			cfg, err := def.TLSConfig()
			if err != nil {
				fail("security", name, "%v", err)
				continue
			}
			next.certs[name] = &cfg.Certificates[0]
		}
	}

	for _, p := range snap.GetOutgoing() {
		name := p.GetName()
		if next.outgoing[name] != nil {
			fail("outgoing", name, "the snapshot holds two connections of this name")
			continue
		}
		next.outgoing[name] = p
		if !p.GetActive() {
			// Not built, but checked: activating it must not be the first
			// time anyone learns it is wrong.
			if err := outgoingconf.Of(p).Validate(); err != nil {
				fail("outgoing", name, "%v", err)
			}
			continue
		}
		sec := p.GetSecurity()
		if old := prev.outgoing[name]; old != nil && proto.Equal(old, p) && !changedDefs[sec] && prev.conns[name] != nil && (sec == "" || next.auths[sec] != nil) {
			next.conns[name] = prev.conns[name]
			continue
		}
		var opts []outgoing.Option
		if sec != "" {
			a, ok := next.auths[sec]
			if !ok {
				fail("outgoing", name, "security definition %q is not in the snapshot, or cannot supply outbound credentials", sec)
				continue
			}
			opts = append(opts, outgoing.WithAuth(a))
			if cert := next.certs[sec]; cert != nil {
				opts = append(opts, outgoing.WithClientCert(cert))
			}
		}
		c, err := outgoing.New(outgoingconf.Of(p), opts...)
		if err != nil {
			fail("outgoing", name, "%v", err)
			continue
		}
		next.conns[name] = c
	}
	return next
}

// closeReplaced closes the connections of c that next does not carry over;
// calls in flight on them finish.
func (c *connections) closeReplaced(next *connections) {
	if c == nil {
		return
	}
	for name, conn := range c.conns {
		if next == nil || next.conns[name] != conn {
			conn.Close()
		}
	}
}

// outgoingFor returns the connection name as services call it.
func (c *connections) outgoingFor(name string) (sdk.OutgoingConn, error) {
	if c == nil {
		return nil, sdk.Errorf(http.StatusInternalServerError, "outgoing connection %q does not exist on this agent", name)
	}
	if conn := c.conns[name]; conn != nil {
		return conn.ForService(), nil
	}
	if c.outgoing[name] != nil {
		return nil, sdk.Errorf(http.StatusServiceUnavailable, "outgoing connection %q is inactive", name)
	}
	return nil, sdk.Errorf(http.StatusInternalServerError, "outgoing connection %q does not exist on this agent", name)
}

func carry[V any](dst, src map[string]V, name string) {
	if v, ok := src[name]; ok {
		dst[name] = v
	}
}

// Ping calls the address of the outgoing connection name in the current
// state and reports what it answered, for `weftctl outgoing ping`. Any HTTP
// answer counts as reachable; err is for no answer, or no such connection.
func (e *Engine) Ping(ctx context.Context, name string) (address string, status int, latency time.Duration, err error) {
	st := e.cur.Load()
	if st == nil {
		return "", 0, 0, errors.New("this agent has no config yet")
	}
	var conn *outgoing.Conn
	if st.conns != nil {
		conn = st.conns.conns[name]
	}
	if conn == nil {
		_, err := st.conns.outgoingFor(name)
		return "", 0, 0, err
	}
	address = conn.Config().Address
	status, latency, err = conn.Ping(ctx)
	return address, status, latency, err
}
