package store

import (
	"fmt"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// DeployResult is the outcome of a Deploy.
type DeployResult struct {
	Revision int64                      // current revision after the deploy
	Packages []*adminv1.DeployedPackage // in the order given; each package without its sources
}

// ConfigChange is what one import changes, in one transaction and one
// revision. Objects are given whole and matched by name: each is created,
// or replaces the stored one.
type ConfigChange struct {
	// BaseRevision is the revision the change was planned against.
	BaseRevision int64

	Deploy   []*adminv1.Package            // new versions of packages, as validate.Package made them
	Security []*adminv1.SecurityDefinition // secrets in clear
	Outgoing []*adminv1.OutgoingConnection
	Channels []*adminv1.Channel
	Jobs     []*adminv1.Job

	// The objects to delete, by name. Undeploy keeps a package's history,
	// as Store.Undeploy does.
	Undeploy       []string
	DeleteSecurity []string
	DeleteOutgoing []string
	DeleteChannels []string
	DeleteJobs     []string
}

// Desired is the whole config at one revision.
type Desired struct {
	Revision int64
	Packages []*adminv1.Package            // current versions with their sources, sorted by name
	Channels []*adminv1.Channel            // sorted by name
	Security []*adminv1.SecurityDefinition // secrets in clear, sorted by name
	Outgoing []*adminv1.OutgoingConnection // sorted by name
	Jobs     []*adminv1.Job                // sorted by name
}

// Job placements and run outcomes the store tells apart.
const (
	PlacementOne   = "one"
	PlacementEvery = "every"
	// OutcomeRunning marks a claimed firing whose run is not reported yet.
	OutcomeRunning = "running"
	// OutcomeUnknown marks a claimed firing whose agent lost its lease
	// before reporting the run.
	OutcomeUnknown = "unknown"
	// TriggerManual marks a run asked for by hand.
	TriggerManual = "manual"
)

// JobLease says which agent runs the firings of a job placed on one agent.
type JobLease struct {
	Job       string
	AgentID   string
	ExpiresAt time.Time
	Token     int64 // grows by one on each change of holder
}

// JobRun is one run of a job on one agent.
type JobRun struct {
	Job         string
	AgentID     string
	CID         string
	Trigger     string // schedule, manual or recovery
	Placement   string // the job's placement when it ran
	ScheduledAt time.Time
	StartedAt   time.Time // zero while running
	DurationUs  int64
	Outcome     string // ok, error, timeout, skipped, running or unknown
	Error       string
}

// ClaimRequest asks to run one firing of a job placed on one agent.
type ClaimRequest struct {
	AgentID     string
	Job         string
	ScheduledAt time.Time
	CID         string
	Now         time.Time     // the control plane's clock
	TTL         time.Duration // how long a granted lease lasts from Now
}

// Claim answers a ClaimRequest.
type Claim struct {
	Granted bool
	Holder  string // the lease holder after the claim; "" when none
	Reason  string // why it was refused
}

// AgentAck is what an agent's ACK says.
type AgentAck struct {
	Revision int64  // the revision the agent serves
	Hash     string // the hash of what it serves
	// NotPersisted is why the agent could not keep what it serves on its
	// disk; "" when all was written.
	NotPersisted string
}

// AgentHello is what an agent says about itself when it connects.
type AgentHello struct {
	ID              string
	Labels          map[string]string
	BuildVersion    string
	HTTPAddress     string
	PID             int64
	StartedAt       time.Time
	AppliedRevision int64
	AppliedHash     string
	// Replica is the id of the replica that holds the agent's stream.
	Replica string
}

// Agent is an agent's stored state.
type Agent struct {
	ID           string
	Labels       map[string]string
	BuildVersion string
	HTTPAddress  string
	PID          int64
	StartedAt    time.Time
	// Connected is true while the agent holds a config stream with a
	// replica that beats (Replica).
	Connected       bool
	AppliedRevision int64
	AppliedHash     string
	FailedRevision  int64  // last revision the agent refused; 0 for none
	LastError       string // the refusal's message; cleared by a later ACK
	FirstSeen       time.Time
	LastSeen        time.Time
	// NotPersisted is why the agent could not keep what it serves on its
	// disk, as its last ACK said; "" when all was written.
	NotPersisted string
	// RevokedAt is when the agent was revoked; zero while it is not.
	RevokedAt time.Time
	// CertNotAfter is when the certificate last issued to it expires; zero
	// when none was (an agent seen before enrollment existed).
	CertNotAfter time.Time
	// CertSerial is that certificate's serial number, hex.
	CertSerial string
	// EnrolledBy is the id of the join token it enrolled with.
	EnrolledBy string
	// Replica is the id of the replica that holds, or last held, its
	// stream; "" when none said.
	Replica string
}

// The roles of admin API tokens, weakest first.
const (
	RoleViewer   = "viewer"
	RoleDeployer = "deployer"
	RoleAdmin    = "admin"
)

// NewToken is an admin API token to store.
type NewToken struct {
	Name      string
	Role      string // RoleViewer, RoleDeployer or RoleAdmin
	Hash      string // sha256 of the secret, hex
	ExpiresAt time.Time
	CreatedBy string
}

// Token is a stored admin API token.
type Token struct {
	Name      string
	Role      string
	Hash      string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	RevokedAt time.Time // zero: not revoked
	CreatedBy string
}

// NewJoinToken is a join token to store.
type NewJoinToken struct {
	ID        string
	Hash      string // sha256 of the secret, hex
	Labels    map[string]string
	ExpiresAt time.Time
	Uses      int
	CreatedBy string
}

// JoinToken is a stored join token.
type JoinToken struct {
	ID        string
	Labels    map[string]string
	CreatedAt time.Time
	ExpiresAt time.Time
	Uses      int // enrollments allowed in all
	Used      int // enrollments made
	RevokedAt time.Time
	CreatedBy string
	Agents    []string // the ids that enrolled with it, in order
}

// Certificate is what the store keeps of a certificate issued to an agent.
type Certificate struct {
	Serial   string // hex
	NotAfter time.Time
}

// UndeployResult is the outcome of an Undeploy.
type UndeployResult struct {
	Revision            int64    // the revision of the undeploy
	Services            []string // the services that went away, sorted
	DeactivatedChannels []string // channels a forced undeploy deactivated, sorted
	PausedJobs          []string // jobs a forced undeploy paused, sorted
}

// DeployState is where one agent is with one package version.
type DeployState int

// The deploy states.
const (
	// DeployPending means the agent has not applied the version yet.
	DeployPending DeployState = iota + 1
	// DeployDeployed means the agent serves the version's revision or a later one.
	DeployDeployed
	// DeployFailed means the agent refused the version's revision or a later
	// one, and serves an older one.
	DeployFailed
)

// String names the state as weftctl shows it.
func (s DeployState) String() string {
	switch s {
	case DeployPending:
		return "pending"
	case DeployDeployed:
		return "deployed"
	case DeployFailed:
		return "failed"
	default:
		return fmt.Sprintf("DeployState(%d)", int(s))
	}
}

// AgentDeployStatus is one agent's state for a package version.
type AgentDeployStatus struct {
	AgentID         string
	State           DeployState
	Error           string // the agent's last error when State is DeployFailed
	Connected       bool
	AppliedRevision int64
	// NotPersisted is why the agent could not keep what it serves on its
	// disk, when State is DeployDeployed; "" when all was written.
	NotPersisted string
}

// DeployStatus says, per agent, where a package version stands.
type DeployStatus struct {
	Package *adminv1.Package // without its sources
	Current bool             // whether the version is the deployed one
	Agents  []AgentDeployStatus
}

// Replica is a replica of the control plane, as it registered.
type Replica struct {
	ID        string
	Address   string // its gRPC address, host:port
	StartedAt time.Time
	Heartbeat time.Time // its last heartbeat
	Alive     bool      // beaten within ReplicaLease
}

// A replica beats every ReplicaBeat; one that has not for ReplicaLease
// counts as gone, and so do the agents it held.
const (
	ReplicaBeat  = 2 * time.Second
	ReplicaLease = 3 * ReplicaBeat
	// ReplicaForget is how long a silent replica stays listed, as gone.
	ReplicaForget = time.Hour
)
