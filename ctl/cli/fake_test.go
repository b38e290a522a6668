package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// testNow is the clock of every command run by a testEnv.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testEnv is a real gRPC server on 127.0.0.1:0 serving hand-written fakes of
// the admin services.
type testEnv struct {
	addr     string
	packages *fakePackages
	channels *fakeChannels
	fleet    *fakeFleet
	security *fakeSecurity
	outgoing *fakeOutgoing
	access   *fakeAccess

	// serverTLS, when set before the server starts, makes it serve TLS
	// with this certificate; weftctl then dials without --plaintext.
	serverTLS *tls.Certificate
	// caFile is the PEM file of the CA that signed serverTLS, given to
	// weftctl as WEFT_CA by run; set by withTLS.
	caFile string
}

// newTestEnv starts a server; configure adjusts the fakes before it serves.
func newTestEnv(t *testing.T, configure ...func(*testEnv)) *testEnv {
	t.Helper()
	e := &testEnv{
		packages: &fakePackages{},
		channels: &fakeChannels{byName: map[string]*adminv1.Channel{}, revision: 10},
		fleet:    &fakeFleet{},
		security: &fakeSecurity{byName: map[string]*adminv1.SecurityDefinition{}, revision: 20},
		outgoing: &fakeOutgoing{byName: map[string]*adminv1.OutgoingConnection{}, revision: 30},
		access:   &fakeAccess{},
	}
	for _, c := range configure {
		c(e)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	e.addr = lis.Addr().String()
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(e.access.unary),
		grpc.ChainStreamInterceptor(e.access.stream),
	}
	if e.serverTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*e.serverTLS}})))
	}
	srv := grpc.NewServer(opts...)
	adminv1.RegisterAccessServiceServer(srv, e.access)
	adminv1.RegisterPackageServiceServer(srv, e.packages)
	adminv1.RegisterChannelServiceServer(srv, e.channels)
	adminv1.RegisterFleetServiceServer(srv, e.fleet)
	adminv1.RegisterSecurityServiceServer(srv, e.security)
	adminv1.RegisterOutgoingServiceServer(srv, e.outgoing)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return e
}

// run runs weftctl against the server with args and returns what it wrote:
// over TLS with WEFT_CA set when the server serves TLS, else --plaintext.
func (e *testEnv) run(args ...string) (stdout, stderr string, err error) {
	return e.runStdin("", args...)
}

// runStdin is run with stdin as standard input.
func (e *testEnv) runStdin(stdin string, args ...string) (stdout, stderr string, err error) {
	return e.runEnv(nil, stdin, args...)
}

// runEnv is runStdin with extra environment variables.
func (e *testEnv) runEnv(extra map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	env := map[string]string{"WEFT_ADDR": e.addr}
	if e.serverTLS == nil {
		return runAppStdin(withEnv(env, extra), stdin, args...)
	}
	env["WEFT_CA"] = e.caFile
	return runCtl(withEnv(env, extra), stdin, args...)
}

// withEnv returns env with extra's variables added or replaced.
func withEnv(env, extra map[string]string) map[string]string {
	out := maps.Clone(env)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, extra)
	return out
}

// runApp runs weftctl in-process with the given environment, a fixed clock
// and empty standard input, with --plaintext: the fakes serve no TLS.
func runApp(env map[string]string, args ...string) (stdout, stderr string, err error) {
	return runAppStdin(env, "", args...)
}

// runAppStdin is runApp with stdin as standard input.
func runAppStdin(env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	return runCtl(env, stdin, append([]string{"--plaintext"}, args...)...)
}

// runCtl runs weftctl in-process with exactly args: over TLS unless they
// say --plaintext. No home directory is known, so the config file is
// $WEFT_CONFIG or $XDG_CONFIG_HOME's, if env sets them, else none.
func runCtl(env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	a := &app{
		stdin:          strings.NewReader(stdin),
		stdout:         &out,
		stderr:         &errb,
		getenv:         func(k string) string { return env[k] },
		now:            func() time.Time { return testNow },
		connectTimeout: defaultConnectTimeout,
	}
	err = a.execute(context.Background(), args)
	return out.String(), errb.String(), err
}

// fakePackages deploys into nothing: it records requests and makes up
// versions. A package whose files contain BROKEN is refused; one named
// "same" is reported unchanged.
type fakePackages struct {
	adminv1.UnimplementedPackageServiceServer

	mu       sync.Mutex
	deploys  []*adminv1.DeployRequest
	services []*adminv1.Service
	// stall makes ListServices wait for its caller to give up.
	stall bool
}

func (f *fakePackages) Deploy(_ context.Context, req *adminv1.DeployRequest) (*adminv1.DeployResponse, error) {
	f.mu.Lock()
	f.deploys = append(f.deploys, proto.Clone(req).(*adminv1.DeployRequest))
	f.mu.Unlock()
	resp := &adminv1.DeployResponse{Revision: 7}
	for _, p := range req.GetPackages() {
		for _, file := range p.GetFiles() {
			if bytes.Contains(file.GetContent(), []byte("BROKEN")) {
				return nil, status.Errorf(codes.InvalidArgument,
					"package refused:\n%s:3:2: undefined: BROKEN\n%s:5:1: missing return", file.GetName(), file.GetName())
			}
		}
		name := p.GetName()
		if name == "" {
			name = "hello"
		}
		resp.Packages = append(resp.Packages, &adminv1.DeployedPackage{
			Package: &adminv1.Package{
				Name: name, Version: 2, Sha256: "1a2b3c4d5e6f7a8b9c0d",
				Services: []string{name + ".greet"}, Revision: 7,
			},
			Unchanged: name == "same",
		})
	}
	return resp, nil
}

func (f *fakePackages) ListServices(ctx context.Context, _ *adminv1.ListServicesRequest) (*adminv1.ListServicesResponse, error) {
	f.mu.Lock()
	stall := f.stall
	f.mu.Unlock()
	if stall {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &adminv1.ListServicesResponse{Services: f.services}, nil
}

func (f *fakePackages) lastDeploy(t *testing.T) *adminv1.DeployRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.deploys) == 0 {
		t.Fatal("no deploy reached the server")
	}
	return f.deploys[len(f.deploys)-1]
}

func (f *fakePackages) deployCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.deploys)
}

// fakeChannels keeps channels in a map. Only service "nope" is not deployed.
type fakeChannels struct {
	adminv1.UnimplementedChannelServiceServer

	mu       sync.Mutex
	byName   map[string]*adminv1.Channel
	revision int64
	requests []proto.Message
}

func (f *fakeChannels) record(m proto.Message) {
	f.requests = append(f.requests, proto.Clone(m))
}

func (f *fakeChannels) CreateChannel(_ context.Context, req *adminv1.CreateChannelRequest) (*adminv1.CreateChannelResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(req)
	ch := proto.Clone(req.GetChannel()).(*adminv1.Channel)
	switch {
	case ch.GetService() == "nope":
		return nil, status.Errorf(codes.FailedPrecondition, "service %q is not deployed", ch.GetService())
	case f.byName[ch.GetName()] != nil:
		return nil, status.Errorf(codes.AlreadyExists, "channel %q exists", ch.GetName())
	}
	if ch.Active == nil {
		ch.Active = proto.Bool(true)
	}
	f.revision++
	ch.Revision = f.revision
	ch.CreatedAt = timestamppb.New(testNow.Add(-time.Hour))
	ch.UpdatedAt = ch.CreatedAt
	f.byName[ch.GetName()] = ch
	return &adminv1.CreateChannelResponse{Channel: ch}, nil
}

func (f *fakeChannels) GetChannel(_ context.Context, req *adminv1.GetChannelRequest) (*adminv1.GetChannelResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := f.byName[req.GetName()]
	if ch == nil {
		return nil, status.Errorf(codes.NotFound, "channel %q not found", req.GetName())
	}
	return &adminv1.GetChannelResponse{Channel: ch}, nil
}

func (f *fakeChannels) ListChannels(context.Context, *adminv1.ListChannelsRequest) (*adminv1.ListChannelsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &adminv1.ListChannelsResponse{}
	for _, ch := range f.byName {
		resp.Channels = append(resp.Channels, ch)
	}
	sort.Slice(resp.Channels, func(i, j int) bool { return resp.Channels[i].GetName() < resp.Channels[j].GetName() })
	return resp, nil
}

func (f *fakeChannels) UpdateChannel(_ context.Context, req *adminv1.UpdateChannelRequest) (*adminv1.UpdateChannelResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(req)
	ch := f.byName[req.GetChannel().GetName()]
	if ch == nil {
		return nil, status.Errorf(codes.NotFound, "channel %q not found", req.GetChannel().GetName())
	}
	f.revision++
	ch.Revision = f.revision
	return &adminv1.UpdateChannelResponse{Channel: ch}, nil
}

func (f *fakeChannels) DeleteChannel(_ context.Context, req *adminv1.DeleteChannelRequest) (*adminv1.DeleteChannelResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(req)
	if f.byName[req.GetName()] == nil {
		return nil, status.Errorf(codes.NotFound, "channel %q not found", req.GetName())
	}
	delete(f.byName, req.GetName())
	f.revision++
	return &adminv1.DeleteChannelResponse{Revision: f.revision}, nil
}

// put stores a channel as if it had been created.
func (f *fakeChannels) put(ch *adminv1.Channel) {
	f.byName[ch.GetName()] = ch
}

// requestsSeen returns the recorded mutating requests.
func (f *fakeChannels) requestsSeen() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proto.Message(nil), f.requests...)
}

// fakeFleet serves fixed agents. Invoking service "fail" answers status 500,
// "text" an output that is not JSON.
type fakeFleet struct {
	adminv1.UnimplementedFleetServiceServer

	mu      sync.Mutex
	agents  []*adminv1.Agent
	invokes []*adminv1.InvokeRequest
	// inventories answers GetAgent's live part by agent id; an agent
	// without one is not connected.
	inventories map[string]*adminv1.AgentInventory
	joinTokens  []*adminv1.JoinToken
	// requests are the join token and revoke requests.
	requests []proto.Message
}

func (f *fakeFleet) ListAgents(context.Context, *adminv1.ListAgentsRequest) (*adminv1.ListAgentsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &adminv1.ListAgentsResponse{Agents: f.agents}, nil
}

func (f *fakeFleet) GetAgent(_ context.Context, req *adminv1.GetAgentRequest) (*adminv1.GetAgentResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.agents {
		if a.GetId() == req.GetId() {
			if inv, ok := f.inventories[a.GetId()]; ok {
				return &adminv1.GetAgentResponse{Agent: a, Inventory: inv}, nil
			}
			return &adminv1.GetAgentResponse{Agent: a, InventoryError: "the agent is not connected"}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "agent %q not found", req.GetId())
}

func (f *fakeFleet) Invoke(_ context.Context, req *adminv1.InvokeRequest) (*adminv1.InvokeResponse, error) {
	f.mu.Lock()
	f.invokes = append(f.invokes, proto.Clone(req).(*adminv1.InvokeRequest))
	f.mu.Unlock()
	switch req.GetService() {
	case "fail":
		return &adminv1.InvokeResponse{AgentId: "a1", Cid: "cid-42", Status: 500, Error: "boom: nil map"}, nil
	case "busy":
		return nil, status.Error(codes.Unavailable, "no agent is connected and in sync")
	case "missing":
		return nil, status.Errorf(codes.NotFound, "service %q is not deployed", req.GetService())
	case "text":
		return &adminv1.InvokeResponse{AgentId: "a1", Cid: "cid-7", Status: 200, Output: []byte("plain <text>\n"), DurationUs: 12}, nil
	}
	out := fmt.Sprintf(`{"service":%q,"input":%s}`, req.GetService(), orEmptyObject(req.GetInput()))
	return &adminv1.InvokeResponse{AgentId: "a1", Cid: "cid-1", Status: 200, Output: []byte(out), DurationUs: 1500}, nil
}

func orEmptyObject(b []byte) string {
	if strings.TrimSpace(string(b)) == "" {
		return "{}"
	}
	return string(b)
}

// CreateJoinToken makes tokens jt-1, jt-2, ... with the control plane's
// defaults (an hour, one use).
func (f *fakeFleet) CreateJoinToken(_ context.Context, req *adminv1.CreateJoinTokenRequest) (*adminv1.CreateJoinTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	ttl, uses := time.Duration(req.GetTtlSeconds())*time.Second, req.GetUses()
	if ttl == 0 {
		ttl = time.Hour
	}
	if uses == 0 {
		uses = 1
	}
	jt := &adminv1.JoinToken{
		Id: fmt.Sprintf("jt-%d", len(f.joinTokens)+1), Labels: req.GetLabels(), Uses: uses,
		CreatedAt: timestamppb.New(testNow), ExpiresAt: timestamppb.New(testNow.Add(ttl)), CreatedBy: "root",
	}
	f.joinTokens = append(f.joinTokens, jt)
	return &adminv1.CreateJoinTokenResponse{JoinToken: jt, Secret: "wjt_" + jt.GetId() + "_s3cret", CaFingerprint: "sha256:c0ffee"}, nil
}

func (f *fakeFleet) ListJoinTokens(context.Context, *adminv1.ListJoinTokensRequest) (*adminv1.ListJoinTokensResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &adminv1.ListJoinTokensResponse{}
	for _, jt := range slices.Backward(f.joinTokens) {
		resp.JoinTokens = append(resp.JoinTokens, jt)
	}
	return resp, nil
}

func (f *fakeFleet) RevokeJoinToken(_ context.Context, req *adminv1.RevokeJoinTokenRequest) (*adminv1.RevokeJoinTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	for _, jt := range f.joinTokens {
		if jt.GetId() == req.GetId() {
			jt.RevokedAt = timestamppb.New(testNow)
			return &adminv1.RevokeJoinTokenResponse{JoinToken: jt}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "join token %q not found", req.GetId())
}

// RevokeAgent marks the agent revoked and closes its one stream if it is
// connected.
func (f *fakeFleet) RevokeAgent(_ context.Context, req *adminv1.RevokeAgentRequest) (*adminv1.RevokeAgentResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	for _, a := range f.agents {
		if a.GetId() == req.GetId() {
			var closed int32
			if a.GetConnected() {
				closed, a.Connected = 1, false
			}
			a.RevokedAt = timestamppb.New(testNow)
			return &adminv1.RevokeAgentResponse{Agent: a, Closed: closed}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "agent %q not found", req.GetId())
}

// requestsSeen returns the recorded join token and revoke requests.
func (f *fakeFleet) requestsSeen() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeFleet) invokesSeen() []*adminv1.InvokeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*adminv1.InvokeRequest(nil), f.invokes...)
}

// callerKey is the context key of the token a fake call came with.
type callerKey struct{}

// fakeAccess keeps tokens and records the authorization header of every
// call. Once a test adds a token with addToken it checks every call's
// token like the control plane; until then it lets every call through.
type fakeAccess struct {
	adminv1.UnimplementedAccessServiceServer

	mu sync.Mutex
	// bySecret holds the tokens by secret.
	bySecret map[string]*adminv1.Token
	// enforce makes calls need a token of a strong enough role.
	enforce bool
	// noWhoAmI makes WhoAmI unimplemented, as on an older control plane.
	noWhoAmI bool
	// headers are the authorization headers seen, one per call ("" for
	// none).
	headers  []string
	requests []proto.Message
}

// addToken makes a token the fake accepts, and makes it check tokens.
func (f *fakeAccess) addToken(secret, name string, role adminv1.Role) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.enforce = true
	if f.bySecret == nil {
		f.bySecret = map[string]*adminv1.Token{}
	}
	f.bySecret[secret] = &adminv1.Token{Name: name, Role: role, CreatedAt: timestamppb.New(testNow.Add(-time.Hour)), CreatedBy: "root"}
}

// needs is the role each method needs: admin for tokens, join tokens and
// revocation, deployer for deploys and invocations, else viewer.
func needs(method string) adminv1.Role {
	name := method[strings.LastIndexByte(method, '/')+1:]
	switch {
	case name == "WhoAmI":
		return adminv1.Role_ROLE_VIEWER
	case strings.Contains(method, "AccessService"), strings.Contains(name, "JoinToken"), name == "RevokeAgent":
		return adminv1.Role_ROLE_ADMIN
	case name == "Deploy", name == "Invoke":
		return adminv1.Role_ROLE_DEPLOYER
	default:
		return adminv1.Role_ROLE_VIEWER
	}
}

// authorize records the call's authorization header and checks it.
func (f *fakeAccess) authorize(ctx context.Context, method string) (context.Context, error) {
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			header = v[0]
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.headers = append(f.headers, header)
	if !f.enforce {
		return ctx, nil
	}
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no bearer token")
	}
	tok := f.bySecret[secret]
	switch {
	case tok == nil:
		return nil, status.Error(codes.Unauthenticated, "unknown token")
	case tok.GetRevokedAt() != nil:
		return nil, status.Errorf(codes.Unauthenticated, "token %q is revoked", tok.GetName())
	case tok.GetRole() < needs(method):
		return nil, status.Errorf(codes.PermissionDenied, "%s needs role %s",
			method[strings.LastIndexByte(method, '/')+1:], roleName(needs(method)))
	}
	return context.WithValue(ctx, callerKey{}, tok), nil
}

func (f *fakeAccess) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := f.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (f *fakeAccess) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if _, err := f.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// headersSeen returns the authorization headers of the calls so far.
func (f *fakeAccess) headersSeen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.headers)
}

// requestsSeen returns the AccessService requests but WhoAmI.
func (f *fakeAccess) requestsSeen() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeAccess) CreateToken(_ context.Context, req *adminv1.CreateTokenRequest) (*adminv1.CreateTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	for _, t := range f.bySecret {
		if t.GetName() == req.GetName() {
			return nil, status.Errorf(codes.AlreadyExists, "token %q exists", req.GetName())
		}
	}
	if f.bySecret == nil {
		f.bySecret = map[string]*adminv1.Token{}
	}
	tok := &adminv1.Token{Name: req.GetName(), Role: req.GetRole(), CreatedAt: timestamppb.New(testNow), CreatedBy: "root"}
	if s := req.GetTtlSeconds(); s > 0 {
		tok.ExpiresAt = timestamppb.New(testNow.Add(time.Duration(s) * time.Second))
	}
	secret := "wt_" + req.GetName() + "_s3cret"
	f.bySecret[secret] = tok
	return &adminv1.CreateTokenResponse{Token: tok, Secret: secret}, nil
}

func (f *fakeAccess) ListTokens(context.Context, *adminv1.ListTokensRequest) (*adminv1.ListTokensResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &adminv1.ListTokensResponse{}
	for _, t := range f.bySecret {
		resp.Tokens = append(resp.Tokens, t)
	}
	slices.SortFunc(resp.Tokens, func(a, b *adminv1.Token) int { return strings.Compare(a.GetName(), b.GetName()) })
	return resp, nil
}

func (f *fakeAccess) RevokeToken(_ context.Context, req *adminv1.RevokeTokenRequest) (*adminv1.RevokeTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	for _, t := range f.bySecret {
		if t.GetName() == req.GetName() {
			t.RevokedAt = timestamppb.New(testNow)
			return &adminv1.RevokeTokenResponse{Token: t}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "token %q not found", req.GetName())
}

func (f *fakeAccess) WhoAmI(ctx context.Context, _ *adminv1.WhoAmIRequest) (*adminv1.WhoAmIResponse, error) {
	f.mu.Lock()
	noWhoAmI := f.noWhoAmI
	f.mu.Unlock()
	if noWhoAmI {
		return nil, status.Error(codes.Unimplemented, "unknown method WhoAmI")
	}
	tok, ok := ctx.Value(callerKey{}).(*adminv1.Token)
	if !ok {
		return &adminv1.WhoAmIResponse{Name: "anyone", Role: adminv1.Role_ROLE_ADMIN}, nil
	}
	return &adminv1.WhoAmIResponse{Name: tok.GetName(), Role: tok.GetRole()}, nil
}

// redacted is how the control plane shows a set secret.
const redacted = "••••••••"

// fakeSecurity keeps security definitions in a map and, like the control
// plane, never returns a secret: reads show a set one as redacted.
type fakeSecurity struct {
	adminv1.UnimplementedSecurityServiceServer

	mu       sync.Mutex
	byName   map[string]*adminv1.SecurityDefinition
	revision int64
	requests []proto.Message
}

// redact returns a copy of d with its secrets redacted.
func redact(d *adminv1.SecurityDefinition) *adminv1.SecurityDefinition {
	d = proto.Clone(d).(*adminv1.SecurityDefinition)
	for _, s := range []*string{&d.Password, &d.Key, &d.Secret, &d.Token, &d.ClientSecret, &d.KeyPem} {
		if *s != "" {
			*s = redacted
		}
	}
	return d
}

func (f *fakeSecurity) CreateSecurityDefinition(_ context.Context, req *adminv1.CreateSecurityDefinitionRequest) (*adminv1.CreateSecurityDefinitionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	d := proto.Clone(req.GetDefinition()).(*adminv1.SecurityDefinition)
	if f.byName[d.GetName()] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "security definition %q exists", d.GetName())
	}
	f.revision++
	d.Revision = f.revision
	d.CreatedAt = timestamppb.New(testNow.Add(-time.Hour))
	d.UpdatedAt = d.CreatedAt
	f.byName[d.GetName()] = d
	return &adminv1.CreateSecurityDefinitionResponse{Definition: redact(d)}, nil
}

func (f *fakeSecurity) GetSecurityDefinition(_ context.Context, req *adminv1.GetSecurityDefinitionRequest) (*adminv1.GetSecurityDefinitionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.byName[req.GetName()]
	if d == nil {
		return nil, status.Errorf(codes.NotFound, "security definition %q not found", req.GetName())
	}
	return &adminv1.GetSecurityDefinitionResponse{Definition: redact(d)}, nil
}

func (f *fakeSecurity) ListSecurityDefinitions(context.Context, *adminv1.ListSecurityDefinitionsRequest) (*adminv1.ListSecurityDefinitionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &adminv1.ListSecurityDefinitionsResponse{}
	for _, name := range slices.Sorted(maps.Keys(f.byName)) {
		resp.Definitions = append(resp.Definitions, redact(f.byName[name]))
	}
	return resp, nil
}

func (f *fakeSecurity) UpdateSecurityDefinition(_ context.Context, req *adminv1.UpdateSecurityDefinitionRequest) (*adminv1.UpdateSecurityDefinitionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	d := f.byName[req.GetDefinition().GetName()]
	if d == nil {
		return nil, status.Errorf(codes.NotFound, "security definition %q not found", req.GetDefinition().GetName())
	}
	f.revision++
	d.Revision = f.revision
	return &adminv1.UpdateSecurityDefinitionResponse{Definition: redact(d)}, nil
}

func (f *fakeSecurity) DeleteSecurityDefinition(_ context.Context, req *adminv1.DeleteSecurityDefinitionRequest) (*adminv1.DeleteSecurityDefinitionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	if req.GetName() == "in-use" {
		return nil, status.Errorf(codes.FailedPrecondition, "security definition %q is used by channel \"orders\"", req.GetName())
	}
	if f.byName[req.GetName()] == nil {
		return nil, status.Errorf(codes.NotFound, "security definition %q not found", req.GetName())
	}
	delete(f.byName, req.GetName())
	f.revision++
	return &adminv1.DeleteSecurityDefinitionResponse{Revision: f.revision}, nil
}

// put stores a definition as if it had been created.
func (f *fakeSecurity) put(d *adminv1.SecurityDefinition) {
	f.byName[d.GetName()] = d
}

// requestsSeen returns the recorded mutating requests.
func (f *fakeSecurity) requestsSeen() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// fakeOutgoing keeps outgoing connections in a map. Pinging "down" gets no
// answer; pinging anything else stored answers 204.
type fakeOutgoing struct {
	adminv1.UnimplementedOutgoingServiceServer

	mu       sync.Mutex
	byName   map[string]*adminv1.OutgoingConnection
	revision int64
	requests []proto.Message
}

func (f *fakeOutgoing) CreateOutgoingConnection(_ context.Context, req *adminv1.CreateOutgoingConnectionRequest) (*adminv1.CreateOutgoingConnectionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	c := proto.Clone(req.GetConnection()).(*adminv1.OutgoingConnection)
	if f.byName[c.GetName()] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "outgoing connection %q exists", c.GetName())
	}
	if c.Active == nil {
		c.Active = proto.Bool(true)
	}
	f.revision++
	c.Revision = f.revision
	f.byName[c.GetName()] = c
	return &adminv1.CreateOutgoingConnectionResponse{Connection: c}, nil
}

func (f *fakeOutgoing) GetOutgoingConnection(_ context.Context, req *adminv1.GetOutgoingConnectionRequest) (*adminv1.GetOutgoingConnectionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName[req.GetName()]
	if c == nil {
		return nil, status.Errorf(codes.NotFound, "outgoing connection %q not found", req.GetName())
	}
	return &adminv1.GetOutgoingConnectionResponse{Connection: c}, nil
}

func (f *fakeOutgoing) ListOutgoingConnections(context.Context, *adminv1.ListOutgoingConnectionsRequest) (*adminv1.ListOutgoingConnectionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &adminv1.ListOutgoingConnectionsResponse{}
	for _, name := range slices.Sorted(maps.Keys(f.byName)) {
		resp.Connections = append(resp.Connections, f.byName[name])
	}
	return resp, nil
}

func (f *fakeOutgoing) UpdateOutgoingConnection(_ context.Context, req *adminv1.UpdateOutgoingConnectionRequest) (*adminv1.UpdateOutgoingConnectionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	c := f.byName[req.GetConnection().GetName()]
	if c == nil {
		return nil, status.Errorf(codes.NotFound, "outgoing connection %q not found", req.GetConnection().GetName())
	}
	f.revision++
	c.Revision = f.revision
	return &adminv1.UpdateOutgoingConnectionResponse{Connection: c}, nil
}

func (f *fakeOutgoing) DeleteOutgoingConnection(_ context.Context, req *adminv1.DeleteOutgoingConnectionRequest) (*adminv1.DeleteOutgoingConnectionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	if f.byName[req.GetName()] == nil {
		return nil, status.Errorf(codes.NotFound, "outgoing connection %q not found", req.GetName())
	}
	delete(f.byName, req.GetName())
	f.revision++
	return &adminv1.DeleteOutgoingConnectionResponse{Revision: f.revision}, nil
}

func (f *fakeOutgoing) PingOutgoingConnection(_ context.Context, req *adminv1.PingOutgoingConnectionRequest) (*adminv1.PingOutgoingConnectionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
	c := f.byName[req.GetName()]
	if c == nil {
		return nil, status.Errorf(codes.NotFound, "outgoing connection %q not found", req.GetName())
	}
	agent := req.GetAgentId()
	if agent == "" {
		agent = "a1"
	}
	resp := &adminv1.PingOutgoingConnectionResponse{AgentId: agent, Url: c.GetAddress() + c.GetPathTemplate()}
	if c.GetName() == "down" {
		resp.LatencyUs = 310
		resp.Error = "dial tcp 127.0.0.1:9: connect: connection refused"
		return resp, nil
	}
	resp.Status, resp.LatencyUs = 204, 12_345
	return resp, nil
}

// put stores a connection as if it had been created.
func (f *fakeOutgoing) put(c *adminv1.OutgoingConnection) {
	f.byName[c.GetName()] = c
}

// requestsSeen returns the recorded requests, pings included.
func (f *fakeOutgoing) requestsSeen() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// updateSent checks what a weftctl update did. With wantErr set, err must
// name it and no request may have reached the server; sent is false.
// Otherwise the server must have seen one request R, with wantMask as its
// update_mask, which is returned.
func updateSent[R interface {
	proto.Message
	GetUpdateMask() *fieldmaskpb.FieldMask
}](t *testing.T, err error, seen []proto.Message, wantErr string, wantMask []string) (req R, sent bool) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want it to contain %q", err, wantErr)
		}
		if len(seen) != 0 {
			t.Fatalf("server saw %v, want nothing", seen)
		}
		return req, false
	}
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if len(seen) != 1 {
		t.Fatalf("server saw %d requests, want 1: %v", len(seen), seen)
	}
	req = seen[0].(R)
	if got := req.GetUpdateMask().GetPaths(); !slices.Equal(got, wantMask) {
		t.Errorf("update_mask = %q, want %q", got, wantMask)
	}
	return req, true
}
