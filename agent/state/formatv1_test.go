package state

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/proto/prototest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// writeV1 writes old as a snapshot file of format 1 at name, its secrets
// sealed with d's key as format 1 sealed them.
func writeV1(t *testing.T, d *Dir, old *agentv1.Snapshot, name string) {
	t.Helper()
	old = proto.CloneOf(old)
	for _, def := range old.GetSecurity() {
		for _, f := range []*string{&def.Password, &def.Key, &def.Secret, &def.Token, &def.ClientSecret, &def.KeyPem} {
			v, err := d.box.Seal([]byte(*f))
			if err != nil {
				t.Fatal(err)
			}
			*f = v
		}
	}
	payload, err := proto.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.encodePlain(payload)
	if err != nil {
		t.Fatal(err)
	}
	b = append([]byte(magicV1), bytes.TrimPrefix(b, []byte(magic))...)
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFormat1IsConverted reads a snapshot, and a backup, that an agent of
// protocol 1 wrote, with every field of every kind set, and finds each
// value in the Desired under the same name: the agent boots into what it
// served before the upgrade, and its old backups can still be restored.
func TestFormat1IsConverted(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	old := prototest.Fill(&agentv1.Snapshot{})
	start := time.UnixMilli(1_700_000_000_000).UTC()
	j := old.GetJobs()[0]
	j.StartAtUnixMs, j.IntervalMs, j.Payload = start.UnixMilli(), (90 * time.Minute).Milliseconds(), []byte(`{"n":1}`)

	want := &agentv1.Desired{Revision: 7, Nonce: "v-nonce", Hash: "v-hash"}
	for _, p := range old.GetPackages() {
		np := byNameOrFail(t, p, &adminv1.Package{}, "files")
		np.Sources = []*adminv1.SourceFile{{Name: "v-name", Content: []byte("v-content")}}
		want.Packages = append(want.Packages, np)
	}
	want.Channels = []*adminv1.Channel{byNameOrFail(t, old.GetChannels()[0], &adminv1.Channel{})}
	want.Security = []*adminv1.SecurityDefinition{byNameOrFail(t, old.GetSecurity()[0], &adminv1.SecurityDefinition{})}
	want.Outgoing = []*adminv1.OutgoingConnection{byNameOrFail(t, old.GetOutgoing()[0], &adminv1.OutgoingConnection{})}
	wj := byNameOrFail(t, j, &adminv1.Job{}, "start_at_unix_ms", "interval_ms", "payload")
	wj.StartAt, wj.Interval, wj.Payload = timestamppb.New(start), &adminv1.JobInterval{Hours: 1, Minutes: 30}, `{"n":1}`
	want.Jobs = []*adminv1.Job{wj}

	writeV1(t, d, old, filepath.Join(d.Path(), fileName))
	got, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("a format 1 snapshot read as\n%v\nwant\n%v", got, want)
	}
	for _, pair := range [][2]proto.Message{
		{old.GetPackages()[0], got.GetPackages()[0]},
		{old.GetChannels()[0], got.GetChannels()[0]},
		{old.GetSecurity()[0], got.GetSecurity()[0]},
		{old.GetOutgoing()[0], got.GetOutgoing()[0]},
		{old.GetJobs()[0], got.GetJobs()[0]},
	} {
		from, to := pair[0].ProtoReflect(), pair[1].ProtoReflect()
		fields := from.Descriptor().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			tfd := to.Descriptor().Fields().ByName(fd.Name())
			if tfd == nil || !sameType(fd, tfd) {
				continue // spelled differently: checked above
			}
			if !to.Has(tfd) || !to.Get(tfd).Equal(from.Get(fd)) {
				t.Errorf("%s.%s = %v after the conversion; want %v", from.Descriptor().Name(), fd.Name(), to.Get(tfd), from.Get(fd))
			}
		}
	}

	d.backups.limit = 3
	if _, err := d.KeepBackup(&agentv1.Desired{Revision: 1}, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	list, err := d.Backups()
	if err != nil || len(list) != 1 {
		t.Fatalf("backups = %v, %v", list, err)
	}
	writeV1(t, d, old, filepath.Join(d.backupPath(), list[0].name))
	if got, err := d.LoadBackup(list[0].ID); err != nil || !proto.Equal(got, want) {
		t.Fatalf("a format 1 backup read as %v, %v", got, err)
	}

	// The next write is of format 2.
	if err := d.Save(got); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(d.Path(), fileName)); err != nil || !bytes.HasPrefix(b, []byte(magic)) {
		t.Fatalf("saved a file starting %.20q, %v; want format 2", b, err)
	}
}

// byNameOrFail is byName(src, dst), failing t when a field of src that is
// not in skip has no field of the same name and type in dst: protocol 1
// had nothing the API's messages lack.
func byNameOrFail[M proto.Message](t *testing.T, src proto.Message, dst M, skip ...string) M {
	t.Helper()
	sf, df := src.ProtoReflect().Descriptor().Fields(), dst.ProtoReflect().Descriptor().Fields()
next:
	for i := range sf.Len() {
		fd := sf.Get(i)
		for _, s := range skip {
			if string(fd.Name()) == s {
				continue next
			}
		}
		if d := df.ByName(fd.Name()); d == nil || !sameType(fd, d) {
			t.Errorf("%s.%s has no match in %s", src.ProtoReflect().Descriptor().Name(), fd.Name(), dst.ProtoReflect().Descriptor().FullName())
		}
	}
	return byName(src, dst)
}
