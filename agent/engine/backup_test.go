package engine

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/state"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// The agent backs up the state a swap replaced from Current. That state
// must be whole even when the snapshot that installed it left out files the
// agent held, so that the backup alone brings it back on a fresh engine.
func TestReplacedStateRestoresFromBackup(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	e := New(log, 5*time.Second)
	ch := &adminv1.Channel{Name: "hello", Path: "/api/hello", Methods: []string{"POST"}, Service: "hello.greet", Active: proto.Bool(true)}
	v1 := helloPackage(t, "Hello")
	if _, errs := e.Apply(ctx, snap(1, []*adminv1.Package{v1}, ch)); len(errs) > 0 {
		t.Fatalf("apply r1: %v", errs)
	}
	held := &adminv1.Package{Name: v1.Name, Version: v1.Version, Sha256: v1.Sha256, Services: v1.Services}
	moved := &adminv1.Channel{Name: "hello", Path: "/api/v2/hello", Methods: []string{"POST"}, Service: "hello.greet", Active: proto.Bool(true)}
	if _, errs := e.Apply(ctx, snap(2, []*adminv1.Package{held}, moved)); len(errs) > 0 {
		t.Fatalf("apply r2 without files: %v", errs)
	}

	dir, err := state.Open(t.TempDir(), state.WithBackups(3))
	if err != nil {
		t.Fatal(err)
	}
	replaced := e.Applied()
	v2 := helloPackage(t, "Howdy")
	v2.Version = 2
	next, errs := e.Apply(ctx, snap(3, []*adminv1.Package{v2}, moved))
	if len(errs) > 0 {
		t.Fatalf("apply r3: %v", errs)
	}
	if replaced.GetHash() == next.GetHash() {
		t.Fatal("r3 hashes like r2")
	}
	b, err := dir.KeepBackup(replaced, next.GetRevision(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := greet(t, e); !strings.Contains(got, "Howdy, Ada!") {
		t.Fatalf("r3 output = %s", got)
	}

	kept, err := dir.LoadBackup(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	fresh := New(log, 5*time.Second)
	st, errs := fresh.Apply(ctx, kept)
	if len(errs) > 0 {
		t.Fatalf("apply the backup on a fresh engine: %v", errs)
	}
	if st.GetRevision() != 2 || st.GetHash() != replaced.GetHash() {
		t.Fatalf("restored r%d hash %s, want r2 hash %s", st.GetRevision(), st.GetHash(), replaced.GetHash())
	}
	if got := greet(t, fresh); !strings.Contains(got, "Hello, Ada!") {
		t.Fatalf("restored output = %s", got)
	}
}
