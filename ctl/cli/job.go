package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newJobCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "job",
		Aliases: []string{"jobs"},
		Short:   "Manage scheduled jobs, which invoke a service on agents on a schedule",
	}
	cmd.AddCommand(
		a.newJobCreateCmd(),
		a.newJobListCmd(),
		a.newJobGetCmd(),
		a.newJobUpdateCmd(),
		a.newJobDeleteCmd(),
		a.newJobPauseCmd(),
		a.newJobResumeCmd(),
		a.newJobRunCmd(),
		a.newJobHistoryCmd(),
	)
	return cmd
}

// Job types, placements and run outcomes, as the API spells them.
const (
	jobOneTime     = "one_time"
	jobInterval    = "interval"
	jobCron        = "cron"
	placeEvery     = "every"
	placeOne       = "one"
	outcomeOK      = "ok"
	outcomeRunning = "running"
)

var (
	jobTypes   = []string{jobOneTime, jobInterval, jobCron}
	placements = []string{placeEvery, placeOne}
	// intervalFlags set the parts of a JobInterval, in its field order.
	intervalFlags = []string{"weeks", "days", "hours", "minutes", "seconds"}
)

// jobFlagHelp explains the flags shared by create and update.
const jobFlagHelp = `Types and the flags they take:

  one_time  --start (required): the one firing
  interval  --every 1h30m, or --weeks --days --hours --minutes --seconds
            (the parts add up); --start is the first firing (default: when
            created); --repeats N stops after N firings (0: forever)
  cron      --cron EXPR: 5 fields (minute hour day month weekday), 6 with
            seconds first, a descriptor such as @hourly, or @every 90s;
            --tz ZONE reads it in an IANA zone (default UTC); --start is
            the earliest firing

--start is an RFC 3339 time, such as 2026-11-28T10:00:00Z. --payload is the
service's JSON input: the JSON itself, @FILE, or - to read standard input.
--agent-label KEY=VALUE (repeat for several) selects the agents that carry
every label; none selects every agent. --placement every (the default) runs
each firing on each selected agent; one runs it on exactly one of them.
--run-missed makes an agent that was down at a firing run the newest missed
firing once when it is back.`

// jobFlags set a job's fields, for create and update.
type jobFlags struct {
	service, typ, start, every, cron, tz, payload, placement, timeout string
	description                                                       string
	interval                                                          [5]int64 // by intervalFlags
	repeats                                                           int64
	labels                                                            []string
	runMissed, active, inactive                                       bool
}

// register adds the flags to cmd; update also gets --active.
func (f *jobFlags) register(cmd *cobra.Command, update bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.service, "service", "", "service the job invokes")
	fs.StringVar(&f.description, "description", "", "what the job is for, at most 1024 characters")
	fs.StringVar(&f.typ, "type", "", "one_time, interval or cron")
	fs.StringVar(&f.start, "start", "", "RFC 3339 time the schedule begins, such as 2026-11-28T10:00:00Z")
	fs.StringVar(&f.every, "every", "", "interval as a duration, such as 1h30m (instead of --weeks ... --seconds)")
	for i, name := range intervalFlags {
		fs.Int64Var(&f.interval[i], name, 0, "interval part: "+name)
	}
	fs.Int64Var(&f.repeats, "repeats", 0, "firings of an interval job; 0 for no end")
	fs.StringVar(&f.cron, "cron", "", "cron expression, such as \"0 6 * * 1-5\" or @hourly")
	fs.StringVar(&f.tz, "tz", "", "IANA time zone of the cron expression, such as Europe/Berlin (default UTC)")
	fs.StringVar(&f.payload, "payload", "", "the service's JSON input: JSON, @FILE, or - for standard input (default {})")
	fs.StringArrayVar(&f.labels, "agent-label", nil, "run on agents with this label, KEY=VALUE; repeat for several (default: every agent)")
	fs.StringVar(&f.placement, "placement", "", "every (each selected agent runs each firing, the default) or one (exactly one does)")
	fs.BoolVar(&f.runMissed, "run-missed", false, "run the newest missed firing once when an agent is back")
	fs.StringVar(&f.timeout, "timeout", "", "bound on one run, such as 30s; 0 for the service's default")
	fs.BoolVar(&f.inactive, "inactive", false, "paused: the job does not fire until it is resumed")
	if update {
		fs.BoolVar(&f.active, "active", false, "let the job fire again")
		cmd.MarkFlagsMutuallyExclusive("active", "inactive")
	}
}

// apply sets the fields of j whose flags were given and returns their
// proto field names, in field order, as an update mask wants them. It reads
// a --payload of - from stdin.
func (f *jobFlags) apply(cmd *cobra.Command, j *adminv1.Job, stdin io.Reader) ([]string, error) {
	changed := cmd.Flags().Changed
	var mask []string
	if changed("service") {
		if strings.TrimSpace(f.service) == "" {
			return nil, errors.New("--service must not be empty")
		}
		j.Service = strings.TrimSpace(f.service)
		mask = append(mask, "service")
	}
	if changed("type") {
		typ, err := oneOf("--type", f.typ, jobTypes)
		if err != nil {
			return nil, err
		}
		j.Type = typ
		mask = append(mask, "type")
	}
	if changed("start") {
		start, err := parseStart(f.start)
		if err != nil {
			return nil, err
		}
		j.StartAt = start
		mask = append(mask, "start_at")
	}
	iv, given, err := f.parseInterval(cmd)
	if err != nil {
		return nil, err
	}
	if given {
		j.Interval = iv
		mask = append(mask, "interval")
	}
	if changed("repeats") {
		if f.repeats < 0 {
			return nil, fmt.Errorf("--repeats %d: must not be negative", f.repeats)
		}
		j.Repeats = f.repeats
		mask = append(mask, "repeats")
	}
	if changed("cron") {
		expr, err := parseCron(f.cron)
		if err != nil {
			return nil, err
		}
		j.Cron = expr
		mask = append(mask, "cron")
	}
	if changed("tz") {
		j.TimeZone = strings.TrimSpace(f.tz)
		mask = append(mask, "time_zone")
	}
	if changed("payload") {
		p, err := readPayload(f.payload, stdin)
		if err != nil {
			return nil, err
		}
		j.Payload = p
		mask = append(mask, "payload")
	}
	if changed("active") || changed("inactive") {
		j.Active = proto.Bool(f.active || !f.inactive)
		mask = append(mask, "active")
	}
	if changed("agent-label") {
		labels, err := parsePairs("--agent-label", f.labels)
		if err != nil {
			return nil, err
		}
		j.AgentLabels = labels
		mask = append(mask, "agent_labels")
	}
	if changed("placement") {
		p, err := oneOf("--placement", f.placement, placements)
		if err != nil {
			return nil, err
		}
		j.Placement = p
		mask = append(mask, "placement")
	}
	if changed("run-missed") {
		j.RunMissed = f.runMissed
		mask = append(mask, "run_missed")
	}
	if changed("timeout") {
		ms, err := parseMillis(f.timeout)
		if err != nil {
			return nil, fmt.Errorf("--timeout %q: %w", f.timeout, err)
		}
		j.TimeoutMs = ms
		mask = append(mask, "timeout_ms")
	}
	if changed("description") {
		j.Description = f.description
		mask = append(mask, "description")
	}
	return mask, nil
}

// foreignFlags are, by job type, the flags that set fields the type does
// not use.
var foreignFlags = map[string][]string{
	jobOneTime:  append(slices.Clone(intervalFlags), "every", "repeats", "cron", "tz"),
	jobInterval: {"cron", "tz"},
	jobCron:     append(slices.Clone(intervalFlags), "every", "repeats"),
}

// checkType refuses flags that set fields typ does not use; on create it
// also wants the flags typ needs. An empty typ (an update that keeps the
// type) checks nothing: the control plane knows the stored type. Flags given
// as "" or 0 clear a field, which any type may do.
func (f *jobFlags) checkType(cmd *cobra.Command, typ string, create bool) error {
	set := func(name string) bool {
		fl := cmd.Flags().Lookup(name)
		return fl != nil && fl.Changed && fl.Value.String() != "" && fl.Value.String() != "0"
	}
	for _, name := range foreignFlags[typ] {
		if set(name) {
			return fmt.Errorf("--%s does not apply to --type %s", name, typ)
		}
	}
	if !create {
		return nil
	}
	switch typ {
	case jobOneTime:
		if !set("start") {
			return errors.New("--type one_time needs --start, the time it runs")
		}
	case jobInterval:
		if !set("every") && !slices.ContainsFunc(intervalFlags, set) {
			return errors.New("--type interval needs --every, or --weeks, --days, --hours, --minutes or --seconds")
		}
	case jobCron:
		if !set("cron") {
			return errors.New("--type cron needs --cron")
		}
	}
	return nil
}

// parseInterval reads --every or the interval parts. given is false when
// none of them was given; --every "" clears the interval.
func (f *jobFlags) parseInterval(cmd *cobra.Command) (iv *adminv1.JobInterval, given bool, err error) {
	changed := cmd.Flags().Changed
	parts := slices.DeleteFunc(slices.Clone(intervalFlags), func(n string) bool { return !changed(n) })
	switch {
	case changed("every") && len(parts) > 0:
		return nil, false, fmt.Errorf("--every and --%s: give the interval either as --every or as parts, not both", parts[0])
	case changed("every"):
		iv, err := parseEvery(f.every)
		return iv, true, err
	case len(parts) == 0:
		return nil, false, nil
	}
	positive := false
	for i, name := range intervalFlags {
		if f.interval[i] < 0 {
			return nil, false, fmt.Errorf("--%s %d: must not be negative", name, f.interval[i])
		}
		positive = positive || f.interval[i] > 0
	}
	if !positive {
		return nil, false, fmt.Errorf("--%s: the interval must be longer than 0", strings.Join(parts, ", --"))
	}
	v := f.interval
	return &adminv1.JobInterval{Weeks: v[0], Days: v[1], Hours: v[2], Minutes: v[3], Seconds: v[4]}, true, nil
}

// parseEvery turns an --every duration into hours, minutes and seconds;
// "" clears the interval.
func parseEvery(s string) (*adminv1.JobInterval, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	switch {
	case err != nil:
		return nil, fmt.Errorf("--every %q: want a duration such as 90s, 15m or 1h30m", s)
	case d <= 0:
		return nil, fmt.Errorf("--every %q: must be longer than 0", s)
	case d%time.Second != 0:
		return nil, fmt.Errorf("--every %q: must be whole seconds", s)
	}
	return &adminv1.JobInterval{
		Hours:   int64(d / time.Hour),
		Minutes: int64(d % time.Hour / time.Minute),
		Seconds: int64(d % time.Minute / time.Second),
	}, nil
}

// oneOf lower-cases a flag value and refuses one not in want.
func oneOf(flag, v string, want []string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	if !slices.Contains(want, s) {
		return "", fmt.Errorf("%s %q: want %s or %s", flag, v, strings.Join(want[:len(want)-1], ", "), want[len(want)-1])
	}
	return s, nil
}

// parseStart parses --start; "" clears it.
func parseStart(s string) (*timestamppb.Timestamp, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, fmt.Errorf("--start %q: want an RFC 3339 time such as 2026-11-28T10:00:00Z", s)
	}
	return timestamppb.New(t), nil
}

// parseCron checks the shape of a --cron expression: a descriptor, or 5 or
// 6 fields. The control plane parses it; "" clears it.
func parseCron(s string) (string, error) {
	expr := strings.Join(strings.Fields(s), " ")
	if expr == "" || strings.HasPrefix(expr, "@") {
		return expr, nil
	}
	if n := len(strings.Fields(expr)); n != 5 && n != 6 {
		return "", fmt.Errorf("--cron %q: has %d fields; want 5 (minute hour day month weekday), 6 with seconds first, or a descriptor such as @hourly", s, n)
	}
	return expr, nil
}

// readPayload reads --payload: the JSON itself, @FILE or - (all of
// stdin), and checks that it is one JSON value. "" clears it.
func readPayload(v string, stdin io.Reader) (string, error) {
	src, b := "--payload", []byte(v)
	switch {
	case v == "":
		return "", nil
	case v == "-":
		src = "--payload -"
		var err error
		if b, err = io.ReadAll(stdin); err != nil {
			return "", fmt.Errorf("--payload -: read standard input: %w", err)
		}
	case strings.HasPrefix(v, "@"):
		path := v[1:]
		if path == "" {
			return "", errors.New("--payload @: want @FILE, the file holding the JSON")
		}
		src = "--payload " + v
		var err error
		if b, err = os.ReadFile(path); err != nil {
			// The error names the path: "open job.json: no such file or directory".
			return "", fmt.Errorf("--payload: %w", err)
		}
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: is empty; want a JSON value", src)
	}
	if err := checkJSON([]byte(s)); err != nil {
		return "", fmt.Errorf("%s is not valid JSON: %w", src, err)
	}
	return s, nil
}

// scheduleOf renders a job's schedule, such as "every 1h30m" or
// "cron 0 * * * * (Europe/Berlin)".
func scheduleOf(j *adminv1.Job) string {
	switch j.GetType() {
	case jobOneTime:
		if j.GetStartAt() == nil {
			return "once"
		}
		return "once at " + stamp(j.GetStartAt())
	case jobInterval:
		s := "every " + intervalOf(j.GetInterval())
		if r := j.GetRepeats(); r > 0 {
			s += fmt.Sprintf(", %d times", r)
		}
		return s
	case jobCron:
		tz := j.GetTimeZone()
		if tz == "" {
			tz = "UTC"
		}
		return fmt.Sprintf("cron %s (%s)", j.GetCron(), tz)
	}
	return j.GetType()
}

// intervalOf renders an interval by its parts as stored, such as 1w2d or
// 1h30m.
func intervalOf(iv *adminv1.JobInterval) string {
	var b strings.Builder
	for _, p := range []struct {
		n    int64
		unit string
	}{{iv.GetWeeks(), "w"}, {iv.GetDays(), "d"}, {iv.GetHours(), "h"}, {iv.GetMinutes(), "m"}, {iv.GetSeconds(), "s"}} {
		if p.n != 0 {
			b.WriteString(strconv.FormatInt(p.n, 10) + p.unit)
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

// placementOf names a job's placement; empty means every.
func placementOf(j *adminv1.Job) string {
	if j.GetPlacement() == "" {
		return placeEvery
	}
	return j.GetPlacement()
}

// stateOf says whether a job fires: active or paused. Unset means active.
func stateOf(j *adminv1.Job) string {
	if j.Active == nil || j.GetActive() {
		return "active"
	}
	return "paused"
}

// labelsOf renders agent labels sorted, such as "env=prod,region=eu".
func labelsOf(labels map[string]string) string {
	out := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		out = append(out, k+"="+labels[k])
	}
	return strings.Join(out, ",")
}

// runDuration renders how long a run took; empty while it runs.
func runDuration(r *adminv1.JobRun) string {
	if r.GetOutcome() == outcomeRunning {
		return ""
	}
	d := time.Duration(r.GetDurationUs()) * time.Microsecond
	if d < time.Second {
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// stamp renders a timestamp in local time as RFC 3339; empty for none.
func stamp(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().Local().Format(time.RFC3339)
}

// tableTime renders a timestamp for a table column, in local time; empty
// for none.
func tableTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().Local().Format(historyTime)
}

// whenNext renders a time that may lie ahead, in full with how far it is,
// such as "2026-03-04T06:00:00Z (in 53m)"; "none" for no time.
func whenNext(now time.Time, ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "none"
	}
	d := ts.AsTime().Sub(now)
	if d < 0 {
		return when(now, ts)
	}
	var in string
	switch {
	case d < time.Second:
		in = "now"
	case d < time.Minute:
		in = fmt.Sprintf("in %ds", int(d/time.Second))
	case d < time.Hour:
		in = fmt.Sprintf("in %dm", int(d/time.Minute))
	case d < 48*time.Hour:
		in = fmt.Sprintf("in %dh", int(d/time.Hour))
	default:
		in = fmt.Sprintf("in %dd", int(d/(24*time.Hour)))
	}
	return fmt.Sprintf("%s (%s)", stamp(ts), in)
}
