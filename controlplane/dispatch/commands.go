package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/auth"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Errors of Run, wrapped with the agent's id.
var (
	// ErrNotConnected means the agent is not connected to this replica.
	ErrNotConnected = errors.New("not connected to this control plane")
	// ErrNoAgent means no agent is connected at all.
	ErrNoAgent = errors.New("no agent is connected")
)

// commandsConn is an agent's open Commands stream.
type commandsConn struct {
	out  chan *agentv1.Command
	done chan struct{}

	mu      sync.Mutex
	closed  bool
	waiting map[string]chan *agentv1.CommandResult
	tails   map[string]*tailSub // by tail id
}

func (c *commandsConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
}

// Commands serves an agent's Commands stream: commands out, results in.
func (s *Server) Commands(stream agentv1.AgentService_CommandsServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	id := first.GetOpen().GetAgentId()
	if id == "" {
		return status.Error(codes.InvalidArgument, "commands: the first message must be an open with agent_id")
	}
	if err := auth.CheckAgent(stream.Context(), id); err != nil {
		return err
	}
	cc := &commandsConn{
		out:     make(chan *agentv1.Command),
		done:    make(chan struct{}),
		waiting: make(map[string]chan *agentv1.CommandResult),
		tails:   make(map[string]*tailSub),
	}
	s.mu.Lock()
	conn := s.agents[id]
	if conn != nil {
		if conn.cmd != nil {
			conn.cmd.close()
		}
		conn.cmd = cc
	}
	s.mu.Unlock()
	if conn == nil {
		return status.Errorf(codes.FailedPrecondition, "commands: agent %q has no Sync stream on this control plane; say hello first", id)
	}
	defer func() {
		s.mu.Lock()
		if conn.cmd == cc {
			conn.cmd = nil
		}
		s.mu.Unlock()
		cc.close()
	}()

	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if t := m.GetTail(); t != nil {
				cc.deliverTail(t)
				continue
			}
			r := m.GetResult()
			if r == nil {
				continue
			}
			cc.mu.Lock()
			w := cc.waiting[r.GetId()]
			delete(cc.waiting, r.GetId())
			cc.mu.Unlock()
			if w != nil {
				w <- r // buffered: never blocks
			}
		}
	}()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case <-cc.done:
			return nil
		case <-recvErr:
			// The agent closed its side or went away; either ends the stream.
			return nil
		case cmd := <-cc.out:
			if err := stream.Send(&agentv1.CommandsResponse{Command: cmd}); err != nil {
				return err
			}
		}
	}
}

// Run sends cmd to an agent and waits for its result. An empty agentID picks
// a connected agent, preferring one that serves the newest revision.
func (s *Server) Run(ctx context.Context, agentID string, cmd *agentv1.Command) (string, *agentv1.CommandResult, error) {
	id, cc, err := s.pick(agentID)
	if err != nil {
		return "", nil, err
	}
	if cmd.GetId() == "" {
		cmd.Id = newNonce()
	}
	wait := make(chan *agentv1.CommandResult, 1)
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return id, nil, fmt.Errorf("agent %q: %w", id, ErrNotConnected)
	}
	cc.waiting[cmd.GetId()] = wait
	cc.mu.Unlock()
	defer func() {
		cc.mu.Lock()
		delete(cc.waiting, cmd.GetId())
		cc.mu.Unlock()
	}()

	select {
	case cc.out <- cmd:
	case <-cc.done:
		return id, nil, fmt.Errorf("agent %q: %w", id, ErrNotConnected)
	case <-ctx.Done():
		return id, nil, ctx.Err()
	}
	select {
	case r := <-wait:
		return id, r, nil
	case <-cc.done:
		return id, nil, fmt.Errorf("agent %q disconnected before it answered", id)
	case <-ctx.Done():
		return id, nil, ctx.Err()
	}
}

func (s *Server) pick(agentID string) (string, *commandsConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if agentID != "" {
		c := s.agents[agentID]
		if c == nil || c.cmd == nil {
			return "", nil, fmt.Errorf("agent %q: %w", agentID, ErrNotConnected)
		}
		return agentID, c.cmd, nil
	}
	var best []*agentConn
	var newest int64 = -1
	for _, c := range s.agents {
		if c.cmd == nil {
			continue
		}
		switch {
		case c.applied > newest:
			best, newest = []*agentConn{c}, c.applied
		case c.applied == newest:
			best = append(best, c)
		}
	}
	if len(best) == 0 {
		return "", nil, ErrNoAgent
	}
	c := best[rand.IntN(len(best))]
	return c.id, c.cmd, nil
}
