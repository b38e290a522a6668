package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/config"
	"github.com/weft-dev/weft/agent/identity"
	"github.com/weft-dev/weft/agent/identity/identitytest"
	"github.com/weft-dev/weft/agent/worker"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestMain runs the agent's workers, which the agent starts as its own
// binary (this test binary) with worker.Command.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == worker.Command {
		if err := worker.Main(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// agentConfig is the config of agent edge-1 against the control plane at
// addr, keeping its state in stateDir, with more flags.
func agentConfig(t *testing.T, addr, stateDir string, flags ...string) config.Config {
	t.Helper()
	cfg, err := config.Parse(append([]string{
		"--id", "edge-1", "--controlplane", addr, "--state-dir", stateDir, "--http", "127.0.0.1:0",
		"--workers", "1", "--stats=false", "--backoff-max", "100ms",
	}, flags...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs an agent with cfg until stop, logging into the returned
// buffer.
func start(t *testing.T, cfg config.Config) (logs *testenv.LogBuffer, stop func()) {
	t.Helper()
	logs = &testenv.LogBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil))) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v\n%s", err, logs)
			}
		case <-time.After(time.Minute):
			t.Errorf("the agent did not stop\n%s", logs)
		}
	}
	t.Cleanup(stop)
	return logs, stop
}

func TestAgentEnrollsThenSyncsOverMutualTLS(t *testing.T) {
	cp := identitytest.Start(t)
	stateDir := t.TempDir()
	logs, stop := start(t, agentConfig(t, cp.Addr, stateDir, "--join", identitytest.Token, "--ca-fingerprint", cp.Fingerprint()))
	testenv.Await(t, 30*time.Second, "edge-1 enrolled and in sync", func() (bool, string) {
		return cp.Acked("edge-1") == 1, logs.String()
	})
	stop()
	for _, f := range []string{identity.KeyFile, identity.CertFile, identity.CAFile} {
		if _, err := os.Stat(filepath.Join(stateDir, identity.DirName, f)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}

	// A restart, without the token, connects with the stored identity.
	logs, _ = start(t, agentConfig(t, cp.Addr, stateDir))
	testenv.Await(t, 30*time.Second, "edge-1 in sync again", func() (bool, string) {
		return cp.Syncs() >= 2 && cp.Acked("edge-1") == 1, logs.String()
	})
	if n := cp.Enrolls(); n != 1 {
		t.Fatalf("%d Enroll calls, want 1", n)
	}
}

func TestAgentWithoutIdentityRefusesToStart(t *testing.T) {
	stateDir := t.TempDir()
	err := Run(t.Context(), agentConfig(t, "127.0.0.1:1", stateDir), slog.New(slog.DiscardHandler))
	want := "no certificate in " + filepath.Join(stateDir, "identity") + "; enroll with --join TOKEN --ca-fingerprint sha256:... (weftctl agent token create prints both)"
	if err == nil || err.Error() != want {
		t.Fatalf("Run = %v\nwant %s", err, want)
	}
}

func TestAgentWithAWrongFingerprintStops(t *testing.T) {
	cp := identitytest.Start(t)
	other := testenv.NewCA(t, "another CA")
	err := Run(t.Context(), agentConfig(t, cp.Addr, t.TempDir(), "--join", identitytest.Token, "--ca-fingerprint", other.Fingerprint()),
		slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "presented no CA with the fingerprint --ca-fingerprint gives") {
		t.Fatalf("Run = %v", err)
	}
	if n := cp.Enrolls(); n != 0 {
		t.Fatalf("the control plane saw %d Enroll calls, want none", n)
	}
}

func TestAgentEnrollsOnceTheControlPlaneIsUp(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	cp := identitytest.New(t)
	logs, _ := start(t, agentConfig(t, addr, t.TempDir(), "--join", identitytest.Token, "--ca-fingerprint", cp.Fingerprint()))
	testenv.Await(t, 30*time.Second, "the agent ready and retrying enrollment", func() (bool, string) {
		s := logs.String()
		return strings.Contains(s, "agent ready") && strings.Count(s, "cannot enroll with the control plane; retrying") >= 2, s
	})
	if lis, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	cp.Serve(t, lis)
	testenv.Await(t, 30*time.Second, "edge-1 enrolled and in sync", func() (bool, string) {
		return cp.Acked("edge-1") == 1, logs.String()
	})
}
