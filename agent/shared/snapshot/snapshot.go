// Package snapshot holds what the control plane and the agent must agree on
// about a config snapshot: its content hash. Both sides compute it the same
// way, so an ACK proves the agent serves exactly what was sent.
package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// ProtocolVersion is the agent protocol capability this build speaks. 2:
// the snapshot is a Desired, made of the admin API's messages.
const ProtocolVersion = 2

// Hash returns the hex sha256 of a snapshot's content. The revision, nonce
// and hash fields are left out, and packages count by their sha256 rather
// than their files, so a snapshot that omits files the agent already holds
// hashes the same as one that carries them, and a revision that changed
// nothing for this agent keeps the hash.
func Hash(s *agentv1.Desired) string {
	c := &agentv1.Desired{Channels: s.GetChannels(), Security: s.GetSecurity(), Outgoing: s.GetOutgoing(), Jobs: s.GetJobs()}
	for _, p := range s.GetPackages() {
		c.Packages = append(c.Packages, WithoutSources(p))
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		// Marshal fails only on invalid UTF-8 in strings, which the control
		// plane refuses at the door; make it visible rather than hash garbage.
		panic(fmt.Sprintf("snapshot hash: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// PackageHash returns the hex sha256 of a package's files: each file's name
// and content, length-prefixed, in the order given (callers sort by name).
func PackageHash(files []*adminv1.SourceFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%d:%s:%d:", len(f.GetName()), f.GetName(), len(f.GetContent()))
		h.Write(f.GetContent())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WithoutSources is p without its sources: what a snapshot says of a
// package the agent already holds.
func WithoutSources(p *adminv1.Package) *adminv1.Package {
	return &adminv1.Package{Name: p.GetName(), Version: p.GetVersion(), Sha256: p.GetSha256(), Services: p.GetServices()}
}

// ForAgent is a copy of m, an object of the admin API, as agents get it:
// without its output-only fields and those the control plane keeps for
// people (weft.options.v1.agent_omit), so that a change agents cannot see
// leaves their snapshot's hash as it is.
func ForAgent[M proto.Message](m M) M {
	out := proto.Clone(m).(M)
	r := out.ProtoReflect()
	for _, fd := range marks.Fields(r.Descriptor(), func(fd protoreflect.FieldDescriptor) bool { return marks.OutputOnly(fd) || marks.AgentOmit(fd) }) {
		r.Clear(fd)
	}
	return out
}
