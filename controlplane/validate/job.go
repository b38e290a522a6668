package validate

import (
	"fmt"
	"time"

	"github.com/weft-dev/weft/agent/shared/jobspec"
	"github.com/weft-dev/weft/controlplane/store"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// MaxPayloadBytes bounds a job's payload.
const MaxPayloadBytes = 64 << 10

// Job checks a job with the rules agents apply (agent/shared/jobspec): its
// schedule, placement and payload. Whether its service is deployed is the
// store's check, made in the transaction that stores the job.
func Job(j store.Job) error {
	if err := Name("job", j.Name); err != nil {
		return err
	}
	if j.Service == "" {
		return fmt.Errorf("job %q: service is required", j.Name)
	}
	if len(j.Payload) > MaxPayloadBytes {
		return fmt.Errorf("job %q: payload: %d bytes; at most %d (it travels in every agent's snapshot)", j.Name, len(j.Payload), MaxPayloadBytes)
	}
	if j.TimeoutMs < 0 || j.TimeoutMs > MaxTimeout.Milliseconds() {
		return fmt.Errorf("job %q: timeout_ms %d: want 0 (the service's default) to %d", j.Name, j.TimeoutMs, MaxTimeout.Milliseconds())
	}
	if err := jobspec.Validate(JobAsAgent(j)); err != nil {
		return fmt.Errorf("job %q: %w", j.Name, err)
	}
	return nil
}

// JobAsAgent is j as agents get it in their snapshot.
func JobAsAgent(j store.Job) *agentv1.Job {
	out := &agentv1.Job{
		Name: j.Name, Service: j.Service, Type: j.Type,
		IntervalMs: j.Interval.Milliseconds(), Repeats: j.Repeats,
		Cron: j.Cron, TimeZone: j.TimeZone, Payload: []byte(j.Payload),
		Active: j.Active, AgentLabels: j.AgentLabels, Placement: j.Placement,
		RunMissed: j.RunMissed, TimeoutMs: j.TimeoutMs,
	}
	if !j.StartAt.IsZero() {
		out.StartAtUnixMs = j.StartAt.UnixMilli()
	}
	return out
}

// NextRun is the first firing of j after t; ok is false when there is none
// left (or j does not validate).
func NextRun(j store.Job, t time.Time) (time.Time, bool) {
	sched, err := jobspec.SpecOf(JobAsAgent(j)).Schedule()
	if err != nil {
		return time.Time{}, false
	}
	return sched.Next(t)
}
