package configplan

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// The objects of a config as the admin API and config files give them
// (In), and as they show them (Out). A write through the API and an import
// of a config turn them into the store's objects alike.

// CheckSecurity refuses the redaction placeholder as a secret (a read sent
// back as a write), then validates d as agents would.
func CheckSecurity(d *adminv1.SecurityDefinition) error {
	if fd := marks.RedactedSecret(d); fd != nil {
		return fmt.Errorf("%s: is the redaction placeholder that reads show; give the real value", fd.Name())
	}
	return validate.SecurityDefinition(d)
}

// SecurityOut is d as reads show it: every secret redacted.
func SecurityOut(d *adminv1.SecurityDefinition) *adminv1.SecurityDefinition {
	return marks.Redact(proto.CloneOf(d))
}

// JobIn turns the API's job into the store's, refusing what cannot be
// turned: an interval too long to count, a payload that is not a JSON
// object.
func JobIn(p *adminv1.Job) (store.Job, error) {
	j := store.Job{
		Name: p.GetName(), Service: p.GetService(), Type: p.GetType(),
		Repeats: p.GetRepeats(), Cron: p.GetCron(), TimeZone: p.GetTimeZone(),
		Payload: p.GetPayload(), Active: p.Active == nil || p.GetActive(),
		AgentLabels: p.GetAgentLabels(), Placement: p.GetPlacement(),
		RunMissed: p.GetRunMissed(), TimeoutMs: p.GetTimeoutMs(),
	}
	if j.AgentLabels == nil {
		j.AgentLabels = map[string]string{}
	}
	if j.Placement == "" {
		j.Placement = store.PlacementEvery
	}
	if p.GetStartAt() != nil {
		if err := p.GetStartAt().CheckValid(); err != nil {
			return store.Job{}, fmt.Errorf("start_at: %w", err)
		}
		// The store keeps milliseconds; finer would read back as a change.
		j.StartAt = p.GetStartAt().AsTime().UTC().Truncate(time.Millisecond)
	}
	d, err := intervalIn(p.GetInterval())
	if err != nil {
		return store.Job{}, err
	}
	j.Interval = d
	if j.Payload != "" {
		var obj map[string]any
		if err := json.Unmarshal([]byte(j.Payload), &obj); err != nil {
			return store.Job{}, fmt.Errorf("payload: want a JSON object: %w", err)
		}
	}
	return j, nil
}

// JobToStore is the job p as creating it, or replacing live (nil for a
// new job) with it, stores it: checked, start_at the live job's or now
// when unset (a one_time job needs one), and a one_time job's start in the
// future unless it is the live job's own.
func JobToStore(p *adminv1.Job, live *store.Job) (store.Job, error) {
	j, err := JobIn(p)
	if err != nil {
		return store.Job{}, err
	}
	if j.StartAt.IsZero() && j.Type != "one_time" {
		j.StartAt = time.Now().UTC().Truncate(time.Second)
		if live != nil {
			j.StartAt = live.StartAt
		}
	}
	if err := validate.Job(j); err != nil {
		return store.Job{}, err
	}
	moved := live == nil || !live.StartAt.Equal(j.StartAt)
	if j.Type == "one_time" && moved && j.StartAt.Before(time.Now()) {
		return store.Job{}, fmt.Errorf("job %q: start_at: %s is in the past; a one_time job would never fire", j.Name, j.StartAt.Format(time.RFC3339))
	}
	return j, nil
}

// maxInterval bounds an interval: 10,000 weeks, within a time.Duration.
const maxInterval = 10_000 * 7 * 24 * time.Hour

func intervalIn(iv *adminv1.JobInterval) (time.Duration, error) {
	parts := []struct {
		name string
		n    int64
		unit time.Duration
	}{
		{"weeks", iv.GetWeeks(), 7 * 24 * time.Hour},
		{"days", iv.GetDays(), 24 * time.Hour},
		{"hours", iv.GetHours(), time.Hour},
		{"minutes", iv.GetMinutes(), time.Minute},
		{"seconds", iv.GetSeconds(), time.Second},
	}
	// Summed in seconds: each part alone stays under maxInterval, so the
	// sum of five cannot overflow an int64 of seconds.
	var secs int64
	for _, p := range parts {
		if limit := int64(maxInterval / p.unit); p.n < 0 || p.n > limit {
			return 0, fmt.Errorf("interval.%s %d: want 0 to %d", p.name, p.n, limit)
		}
		secs += p.n * int64(p.unit/time.Second)
	}
	if secs > int64(maxInterval/time.Second) {
		return 0, fmt.Errorf("interval: the parts add up to %d seconds, over the longest interval of 10000 weeks", secs)
	}
	return time.Duration(secs) * time.Second, nil
}

// intervalOut splits d into weeks, days, hours, minutes and seconds.
func intervalOut(d time.Duration) *adminv1.JobInterval {
	if d <= 0 {
		return nil
	}
	s := int64(d / time.Second)
	iv := &adminv1.JobInterval{}
	iv.Weeks, s = s/(7*86400), s%(7*86400)
	iv.Days, s = s/86400, s%86400
	iv.Hours, s = s/3600, s%3600
	iv.Minutes, iv.Seconds = s/60, s%60
	return iv
}

// JobProto is j as the API shows it, without the output-only state (next
// firing, lease, last run) that only the API's reads add.
func JobProto(j store.Job) *adminv1.Job {
	out := &adminv1.Job{
		Name: j.Name, Service: j.Service, Type: j.Type,
		Interval: intervalOut(j.Interval), Repeats: j.Repeats,
		Cron: j.Cron, TimeZone: j.TimeZone, Payload: j.Payload,
		Active: proto.Bool(j.Active), AgentLabels: maps.Clone(j.AgentLabels),
		Placement: j.Placement, RunMissed: j.RunMissed, TimeoutMs: j.TimeoutMs,
		CreatedAt: timestamppb.New(j.CreatedAt), UpdatedAt: timestamppb.New(j.UpdatedAt), Revision: j.Revision,
	}
	if !j.StartAt.IsZero() {
		out.StartAt = timestamppb.New(j.StartAt)
	}
	return out
}
