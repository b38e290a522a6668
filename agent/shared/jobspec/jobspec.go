// Package jobspec reads a job's schedule (one-time, interval or cron, in a
// time zone) and checks a job as agents run it. Agents compute their
// firings with it and the control plane's door checks jobs, and tells
// their next run, with it, so that both read every schedule alike.
package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // every agent reads a time_zone the same way, with or without a system zone database

	"github.com/robfig/cron/v3"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Job types, as the API spells them.
const (
	TypeOneTime  = "one_time"
	TypeInterval = "interval"
	TypeCron     = "cron"
)

// Placements, as the API spells them.
const (
	PlacementEvery = "every"
	PlacementOne   = "one"
)

// MinInterval is the shortest period of an interval job (and of @every).
const MinInterval = time.Second

// Spec is a job's schedule as the control plane stores it.
type Spec struct {
	Type     string // one_time, interval or cron
	StartAt  time.Time
	Interval time.Duration
	Repeats  int64
	Cron     string
	TimeZone string
}

// SpecOf returns the schedule of j. An interval out of range counts as
// none; Validate names it.
func SpecOf(j *adminv1.Job) Spec {
	interval, _ := Interval(j.GetInterval())
	s := Spec{
		Type:     j.GetType(),
		Interval: interval,
		Repeats:  j.GetRepeats(),
		Cron:     j.GetCron(),
		TimeZone: j.GetTimeZone(),
	}
	if j.GetStartAt() != nil {
		s.StartAt = j.GetStartAt().AsTime().UTC()
	}
	return s
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

// Schedule gives the firings of a job.
type Schedule interface {
	// Next returns the first firing strictly after t; ok is false when
	// there is none left.
	Next(t time.Time) (next time.Time, ok bool)
}

// Schedule checks s and returns its firings. An error names the field
// that is wrong, as the API spells it.
func (s Spec) Schedule() (Schedule, error) {
	if s.StartAt.Before(time.Unix(0, 0)) && !s.StartAt.IsZero() {
		return nil, errors.New("start_at: must not be before 1970")
	}
	switch s.Type {
	case TypeOneTime:
		return s.oneTime()
	case TypeInterval:
		return s.interval()
	case TypeCron:
		return s.cron()
	default:
		return nil, fmt.Errorf("type: must be %s, %s or %s, not %q", TypeOneTime, TypeInterval, TypeCron, s.Type)
	}
}

// unused refuses the fields that a job of type s.Type does not read, so
// that a user never believes a field takes effect when it does not.
func (s Spec) unused(interval, repeats, cronExpr, zone bool) error {
	bad := func(field string) error {
		return fmt.Errorf("%s: not used by %s jobs; leave it empty", field, s.Type)
	}
	switch {
	case !interval && s.Interval != 0:
		return bad("interval")
	case !repeats && s.Repeats != 0:
		return bad("repeats")
	case !cronExpr && s.Cron != "":
		return bad("cron")
	case !zone && s.TimeZone != "":
		return bad("time_zone")
	}
	return nil
}

func (s Spec) oneTime() (Schedule, error) {
	if err := s.unused(false, false, false, false); err != nil {
		return nil, err
	}
	if s.StartAt.IsZero() {
		return nil, errors.New("start_at: required for a one_time job")
	}
	return oneTime{at: s.StartAt}, nil
}

func (s Spec) interval() (Schedule, error) {
	if err := s.unused(true, true, false, false); err != nil {
		return nil, err
	}
	if s.Interval < MinInterval {
		return nil, fmt.Errorf("interval: must be at least %s, not %s", MinInterval, s.Interval)
	}
	if s.Repeats < 0 {
		return nil, fmt.Errorf("repeats: must be 0 (forever) or more, not %d", s.Repeats)
	}
	return every{anchor: anchorOf(s.StartAt), period: s.Interval, repeats: s.Repeats}, nil
}

// parser reads 5 fields (minute first) or 6 (second first) and descriptors.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (s Spec) cron() (Schedule, error) {
	if err := s.unused(false, false, true, true); err != nil {
		return nil, err
	}
	loc, err := location(s.TimeZone)
	if err != nil {
		return nil, err
	}
	expr := strings.TrimSpace(s.Cron)
	if expr == "" {
		return nil, errors.New("cron: required for a cron job")
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, fmt.Errorf("cron: set the zone in time_zone, not in the expression %q", s.Cron)
	}
	if d, ok := strings.CutPrefix(expr, "@every "); ok {
		return everyDescriptor(strings.TrimSpace(d), s.StartAt)
	}
	if n := len(strings.Fields(expr)); !strings.HasPrefix(expr, "@") && n != 5 && n != 6 {
		return nil, fmt.Errorf("cron: expected 5 or 6 fields, found %d in %q", n, s.Cron)
	}
	parsed, err := parser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("cron: %v in %q", err, s.Cron)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok { // only @every gives another kind, and it is handled above
		return nil, fmt.Errorf("cron: unsupported expression %q", s.Cron)
	}
	spec.Location = loc
	c := cronSchedule{spec: spec, startAt: s.StartAt}
	if _, ok := c.Next(anchorOf(s.StartAt)); !ok {
		return nil, fmt.Errorf("cron: %q never fires", s.Cron)
	}
	return c, nil
}

// everyDescriptor reads "@every D" as an interval anchored at startAt, so
// that every agent computes the same firings (robfig's own @every counts
// from the moment it is asked).
func everyDescriptor(d string, startAt time.Time) (Schedule, error) {
	period, err := time.ParseDuration(d)
	if err != nil {
		return nil, fmt.Errorf("cron: @every needs a duration such as 90s or 1h30m, not %q", d)
	}
	if period < MinInterval {
		return nil, fmt.Errorf("cron: @every must be at least %s, not %s", MinInterval, period)
	}
	return every{anchor: anchorOf(startAt), period: period}, nil
}

func location(zone string) (*time.Location, error) {
	if zone == "" {
		return time.UTC, nil
	}
	if zone == "Local" { // differs from host to host
		return nil, errors.New(`time_zone: "Local" means each agent's own zone; name an IANA zone such as Europe/Berlin`)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("time_zone: unknown time zone %q", zone)
	}
	return loc, nil
}

// anchorOf is where an interval's firings are counted from: its start, or
// the Unix epoch, so that agents agree even without a start.
func anchorOf(startAt time.Time) time.Time {
	if startAt.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return startAt
}

type oneTime struct{ at time.Time }

func (o oneTime) Next(t time.Time) (time.Time, bool) {
	if t.Before(o.at) {
		return o.at, true
	}
	return time.Time{}, false
}

// every fires at anchor + k*period for k = 0, 1, ... (up to repeats-1 when
// repeats is not 0).
type every struct {
	anchor  time.Time
	period  time.Duration
	repeats int64
}

func (e every) Next(t time.Time) (time.Time, bool) {
	k := int64(0)
	if !t.Before(e.anchor) {
		k = int64(t.Sub(e.anchor)/e.period) + 1
	}
	if e.repeats > 0 && k >= e.repeats {
		return time.Time{}, false
	}
	return e.anchor.Add(time.Duration(k) * e.period), true
}

// cronSchedule fires when spec matches, at or after startAt.
type cronSchedule struct {
	spec    *cron.SpecSchedule
	startAt time.Time
}

func (c cronSchedule) Next(t time.Time) (time.Time, bool) {
	if !c.startAt.IsZero() && t.Before(c.startAt) {
		t = c.startAt.Add(-time.Nanosecond) // so that startAt itself may fire
	}
	n := c.spec.Next(t)
	if n.IsZero() {
		return time.Time{}, false
	}
	return n.UTC(), true
}

// Validate checks a job as an agent will read it. An error names the field
// that is wrong, as the API spells it.
func Validate(j *adminv1.Job) error {
	switch {
	case strings.TrimSpace(j.GetName()) == "":
		return errors.New("name: required")
	case strings.TrimSpace(j.GetService()) == "":
		return errors.New("service: required")
	}
	if _, err := Interval(j.GetInterval()); err != nil {
		return err
	}
	if _, err := SpecOf(j).Schedule(); err != nil {
		return err
	}
	switch j.GetPlacement() {
	case "", PlacementEvery, PlacementOne:
	default:
		return fmt.Errorf("placement: must be %s or %s, not %q", PlacementEvery, PlacementOne, j.GetPlacement())
	}
	if err := checkPayload([]byte(j.GetPayload())); err != nil {
		return err
	}
	if j.GetTimeoutMs() < 0 {
		return fmt.Errorf("timeout_ms: must be 0 (the service's default) or more, not %d", j.GetTimeoutMs())
	}
	for k := range j.GetAgentLabels() {
		if strings.TrimSpace(k) == "" {
			return errors.New("agent_labels: a label has an empty name")
		}
	}
	return nil
}

func checkPayload(p []byte) error {
	p = bytes.TrimSpace(p)
	if len(p) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(p, &obj); err != nil || p[0] != '{' {
		if !json.Valid(p) {
			return fmt.Errorf("payload: not valid JSON: %v", err)
		}
		return errors.New("payload: must be a JSON object")
	}
	return nil
}
