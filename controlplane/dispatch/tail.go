package dispatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// tailBuffer is how many batches of one agent a tail holds for a slow
// reader before it drops (and counts) the next.
const tailBuffer = 64

// tailStartTimeout bounds starting a tail on the agents.
const tailStartTimeout = 5 * time.Second

// tailStopTimeout bounds telling an agent a tail has ended.
const tailStopTimeout = 2 * time.Second

// TailBatch is a batch of invocations one agent sent for a tail.
type TailBatch struct {
	AgentID string
	Events  *agentv1.TailEvents
	// Dropped counts the invocations this replica left out before this
	// batch because the reader was behind.
	Dropped int64
}

// tailSub is one agent's part of a tail on this replica.
type tailSub struct {
	agentID string
	out     chan<- TailBatch
	dropped atomic.Int64
}

// deliverTail hands a batch from the agent to its tail, never blocking the
// agent's stream: when the reader is behind, the batch is dropped and
// counted.
func (c *commandsConn) deliverTail(t *agentv1.TailEvents) {
	c.mu.Lock()
	sub := c.tails[t.GetTailId()]
	c.mu.Unlock()
	if sub == nil {
		return // a tail that just ended
	}
	// The count is read before the select and taken off only when the batch
	// carrying it is sent: a send expression is evaluated even when the
	// select takes the default, so a Swap there would lose what it cleared.
	// One goroutine (the stream's receiver) delivers to a tail.
	dropped := sub.dropped.Load()
	select {
	case sub.out <- TailBatch{AgentID: sub.agentID, Events: t, Dropped: dropped}:
		sub.dropped.Add(-dropped)
	default:
		sub.dropped.Add(int64(len(t.GetInvocations())) + t.GetDropped())
	}
}

// Tail starts a tail on each of agentIDs (every agent connected to this
// replica when empty) and returns the batches they send until ctx ends;
// then it stops the tail on each agent. The agents that could not start it
// are returned with why. A tail on no agent at all is ErrNoAgent.
func (s *Server) Tail(ctx context.Context, agentIDs []string, filter *agentv1.TailCommand) (<-chan TailBatch, map[string]error, error) {
	if len(agentIDs) == 0 {
		agentIDs = s.Connected()
	}
	if len(agentIDs) == 0 {
		return nil, nil, ErrNoAgent
	}
	out := make(chan TailBatch, tailBuffer)
	tailID := newNonce()
	failed := map[string]error{}
	var (
		mu      sync.Mutex
		started []*commandsConn
		wg      sync.WaitGroup
	)
	// Every agent at once, each within a bound: one slow agent does not
	// hold the others' tails up.
	startCtx, cancelStart := context.WithTimeout(ctx, tailStartTimeout)
	for _, id := range agentIDs {
		wg.Go(func() {
			cc, err := s.startTail(startCtx, id, tailID, filter, out)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[id] = err
				return
			}
			started = append(started, cc)
		})
	}
	wg.Wait()
	cancelStart()
	stop := func() {
		for _, cc := range started {
			cc.mu.Lock()
			delete(cc.tails, tailID)
			cc.mu.Unlock()
		}
		// Every agent asked, those that seemed to fail too: a start may
		// have reached one whose answer did not come back in time. Best
		// effort: an agent also ends its tails when its stream ends.
		stopCtx, cancel := context.WithTimeout(context.Background(), tailStopTimeout)
		defer cancel()
		for _, id := range agentIDs {
			_, _, _ = s.Run(stopCtx, id, &agentv1.Command{Kind: &agentv1.Command_Tail{Tail: &agentv1.TailCommand{TailId: tailID, Stop: true}}})
		}
	}
	if len(started) == 0 {
		go stop()
		return nil, failed, fmt.Errorf("no agent started the tail: %w", errors.Join(mapErrors(failed)...))
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	return out, failed, nil
}

// startTail registers the tail on the agent's stream, then asks the agent
// to start it.
func (s *Server) startTail(ctx context.Context, id, tailID string, filter *agentv1.TailCommand, out chan<- TailBatch) (*commandsConn, error) {
	_, cc, err := s.pick(id)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	cc.tails[tailID] = &tailSub{agentID: id, out: out}
	cc.mu.Unlock()
	cmd := &agentv1.TailCommand{TailId: tailID, Service: filter.GetService(), Channel: filter.GetChannel(), Samples: filter.GetSamples()}
	_, res, err := s.Run(ctx, id, &agentv1.Command{Kind: &agentv1.Command_Tail{Tail: cmd}})
	if err == nil && res.GetError() != "" {
		err = fmt.Errorf("agent %q: %s", id, res.GetError())
	}
	if err != nil {
		cc.mu.Lock()
		delete(cc.tails, tailID)
		cc.mu.Unlock()
		return nil, err
	}
	return cc, nil
}

// mapErrors lists the errors of m by key.
func mapErrors(m map[string]error) []error {
	var out []error
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}
