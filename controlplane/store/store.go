// Package store holds the control plane's state in a SQL database: MySQL (or
// MariaDB) in production, an embedded SQLite file by default. gorm models
// never leave this package; the rest of the control plane sees the Store
// interface and the plain types in types.go.
//
// Every change to config (packages, channels, security definitions,
// outgoing connections; later jobs) bumps one global revision in the same
// transaction as the change, so a reader that sees revision N sees every
// change up to N and none after. Agent state (what each agent applied) is
// not config and does not bump the revision.
package store

import (
	"context"
	"errors"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Errors a Store returns, wrapped with detail. Callers test with errors.Is.
var (
	// ErrNotFound means the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the change collides with stored state: a duplicate
	// name or path, or a service registered by another package.
	ErrConflict = errors.New("conflict")
	// ErrWrongKind means a channel or an outgoing connection names a
	// security definition of a kind it cannot use: one that cannot verify
	// inbound requests, or cannot supply outbound credentials. The
	// definition exists; the reference is what must change.
	ErrWrongKind = errors.New("security definition of the wrong kind")
	// ErrStale means the config moved on since the change was planned: the
	// caller plans again against the new revision.
	ErrStale = errors.New("config changed since it was planned")
	// ErrRefused means a credential cannot be used: a join token expired,
	// used up or revoked, or an agent id revoked. The wrapping error says
	// which.
	ErrRefused = errors.New("refused")
)

// Store is what the control plane keeps. Implementations are safe for
// concurrent use, and several control plane replicas may share one database.
type Store interface {
	// Revision returns the current global config revision; 0 before any change.
	Revision(ctx context.Context) (int64, error)
	// ListAudit returns the audit trail of config changes, newest first:
	// one entry per object each revision created, updated or deleted, with
	// its author (the method's, else WithAuthor's) and the object's content
	// hash before and after. Changes of trust state (kinds token,
	// join-token, agent, ca) and key rotations (secrets-key) have entries
	// too, at the revision current when they were made, with summaries of
	// their own. truncated says older
	// entries matched beyond q.Limit (0: 1000).
	ListAudit(ctx context.Context, q AuditQuery) (entries []AuditEntry, truncated bool, err error)

	// Deploy stores new versions of packages, all in one transaction and one
	// revision. A package whose sha256 equals its current version's is left
	// as it is and reported Unchanged. When every package is unchanged the
	// revision does not move. A service name registered by a different
	// package fails the whole deploy with ErrConflict naming both.
	Deploy(ctx context.Context, author string, pkgs []*adminv1.Package) (DeployResult, error)
	// ListPackages returns every deployed package at its current version,
	// without file contents, sorted by name.
	ListPackages(ctx context.Context) ([]*adminv1.Package, error)
	// ListServices returns every service of the deployed packages, sorted by name.
	ListServices(ctx context.Context) ([]*adminv1.Service, error)
	// ListPackageVersions returns the stored versions of the package name,
	// or of every package when name is empty: the deploy history, newest
	// first (by revision, then name), at most limit of them (all when limit
	// is 0 or less). Files carry names only. ErrNotFound when name was
	// never deployed. An undeployed package keeps its history.
	ListPackageVersions(ctx context.Context, name string, limit int) ([]*adminv1.Package, error)
	// GetPackage reads a version of a package with its file contents;
	// version 0 means the current one. current says whether the version is
	// the deployed one. ErrNotFound names the package and the version.
	GetPackage(ctx context.Context, name string, version int64) (pkg *adminv1.Package, current bool, err error)
	// GetDeployStatus reads a package version (version 0: the current one;
	// name empty: the deployed package changed last) and, from the same
	// snapshot, every agent's state for it. A version that is no longer
	// current is answered all the same.
	GetDeployStatus(ctx context.Context, name string, version int64) (DeployStatus, error)
	// Rollback stores a new version of the package name whose files,
	// services and sha256 are those of toVersion (0: the version before the
	// current), makes it current and bumps the revision. It returns the new
	// version, the version restored and the revision. ErrNotFound for an
	// unknown package or version; ErrConflict when the current version
	// already has that content, or when the old services collide as in
	// Deploy. An undeployed package can be restored by naming a version.
	Rollback(ctx context.Context, author, name string, toVersion int64) (pkg *adminv1.Package, restored int64, revision int64, err error)
	// Undeploy removes the package name and its services in one revision,
	// keeping its history: a later deploy continues its version numbers.
	// While active channels call its services it fails with ErrConflict
	// naming them, unless force is set: then those channels are
	// deactivated in the same transaction.
	Undeploy(ctx context.Context, author, name string, force bool) (UndeployResult, error)

	// CreateChannel stores a new channel as it is given (validate.Channel
	// normalises it first) and returns it with its output-only fields
	// set. ErrConflict when the name or the
	// path is taken; ErrNotFound when its service, a service of its
	// SOAPActions or its security definition does not exist, ErrWrongKind
	// when that definition cannot verify inbound requests (checked in
	// the same transaction).
	CreateChannel(ctx context.Context, ch *adminv1.Channel) (*adminv1.Channel, error)
	// GetChannel reads a channel by name.
	GetChannel(ctx context.Context, name string) (*adminv1.Channel, error)
	// ListChannels returns every channel sorted by name.
	ListChannels(ctx context.Context) ([]*adminv1.Channel, error)
	// UpdateChannel replaces the channel of the same name; same checks as create.
	UpdateChannel(ctx context.Context, ch *adminv1.Channel) (*adminv1.Channel, error)
	// DeleteChannel removes a channel and returns the new revision.
	DeleteChannel(ctx context.Context, name string) (int64, error)

	// CreateSecurityDefinition stores a new definition, sealing its
	// secrets. ErrConflict when the name is taken.
	CreateSecurityDefinition(ctx context.Context, d *adminv1.SecurityDefinition) (*adminv1.SecurityDefinition, error)
	// GetSecurityDefinition reads a definition by name, secrets in clear.
	GetSecurityDefinition(ctx context.Context, name string) (*adminv1.SecurityDefinition, error)
	// ListSecurityDefinitions returns every definition sorted by name,
	// secrets in clear.
	ListSecurityDefinitions(ctx context.Context) ([]*adminv1.SecurityDefinition, error)
	// UpdateSecurityDefinition replaces the definition of the same name.
	// ErrConflict when a channel or connection using it could no longer
	// (a kind that does not verify inbound requests, or supply outbound
	// credentials), naming them.
	UpdateSecurityDefinition(ctx context.Context, d *adminv1.SecurityDefinition) (*adminv1.SecurityDefinition, error)
	// DeleteSecurityDefinition removes a definition and returns the new
	// revision. ErrConflict naming the channels and connections using it.
	DeleteSecurityDefinition(ctx context.Context, name string) (int64, error)

	// CreateOutgoingConnection stores a new connection as it is given
	// (validate.OutgoingConnection normalises it first) and returns it with
	// its output-only fields set. ErrConflict when the name is taken; ErrNotFound when its security definition does not
	// exist, ErrWrongKind when that definition is inbound-only.
	CreateOutgoingConnection(ctx context.Context, c *adminv1.OutgoingConnection) (*adminv1.OutgoingConnection, error)
	// GetOutgoingConnection reads a connection by name.
	GetOutgoingConnection(ctx context.Context, name string) (*adminv1.OutgoingConnection, error)
	// ListOutgoingConnections returns every connection sorted by name.
	ListOutgoingConnections(ctx context.Context) ([]*adminv1.OutgoingConnection, error)
	// UpdateOutgoingConnection replaces the connection of the same name;
	// same checks as create.
	UpdateOutgoingConnection(ctx context.Context, c *adminv1.OutgoingConnection) (*adminv1.OutgoingConnection, error)
	// DeleteOutgoingConnection removes a connection and returns the new
	// revision.
	DeleteOutgoingConnection(ctx context.Context, name string) (int64, error)

	// CreateJob stores a new job. ErrConflict when the name is taken;
	// ErrNotFound when its service is not deployed.
	CreateJob(ctx context.Context, j *adminv1.Job) (*adminv1.Job, error)
	// GetJob reads a job by name.
	GetJob(ctx context.Context, name string) (*adminv1.Job, error)
	// ListJobs returns every job sorted by name.
	ListJobs(ctx context.Context) ([]*adminv1.Job, error)
	// UpdateJob replaces the job of the same name; same checks as create.
	// Its lease stays until it lapses: the holder may be out of reach and
	// firing on it. Claims check the new labels and state.
	UpdateJob(ctx context.Context, j *adminv1.Job) (*adminv1.Job, error)
	// DeleteJob removes a job with its runs (and its lease, once lapsed),
	// and returns the new revision.
	DeleteJob(ctx context.Context, name string) (int64, error)
	// JobState reads the lease (nil when nobody holds one) and the newest
	// run (nil before the first) of the job name.
	JobState(ctx context.Context, name string) (*JobLease, *JobRun, error)

	// ClaimFiring grants one firing of a job placed on one agent to the
	// lease holder, or to the asker when the lease has lapsed (it takes the
	// lease over), and records the firing as running. It never grants the
	// same firing twice. A refusal is not an error: Claim says why.
	ClaimFiring(ctx context.Context, c ClaimRequest) (Claim, error)
	// RenewLeases extends, to now+ttl, the leases of jobs that agentID
	// holds, and returns those jobs; of the others it holds none.
	RenewLeases(ctx context.Context, agentID string, jobs []string, now time.Time, ttl time.Duration) ([]string, error)
	// RecordRuns stores runs an agent reports. A run already stored (a
	// claimed firing, or a report sent again) is updated. A firing of a
	// job on one agent that another agent already ran is not stored: it
	// comes back in doubles, for the caller to log. Runs of jobs that no
	// longer exist are dropped.
	RecordRuns(ctx context.Context, agentID string, runs []JobRun) (doubles []JobRun, err error)
	// ListJobRuns returns the newest runs of a job, at most limit.
	ListJobRuns(ctx context.Context, job string, limit int) ([]JobRun, error)

	// ApplyConfig makes every change of c in one transaction, as one
	// revision, and returns the revision after it. c was planned, and its
	// references checked, against the config at c.BaseRevision: when the
	// revision has moved since, nothing is changed and the error is
	// ErrStale. An object equal to the stored one is not written; when
	// nothing changes the revision does not move. The other errors are
	// those of the single-object methods.
	ApplyConfig(ctx context.Context, author string, c ConfigChange) (int64, error)

	// Desired reads, in one consistent transaction, the revision and the whole
	// config the agents must run: current package versions with their files,
	// channels, security definitions (secrets in clear) and outgoing
	// connections.
	Desired(ctx context.Context) (Desired, error)

	// AgentHello records that an agent connected: it creates the agent on
	// first sight and updates its description and last seen time. The
	// labels stored are those it states, overridden by those of the join
	// token it enrolled with (the token's win on a key both set).
	AgentHello(ctx context.Context, a AgentHello) error
	// AgentApplied records an ACK: the agent serves revision with hash,
	// and keeps it on disk.
	AgentApplied(ctx context.Context, id string, revision int64, hash string) error
	// AgentAcked records an ACK with what the agent said of its disk.
	AgentAcked(ctx context.Context, id string, ack AgentAck) error
	// AgentFailed records a NACK: the agent refused revision with message.
	AgentFailed(ctx context.Context, id string, revision int64, message string) error
	// AgentSeen records that the agent's stream is alive: connected, and
	// seen now.
	AgentSeen(ctx context.Context, id string) error
	// AgentGone records that the agent's stream with replica ended, unless
	// another replica holds it now.
	AgentGone(ctx context.Context, id, replica string) error
	// ReplicaBeats records that a replica is alive, registering it.
	ReplicaBeats(ctx context.Context, r Replica) error
	// ReplicaGone removes a stopping replica.
	ReplicaGone(ctx context.Context, id string) error
	// ListReplicas returns the registered replicas.
	ListReplicas(ctx context.Context) ([]Replica, error)
	// ListAgents returns every agent sorted by id.
	ListAgents(ctx context.Context) ([]Agent, error)
	// GetAgent reads one agent.
	GetAgent(ctx context.Context, id string) (Agent, error)

	// Trust: the CA, the admin API's tokens, the agents' join tokens and
	// certificates. None of these bump the revision; each change is
	// audited (kinds token, join-token, agent, ca) at the current revision.

	// CA reads the control plane's CA: its certificate and its private key,
	// both PEM, the key unsealed. ErrNotFound before InitCA.
	CA(ctx context.Context) (certPEM, keyPEM []byte, err error)
	// InitCA stores a CA made on first start, its key sealed, unless one is
	// stored already (another replica made it first): it returns the CA
	// stored, and created says whether it is the one given.
	InitCA(ctx context.Context, certPEM, keyPEM []byte) (storedCert, storedKey []byte, created bool, err error)

	// RotateKey makes a new data key, sealed with the secrets key file's
	// key, and in the same transaction re-seals with it every sealed value
	// the store keeps (the secrets of security definitions, the CA's key),
	// retires the older data keys and deletes those an earlier rotation
	// retired, which no value names any more. Other replicas of the
	// database read the new values without a restart, and seal with the
	// new key from their next change on. The clear values do not change,
	// so the revision does not move. Audited (kind secrets-key, action
	// rotated; each re-sealed definition's row: kind security, action
	// resealed) at the current revision, by WithAuthor's author.
	RotateKey(ctx context.Context) (KeyRotation, error)

	// CreateToken stores an admin API token. ErrConflict when the name is
	// taken (revoked tokens keep their names).
	CreateToken(ctx context.Context, t NewToken) (Token, error)
	// CreateFirstToken stores t only when no token exists at all, for the
	// first admin token made on first start: created says whether it did.
	CreateFirstToken(ctx context.Context, t NewToken) (created bool, err error)
	// TokenByHash reads the token whose secret hashes to hash (sha256,
	// hex). ErrNotFound when none does. Expired and revoked tokens are
	// returned too: the caller decides.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// ListTokens returns every token sorted by name.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken marks the token name revoked now. ErrNotFound for an
	// unknown name; a token revoked already is returned as it is.
	RevokeToken(ctx context.Context, name string) (Token, error)

	// CreateJoinToken stores a join token. ErrConflict for a used id.
	CreateJoinToken(ctx context.Context, t NewJoinToken) (JoinToken, error)
	// ListJoinTokens returns every join token, newest first.
	ListJoinTokens(ctx context.Context) ([]JoinToken, error)
	// RevokeJoinToken marks the join token id revoked now. ErrNotFound for
	// an unknown id; a token revoked already is returned as it is.
	RevokeJoinToken(ctx context.Context, id string) (JoinToken, error)
	// Enroll spends one use of the join token whose secret hashes to hash
	// and records the agent id as enrolled with it, with the certificate
	// issued (serial, expiry) and the token's labels, in one transaction
	// (issue is called inside it and may fail it): a token is never
	// spent twice. now decides whether the token has expired. ErrNotFound
	// for an unknown token; ErrRefused (wrapped with the reason: expired,
	// used up, revoked; or the agent id is revoked) when it cannot be
	// used, and then issue is not called. The agent's row is created when
	// missing (not connected, with the token's labels). issue may be
	// called again when the database makes the transaction retry (a MySQL
	// deadlock): the certificate of its last call is the one stored. The
	// audit entries name WithAuthor's author, else "agent:" and the id.
	Enroll(ctx context.Context, hash, agentID string, now time.Time, issue func() (Certificate, error)) (JoinToken, error)
	// AgentCertified records a certificate issued to an enrolled agent (a
	// renewal). ErrRefused when the agent is revoked; ErrNotFound when it
	// never enrolled. Audited as Enroll is.
	AgentCertified(ctx context.Context, agentID string, c Certificate) error
	// RevokeAgent marks the agent revoked now: its certificates, renewals
	// and enrollments under its id are refused from then on. It creates
	// the agent's row when the id was never seen, so that it cannot
	// enroll later. An agent revoked already is returned as it is.
	RevokeAgent(ctx context.Context, id string) (Agent, error)
	// RevokedAgents returns the revoked agent ids and when each was revoked.
	RevokedAgents(ctx context.Context) (map[string]time.Time, error)

	// RecordStats adds the buckets agentID measured to the statistics, in
	// one transaction: each bucket is merged into its minute's row and into
	// the rows of the hour and the day (UTC) that hold it, so a late bucket
	// lands at every resolution. A bucket of epoch (an agent process's
	// numbering; "" for none) numbered no higher than the highest recorded
	// of it was recorded already and is skipped, so a report sent again
	// after a lost answer counts once. It does not bump the revision.
	RecordStats(ctx context.Context, agentID, epoch string, buckets []StatsBucket) error
	// QueryStats reads the rows of one resolution that q selects, sorted by
	// start, agent, kind and name.
	QueryStats(ctx context.Context, q StatsQuery) ([]StatsRow, error)
	// PruneStats deletes the rows that ended longer ago than their
	// resolution's retention before now, and returns how many. Any replica
	// may run it at any time.
	PruneStats(ctx context.Context, now time.Time) (int64, error)
	// StatsRetention is how long the statistics of each resolution are kept.
	StatsRetention() StatsRetention

	// Close releases the database.
	Close() error
}
