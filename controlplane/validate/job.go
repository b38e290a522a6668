package validate

import (
	"fmt"
	"time"

	"github.com/weft-dev/weft/agent/shared/jobspec"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// MaxPayloadBytes bounds a job's payload.
const MaxPayloadBytes = 64 << 10

// Job checks a job with the rules agents apply (agent/shared/jobspec): its
// schedule, placement and payload. Whether its service is deployed is the
// store's check, made in the transaction that stores the job.
func Job(j *adminv1.Job) error {
	if err := Name("job", j.GetName()); err != nil {
		return err
	}
	if j.GetService() == "" {
		return fmt.Errorf("job %q: service is required", j.GetName())
	}
	if err := Description(j.GetDescription()); err != nil {
		return fmt.Errorf("job %q: %w", j.GetName(), err)
	}
	if len(j.GetPayload()) > MaxPayloadBytes {
		return fmt.Errorf("job %q: payload: %d bytes; at most %d (it travels in every agent's snapshot)", j.GetName(), len(j.GetPayload()), MaxPayloadBytes)
	}
	if j.GetTimeoutMs() < 0 || j.GetTimeoutMs() > MaxTimeout.Milliseconds() {
		return fmt.Errorf("job %q: timeout_ms %d: want 0 (the service's default) to %d", j.GetName(), j.GetTimeoutMs(), MaxTimeout.Milliseconds())
	}
	if err := jobspec.Validate(j); err != nil {
		return fmt.Errorf("job %q: %w", j.GetName(), err)
	}
	return nil
}

// NextRun is the first firing of j after t; ok is false when there is none
// left (or j does not validate).
func NextRun(j *adminv1.Job, t time.Time) (time.Time, bool) {
	sched, err := jobspec.SpecOf(j).Schedule()
	if err != nil {
		return time.Time{}, false
	}
	return sched.Next(t)
}
