package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestAudit checks that every change leaves one audit entry per object it
// created, updated or deleted, with its author and hashes, on both
// backends, and that the trail filters.
func TestAudit(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := store.WithAuthor(context.Background(), "ada")
		hello := pkg("hello", []string{"hello.greet"}, "hello.go", "package hello")
		deploy(t, s, hello)
		if _, err := s.CreateChannel(ctx, &adminv1.Channel{Name: "hello", Path: "/hello", Methods: []string{"POST"}, Service: "hello.greet", Active: proto.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateChannel(ctx, &adminv1.Channel{Name: "hello", Path: "/hello2", Methods: []string{"POST"}, Service: "hello.greet", Active: proto.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteChannel(store.WithAuthor(context.Background(), "bo"), "hello"); err != nil {
			t.Fatal(err)
		}
		entries, truncated, err := s.ListAudit(context.Background(), store.AuditQuery{})
		if err != nil || truncated {
			t.Fatal(err, truncated)
		}
		var got []string
		for _, e := range entries {
			got = append(got, fmt.Sprintf("%s %s %s %s before=%t after=%t", e.Author, e.Kind, e.Name, e.Action, e.HashBefore != "", e.HashAfter != ""))
		}
		want := []string{
			"bo channel hello deleted before=true after=false",
			"ada channel hello updated before=true after=true",
			"ada channel hello created before=false after=true",
			"tester package hello created before=false after=true",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("audit trail:\n%v\nwant\n%v", got, want)
		}
		if entries[1].HashBefore != entries[2].HashAfter || entries[1].HashAfter != entries[0].HashBefore || entries[1].HashBefore == entries[1].HashAfter {
			t.Errorf("hashes do not chain: %+v", entries[:3])
		}
		if entries[0].Revision <= entries[1].Revision || entries[0].Summary == "" {
			t.Errorf("newest first with summaries: %+v", entries[:2])
		}
		for _, q := range []struct {
			q    store.AuditQuery
			want int
		}{
			{store.AuditQuery{Author: "ada"}, 2},
			{store.AuditQuery{Kind: store.AuditKindPackage}, 1},
			{store.AuditQuery{Since: time.Now().Add(time.Hour)}, 0},
			{store.AuditQuery{Limit: 3}, 3},
		} {
			es, trunc, err := s.ListAudit(context.Background(), q.q)
			if err != nil || len(es) != q.want || trunc != (q.q.Limit == 3) {
				t.Errorf("ListAudit(%+v) = %d entries, truncated %t, %v; want %d", q.q, len(es), trunc, err, q.want)
			}
		}
		// A change that changes nothing leaves no entry.
		before, _, _ := s.ListAudit(context.Background(), store.AuditQuery{})
		deploy(t, s, hello)
		after, _, _ := s.ListAudit(context.Background(), store.AuditQuery{})
		if len(after) != len(before) {
			t.Errorf("an unchanged deploy added %d audit entries", len(after)-len(before))
		}
	})
}
