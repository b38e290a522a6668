package store

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// The gorm models below map the rows of the tables that the migrations in
// migrations/ make (see migrate.go); gorm never changes a table, so a
// change to a model's columns needs a migration. The models never leave
// this package: the functions at the end of the file turn them into the
// plain types of types.go. Their tags say what the tables are, as
// AutoMigrate read them before schema versions: strings without a size
// are TEXT (LONGTEXT on MySQL) and []byte BLOB (LONGBLOB on MySQL), so
// neither limits what fits; indexed strings have a size so MySQL can
// index them under utf8mb4. UpdatedAt fields carry autoUpdateTime:false:
// the store sets them itself, so that what an update returns is what it
// stored (gorm would otherwise write a later time of its own).

// metaRow is the single row holding the global config revision.
type metaRow struct {
	ID       int64 `gorm:"primaryKey;autoIncrement:false"`
	Revision int64 `gorm:"not null;default:0"`
	// KeyCheck is a known text sealed with the secrets key the database's
	// secrets are sealed with, so that a replica started with another key
	// is refused at start rather than failing on every read.
	KeyCheck string `gorm:"size:255;not null;default:''"`
}

func (metaRow) TableName() string { return "weft_meta" }

// metaID is the id of the one row of weft_meta.
const metaID = 1

// changeRow is one entry of the revision log: one per config revision.
type changeRow struct {
	Revision int64     `gorm:"primaryKey;autoIncrement:false"`
	At       time.Time `gorm:"not null;precision:3"`
	Author   string    `gorm:"size:255;not null"`
	Summary  string    `gorm:"not null"`
}

func (changeRow) TableName() string { return "weft_changes" }

// packageRow points at the current version of a deployed package. Undeploy
// deletes it and keeps the versions, so a later deploy of the name
// continues their numbers.
type packageRow struct {
	Name             string `gorm:"primaryKey;size:255"`
	CurrentVersion   int64  `gorm:"not null"`
	CurrentVersionID int64  `gorm:"not null"`
}

func (packageRow) TableName() string { return "weft_packages" }

// packageVersionRow is one stored version of a package. Versions are never
// deleted: they are the deploy history.
type packageVersionRow struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	Name      string    `gorm:"size:255;not null;uniqueIndex:weft_package_versions_name_version,priority:1"`
	Version   int64     `gorm:"not null;uniqueIndex:weft_package_versions_name_version,priority:2"`
	Sha256    string    `gorm:"size:64;not null"`
	Author    string    `gorm:"size:255;not null"`
	SizeBytes int64     `gorm:"not null"`
	Services  string    `gorm:"not null"` // JSON array of names
	Revision  int64     `gorm:"not null;index:weft_package_versions_revision"`
	CreatedAt time.Time `gorm:"not null;precision:3"`
}

func (packageVersionRow) TableName() string { return "weft_package_versions" }

// packageFileRow is one source file of a package version.
type packageFileRow struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	VersionID int64  `gorm:"not null;uniqueIndex:weft_package_files_version_name,priority:1"`
	Name      string `gorm:"size:255;not null;uniqueIndex:weft_package_files_version_name,priority:2"`
	Content   []byte `gorm:"not null"`
}

func (packageFileRow) TableName() string { return "weft_package_files" }

// serviceRow records which package registers a service, so that two
// packages can never register the same name.
type serviceRow struct {
	Name    string `gorm:"primaryKey;size:255"`
	Package string `gorm:"size:255;not null;index:weft_services_package"`
}

func (serviceRow) TableName() string { return "weft_services" }

// agentRow is what the control plane knows about one agent.
type agentRow struct {
	ID              string     `gorm:"primaryKey;size:255"`
	Labels          string     `gorm:"not null"` // JSON object
	BuildVersion    string     `gorm:"size:255;not null"`
	HTTPAddress     string     `gorm:"size:255;not null"`
	PID             int64      `gorm:"column:pid;not null"`
	StartedAt       *time.Time `gorm:"precision:3"`
	Connected       bool       `gorm:"not null"`
	AppliedRevision int64      `gorm:"not null"`
	AppliedHash     string     `gorm:"size:255;not null"`
	FailedRevision  int64      `gorm:"not null"`
	LastError       string     `gorm:"not null"`
	FirstSeen       time.Time  `gorm:"not null;precision:3"`
	LastSeen        time.Time  `gorm:"not null;precision:3"`
	// NotPersisted may be NULL, read as empty: rows from before the
	// column have no value, and a TEXT column cannot have a default on
	// MySQL.
	NotPersisted string `gorm:"column:not_persisted"`
	// The trust columns may be NULL, read as empty or zero: agents seen
	// before enrollment existed have none, and a row made by RevokeAgent
	// of an id never seen has no certificate.
	RevokedAt    *time.Time `gorm:"precision:3"`
	CertNotAfter *time.Time `gorm:"precision:3"`
	CertSerial   string     `gorm:"size:64"`
	EnrolledBy   string     `gorm:"size:255"`
	// EnrolledLabels is a JSON object: the labels of the join token the
	// agent enrolled with, which override those it states in its hello.
	EnrolledLabels string
}

func (agentRow) TableName() string { return "weft_agents" }

// jobLeaseRow says which agent runs the firings of a job placed on one
// agent. Times are Unix milliseconds of the control plane's clock.
type jobLeaseRow struct {
	Job         string `gorm:"primaryKey;size:255"`
	AgentID     string `gorm:"size:255;not null"`
	ExpiresAtMs int64  `gorm:"not null"`
	Token       int64  `gorm:"not null"`
}

func (jobLeaseRow) TableName() string { return "weft_job_leases" }

// jobRunRow is one run of a job. Slot makes a firing unique: "one" for
// a firing of a job placed on one agent, so that a second claim of it
// fails; the agent's id for a job on every agent; "manual:" and the CID
// for a run asked for by hand.
type jobRunRow struct {
	ID            int64  `gorm:"primaryKey;autoIncrement"`
	Job           string `gorm:"size:255;not null;uniqueIndex:weft_job_runs_firing,priority:1;index:weft_job_runs_job_id,priority:1"`
	ScheduledAtMs int64  `gorm:"not null;uniqueIndex:weft_job_runs_firing,priority:2"`
	Slot          string `gorm:"size:255;not null;uniqueIndex:weft_job_runs_firing,priority:3"`
	AgentID       string `gorm:"size:255;not null"`
	CID           string `gorm:"column:cid;size:64;not null"`
	Trigger       string `gorm:"column:run_trigger;size:16;not null"`
	StartedAtMs   int64  `gorm:"not null"`
	DurationUs    int64  `gorm:"not null"`
	Outcome       string `gorm:"size:16;not null"`
	Error         string `gorm:"not null"`
}

func (jobRunRow) TableName() string { return "weft_job_runs" }

// statsRow is what one agent measured of one object (kind and name) over
// one minute, hour or day (UTC) starting at StartMs. A reported minute is
// added to its minute, hour and day rows in one transaction, so there is
// no rollup and every resolution agrees. Statistics are not config.
type statsRow struct {
	Resolution string `gorm:"primaryKey;size:4;index:weft_stats_object,priority:1"`
	StartMs    int64  `gorm:"primaryKey;autoIncrement:false;index:weft_stats_object,priority:4"`
	AgentID    string `gorm:"primaryKey;size:255"`
	Kind       string `gorm:"primaryKey;size:16;index:weft_stats_object,priority:2"`
	Name       string `gorm:"primaryKey;size:255;index:weft_stats_object,priority:3"`
	Count      int64  `gorm:"not null"`
	Errors     int64  `gorm:"not null"`
	SumUs      int64  `gorm:"not null"`
	MaxUs      int64  `gorm:"not null"`
	Histogram  string `gorm:"not null"` // JSON object: bucket of agent/shared/statscale -> count
	Statuses   string `gorm:"not null"` // JSON object: HTTP status -> count
	BytesIn    int64  `gorm:"not null"`
	BytesOut   int64  `gorm:"not null"`
}

func (statsRow) TableName() string { return "weft_stats" }

// statsSeenRow is the highest bucket sequence number recorded of an
// agent's epoch (one agent process's numbering), so that a report sent
// again after a lost answer adds nothing twice.
type statsSeenRow struct {
	AgentID   string    `gorm:"primaryKey;size:255"`
	Epoch     string    `gorm:"primaryKey;size:64"`
	LastSeq   int64     `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null;precision:3;index:weft_stats_seen_updated"`
}

func (statsSeenRow) TableName() string { return "weft_stats_seen" }

// dbTime turns t into what the store writes: UTC, milliseconds, since that
// is what both databases keep.
func dbTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Millisecond)
}

// now is the current time as the store writes it.
func now() time.Time { return dbTime(time.Now()) }

// encodeJSON encodes a list or map for a JSON text column; nil becomes an
// empty list or object so that readers never see "null".
func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func encodeList(l []string) (string, error) {
	if l == nil {
		l = []string{}
	}
	return encodeJSON(l)
}

func encodeMap(m map[string]string) (string, error) {
	if m == nil {
		m = map[string]string{}
	}
	return encodeJSON(m)
}

func decodeList(column, s string) ([]string, error) {
	l := []string{}
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decode %s: %w", column, err)
	}
	return l, nil
}

// decodeMap decodes a JSON object column; "" (a NULL) is an empty map.
func decodeMap(column, s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", column, err)
	}
	return m, nil
}

// replicaRow is a replica of the control plane and its heartbeat.
type replicaRow struct {
	ID          string    `gorm:"primaryKey;size:255"`
	Address     string    `gorm:"size:255;not null"`
	StartedAt   time.Time `gorm:"not null;precision:3"`
	HeartbeatAt time.Time `gorm:"not null;precision:3"`
}

func (replicaRow) TableName() string { return "weft_replicas" }

// agentStreamRow says which replica holds an agent's config stream.
type agentStreamRow struct {
	AgentID   string `gorm:"primaryKey;size:255"`
	ReplicaID string `gorm:"size:255;not null"`
}

func (agentStreamRow) TableName() string { return "weft_agent_streams" }

// toPackage is the version r, without its files; the caller adds their
// names or their sources.
func (r *packageVersionRow) toPackage() (*adminv1.Package, error) {
	services, err := decodeList("services of package "+r.Name, r.Services)
	if err != nil {
		return nil, err
	}
	return &adminv1.Package{
		Name:      r.Name,
		Version:   r.Version,
		Sha256:    r.Sha256,
		Author:    r.Author,
		SizeBytes: r.SizeBytes,
		Services:  services,
		CreatedAt: timestamppb.New(r.CreatedAt),
		Revision:  r.Revision,
	}, nil
}

func agentFromRow(r *agentRow) (Agent, error) {
	labels := map[string]string{}
	if err := json.Unmarshal([]byte(r.Labels), &labels); err != nil {
		return Agent{}, fmt.Errorf("decode labels of agent %s: %w", r.ID, err)
	}
	a := Agent{
		ID:              r.ID,
		Labels:          labels,
		BuildVersion:    r.BuildVersion,
		HTTPAddress:     r.HTTPAddress,
		PID:             r.PID,
		Connected:       r.Connected,
		AppliedRevision: r.AppliedRevision,
		AppliedHash:     r.AppliedHash,
		FailedRevision:  r.FailedRevision,
		LastError:       r.LastError,
		NotPersisted:    r.NotPersisted,
		FirstSeen:       r.FirstSeen.UTC(),
		LastSeen:        r.LastSeen.UTC(),
	}
	if r.StartedAt != nil {
		a.StartedAt = r.StartedAt.UTC()
	}
	a.RevokedAt = timeOrZero(r.RevokedAt)
	a.CertNotAfter = timeOrZero(r.CertNotAfter)
	a.CertSerial = r.CertSerial
	a.EnrolledBy = r.EnrolledBy
	return a, nil
}
