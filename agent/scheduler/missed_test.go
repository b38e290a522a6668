package scheduler

import (
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/shared/jobspec"
)

func TestNewest(t *testing.T) {
	sched, err := jobspec.Spec{Type: jobspec.TypeInterval, StartAt: t0, Interval: time.Second}.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	// A week of one-second firings: found without walking them all.
	got, ok := newest(sched, t0, t0.Add(7*24*time.Hour+500*time.Millisecond))
	if want := t0.Add(7 * 24 * time.Hour); !ok || !got.Equal(want) {
		t.Fatalf("newest = %s, %v; want %s", got, ok, want)
	}
	if got, ok := newest(sched, t0, t0.Add(500*time.Millisecond)); ok {
		t.Fatalf("newest in a gap = %s, want none", got)
	}
	cronSched, err := jobspec.Spec{Type: jobspec.TypeCron, Cron: "0 0 1 * *"}.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	got, ok = newest(cronSched, t0, time.Date(2030, 5, 20, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2030, 5, 1, 0, 0, 0, 0, time.UTC); !ok || !got.Equal(want) {
		t.Fatalf("newest monthly = %s, %v; want %s", got, ok, want)
	}
}
