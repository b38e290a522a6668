package scheduler

import (
	"slices"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/shared/jobspec"
)

// TestCronAcrossDaylightSaving pins what a cron job in a zone with
// daylight saving does, as the README says: a wall-clock time the clock
// skips in spring does not fire that day, and one it repeats in autumn
// fires twice. Jobs that must fire once a day whatever happens run in UTC.
func TestCronAcrossDaylightSaving(t *testing.T) {
	sched, err := jobspec.Spec{Type: jobspec.TypeCron, Cron: "30 2 * * *", TimeZone: "Europe/Berlin"}.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	firings := func(from, to time.Time) []string {
		var out []string
		for at, ok := sched.Next(from); ok && at.Before(to); at, ok = sched.Next(at) {
			out = append(out, at.In(berlin).Format("Jan 2 15:04 MST"))
		}
		return out
	}
	spring := firings(time.Date(2026, 3, 28, 0, 0, 0, 0, berlin), time.Date(2026, 3, 31, 0, 0, 0, 0, berlin))
	if want := []string{"Mar 28 02:30 CET", "Mar 30 02:30 CEST"}; !slices.Equal(spring, want) {
		t.Errorf("spring forward: %v, want %v (02:30 does not exist on Mar 29)", spring, want)
	}
	autumn := firings(time.Date(2026, 10, 24, 0, 0, 0, 0, berlin), time.Date(2026, 10, 27, 0, 0, 0, 0, berlin))
	if want := []string{"Oct 24 02:30 CEST", "Oct 25 02:30 CEST", "Oct 25 02:30 CET", "Oct 26 02:30 CET"}; !slices.Equal(autumn, want) {
		t.Errorf("fall back: %v, want %v (02:30 happens twice on Oct 25)", autumn, want)
	}
}
