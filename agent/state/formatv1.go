package state

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/agent/shared/jobspec"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// fromV1 reads payload, a snapshot of file format 1 (agent protocol 1,
// before agents read the admin API's messages), as the Desired it
// describes. Agents upgraded from a build of protocol 1 thus boot into
// what they served, and their backups can still be restored.
//
// Protocol 1's messages were the API's under the same field names, less
// what agents do not use, so each field is copied by name; a job's times
// and payload, spelled differently then, are set by hand.
func fromV1(payload []byte) (*agentv1.Desired, error) {
	old := &agentv1.Snapshot{}
	if err := proto.Unmarshal(payload, old); err != nil {
		return nil, err
	}
	d := &agentv1.Desired{Revision: old.GetRevision(), Nonce: old.GetNonce(), Hash: old.GetHash()}
	for _, p := range old.GetPackages() {
		np := byName(p, &adminv1.Package{})
		for _, f := range p.GetFiles() {
			np.Sources = append(np.Sources, &adminv1.SourceFile{Name: f.GetName(), Content: f.GetContent()})
		}
		d.Packages = append(d.Packages, np)
	}
	for _, c := range old.GetChannels() {
		d.Channels = append(d.Channels, byName(c, &adminv1.Channel{}))
	}
	for _, s := range old.GetSecurity() {
		d.Security = append(d.Security, byName(s, &adminv1.SecurityDefinition{}))
	}
	for _, o := range old.GetOutgoing() {
		d.Outgoing = append(d.Outgoing, byName(o, &adminv1.OutgoingConnection{}))
	}
	for _, j := range old.GetJobs() {
		nj := byName(j, &adminv1.Job{
			Interval: jobspec.IntervalOf(time.Duration(j.GetIntervalMs()) * time.Millisecond),
			Payload:  string(j.GetPayload()),
		})
		if ms := j.GetStartAtUnixMs(); ms != 0 {
			nj.StartAt = timestamppb.New(time.UnixMilli(ms))
		}
		d.Jobs = append(d.Jobs, nj)
	}
	return d, nil
}

// byName sets in dst every field that src has set under the same name and
// of the same type, and returns dst.
func byName[M proto.Message](src proto.Message, dst M) M {
	s, d := src.ProtoReflect(), dst.ProtoReflect()
	sfields := s.Descriptor().Fields()
	dfields := d.Descriptor().Fields()
	for i := range dfields.Len() {
		dfd := dfields.Get(i)
		sfd := sfields.ByName(dfd.Name())
		if sfd == nil || !sameType(sfd, dfd) {
			continue
		}
		if s.Has(sfd) {
			d.Set(dfd, s.Get(sfd))
		}
	}
	return dst
}

// sameType says whether a value of field a can be set in field b.
func sameType(a, b protoreflect.FieldDescriptor) bool {
	switch {
	case a.IsMap() || b.IsMap():
		return a.IsMap() && b.IsMap() && sameType(a.MapKey(), b.MapKey()) && sameType(a.MapValue(), b.MapValue())
	case a.Kind() != b.Kind() || a.IsList() != b.IsList():
		return false
	case a.Message() != nil:
		return a.Message().FullName() == b.Message().FullName()
	}
	return true
}
