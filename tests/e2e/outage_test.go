package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// outageTimeout bounds how long the control plane may take to use the
// database again once it is back (a fresh connection each).
const outageTimeout = 30 * time.Second

// TestDatabaseOutage runs a control plane on MySQL through a TCP proxy the
// test owns, and cuts the proxy, as a database that goes away. Meanwhile
// admin calls and agent calls fail with Unavailable and a message that
// names no host, port, user or database, weftctl says the same, and the
// control plane's log holds the error itself. When the proxy is back,
// calls succeed again.
func TestDatabaseOutage(t *testing.T) {
	b := storetest.MySQL(t)
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(b.DSN, "mysql:"))
	if err != nil {
		t.Fatalf("DSN %q: %v", b.DSN, err)
	}
	proxy := startProxy(t, cfg.Addr)
	_, mysqlPort, _ := net.SplitHostPort(cfg.Addr)
	_, proxyPort, _ := net.SplitHostPort(proxy.addr)
	// Nothing of the DSN may reach a client.
	secret := []string{"127.0.0.1", "localhost", proxy.addr, ":" + proxyPort, ":" + mysqlPort, cfg.User + "@", "user '" + cfg.User, cfg.DBName, "tcp("}
	cfg.Addr = proxy.addr
	cp := testenv.StartControlPlane(t, "mysql:"+cfg.FormatDSN())

	hello := []byte(serviceSource("hello", ""))
	// An agent with its certificate, made while the database is up.
	edge := agentConn(t, enrollFake(t, cp, "edge-1", cp.JoinToken(t)))
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"ListChannels", func(ctx context.Context) error {
			_, err := cp.Channels().ListChannels(ctx, &adminv1.ListChannelsRequest{})
			return err
		}},
		{"ListAgents", func(ctx context.Context) error {
			_, err := cp.Fleet().ListAgents(ctx, &adminv1.ListAgentsRequest{})
			return err
		}},
		{"Deploy", func(ctx context.Context) error {
			_, err := cp.Packages().Deploy(ctx, &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{
				{Files: []*adminv1.SourceFile{{Name: "hello.go", Content: hello}}},
			}})
			return err
		}},
		{"ReportStats (agent API)", func(ctx context.Context) error {
			_, err := agentv1.NewAgentServiceClient(edge).ReportStats(ctx, &agentv1.ReportStatsRequest{AgentId: "edge-1"})
			return err
		}},
		{"Sync hello (agent API)", func(ctx context.Context) error {
			stream, err := agentv1.NewAgentServiceClient(edge).Sync(ctx)
			if err != nil {
				return err
			}
			if err := stream.Send(&agentv1.SyncRequest{Kind: &agentv1.SyncRequest_Hello{Hello: &agentv1.Hello{
				AgentId: "edge-1", ProtocolVersion: snapshot.ProtocolVersion,
			}}}); err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}},
	}
	call := func(c func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return c(ctx)
	}
	if err := call(calls[0].call); err != nil {
		t.Fatalf("ListChannels through the proxy: %v", err)
	}

	proxy.stop()
	for _, c := range calls {
		t.Run("down/"+c.name, func(t *testing.T) {
			err := call(c.call)
			st := status.Convert(err)
			if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "the database is unavailable; try again") {
				t.Fatalf("%s while the database is down = %v; want Unavailable, the database is unavailable; try again", c.name, err)
			}
			for _, s := range secret {
				if strings.Contains(st.Message(), s) {
					t.Errorf("%s tells the client %q: %q", c.name, s, st.Message())
				}
			}
		})
	}
	t.Run("down/weftctl", func(t *testing.T) {
		r := testenv.Ctl(t, cp, "channel", "list")
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, "the database is unavailable; try again") {
			t.Fatalf("weftctl channel list while the database is down: %s", r)
		}
		for _, s := range secret {
			if strings.Contains(r.Stderr+r.Stdout, s) {
				t.Errorf("weftctl prints %q:\n%s", s, r)
			}
		}
	})
	t.Run("down/the log holds the error", func(t *testing.T) {
		testenv.Await(t, 10*time.Second, "the control plane logs the database error", func() (bool, string) {
			b, _ := os.ReadFile(cp.LogPath())
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "the database is unavailable") && strings.Contains(line, proxy.addr) {
					return true, line
				}
			}
			return false, "no log line with the proxy's address"
		})
	})

	proxy.start()
	testenv.Await(t, outageTimeout, "admin calls succeed once the database is back", func() (bool, string) {
		err := call(calls[0].call)
		return err == nil, status.Convert(err).Message()
	})
	if err := call(calls[2].call); err != nil {
		t.Fatalf("Deploy once the database is back: %v", err)
	}
}

// tcpProxy forwards TCP connections to a target; stop closes the listener
// and every connection, as a database that goes away, and start listens on
// the same address again.
type tcpProxy struct {
	t      *testing.T
	addr   string // where it listens
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// startProxy starts a proxy to target on a free port of 127.0.0.1, stopped
// when the test ends.
func startProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(p.stop)
	return p
}

// start listens again on the proxy's address.
func (p *tcpProxy) start() {
	p.t.Helper()
	var ln net.Listener
	testenv.Await(p.t, 10*time.Second, "the proxy listens again on "+p.addr, func() (bool, string) {
		var err error
		ln, err = net.Listen("tcp", p.addr)
		return err == nil, errString(err)
	})
	p.serve(ln)
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // stopped
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, u) {
				return
			}
			for _, pair := range [][2]net.Conn{{c, u}, {u, c}} {
				p.wg.Go(func() {
					_, _ = io.Copy(pair[0], pair[1])
					pair[0].Close()
					pair[1].Close()
				})
			}
		}
	})
}

// track records conns, or closes them when the proxy stopped meanwhile.
func (p *tcpProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

// stop closes the listener and every connection, and waits for the
// proxy's goroutines to end.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
