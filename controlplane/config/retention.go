package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Retention is how long the statistics of each resolution are kept. It is
// a flag value: a comma-separated list of resolution=duration, such as
// 1m=48h,1h=35d,1d=400d; resolutions left out keep their default.
type Retention struct {
	Minute, Hour, Day time.Duration
}

// DefaultRetention keeps minutes two days, hours 35 days, days 400 days.
func DefaultRetention() Retention {
	return Retention{Minute: 48 * time.Hour, Hour: 35 * day, Day: 400 * day}
}

const day = 24 * time.Hour

// String renders r as Set reads it.
func (r *Retention) String() string {
	return fmt.Sprintf("1m=%s,1h=%s,1d=%s", days(r.Minute), days(r.Hour), days(r.Day))
}

// Set reads a list such as 1m=72h,1d=730d over what r holds.
func (r *Retention) Set(s string) error {
	for item := range strings.SplitSeq(s, ",") {
		res, value, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return fmt.Errorf("%q: want resolution=duration, such as 1m=48h", item)
		}
		d, err := parseDays(value)
		if err != nil {
			return fmt.Errorf("%s: %w", res, err)
		}
		if d <= 0 {
			return fmt.Errorf("%s=%s: must be positive", res, value)
		}
		switch res {
		case "1m":
			r.Minute = d
		case "1h":
			r.Hour = d
		case "1d":
			r.Day = d
		default:
			return fmt.Errorf("resolution %q: want 1m, 1h or 1d", res)
		}
	}
	return nil
}

// parseDays reads a Go duration, or whole days as 35d.
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseInt(n, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q: want a duration such as 48h or 35d", s)
		}
		return time.Duration(v) * day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration such as 48h or 35d", s)
	}
	return d, nil
}

// days renders d in whole days when it is some.
func days(d time.Duration) string {
	if d > 0 && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}
