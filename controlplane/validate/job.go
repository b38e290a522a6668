package validate

import (
	"fmt"
	"time"

	"github.com/weft-dev/weft/agent/shared/jobspec"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
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
	if _, err := Interval(j.GetInterval()); err != nil {
		return fmt.Errorf("job %q: %w", j.GetName(), err)
	}
	if err := jobspec.Validate(JobAsAgent(j)); err != nil {
		return fmt.Errorf("job %q: %w", j.GetName(), err)
	}
	return nil
}

// JobAsAgent is j as agents get it in their snapshot.
func JobAsAgent(j *adminv1.Job) *agentv1.Job {
	interval, _ := Interval(j.GetInterval()) // Job refuses one out of range
	out := asAgent(j, &agentv1.Job{IntervalMs: interval.Milliseconds(), Payload: []byte(j.GetPayload())})
	if j.GetStartAt() != nil {
		out.StartAtUnixMs = j.GetStartAt().AsTime().UnixMilli()
	}
	return out
}

// NextRun is the first firing of j after t; ok is false when there is none
// left (or j does not validate).
func NextRun(j *adminv1.Job, t time.Time) (time.Time, bool) {
	sched, err := jobspec.SpecOf(JobAsAgent(j)).Schedule()
	if err != nil {
		return time.Time{}, false
	}
	return sched.Next(t)
}

// maxInterval bounds an interval: 10,000 weeks, within a time.Duration.
const maxInterval = 10_000 * 7 * 24 * time.Hour

// Interval is the length of iv, refused when a part is negative or the
// whole longer than 10,000 weeks.
func Interval(iv *adminv1.JobInterval) (time.Duration, error) {
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

// IntervalOf splits d into weeks, days, hours, minutes and seconds; nil
// for none.
func IntervalOf(d time.Duration) *adminv1.JobInterval {
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
