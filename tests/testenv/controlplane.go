package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Option changes how a process is started.
type Option func(*procConfig)

type procConfig struct {
	args       []string
	env        []string
	allowRaces bool
	bin        string
	tls        *tlsFiles
	replicaOf  *ControlPlane
}

// tlsFiles are an HTTPS listener's certificate and key files.
type tlsFiles struct{ cert, key string }

// OnlyHTTPS makes an agent serve its channels over HTTPS only, on its
// HTTPAddr, with the certificate and key in these files: Agent.URL is
// then an https URL.
func OnlyHTTPS(certFile, keyFile string) Option {
	return func(c *procConfig) { c.tls = &tlsFiles{certFile, keyFile} }
}

// WithBinary starts bin instead of the binary the tests built, such as
// ShippedAgent's.
func WithBinary(bin string) Option {
	return func(c *procConfig) { c.bin = bin }
}

// AllowRaces lets the race detector report races in the process's log
// without failing the test: for an agent that runs services racing on
// purpose (their reports come from its workers, which log to it).
func AllowRaces() Option {
	return func(c *procConfig) { c.allowRaces = true }
}

// WithArgs appends command-line arguments, such as "--labels", "site=berlin".
func WithArgs(args ...string) Option {
	return func(c *procConfig) { c.args = append(c.args, args...) }
}

// WithEnv adds KEY=VALUE environment variables.
func WithEnv(kv ...string) Option {
	return func(c *procConfig) { c.env = append(c.env, kv...) }
}

// ControlPlane is a running weft-controlplane.
type ControlPlane struct {
	// Addr is the gRPC address, host:port.
	Addr string
	// DSN is the database it uses, as given to --db.
	DSN string

	proc *process
	conn *grpc.ClientConn

	caFile    string // where the control plane writes its CA certificate
	tokenFile string // where it writes the first admin token
	ctlConfig string // weftctl's config file for this control plane (none at first)
	stateDir  string // of the key file, the CA and token files; shared by replicas
}

// ReplicaOf starts a control plane as another replica of cp: on the same
// database (the DSN given should be cp's), with its secrets key, and
// writing its CA and reading its first admin token where cp does.
func ReplicaOf(cp *ControlPlane) Option {
	return func(c *procConfig) { c.replicaOf = cp }
}

// StartControlPlane starts a control plane on a free port with the database
// dsn (such as "sqlite:/tmp/x/weft.db"), waits until its gRPC health check
// says SERVING, and stops it when the test ends.
func StartControlPlane(t testing.TB, dsn string, opts ...Option) *ControlPlane {
	t.Helper()
	var cfg procConfig
	for _, o := range opts {
		o(&cfg)
	}
	bin := Binary(t, ControlPlaneBinary)
	logDir := t.TempDir()
	// One key, CA and token for every start of this control plane, as in
	// production.
	stateDir := t.TempDir()
	ctlConfig := filepath.Join(stateDir, "weftctl.yaml")
	if cfg.replicaOf != nil {
		stateDir = cfg.replicaOf.stateDir
	}
	keyFile := filepath.Join(stateDir, "weft-secrets.key")

	const attempts = 3
	for attempt := 1; ; attempt++ {
		addr := FreeAddr(t)
		cp := &ControlPlane{Addr: addr, DSN: dsn,
			caFile:    filepath.Join(stateDir, caFileName),
			tokenFile: filepath.Join(stateDir, tokenFileName),
			ctlConfig: ctlConfig,
			stateDir:  stateDir,
		}
		conn, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(TLSCredentials(addr, cp.caFile)),
			grpc.WithPerRPCCredentials(TokenFileCredentials(cp.tokenFile)),
			// Redial fast: the test waits for a server that is starting.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.5, MaxDelay: 200 * time.Millisecond},
				MinConnectTimeout: 2 * time.Second,
			}))
		if err != nil {
			t.Fatalf("dial control plane %s: %v", addr, err)
		}
		cp.conn = conn
		cp.proc = &process{
			t:    t,
			name: "weft-controlplane " + addr,
			bin:  bin,
			args: append(append([]string{"--listen", addr, "--db", dsn, "--secrets-key", keyFile}, cfg.args...),
				// After the test's: these paths are what the test's
				// clients read.
				"--ca-file", cp.caFile, "--admin-token-file", cp.tokenFile),
			env:     cleanEnv(cfg.env...),
			logPath: filepath.Join(logDir, fmt.Sprintf("controlplane-%d.log", attempt)),
		}
		if err := cp.proc.start(); err != nil {
			t.Fatal(err)
		}
		err = cp.awaitServing()
		if err == nil {
			t.Cleanup(func() {
				cp.proc.cleanup()
				_ = cp.conn.Close()
			})
			return cp
		}
		retry := attempt < attempts && !cp.proc.running() && cp.proc.logMentionsAddrInUse()
		cp.proc.kill()
		_ = cp.conn.Close()
		if !retry {
			t.Fatalf("%v\n--- log of %s:\n%s", err, cp.proc.name, cp.proc.tail(logTailLines))
		}
	}
}

// awaitServing polls the gRPC health check until it says SERVING, failing
// early when the process exits.
func (cp *ControlPlane) awaitServing() error {
	health := healthpb.NewHealthClient(cp.conn)
	deadline := time.Now().Add(startTimeout)
	var last string
	for {
		if ended, exitErr := cp.proc.exited(); ended {
			return fmt.Errorf("%s exited before serving: %s", cp.proc.name, exitDesc(exitErr))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
			return nil
		default:
			last = "health status " + resp.GetStatus().String()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not SERVING after %v: %s", cp.proc.name, startTimeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Conn returns the gRPC client connection to the control plane that the
// test shares; it is closed when the test ends and survives restarts.
func (cp *ControlPlane) Conn() *grpc.ClientConn { return cp.conn }

// Packages returns a client of the admin PackageService.
func (cp *ControlPlane) Packages() adminv1.PackageServiceClient {
	return adminv1.NewPackageServiceClient(cp.conn)
}

// Channels returns a client of the admin ChannelService.
func (cp *ControlPlane) Channels() adminv1.ChannelServiceClient {
	return adminv1.NewChannelServiceClient(cp.conn)
}

// Fleet returns a client of the admin FleetService.
func (cp *ControlPlane) Fleet() adminv1.FleetServiceClient {
	return adminv1.NewFleetServiceClient(cp.conn)
}

// Agents lists the agents the control plane knows, failing the test on error.
func (cp *ControlPlane) Agents(t testing.TB) []*adminv1.Agent {
	t.Helper()
	agents, err := cp.listAgents()
	if err != nil {
		t.Fatal(err)
	}
	return agents
}

func (cp *ControlPlane) listAgents() ([]*adminv1.Agent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cp.Fleet().ListAgents(ctx, &adminv1.ListAgentsRequest{})
	if err != nil {
		return nil, fmt.Errorf("ListAgents on %s: %w", cp.Addr, err)
	}
	return resp.GetAgents(), nil
}

// Agent returns the control plane's record of agent id, or nil when it has
// none.
func (cp *ControlPlane) Agent(t testing.TB, id string) *adminv1.Agent {
	t.Helper()
	for _, a := range cp.Agents(t) {
		if a.GetId() == id {
			return a
		}
	}
	return nil
}

// DesiredRevision returns the current config revision as the control plane
// reports it to agents (desired_revision of the agent list). It needs at least
// one known agent.
func (cp *ControlPlane) DesiredRevision(t testing.TB) int64 {
	t.Helper()
	agents := cp.Agents(t)
	if len(agents) == 0 {
		t.Fatal("DesiredRevision: the control plane knows no agent")
	}
	return agents[0].GetDesiredRevision()
}

// PID returns the control plane's process id.
func (cp *ControlPlane) PID() int { return cp.proc.pid() }

// Running reports whether the control plane process is running.
func (cp *ControlPlane) Running() bool { return cp.proc.running() }

// LogPath returns the path of the control plane's log file.
func (cp *ControlPlane) LogPath() string { return cp.proc.logPath }

// Stop sends SIGTERM and waits for a clean exit; anything else fails t.
func (cp *ControlPlane) Stop(t testing.TB) {
	t.Helper()
	start := time.Now()
	if err := cp.proc.stop(); err != nil {
		t.Error(err)
	}
	t.Logf("stopped %s in %v", cp.proc.name, time.Since(start).Round(time.Millisecond))
}

// Kill ends the control plane with SIGKILL.
func (cp *ControlPlane) Kill() { cp.proc.kill() }

// Start starts a stopped control plane again on the same address and
// database, and waits until it serves.
func (cp *ControlPlane) Start(t testing.TB) {
	t.Helper()
	start := time.Now()
	if err := cp.proc.start(); err != nil {
		t.Fatal(err)
	}
	if err := cp.awaitServing(); err != nil {
		t.Fatal(err)
	}
	t.Logf("started %s (pid %d), serving in %v", cp.proc.name, cp.PID(), time.Since(start).Round(time.Millisecond))
}

// Restart stops the control plane cleanly and starts it again.
func (cp *ControlPlane) Restart(t testing.TB) {
	t.Helper()
	cp.Stop(t)
	cp.Start(t)
}

// agentRecord returns the control plane's record of agent id, nil when it has
// none.
func (cp *ControlPlane) agentRecord(id string) (*adminv1.Agent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cp.Fleet().GetAgent(ctx, &adminv1.GetAgentRequest{Id: id})
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("GetAgent %s: %w", id, err)
	}
	return resp.GetAgent(), nil
}
