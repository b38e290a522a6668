package jobspec

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// t0 is an instant the tests count from.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNext(t *testing.T) {
	start := utc("2030-01-01T00:00:00Z")
	tests := []struct {
		name string
		spec Spec
		from time.Time
		want []string // successive firings after from
		end  bool     // and then none
	}{
		{
			name: "one_time before its start",
			spec: Spec{Type: TypeOneTime, StartAt: start},
			from: start.Add(-time.Hour),
			want: []string{"2030-01-01T00:00:00Z"},
			end:  true,
		},
		{
			name: "one_time at its start has fired",
			spec: Spec{Type: TypeOneTime, StartAt: start},
			from: start,
			end:  true,
		},
		{
			name: "interval with repeats",
			spec: Spec{Type: TypeInterval, StartAt: start, Interval: 10 * time.Second, Repeats: 3},
			from: start.Add(-time.Hour),
			want: []string{"2030-01-01T00:00:00Z", "2030-01-01T00:00:10Z", "2030-01-01T00:00:20Z"},
			end:  true,
		},
		{
			name: "interval counted from its start, not from now",
			spec: Spec{Type: TypeInterval, StartAt: start, Interval: 10 * time.Second},
			from: start.Add(15*time.Second + 123*time.Millisecond),
			want: []string{"2030-01-01T00:00:20Z", "2030-01-01T00:00:30Z"},
		},
		{
			name: "interval strictly after a firing",
			spec: Spec{Type: TypeInterval, StartAt: start, Interval: 10 * time.Second},
			from: start.Add(10 * time.Second),
			want: []string{"2030-01-01T00:00:20Z"},
		},
		{
			name: "interval of weeks",
			spec: Spec{Type: TypeInterval, StartAt: start, Interval: 2 * 7 * 24 * time.Hour},
			from: start.Add(time.Hour),
			want: []string{"2030-01-15T00:00:00Z", "2030-01-29T00:00:00Z"},
		},
		{
			name: "interval repeats run out before from",
			spec: Spec{Type: TypeInterval, StartAt: start, Interval: time.Minute, Repeats: 2},
			from: start.Add(time.Minute),
			end:  true,
		},
		{
			name: "interval without a start is anchored at the epoch",
			spec: Spec{Type: TypeInterval, Interval: 7 * time.Second},
			from: time.Unix(1000, 500).UTC(),
			want: []string{"1970-01-01T00:16:41Z", "1970-01-01T00:16:48Z"}, // 143*7 = 1001 s
		},
		{
			name: "cron with 5 fields",
			spec: Spec{Type: TypeCron, Cron: "30 9 * * 1-5"},
			from: utc("2030-01-04T10:00:00Z"), // a Friday
			want: []string{"2030-01-07T09:30:00Z", "2030-01-08T09:30:00Z"},
		},
		{
			name: "cron with 6 fields has seconds",
			spec: Spec{Type: TypeCron, Cron: "*/15 * * * * *"},
			from: utc("2030-01-01T12:00:07Z"),
			want: []string{"2030-01-01T12:00:15Z", "2030-01-01T12:00:30Z"},
		},
		{
			name: "cron fires at its start, not before",
			spec: Spec{Type: TypeCron, StartAt: utc("2030-01-01T05:00:00Z"), Cron: "0 * * * *"},
			from: utc("2029-06-01T00:00:00Z"),
			want: []string{"2030-01-01T05:00:00Z", "2030-01-01T06:00:00Z"},
		},
		{
			name: "cron start between seconds",
			spec: Spec{Type: TypeCron, StartAt: utc("2030-01-01T05:00:00.250Z"), Cron: "* * * * * *"},
			from: utc("2029-06-01T00:00:00Z"),
			want: []string{"2030-01-01T05:00:01Z"},
		},
		{
			name: "cron in a zone with daylight saving, winter",
			spec: Spec{Type: TypeCron, Cron: "0 9 * * *", TimeZone: "America/New_York"},
			from: utc("2030-01-15T00:00:00Z"),
			want: []string{"2030-01-15T14:00:00Z"},
		},
		{
			name: "cron in a zone with daylight saving, summer",
			spec: Spec{Type: TypeCron, Cron: "0 9 * * *", TimeZone: "America/New_York"},
			from: utc("2030-07-15T00:00:00Z"),
			want: []string{"2030-07-15T13:00:00Z"},
		},
		{
			name: "cron in a zone without daylight saving, winter",
			spec: Spec{Type: TypeCron, Cron: "0 9 * * *", TimeZone: "Asia/Tokyo"},
			from: utc("2030-01-15T01:00:00Z"),
			want: []string{"2030-01-16T00:00:00Z"},
		},
		{
			name: "cron in a zone without daylight saving, summer",
			spec: Spec{Type: TypeCron, Cron: "0 9 * * *", TimeZone: "Asia/Tokyo"},
			from: utc("2030-07-15T01:00:00Z"),
			want: []string{"2030-07-16T00:00:00Z"},
		},
		{
			name: "cron descriptor in a zone",
			spec: Spec{Type: TypeCron, Cron: "@daily", TimeZone: "Europe/Berlin"},
			from: utc("2030-01-15T12:00:00Z"),
			want: []string{"2030-01-15T23:00:00Z", "2030-01-16T23:00:00Z"},
		},
		{
			name: "cron descriptor hourly",
			spec: Spec{Type: TypeCron, Cron: "@hourly"},
			from: utc("2030-01-15T12:00:00Z"),
			want: []string{"2030-01-15T13:00:00Z"},
		},
		{
			name: "cron leap day",
			spec: Spec{Type: TypeCron, Cron: "0 0 29 2 *"},
			from: utc("2030-03-01T00:00:00Z"),
			want: []string{"2032-02-29T00:00:00Z"},
		},
		{
			name: "@every is anchored at the start",
			spec: Spec{Type: TypeCron, StartAt: start.Add(7 * time.Second), Cron: "@every 90s"},
			from: start.Add(time.Hour),
			want: []string{"2030-01-01T01:00:07Z", "2030-01-01T01:01:37Z"}, // 7 s + 40*90 s, + 90 s
		},
		{
			name: "@every without a start is anchored at the epoch",
			spec: Spec{Type: TypeCron, Cron: "@every 1h"},
			from: utc("2030-01-01T10:20:00Z"),
			want: []string{"2030-01-01T11:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, err := tt.spec.Schedule()
			if err != nil {
				t.Fatalf("Schedule: %v", err)
			}
			at := tt.from
			for i, w := range tt.want {
				next, ok := sched.Next(at)
				if !ok {
					t.Fatalf("firing %d: none, want %s", i, w)
				}
				if !next.Equal(utc(w)) {
					t.Fatalf("firing %d: %s, want %s", i, next.UTC().Format(time.RFC3339Nano), w)
				}
				at = next
			}
			if next, ok := sched.Next(at); tt.end && ok {
				t.Fatalf("after the last firing: %s, want none", next)
			}
		})
	}
}

// Agents that start at different times compute the same firings.
func TestNextDoesNotDependOnWhenAsked(t *testing.T) {
	for _, spec := range []Spec{
		{Type: TypeInterval, StartAt: t0, Interval: 3 * time.Second},
		{Type: TypeCron, StartAt: t0, Cron: "@every 3s"},
		{Type: TypeCron, Cron: "*/3 * * * * *"},
	} {
		sched, err := spec.Schedule()
		if err != nil {
			t.Fatal(err)
		}
		a, _ := sched.Next(t0.Add(10*time.Second + 100*time.Millisecond))
		b, _ := sched.Next(t0.Add(11*time.Second + 900*time.Millisecond))
		if want := t0.Add(12 * time.Second); !a.Equal(want) || !b.Equal(want) {
			t.Errorf("%+v: firings %s and %s, want both %s", spec, a, b, want)
		}
	}
}

func goodJob() *adminv1.Job {
	return &adminv1.Job{
		Name:        "nightly",
		Service:     "reports.build",
		Type:        TypeCron,
		Cron:        "0 2 * * *",
		TimeZone:    "Europe/Paris",
		Payload:     `{"full": true}`,
		Active:      proto.Bool(true),
		Placement:   PlacementOne,
		TimeoutMs:   60_000,
		RunMissed:   true,
		AgentLabels: map[string]string{"region": "eu"},
	}
}

func TestValidate(t *testing.T) {
	if err := Validate(goodJob()); err != nil {
		t.Fatalf("a good job: %v", err)
	}
	tests := []struct {
		name   string
		change func(j *adminv1.Job)
		want   string // the error, or its start
	}{
		{"no name", func(j *adminv1.Job) { j.Name = " " }, "name: required"},
		{"no service", func(j *adminv1.Job) { j.Service = "" }, "service: required"},
		{"unknown type", func(j *adminv1.Job) { j.Type = "hourly" }, `type: must be one_time, interval or cron, not "hourly"`},
		{"no type", func(j *adminv1.Job) { j.Type = "" }, `type: must be`},
		{"cron with 4 fields", func(j *adminv1.Job) { j.Cron = "* * * *" }, `cron: expected 5 or 6 fields, found 4 in "* * * *"`},
		{"cron with 7 fields", func(j *adminv1.Job) { j.Cron = "0 0 0 * * * 2030" }, `cron: expected 5 or 6 fields, found 7`},
		{"cron field out of range", func(j *adminv1.Job) { j.Cron = "0 25 * * *" }, `cron: `},
		{"cron not a number", func(j *adminv1.Job) { j.Cron = "x * * * *" }, `cron: `},
		{"cron unknown descriptor", func(j *adminv1.Job) { j.Cron = "@fortnightly" }, `cron: `},
		{"cron empty", func(j *adminv1.Job) { j.Cron = "" }, "cron: required for a cron job"},
		{"cron that never fires", func(j *adminv1.Job) { j.Cron = "0 0 30 2 *" }, `cron: "0 0 30 2 *" never fires`},
		{"cron with its own zone", func(j *adminv1.Job) { j.Cron = "CRON_TZ=UTC 0 2 * * *" }, "cron: set the zone in time_zone"},
		{"@every too short", func(j *adminv1.Job) { j.Cron = "@every 500ms" }, "cron: @every must be at least 1s"},
		{"@every not a duration", func(j *adminv1.Job) { j.Cron = "@every often" }, "cron: @every needs a duration"},
		{"unknown zone", func(j *adminv1.Job) { j.TimeZone = "Mars/Base" }, `time_zone: unknown time zone "Mars/Base"`},
		{"local zone", func(j *adminv1.Job) { j.TimeZone = "Local" }, `time_zone: "Local"`},
		{"repeats on a cron job", func(j *adminv1.Job) { j.Repeats = 3 }, "repeats: not used by cron jobs"},
		{"interval on a cron job", func(j *adminv1.Job) { j.Interval = IntervalOf(time.Second) }, "interval: not used by cron jobs"},
		{"interval too short", func(j *adminv1.Job) { toInterval(j); j.Interval = &adminv1.JobInterval{} }, "interval: must be at least 1s"},
		{"interval missing", func(j *adminv1.Job) { toInterval(j); j.Interval = nil }, "interval: must be at least 1s"},
		{"negative repeats", func(j *adminv1.Job) { toInterval(j); j.Repeats = -1 }, "repeats: must be 0 (forever) or more"},
		{"cron on an interval job", func(j *adminv1.Job) { toInterval(j); j.Cron = "* * * * *" }, "cron: not used by interval jobs"},
		{"time_zone on an interval job", func(j *adminv1.Job) { toInterval(j); j.TimeZone = "UTC" }, "time_zone: not used by interval jobs"},
		{"one_time without a start", func(j *adminv1.Job) { toOneTime(j); j.StartAt = nil }, "start_at: required for a one_time job"},
		{"repeats on a one_time job", func(j *adminv1.Job) { toOneTime(j); j.Repeats = 2 }, "repeats: not used by one_time jobs"},
		{"start before 1970", func(j *adminv1.Job) { toOneTime(j); j.StartAt = timestamppb.New(time.UnixMilli(-5)) }, "start_at: must not be before 1970"},
		{"unknown placement", func(j *adminv1.Job) { j.Placement = "some" }, `placement: must be every or one, not "some"`},
		{"payload an array", func(j *adminv1.Job) { j.Payload = `[1, 2]` }, "payload: must be a JSON object"},
		{"payload null", func(j *adminv1.Job) { j.Payload = `null` }, "payload: must be a JSON object"},
		{"payload not JSON", func(j *adminv1.Job) { j.Payload = `{"a":` }, "payload: not valid JSON"},
		{"negative timeout", func(j *adminv1.Job) { j.TimeoutMs = -1 }, "timeout_ms: must be 0"},
		{"empty label name", func(j *adminv1.Job) { j.AgentLabels[""] = "x" }, "agent_labels: a label has an empty name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := goodJob()
			tt.change(j)
			err := Validate(j)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestValidateAcceptsEveryType(t *testing.T) {
	for _, change := range []func(*adminv1.Job){
		toOneTime,
		toInterval,
		func(j *adminv1.Job) { j.Cron = "*/5 * * * * *"; j.TimeZone = "" },
		func(j *adminv1.Job) { j.Cron = "@every 1h30m"; j.Placement = ""; j.Payload = "" },
	} {
		j := goodJob()
		change(j)
		if err := Validate(j); err != nil {
			t.Errorf("Validate(%v) = %v", j, err)
		}
	}
}

func toInterval(j *adminv1.Job) {
	j.Type, j.Cron, j.TimeZone, j.Interval = TypeInterval, "", "", IntervalOf(time.Minute)
}

func toOneTime(j *adminv1.Job) {
	j.Type, j.Cron, j.TimeZone, j.StartAt = TypeOneTime, "", "", timestamppb.New(t0)
}
