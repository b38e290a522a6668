// Package recent keeps what an agent saw lately, for debugging from the
// control plane: the last failed and slow invocations of each service with
// samples of their bodies (Samples), a live stream of invocations (Tail),
// and the agent's own recent log lines (Logs). Bodies are sampled with
// their secrets redacted (see Sample), and only when something keeps them:
// an event that is neither failed, slow nor tailed costs a comparison.
package recent

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weft-dev/weft/agent/observe"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// DefaultSampleBytes is the size of a request or response sample when the
// agent sets none.
const DefaultSampleBytes = 2048

// Bounds of the texts kept with an invocation: an error message or a
// stack can be long, and a sample must stay small.
const (
	maxErrorBytes = 4 << 10
	maxStackBytes = 16 << 10
)

// invocation describes e as the agent protocol does; with samples, it
// carries redacted samples of at most n bytes of e's input and output.
// Everything it holds is its own: e's bodies are copied, never referenced.
func invocation(e *observe.Event, n int, samples bool) *agentv1.Invocation {
	at := e.End
	if at.IsZero() {
		at = time.Now()
	}
	inv := &agentv1.Invocation{
		Cid:        e.CID,
		Kind:       kindOf(e),
		Service:    e.Service,
		Channel:    e.Channel,
		Job:        e.Job,
		Status:     int32(e.Status),
		DurationUs: e.Duration.Microseconds(),
		AtUnixMs:   at.UnixMilli(),
		Error:      clip(e.Error, maxErrorBytes),
		Stack:      clip(e.Stack, maxStackBytes),
		BytesIn:    size(e.BytesIn, e.Input),
		BytesOut:   size(e.BytesOut, e.Output),
	}
	if samples {
		var inCut, outCut bool
		inv.RequestSample, inCut = Sample(e.Input, n)
		inv.ResponseSample, outCut = Sample(e.Output, n)
		inv.Truncated = inCut || outCut
	}
	return inv
}

// kindOf is the protocol's kind of an invocation: channel, invoke, job or
// service. A service invocation is named by its origin.
func kindOf(e *observe.Event) string {
	switch e.Kind {
	case observe.KindChannel:
		return "channel"
	case observe.KindJob:
		return "job"
	}
	if e.Origin == "" {
		return observe.OriginService
	}
	return e.Origin
}

// size is the full size of a body: what the event says, else its length.
func size(n int64, body []byte) int64 {
	if n > 0 {
		return n
	}
	return int64(len(body))
}

// clip cuts s to at most n bytes, copying what it keeps so that a long
// message's memory is not held by its start.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n])
}
