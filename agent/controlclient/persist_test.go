package controlclient

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/state"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// breakDir replaces the directory path with a regular file, which stops
// every write under it with ENOTDIR, as a full or read-only disk would,
// even for root (the tests run as root, so permissions stop nothing).
// Removing the file repairs it: the state directory is made again.
func breakDir(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func repairDir(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// newDiskClient returns a client over a real engine whose state directory
// is <tmp>/state, keeping 10 backups, and retrying failed writes every few
// milliseconds; it logs to the returned buffer.
func newDiskClient(t *testing.T, addr string) (*Client, *state.Dir, *testenv.LogBuffer) {
	t.Helper()
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	dir, err := state.Open(filepath.Join(t.TempDir(), "state"), state.WithBackups(10))
	if err != nil {
		t.Fatal(err)
	}
	c := New(addr, Identity{ID: "edge-1", StartedAt: testNow}, engine.New(log, 5*time.Second), dir,
		NewBackoff(10*time.Millisecond, 50*time.Millisecond, nil), log, WithBackups(dir))
	c.now = func() time.Time { return testNow }
	c.diskRetry = NewBackoff(5*time.Millisecond, 20*time.Millisecond, nil)
	return c, dir, logs
}

func backedUp(t *testing.T, dir *state.Dir) []int64 {
	t.Helper()
	list, err := dir.Backups()
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, b := range list {
		got = append(got, b.Revision)
	}
	return got
}

// TestApplyReportsWhatIsNotOnDisk: a snapshot that cannot be written is
// served and ACKed with the reason; the next snapshot after the repair
// writes it, and the backups that waited, in their order.
func TestApplyReportsWhatIsNotOnDisk(t *testing.T) {
	c, dir, logs := newDiskClient(t, "unused")
	ctx := context.Background()
	if ack := c.apply(ctx, helloSnap(t, 1, 1, "Hello")).GetAck(); ack == nil || ack.GetNotPersisted() != "" {
		t.Fatalf("first snapshot: ACK %v; want one with nothing unpersisted", ack)
	}

	breakDir(t, dir.Path())
	for _, s := range []*agentv1.Desired{helloSnap(t, 2, 2, "Howdy"), helloSnap(t, 3, 3, "Hi")} {
		ack := c.apply(ctx, s).GetAck()
		if ack == nil || ack.GetRevision() != s.GetRevision() || ack.GetHash() != s.GetHash() {
			t.Fatalf("snapshot r%d into a broken state dir: %v; want it ACKed", s.GetRevision(), ack)
		}
		why := ack.GetNotPersisted()
		for _, want := range []string{
			"save snapshot of revision " + strconv.FormatInt(s.GetRevision(), 10), "not a directory",
			"a restart without the control plane would serve an older state",
			"cannot keep the backup of revision 1",
		} {
			if !strings.Contains(why, want) {
				t.Errorf("r%d: not_persisted = %q; want it to say %q", s.GetRevision(), why, want)
			}
		}
		if got := c.engine.Applied().GetRevision(); got != s.GetRevision() {
			t.Fatalf("serving r%d; want r%d served though the disk failed", got, s.GetRevision())
		}
	}
	if log := logs.String(); !strings.Contains(log, "cannot keep the served state on disk") || !strings.Contains(log, "not a directory") {
		t.Errorf("the log does not say why the state is not on disk:\n%s", log)
	}

	repairDir(t, dir.Path())
	ack := c.apply(ctx, helloSnap(t, 4, 4, "Hey")).GetAck()
	if ack == nil || ack.GetNotPersisted() != "" {
		t.Fatalf("snapshot after the repair: ACK %v; want nothing unpersisted", ack)
	}
	if saved, err := dir.Load(); err != nil || saved.GetRevision() != 4 {
		t.Fatalf("on disk: r%d, %v; want r4", saved.GetRevision(), err)
	}
	if got, want := backedUp(t, dir), []int64{3, 2, 1}; !slices.Equal(got, want) {
		t.Fatalf("backed up revisions %v, want %v: each replaced state, newest first", got, want)
	}
	if !strings.Contains(logs.String(), "the served state is on disk again") {
		t.Errorf("the log does not say the state is on disk again:\n%s", logs.String())
	}
}

// ackRecorder is a control plane that sends each snapshot it is given and
// hands back every message the agent sends after its hello, asked for or
// not.
type ackRecorder struct {
	agentv1.UnimplementedAgentServiceServer
	snaps chan *agentv1.Desired
	got   chan *agentv1.SyncRequest
}

func (f *ackRecorder) Sync(stream agentv1.AgentService_SyncServer) error {
	if _, err := stream.Recv(); err != nil { // hello
		return err
	}
	go func() {
		for {
			select {
			case s := <-f.snaps:
				if stream.Send(&agentv1.SyncResponse{Kind: &agentv1.SyncResponse_Desired{Desired: s}}) != nil {
					return
				}
			case <-stream.Context().Done():
				return
			}
		}
	}()
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		select {
		case f.got <- m:
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// next returns the next ACK the agent sent, failing after a bound.
func (f *ackRecorder) next(t *testing.T, what string) *agentv1.Ack {
	t.Helper()
	select {
	case m := <-f.got:
		if m.GetAck() == nil {
			t.Fatalf("%s: the agent sent %v; want an ACK", what, m)
		}
		return m.GetAck()
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no ACK within 10s", what)
		return nil
	}
}

// TestAckAgainWhenTheDiskRecovers: without another snapshot, the agent
// retries the write, and once it succeeds sends the ACK of the state it
// serves again, with the same nonce and nothing unpersisted.
func TestAckAgainWhenTheDiskRecovers(t *testing.T) {
	cp := &ackRecorder{snaps: make(chan *agentv1.Desired), got: make(chan *agentv1.SyncRequest)}
	addr := serve(t, cp)

	c, dir, _ := newDiskClient(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	cp.snaps <- helloSnap(t, 1, 1, "Hello")
	if ack := cp.next(t, "r1"); ack.GetRevision() != 1 || ack.GetNotPersisted() != "" {
		t.Fatalf("r1: ACK %v; want r1 with nothing unpersisted", ack)
	}
	breakDir(t, dir.Path())
	s2 := helloSnap(t, 2, 2, "Howdy")
	s2.Nonce = "n2"
	cp.snaps <- s2
	first := cp.next(t, "r2")
	if first.GetRevision() != 2 || first.GetNonce() != "n2" || !strings.Contains(first.GetNotPersisted(), "not a directory") {
		t.Fatalf("r2 into a broken state dir: ACK %v; want r2 with why it is not on disk", first)
	}

	repairDir(t, dir.Path())
	// Retries made before the repair may still report why they failed
	// (such as the backup's write, after the snapshot's): each is r2's.
	again := cp.next(t, "after the repair")
	for again.GetNotPersisted() != "" && again.GetNonce() == "n2" {
		again = cp.next(t, "after the repair")
	}
	if again.GetRevision() != 2 || again.GetNonce() != "n2" || again.GetHash() != s2.GetHash() || again.GetNotPersisted() != "" {
		t.Fatalf("after the repair: ACK %v; want r2's ACK again (nonce n2) with nothing unpersisted", again)
	}
	if saved, err := dir.Load(); err != nil || saved.GetRevision() != 2 {
		t.Fatalf("on disk: r%d, %v; want r2", saved.GetRevision(), err)
	}
	if got, want := backedUp(t, dir), []int64{1}; !slices.Equal(got, want) {
		t.Fatalf("backed up revisions %v, want %v", got, want)
	}
}
