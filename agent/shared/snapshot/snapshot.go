// Package snapshot holds what the control plane and the agent must agree on
// about a config snapshot: its content hash. Both sides compute it the same
// way, so an ACK proves the agent serves exactly what was sent.
package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"google.golang.org/protobuf/proto"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// ProtocolVersion is the agent protocol capability this build speaks.
const ProtocolVersion = 1

// Hash returns the hex sha256 of a snapshot's content. The revision, nonce
// and hash fields are left out, and packages count by their sha256 rather
// than their files, so a snapshot that omits files the agent already holds
// hashes the same as one that carries them, and a revision that changed
// nothing for this agent keeps the hash.
func Hash(s *agentv1.Snapshot) string {
	c := &agentv1.Snapshot{Channels: s.GetChannels(), Security: s.GetSecurity(), Outgoing: s.GetOutgoing(), Jobs: s.GetJobs()}
	for _, p := range s.GetPackages() {
		c.Packages = append(c.Packages, &agentv1.Package{
			Name:     p.GetName(),
			Version:  p.GetVersion(),
			Sha256:   p.GetSha256(),
			Services: p.GetServices(),
		})
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
func PackageHash(files []*agentv1.SourceFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%d:%s:%d:", len(f.GetName()), f.GetName(), len(f.GetContent()))
		h.Write(f.GetContent())
	}
	return hex.EncodeToString(h.Sum(nil))
}
