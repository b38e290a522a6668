package snapshot

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/proto/marks"
	"github.com/weft-dev/weft/proto/prototest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// TestForAgent fills every field of each kind and finds in what agents
// get every field but the output-only ones and those kept for people,
// which are gone; the object itself is left as it was.
func TestForAgent(t *testing.T) {
	for _, m := range []proto.Message{
		prototest.Fill(&adminv1.Channel{}),
		prototest.Fill(&adminv1.SecurityDefinition{}),
		prototest.Fill(&adminv1.OutgoingConnection{}),
		prototest.Fill(&adminv1.Job{}),
		prototest.Fill(&adminv1.Package{}),
	} {
		before := proto.Clone(m)
		got := ForAgent(m).ProtoReflect()
		name := got.Descriptor().Name()
		if !proto.Equal(m, before) {
			t.Errorf("ForAgent changed the %s it was given", name)
		}
		fields := got.Descriptor().Fields()
		omitted := 0
		for i := range fields.Len() {
			fd := fields.Get(i)
			switch hidden := marks.OutputOnly(fd) || marks.AgentOmit(fd); {
			case hidden && got.Has(fd):
				t.Errorf("agents get %s.%s", name, fd.Name())
			case hidden:
				omitted++
			case !got.Get(fd).Equal(m.ProtoReflect().Get(fd)):
				t.Errorf("%s.%s = %v for agents; want %v", name, fd.Name(), got.Get(fd), m.ProtoReflect().Get(fd))
			}
		}
		if omitted == 0 {
			t.Errorf("%s: agents get every field, even its description", name)
		}
	}
}

// TestHashOfWhatAgentsSee: a description, or a package's sources, change
// nothing agents run, and so not the hash; a field agents use does.
func TestHashOfWhatAgentsSee(t *testing.T) {
	ch := &adminv1.Channel{Name: "c", Path: "/c", Service: "s", Active: proto.Bool(true)}
	pkg := &adminv1.Package{Name: "p", Version: 1, Sha256: "abc", Services: []string{"s"},
		Sources: []*adminv1.SourceFile{{Name: "p.go", Content: []byte("package p")}}}
	base := Hash(&agentv1.Desired{Channels: []*adminv1.Channel{ForAgent(ch)}, Packages: []*adminv1.Package{pkg}})

	described := proto.CloneOf(ch)
	described.Description = "for the ERP team"
	if got := Hash(&agentv1.Desired{Channels: []*adminv1.Channel{ForAgent(described)}, Packages: []*adminv1.Package{WithoutSources(pkg)}}); got != base {
		t.Error("a description, or leaving sources out, changed the hash")
	}
	moved := proto.CloneOf(ch)
	moved.Path = "/d"
	if got := Hash(&agentv1.Desired{Channels: []*adminv1.Channel{ForAgent(moved)}, Packages: []*adminv1.Package{pkg}}); got == base {
		t.Error("a new path left the hash as it was")
	}
}
