package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// FleetStore is what the fleet service needs of the store: the agents,
// their join tokens, and the services an invoke may call.
type FleetStore interface {
	agentReader
	Revision(ctx context.Context) (int64, error)
	ListAgents(ctx context.Context) ([]store.Agent, error)
	ListServices(ctx context.Context) ([]*adminv1.Service, error)
	CreateJoinToken(ctx context.Context, t store.NewJoinToken) (store.JoinToken, error)
	ListJoinTokens(ctx context.Context) ([]store.JoinToken, error)
	RevokeJoinToken(ctx context.Context, id string) (store.JoinToken, error)
	RevokeAgent(ctx context.Context, id string) (store.Agent, error)
}

var _ FleetStore = store.Store(nil)

// agentReader reads one agent, to say why it cannot answer.
type agentReader interface {
	GetAgent(ctx context.Context, id string) (store.Agent, error)
	ListAgents(ctx context.Context) ([]store.Agent, error)
	ListReplicas(ctx context.Context) ([]store.Replica, error)
}

type fleet struct {
	adminv1.UnimplementedFleetServiceServer
	*base
	store FleetStore
}

var _ adminv1.FleetServiceServer = (*fleet)(nil)

// ListAgents lists every agent with its sync status against the current
// revision.
func (s *fleet) ListAgents(ctx context.Context, _ *adminv1.ListAgentsRequest) (*adminv1.ListAgentsResponse, error) {
	rev, err := s.store.Revision(ctx)
	if err != nil {
		return nil, storeError("list agents", err)
	}
	agents, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, storeError("list agents", err)
	}
	out := &adminv1.ListAgentsResponse{}
	for _, a := range agents {
		out.Agents = append(out.Agents, agentOut(a, rev))
	}
	return out, nil
}

// GetAgent reads one agent.
func (s *fleet) GetAgent(ctx context.Context, req *adminv1.GetAgentRequest) (*adminv1.GetAgentResponse, error) {
	rev, err := s.store.Revision(ctx)
	if err != nil {
		return nil, storeError("get agent", err)
	}
	a, err := s.store.GetAgent(ctx, req.GetId())
	if err != nil {
		return nil, storeError(fmt.Sprintf("get agent %q", req.GetId()), err)
	}
	out := &adminv1.GetAgentResponse{Agent: agentOut(a, rev)}
	out.Inventory, out.InventoryError = s.inventory(ctx, a)
	if out.Inventory != nil || slices.Contains(s.dispatch.Connected(), a.ID) || forwarded(ctx) || s.opts.Peers == nil {
		return out, nil
	}
	// Held by another replica: that one asks the agent, and when it cannot
	// be reached the stored record says why there is no inventory.
	if on := s.onReplica(ctx, s.store, fmt.Sprintf("get agent %q", a.ID), a); on != nil {
		resp := &adminv1.GetAgentResponse{}
		err := s.opts.Peers.Call(ctx, on.Address, adminv1.FleetService_GetAgent_FullMethodName, req, resp)
		if err == nil {
			return resp, nil
		}
		out.InventoryError = fmt.Sprintf("replica %q (at %s) holds the agent and cannot be reached: %s", on.Replica, on.Address, status.Convert(err).Message())
	}
	return out, nil
}

// inventoryTimeout bounds asking an agent what it runs.
const inventoryTimeout = 5 * time.Second

// inventory asks a connected agent what it runs now. It returns why not,
// instead, when the agent cannot say.
func (s *fleet) inventory(ctx context.Context, a store.Agent) (*adminv1.AgentInventory, string) {
	if !a.Connected && !slices.Contains(s.dispatch.Connected(), a.ID) {
		return nil, "the agent is not connected"
	}
	ctx, cancel := context.WithTimeout(ctx, inventoryTimeout)
	defer cancel()
	_, res, err := s.dispatch.Run(ctx, a.ID, &agentv1.Command{Kind: &agentv1.Command_Inventory{Inventory: &agentv1.InventoryCommand{}}})
	switch {
	case err != nil:
		return nil, err.Error()
	case res.GetError() != "":
		return nil, res.GetError()
	}
	return inventoryOut(res.GetInventory()), ""
}

// inventoryOut maps what an agent said it runs to the admin API's form.
func inventoryOut(in *agentv1.Inventory) *adminv1.AgentInventory {
	out := &adminv1.AgentInventory{
		AppliedRevision: in.GetAppliedRevision(),
		Goroutines:      in.GetGoroutines(),
		HeapBytes:       in.GetHeapBytes(),
		BuildVersion:    in.GetBuildVersion(),
		Labels:          in.GetLabels(),
		RecentErrors:    in.GetRecentErrors(),
		SysBytes:        in.GetSysBytes(),
	}
	if ms := in.GetStartedAtUnixMs(); ms > 0 {
		out.StartedAt = timestamppb.New(time.UnixMilli(ms))
	}
	for _, p := range in.GetPackages() {
		out.Packages = append(out.Packages, &adminv1.LoadedPackage{
			Name:        p.GetName(),
			Version:     p.GetVersion(),
			Sha256:      p.GetSha256(),
			Services:    p.GetServices(),
			MemoryBytes: p.GetMemoryBytes(),
			LoadedAt:    timestamppb.New(time.UnixMilli(p.GetLoadedAtUnixMs())),
		})
	}
	for _, w := range in.GetWorkers() {
		ow := &adminv1.AgentWorker{
			Index:            w.GetIndex(),
			Pid:              w.GetPid(),
			Restarts:         w.GetRestarts(),
			LastExit:         w.GetLastExit(),
			HeapBytes:        w.GetHeapBytes(),
			Goroutines:       w.GetGoroutines(),
			MemoryLimitBytes: w.GetMemoryLimitBytes(),
		}
		if ms := w.GetStartedAtUnixMs(); ms > 0 {
			ow.StartedAt = timestamppb.New(time.UnixMilli(ms))
		}
		out.Workers = append(out.Workers, ow)
	}
	return out
}

// Invoke runs a service on an agent connected to this replica.
func (s *fleet) Invoke(ctx context.Context, req *adminv1.InvokeRequest) (*adminv1.InvokeResponse, error) {
	what := fmt.Sprintf("invoke %q", req.GetService())
	if req.GetService() == "" {
		return nil, status.Error(codes.InvalidArgument, "invoke: service is required")
	}
	input := req.GetInput()
	if len(input) == 0 {
		input = []byte("{}")
	}
	if !json.Valid(input) {
		var v any
		err := json.Unmarshal(input, &v)
		return nil, status.Errorf(codes.InvalidArgument, "%s: input is not valid JSON: %v", what, err)
	}
	if req.GetTimeoutMs() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "%s: timeout_ms %d must not be negative", what, req.GetTimeoutMs())
	}
	svcs, err := s.store.ListServices(ctx)
	if err != nil {
		return nil, storeError(what, err)
	}
	found := false
	for _, v := range svcs {
		found = found || v.Name == req.GetService()
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "%s: no deployed package registers this service", what)
	}
	timeout := s.opts.InvokeTimeout
	if t := time.Duration(req.GetTimeoutMs()) * time.Millisecond; t > 0 {
		timeout = t
	}
	// The agent enforces the deadline; wait a little longer for its answer.
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	id, res, err := s.dispatch.Run(ctx, req.GetAgentId(), &agentv1.Command{Kind: &agentv1.Command_Invoke{Invoke: &agentv1.InvokeCommand{
		Service:   req.GetService(),
		Input:     input,
		TimeoutMs: timeout.Milliseconds(),
	}}})
	switch {
	case errors.Is(err, dispatch.ErrNotConnected) && req.GetAgentId() != "":
		if on := s.elsewhere(ctx, s.store, what, req.GetAgentId()); on != nil {
			return nil, on
		}
		return nil, status.Errorf(codes.Unavailable, "%s: %v", what, err)
	case errors.Is(err, dispatch.ErrNoAgent):
		if on := s.anyElsewhere(ctx, s.store, what, nil); on != nil {
			return nil, on
		}
		return nil, status.Errorf(codes.Unavailable, "%s: %v", what, err)
	case errors.Is(err, dispatch.ErrNotConnected):
		return nil, status.Errorf(codes.Unavailable, "%s: %v", what, err)
	case err != nil:
		return nil, status.Errorf(status.Code(status.FromContextError(err).Err()), "%s on agent %q: %v", what, id, err)
	case res.GetError() != "":
		return nil, status.Errorf(codes.Internal, "%s on agent %q: %s", what, id, res.GetError())
	}
	r := res.GetInvoke()
	return &adminv1.InvokeResponse{
		AgentId:    id,
		Cid:        r.GetCid(),
		Output:     r.GetOutput(),
		Status:     r.GetStatus(),
		Error:      r.GetError(),
		DurationUs: r.GetDurationUs(),
	}, nil
}

// backupsTimeout bounds asking an agent for its backups: it reads them from
// its own disk.
const backupsTimeout = 15 * time.Second

// ListAgentBackups asks an agent connected to this replica for the backups
// it keeps of the states it replaced.
func (s *fleet) ListAgentBackups(ctx context.Context, req *adminv1.ListAgentBackupsRequest) (*adminv1.ListAgentBackupsResponse, error) {
	id := req.GetAgentId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "list agent backups: agent_id is required")
	}
	what := fmt.Sprintf("list backups of agent %q", id)
	ctx, cancel := context.WithTimeout(ctx, backupsTimeout)
	defer cancel()
	res, err := s.ask(ctx, what, id, &agentv1.Command{Kind: &agentv1.Command_ListBackups{ListBackups: &agentv1.ListBackupsCommand{}}})
	if err != nil {
		return nil, err
	}
	list := res.GetBackups()
	out := &adminv1.ListAgentBackupsResponse{Limit: list.GetLimit()}
	for _, b := range list.GetBackups() {
		out.Backups = append(out.Backups, &adminv1.Backup{
			Id:                 b.GetId(),
			Revision:           b.GetRevision(),
			ReplacedAt:         timestamppb.New(time.UnixMilli(b.GetReplacedAtUnixMs())),
			Packages:           b.GetPackages(),
			SizeBytes:          b.GetSizeBytes(),
			ReplacedByRevision: b.GetReplacedByRevision(),
		})
	}
	return out, nil
}

// logsTimeout bounds asking an agent for its log lines.
const logsTimeout = 10 * time.Second

// GetAgentLogs asks an agent connected to this replica for its recent log
// lines.
func (s *fleet) GetAgentLogs(ctx context.Context, req *adminv1.GetAgentLogsRequest) (*adminv1.GetAgentLogsResponse, error) {
	id := req.GetAgentId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "get agent logs: agent_id is required")
	}
	what := fmt.Sprintf("get the logs of agent %q", id)
	cmd := &agentv1.LogsCommand{Limit: req.GetLimit()}
	if req.GetLimit() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "%s: limit %d must not be negative", what, req.GetLimit())
	}
	if since := req.GetSince(); since != nil {
		if err := since.CheckValid(); err != nil || since.AsDuration() <= 0 {
			return nil, status.Errorf(codes.InvalidArgument, "%s: since %s: want a positive duration", what, since.AsDuration())
		}
		cmd.SinceUnixMs = time.Now().Add(-since.AsDuration()).UnixMilli()
	}
	ctx, cancel := context.WithTimeout(ctx, logsTimeout)
	defer cancel()
	res, err := s.ask(ctx, what, id, &agentv1.Command{Kind: &agentv1.Command_Logs{Logs: cmd}})
	if err != nil {
		return nil, err
	}
	return &adminv1.GetAgentLogsResponse{Lines: res.GetLogs().GetLines(), Truncated: res.GetLogs().GetTruncated()}, nil
}

// ask sends cmd to the agent id, connected to this replica, and returns
// its result, or a status saying what went wrong: the agent is not
// connected, did not answer in time, went away, or failed the command.
func (s *fleet) ask(ctx context.Context, what, id string, cmd *agentv1.Command) (*agentv1.CommandResult, error) {
	_, res, err := s.dispatch.Run(ctx, id, cmd)
	switch {
	case errors.Is(err, dispatch.ErrNotConnected):
		return nil, s.notConnected(ctx, s.store, what, id)
	case errors.Is(err, context.DeadlineExceeded):
		return nil, status.Errorf(codes.DeadlineExceeded, "%s: the agent did not answer in time", what)
	case errors.Is(err, context.Canceled):
		return nil, status.FromContextError(err).Err()
	case err != nil: // the agent went away before it answered
		return nil, status.Errorf(codes.Unavailable, "%s: %v", what, err)
	case res.GetError() != "":
		return nil, status.Errorf(codes.Internal, "%s: the agent says: %s", what, res.GetError())
	}
	return res, nil
}

// notConnected explains why an agent that is not connected to this replica
// cannot answer what (which is read from the agent itself): it is unknown,
// or it is offline (or on another replica).
func (b *base) notConnected(ctx context.Context, agents agentReader, what, id string) error {
	a, err := agents.GetAgent(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: no agent %q has ever connected", what, id)
	case store.Unavailable(err):
		return storeError(what, err)
	case err == nil && a.Connected && a.Replica != "":
		if on := b.onReplica(ctx, agents, what, a); on != nil {
			return on
		}
		return status.Errorf(codes.FailedPrecondition, "%s: the agent is connected to replica %q of the control plane, not this one, and only the agent itself can answer", what, a.Replica)
	case err != nil || a.Connected:
		// Just gone: the store has not seen it go yet.
		return status.Errorf(codes.FailedPrecondition, "%s: the agent is not connected to this control plane, and only the agent itself can answer", what)
	default:
		return status.Errorf(codes.FailedPrecondition, "%s: the agent is not connected (last seen %s), and only the agent itself can answer", what, a.LastSeen.UTC().Format(time.RFC3339))
	}
}

// onReplica is the error of a call for agent a when a live replica holds
// it, which Forwarder sends there; nil when none does.
func (b *base) onReplica(ctx context.Context, agents agentReader, what string, a store.Agent) *OnReplica {
	if !a.Connected || a.Replica == "" {
		return nil
	}
	replicas, err := agents.ListReplicas(ctx)
	if err != nil {
		return nil
	}
	for _, r := range replicas {
		if r.ID == a.Replica && r.ID != b.self() && r.Alive && r.Address != "" {
			return &OnReplica{Replica: r.ID, Address: r.Address, st: status.Newf(codes.FailedPrecondition,
				"%s: agent %q is connected to replica %q of the control plane (at %s), not this one", what, a.ID, r.ID, r.Address)}
		}
	}
	return nil
}

// self is this replica's id; "" when it knows no other replicas.
func (b *base) self() string {
	if b.opts.Peers == nil {
		return ""
	}
	return b.opts.Peers.Self()
}

// anyElsewhere is the OnReplica error of a call for any agent (that match
// accepts, when not nil) when this replica holds none: it names a live
// replica that holds one; nil when none does.
func (b *base) anyElsewhere(ctx context.Context, agents agentReader, what string, match func(store.Agent) bool) *OnReplica {
	list, err := agents.ListAgents(ctx)
	if err != nil {
		return nil
	}
	for _, a := range list {
		if match != nil && !match(a) {
			continue
		}
		if on := b.onReplica(ctx, agents, what, a); on != nil {
			on.st = status.Newf(codes.FailedPrecondition, "%s: no agent is connected to this replica; replica %q (at %s) holds some", what, on.Replica, on.Address)
			return on
		}
	}
	return nil
}

// elsewhere is the OnReplica error of a call for agent id when a live
// replica other than this one holds it; nil otherwise.
func (b *base) elsewhere(ctx context.Context, agents agentReader, what, id string) *OnReplica {
	a, err := agents.GetAgent(ctx, id)
	if err != nil {
		return nil
	}
	return b.onReplica(ctx, agents, what, a)
}

// syncStatus compares what an agent applied with the current revision.
func syncStatus(a store.Agent, rev int64) adminv1.SyncStatus {
	switch {
	case a.AppliedRevision >= rev:
		return adminv1.SyncStatus_SYNC_STATUS_IN_SYNC
	case a.FailedRevision > a.AppliedRevision:
		return adminv1.SyncStatus_SYNC_STATUS_FAILED
	case !a.Connected:
		return adminv1.SyncStatus_SYNC_STATUS_DISCONNECTED
	default:
		return adminv1.SyncStatus_SYNC_STATUS_PENDING
	}
}

func agentOut(a store.Agent, rev int64) *adminv1.Agent {
	out := &adminv1.Agent{
		Id:              a.ID,
		Labels:          a.Labels,
		BuildVersion:    a.BuildVersion,
		Connected:       a.Connected,
		Replica:         a.Replica,
		AppliedRevision: a.AppliedRevision,
		AppliedHash:     a.AppliedHash,
		DesiredRevision: rev,
		SyncStatus:      syncStatus(a, rev),
		FailedRevision:  a.FailedRevision,
		NotPersisted:    a.NotPersisted,
		HttpAddress:     a.HTTPAddress,
		Pid:             a.PID,
		LastSeen:        timestamppb.New(a.LastSeen),
		FirstSeen:       timestamppb.New(a.FirstSeen),
	}
	if a.FailedRevision > a.AppliedRevision {
		out.LastError = a.LastError
	}
	if !a.StartedAt.IsZero() {
		out.StartedAt = timestamppb.New(a.StartedAt)
	}
	out.RevokedAt = optionalTime(a.RevokedAt)
	out.CertificateExpiresAt = optionalTime(a.CertNotAfter)
	out.EnrolledBy = a.EnrolledBy
	return out
}
