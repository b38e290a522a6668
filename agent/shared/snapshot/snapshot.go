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

// WithoutSources is p as agents get it, without its sources: what a
// snapshot says of a package the agent already holds.
func WithoutSources(p *adminv1.Package) *adminv1.Package {
	out := ForAgent(p)
	out.Sources = nil
	return out
}

// ForAgent is m, an object of the admin API, as agents get it: without its
// output-only fields and those the control plane keeps for people
// (weft.options.v1.agent_omit), so that a change agents cannot see leaves
// their snapshot's hash as it is. It is a shallow copy, sharing m's
// lists, maps and messages: neither may be changed afterwards.
func ForAgent[M proto.Message](m M) M {
	src := m.ProtoReflect()
	out := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !marks.OutputOnly(fd) && !marks.AgentOmit(fd) {
			out.Set(fd, v)
		}
		return true
	})
	return out.Interface().(M)
}
