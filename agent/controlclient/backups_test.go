package controlclient

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/agent/state"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// testNow is when every backup of these tests is taken.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// helloSnap returns a snapshot at rev of the example hello package at
// version, answering with greeting.
func helloSnap(t *testing.T, rev, version int64, greeting string) *agentv1.Desired {
	t.Helper()
	src, err := os.ReadFile("../../deploy/examples/hello/hello.go")
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), `"Hello"`, `"`+greeting+`"`, 1))
	files := []*adminv1.SourceFile{{Name: "hello.go", Content: src}}
	s := &agentv1.Desired{Revision: rev, Nonce: "n", Packages: []*adminv1.Package{{
		Name: "hello", Version: version, Sha256: snapshot.PackageHash(files), Services: []string{"hello.greet"}, Sources: files,
	}}}
	s.Hash = snapshot.Hash(s)
	return s
}

// failingBackups fails every backup.
type failingBackups struct{ *state.Dir }

func (failingBackups) KeepBackup(*agentv1.Desired, int64, time.Time) (state.Backup, error) {
	return state.Backup{}, errors.New("disk full")
}

// newTestClient returns a client over a real engine and a state dir that
// keeps limit backups; it dials nothing until Run.
func newTestClient(t *testing.T, addr string, limit int, wrap func(*state.Dir) Backups) (*Client, *state.Dir) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	dir, err := state.Open(t.TempDir(), state.WithBackups(limit))
	if err != nil {
		t.Fatal(err)
	}
	var b Backups = dir
	if wrap != nil {
		b = wrap(dir)
	}
	c := New(addr, Identity{ID: "edge-1", StartedAt: testNow}, engine.New(log, 5*time.Second), dir,
		NewBackoff(10*time.Millisecond, 50*time.Millisecond, nil), log, WithBackups(b))
	c.now = func() time.Time { return testNow }
	return c, dir
}

func TestApplyKeepsBackups(t *testing.T) {
	broken := helloSnap(t, 6, 5, "Hey")
	broken.Packages[0].Sources[0].Content = append(broken.Packages[0].Sources[0].Content, "\nfunc f() { undefinedThing() }\n"...)
	broken.Packages[0].Sha256 = snapshot.PackageHash(broken.Packages[0].Sources)

	tests := []struct {
		name  string
		limit int
		wrap  func(*state.Dir) Backups
		snaps []*agentv1.Desired
		acks  int     // how many of snaps are ACKed, the first ones
		want  []int64 // revisions backed up, newest first
	}{
		{
			name:  "each replaced state, newest first, within the limit",
			limit: 2,
			snaps: []*agentv1.Desired{
				helloSnap(t, 1, 1, "Hello"), helloSnap(t, 3, 2, "Howdy"), helloSnap(t, 4, 3, "Hi"), helloSnap(t, 5, 4, "Hey"),
			},
			acks: 4,
			want: []int64{4, 3},
		},
		{
			name:  "no backup of a revision that changed nothing, nor of a refused one",
			limit: 10,
			snaps: []*agentv1.Desired{
				helloSnap(t, 1, 1, "Hello"), helloSnap(t, 2, 1, "Hello"), helloSnap(t, 3, 2, "Howdy"), broken,
			},
			acks: 3,
			want: []int64{2},
		},
		{
			name:  "no backup of the empty state at revision 0",
			limit: 10,
			snaps: []*agentv1.Desired{{Revision: 0, Hash: snapshot.Hash(&agentv1.Desired{})}, helloSnap(t, 1, 1, "Hello"), helloSnap(t, 2, 2, "Howdy")},
			acks:  3,
			want:  []int64{1},
		},
		{
			name:  "limit 0 keeps none",
			limit: 0,
			snaps: []*agentv1.Desired{helloSnap(t, 1, 1, "Hello"), helloSnap(t, 2, 2, "Howdy")},
			acks:  2,
		},
		{
			name:  "a failed backup still swaps and ACKs",
			limit: 10,
			wrap:  func(d *state.Dir) Backups { return failingBackups{d} },
			snaps: []*agentv1.Desired{helloSnap(t, 1, 1, "Hello"), helloSnap(t, 2, 2, "Howdy")},
			acks:  2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, dir := newTestClient(t, "unused", tt.limit, tt.wrap)
			for i, s := range tt.snaps {
				r := c.apply(context.Background(), s)
				if ack := r.GetAck(); (ack != nil) != (i < tt.acks) {
					t.Fatalf("snapshot %d (r%d): %v, want ACK: %v", i, s.GetRevision(), r, i < tt.acks)
				}
			}
			last := tt.snaps[tt.acks-1]
			if saved, err := dir.Load(); err != nil || saved.GetRevision() != last.GetRevision() {
				t.Fatalf("saved snapshot r%d, %v; want r%d", saved.GetRevision(), err, last.GetRevision())
			}
			list, err := dir.Backups()
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, b := range list {
				got = append(got, b.Revision)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("backed up revisions %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeControlPlane serves the agent API: it sends snaps on Sync and cmds on
// Commands, and hands back what the agent answers.
type fakeControlPlane struct {
	agentv1.UnimplementedAgentServiceServer
	snaps   chan *agentv1.Desired
	acks    chan *agentv1.SyncRequest
	cmds    chan *agentv1.Command
	results chan *agentv1.CommandResult
}

func (f *fakeControlPlane) Sync(stream agentv1.AgentService_SyncServer) error {
	if _, err := stream.Recv(); err != nil { // hello
		return err
	}
	for {
		select {
		case s := <-f.snaps:
			if err := stream.Send(&agentv1.SyncResponse{Kind: &agentv1.SyncResponse_Desired{Desired: s}}); err != nil {
				return err
			}
			r, err := stream.Recv()
			if err != nil {
				return err
			}
			f.acks <- r
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

func (f *fakeControlPlane) Commands(stream agentv1.AgentService_CommandsServer) error {
	if _, err := stream.Recv(); err != nil { // open
		return err
	}
	for {
		select {
		case cmd := <-f.cmds:
			if err := stream.Send(&agentv1.CommandsResponse{Command: cmd}); err != nil {
				return err
			}
			r, err := stream.Recv()
			if err != nil {
				return err
			}
			f.results <- r.GetResult()
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

func TestListBackupsCommand(t *testing.T) {
	cp := &fakeControlPlane{
		snaps: make(chan *agentv1.Desired), acks: make(chan *agentv1.SyncRequest),
		cmds: make(chan *agentv1.Command), results: make(chan *agentv1.CommandResult),
	}
	addr := serve(t, cp)

	c, _ := newTestClient(t, addr, 2, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	for i, greeting := range []string{"Hello", "Howdy", "Hi", "Hey"} {
		cp.snaps <- helloSnap(t, int64(i+1)*10, int64(i+1), greeting)
		if r := <-cp.acks; r.GetAck() == nil {
			t.Fatalf("snapshot %d: %v, want an ACK", i, r)
		}
	}
	cp.cmds <- &agentv1.Command{Id: "c1", Kind: &agentv1.Command_ListBackups{ListBackups: &agentv1.ListBackupsCommand{}}}
	got := <-cp.results
	for _, b := range got.GetBackups().GetBackups() {
		if b.GetSizeBytes() <= 0 {
			t.Errorf("backup %s: size %d", b.GetId(), b.GetSizeBytes())
		}
		b.SizeBytes = 0
	}
	ms := testNow.UnixMilli()
	want := &agentv1.CommandResult{Id: "c1", Kind: &agentv1.CommandResult_Backups{Backups: &agentv1.BackupList{
		Limit: 2,
		Backups: []*agentv1.Backup{
			{Id: "000003-r30", Revision: 30, ReplacedByRevision: 40, ReplacedAtUnixMs: ms, Packages: []string{"hello@3"}},
			{Id: "000002-r20", Revision: 20, ReplacedByRevision: 30, ReplacedAtUnixMs: ms, Packages: []string{"hello@2"}},
		},
	}}}
	if !proto.Equal(got, want) {
		t.Fatalf("result =\n%v\nwant\n%v", got, want)
	}
}
