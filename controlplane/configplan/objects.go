package configplan

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/agent/shared/jobspec"
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

// JobIn is the API's job p normalised as the store keeps it, refusing
// what cannot be: active when unset, placed on every agent when unset,
// start_at in whole milliseconds, the interval split into its canonical
// parts, and the payload a JSON object. Output-only fields are cleared.
func JobIn(p *adminv1.Job) (*adminv1.Job, error) {
	j := marks.ClearOutputOnly(proto.CloneOf(p))
	if j.Active == nil {
		j.Active = proto.Bool(true)
	}
	if j.Placement == "" {
		j.Placement = store.PlacementEvery
	}
	if j.StartAt != nil {
		if err := j.StartAt.CheckValid(); err != nil {
			return nil, fmt.Errorf("start_at: %w", err)
		}
		// The store keeps milliseconds; finer would read back as a change.
		j.StartAt = timestamppb.New(j.StartAt.AsTime().Truncate(time.Millisecond))
	}
	d, err := jobspec.Interval(j.Interval)
	if err != nil {
		return nil, err
	}
	j.Interval = jobspec.IntervalOf(d)
	if j.Payload != "" {
		var obj map[string]any
		if err := json.Unmarshal([]byte(j.Payload), &obj); err != nil {
			return nil, fmt.Errorf("payload: want a JSON object: %w", err)
		}
	}
	return j, nil
}

// JobToStore is the job p as creating it, or replacing live (nil for a
// new job) with it, stores it: checked, start_at the live job's or now
// when unset (a one_time job needs one), and a one_time job's start in the
// future unless it is the live job's own.
func JobToStore(p, live *adminv1.Job) (*adminv1.Job, error) {
	j, err := JobIn(p)
	if err != nil {
		return nil, err
	}
	if j.StartAt == nil && j.Type != "one_time" {
		j.StartAt = timestamppb.New(time.Now().Truncate(time.Second))
		if live != nil {
			j.StartAt = proto.CloneOf(live.StartAt)
		}
	}
	if err := validate.Job(j); err != nil {
		return nil, err
	}
	moved := live == nil || !proto.Equal(live.StartAt, j.StartAt)
	if start := j.StartAt.AsTime(); j.Type == "one_time" && moved && start.Before(time.Now()) {
		return nil, fmt.Errorf("job %q: start_at: %s is in the past; a one_time job would never fire", j.Name, start.Format(time.RFC3339))
	}
	return j, nil
}
