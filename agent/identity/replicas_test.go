package identity_test

import (
	"net"
	"strings"
	"testing"

	"github.com/weft-dev/weft/agent/identity/identitytest"
)

// serveAs starts a control plane whose certificate names hosts, with the
// CA of like when it is not nil.
func serveAs(t *testing.T, like *identitytest.ControlPlane, hosts ...string) *identitytest.ControlPlane {
	t.Helper()
	cp := identitytest.New(t)
	if like != nil {
		cp.CA = like.CA
	}
	cp.Hosts = hosts
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp.Serve(t, lis)
	return cp
}

// TestEnrollWithSeveralReplicas: each replica's handshake is checked for
// its own host. A first replica whose certificate does not name it is
// passed over, the token goes to the next that passes, and the agent
// enrolls there; when none passes, the token goes nowhere.
func TestEnrollWithSeveralReplicas(t *testing.T) {
	t.Run("the first is refused", func(t *testing.T) {
		bad := serveAs(t, nil, "cp.example.com")
		good := serveAs(t, bad, "127.0.0.1")
		cfg := config(t, bad)
		cfg.ControlPlane = bad.Addr + "," + good.Addr
		id, _ := mustOpen(t, cfg)
		if err := id.Enroll(t.Context(), backoff()); err != nil || id.NeedsEnroll() {
			t.Fatalf("Enroll: %v, still needs to enroll %v; want enrolled at the second", err, id.NeedsEnroll())
		}
		if bad.Enrolls() != 0 || good.Enrolls() != 1 {
			t.Fatalf("enrollments: %d at the refused replica, %d at the other; want 0 and 1", bad.Enrolls(), good.Enrolls())
		}
	})
	t.Run("none passes", func(t *testing.T) {
		a := serveAs(t, nil, "cp.example.com")
		b := serveAs(t, a, "cp.example.com")
		cfg := config(t, a)
		cfg.ControlPlane = a.Addr + "," + b.Addr
		id, _ := mustOpen(t, cfg)
		err := id.Enroll(t.Context(), backoff())
		if err == nil || !strings.Contains(err.Error(), "the join token was not sent") || a.Enrolls()+b.Enrolls() != 0 {
			t.Fatalf("Enroll: %v; enrollments %d, %d; want refused with no token sent", err, a.Enrolls(), b.Enrolls())
		}
	})
	t.Run("each by its own name", func(t *testing.T) {
		cp := serveAs(t, nil, "localhost")
		_, port, _ := net.SplitHostPort(cp.Addr)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := lis.Addr().String()
		lis.Close()
		cfg := config(t, cp)
		cfg.ControlPlane = dead + ",localhost:" + port
		id, _ := mustOpen(t, cfg)
		if err := id.Enroll(t.Context(), backoff()); err != nil {
			t.Fatalf("Enroll past a dead first address, to localhost: %v", err)
		}
	})
}
