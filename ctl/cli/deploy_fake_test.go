package cli

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// historyFake is the state behind fakePackages' deploy history, status,
// rollback and undeploy RPCs. It knows hello v1 and v2 (current) and
// orders v1; hello's services are used by channel "hello".
type historyFake struct {
	mu       sync.Mutex
	versions []*adminv1.Package // newest first
	sources  map[string][]*adminv1.SourceFile
	current  map[string]int64
	// statuses are GetDeployStatus's answers by package name, in turn; the
	// last one repeats. An answer with no package is an error.
	statuses    map[string][]*adminv1.GetDeployStatusResponse
	statusReqs  []*adminv1.GetDeployStatusRequest
	historyReqs []*adminv1.ListPackageVersionsRequest
	rollbacks   []*adminv1.RollbackRequest
	undeploys   []*adminv1.UndeployRequest
}

// historyFakes holds the historyFake of each fakePackages.
var historyFakes sync.Map

// hist returns the history state of f.
func (f *fakePackages) hist() *historyFake {
	v, _ := historyFakes.LoadOrStore(f, newHistoryFake())
	return v.(*historyFake)
}

func newHistoryFake() *historyFake {
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(testNow.Add(-d)) }
	return &historyFake{
		versions: []*adminv1.Package{
			{Name: "hello", Version: 2, Sha256: "2b2b2b2b2b2b2b2b", Author: "local", SizeBytes: 2048, Services: []string{"hello.greet", "hello.part"},
				Files: []string{"hello.go", "util.go"}, CreatedAt: at(time.Hour), Revision: 7},
			{Name: "orders", Version: 1, Sha256: "0f0f0f0f0f0f0f0f", Author: "pickup", SizeBytes: 812, Services: []string{"orders.get"},
				Files: []string{"orders.go"}, CreatedAt: at(2 * time.Hour), Revision: 5},
			{Name: "hello", Version: 1, Sha256: "1a1a1a1a1a1a1a1a", Author: "local", SizeBytes: 100, Services: []string{"hello.greet"},
				Files: []string{"hello.go"}, CreatedAt: at(3 * time.Hour), Revision: 3},
		},
		sources: map[string][]*adminv1.SourceFile{
			"hello@1": {{Name: "hello.go", Content: []byte("package hello // v1")}},
			"hello@2": {
				{Name: "hello.go", Content: []byte("package hello // v2\n")},
				{Name: "util.go", Content: []byte("package hello\n\nfunc util() {}\n")},
			},
			"orders@1": {{Name: "orders.go", Content: []byte("package orders\n")}},
		},
		current:  map[string]int64{"hello": 2, "orders": 1},
		statuses: map[string][]*adminv1.GetDeployStatusResponse{},
	}
}

// script sets the answers GetDeployStatus gives for a package name.
func (h *historyFake) script(name string, answers ...*adminv1.GetDeployStatusResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.statuses[name] = answers
}

// statusRequests returns the GetDeployStatus requests seen.
func (h *historyFake) statusRequests() []*adminv1.GetDeployStatusRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*adminv1.GetDeployStatusRequest(nil), h.statusReqs...)
}

func (h *historyFake) find(name string, version int64) *adminv1.Package {
	if version == 0 {
		version = h.current[name]
	}
	for _, p := range h.versions {
		if p.GetName() == name && p.GetVersion() == version {
			return p
		}
	}
	return nil
}

func (f *fakePackages) ListPackageVersions(_ context.Context, req *adminv1.ListPackageVersionsRequest) (*adminv1.ListPackageVersionsResponse, error) {
	h := f.hist()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.historyReqs = append(h.historyReqs, proto.Clone(req).(*adminv1.ListPackageVersionsRequest))
	resp := &adminv1.ListPackageVersionsResponse{}
	for _, p := range h.versions {
		if req.GetName() == "" || p.GetName() == req.GetName() {
			resp.Versions = append(resp.Versions, p)
		}
	}
	if len(resp.Versions) == 0 && req.GetName() != "" {
		return nil, status.Errorf(codes.NotFound, "deploy history of %q: package %q has never been deployed", req.GetName(), req.GetName())
	}
	if l := int(req.GetLimit()); l > 0 && l < len(resp.Versions) {
		resp.Versions = resp.Versions[:l]
	}
	return resp, nil
}

func (f *fakePackages) GetPackage(_ context.Context, req *adminv1.GetPackageRequest) (*adminv1.GetPackageResponse, error) {
	h := f.hist()
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.find(req.GetName(), req.GetVersion())
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "%s: package %q has no version %d",
			versionLabel("get package", req.GetName(), req.GetVersion()), req.GetName(), req.GetVersion())
	}
	return &adminv1.GetPackageResponse{
		Package: p,
		Sources: h.sources[fmt.Sprintf("%s@%d", p.GetName(), p.GetVersion())],
		Current: h.current[p.GetName()] == p.GetVersion(),
	}, nil
}

func (f *fakePackages) GetDeployStatus(_ context.Context, req *adminv1.GetDeployStatusRequest) (*adminv1.GetDeployStatusResponse, error) {
	h := f.hist()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.statusReqs = append(h.statusReqs, proto.Clone(req).(*adminv1.GetDeployStatusRequest))
	answers := h.statuses[req.GetName()]
	if len(answers) == 0 {
		return nil, status.Errorf(codes.NotFound, "%s: no status scripted", versionLabel("deploy status of", req.GetName(), req.GetVersion()))
	}
	resp := answers[0]
	if len(answers) > 1 {
		h.statuses[req.GetName()] = answers[1:]
	}
	if resp.GetPackage() == nil {
		return nil, status.Error(codes.Internal, "scripted failure")
	}
	return resp, nil
}

func (f *fakePackages) Rollback(_ context.Context, req *adminv1.RollbackRequest) (*adminv1.RollbackResponse, error) {
	h := f.hist()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rollbacks = append(h.rollbacks, proto.Clone(req).(*adminv1.RollbackRequest))
	what := fmt.Sprintf("rollback %q", req.GetName())
	cur := h.find(req.GetName(), 0)
	if cur == nil {
		return nil, status.Errorf(codes.NotFound, "%s: package %q has never been deployed", what, req.GetName())
	}
	to := req.GetToVersion()
	if to == 0 {
		to = cur.GetVersion() - 1
	}
	old := h.find(req.GetName(), to)
	switch {
	case old == nil:
		return nil, status.Errorf(codes.NotFound, "%s: package %q has no version %d (it has v1 to v%d)", what, req.GetName(), to, cur.GetVersion())
	case old == cur:
		return nil, status.Errorf(codes.FailedPrecondition, "%s: %s v%d is the current version; there is nothing to roll back", what, cur.GetName(), cur.GetVersion())
	}
	p := proto.Clone(old).(*adminv1.Package)
	p.Version = cur.GetVersion() + 1
	p.Revision = 9
	return &adminv1.RollbackResponse{Revision: 9, Package: p, RestoredVersion: old.GetVersion()}, nil
}

func (f *fakePackages) Undeploy(_ context.Context, req *adminv1.UndeployRequest) (*adminv1.UndeployResponse, error) {
	h := f.hist()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.undeploys = append(h.undeploys, proto.Clone(req).(*adminv1.UndeployRequest))
	what := fmt.Sprintf("undeploy %q", req.GetName())
	cur := h.find(req.GetName(), 0)
	switch {
	case cur == nil:
		return nil, status.Errorf(codes.NotFound, "%s: package %q has never been deployed", what, req.GetName())
	case req.GetName() == "hello" && !req.GetForce():
		return nil, status.Errorf(codes.FailedPrecondition,
			`%s: package "hello" is used by channel "hello" (hello.greet); deactivate or delete it first, or undeploy --force`, what)
	}
	resp := &adminv1.UndeployResponse{Revision: 10, Services: cur.GetServices()}
	if req.GetName() == "hello" {
		resp.DeactivatedChannels = []string{"hello"}
	}
	return resp, nil
}

// agentState is one agent's row of a scripted deploy status.
type agentState struct {
	id        string
	state     adminv1.DeployState
	connected bool
	applied   int64
	err       string
}

// Shorthands for scripting.
const (
	stPending  = adminv1.DeployState_DEPLOY_STATE_PENDING
	stDeployed = adminv1.DeployState_DEPLOY_STATE_DEPLOYED
	stFailed   = adminv1.DeployState_DEPLOY_STATE_FAILED
)

// statusOf builds a deploy status answer for name vversion at revision rev.
func statusOf(name string, version, rev int64, agents ...agentState) *adminv1.GetDeployStatusResponse {
	resp := &adminv1.GetDeployStatusResponse{Package: &adminv1.Package{Name: name, Version: version, Revision: rev, Sha256: "1a2b3c4d5e6f7a8b"}}
	for _, a := range agents {
		resp.Agents = append(resp.Agents, &adminv1.AgentDeployStatus{
			AgentId: a.id, State: a.state, Connected: a.connected, AppliedRevision: a.applied, Error: a.err,
		})
	}
	return resp
}
