package scheduler

import (
	"time"

	"github.com/weft-dev/weft/agent/shared/jobspec"
)

// newest returns the newest firing of s in (after, upTo]. It looks back from
// upTo in doubling windows, so a long gap costs few steps.
func newest(s jobspec.Schedule, after, upTo time.Time) (time.Time, bool) {
	for d := time.Second; ; d *= 2 {
		from := upTo.Add(-d)
		if !from.After(after) || d > 1<<61 {
			from = after
		}
		if n, ok := s.Next(from); ok && !n.After(upTo) {
			for {
				m, ok := s.Next(n)
				if !ok || m.After(upTo) {
					return n, true
				}
				n = m
			}
		}
		if from.Equal(after) {
			return time.Time{}, false
		}
	}
}
