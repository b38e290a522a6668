package recent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// logAt writes one record at time at through h.
func logAt(t *testing.T, h slog.Handler, at time.Time, level slog.Level, msg string) {
	t.Helper()
	if err := h.Handle(context.Background(), slog.NewRecord(at, level, msg, 0)); err != nil {
		t.Fatal(err)
	}
}

// msgs returns the msg of each JSON line.
func msgs(t *testing.T, lines []string) []string {
	t.Helper()
	var out []string
	for _, l := range lines {
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, rec.Msg)
	}
	return out
}

func TestLogsTeeAndRender(t *testing.T) {
	var inner bytes.Buffer
	logs := NewLogs(slog.NewTextHandler(&inner, &slog.HandlerOptions{Level: slog.LevelInfo}))
	log := slog.New(logs).With("agent", "edge-1").WithGroup("req")
	log.Debug("hidden")
	log.Info("served", "cid", "c1", "status", 200)
	if !strings.Contains(inner.String(), "served") || strings.Contains(inner.String(), "hidden") {
		t.Fatalf("the agent's handler got %q", inner.String())
	}
	lines, truncated := logs.Lines(time.Time{}, 0)
	if len(lines) != 1 || truncated {
		t.Fatalf("lines %q, truncated %v", lines, truncated)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || strings.Contains(lines[0], "\n") {
		t.Fatalf("line %q: %v", lines[0], err)
	}
	req, _ := rec["req"].(map[string]any)
	if rec["msg"] != "served" || rec["level"] != "INFO" || rec["agent"] != "edge-1" || req["cid"] != "c1" || req["status"] != 200.0 {
		t.Fatalf("line %q", lines[0])
	}
}

func TestLogsLines(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	logs := newLogs(slog.NewJSONHandler(&bytes.Buffer{}, nil), 5, 1<<20)
	for i := range 8 { // lines 0, 1 and 2 are evicted
		logAt(t, logs, at(i), slog.LevelInfo, fmt.Sprint("m", i))
	}
	tests := []struct {
		name          string
		since         time.Time
		limit         int
		want          []string
		wantTruncated bool
	}{
		{"all kept", time.Time{}, 0, []string{"m3", "m4", "m5", "m6", "m7"}, true},
		{"newest two", time.Time{}, 2, []string{"m6", "m7"}, true},
		{"since a kept line", at(5), 0, []string{"m5", "m6", "m7"}, false},
		{"since a kept line, limited", at(5), 1, []string{"m7"}, false},
		{"since the newest evicted line", at(2), 0, []string{"m3", "m4", "m5", "m6", "m7"}, true},
		{"since between", at(2).Add(time.Millisecond), 0, []string{"m3", "m4", "m5", "m6", "m7"}, false},
		{"since the future", at(100), 0, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, truncated := logs.Lines(tt.since, tt.limit)
			if got := msgs(t, lines); !slices.Equal(got, tt.want) || truncated != tt.wantTruncated {
				t.Fatalf("got %v truncated %v, want %v %v", got, truncated, tt.want, tt.wantTruncated)
			}
		})
	}
}

func TestLogsByteBound(t *testing.T) {
	logs := newLogs(slog.NewJSONHandler(&bytes.Buffer{}, nil), 1000, 1000)
	now := time.Now()
	for i := range 50 {
		logAt(t, logs, now, slog.LevelInfo, fmt.Sprint(i, strings.Repeat("x", 50)))
	}
	lines, truncated := logs.Lines(time.Time{}, 0)
	size := 0
	for _, l := range lines {
		size += len(l)
	}
	if size > 1000 || len(lines) < 5 || !truncated || !strings.Contains(lines[len(lines)-1], `"msg":"49x`) {
		t.Fatalf("%d lines of %d bytes, truncated %v", len(lines), size, truncated)
	}
	logAt(t, logs, now, slog.LevelInfo, strings.Repeat("y", 100<<10))
	lines, _ = logs.Lines(time.Time{}, 1)
	var rec struct {
		Msg       string
		Truncated bool
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || !rec.Truncated || len(lines[0]) > maxLogLineBytes {
		t.Fatalf("a long line kept as %d bytes: %v", len(lines[0]), err)
	}
}

func TestLogsRecentErrors(t *testing.T) {
	logs := newLogs(slog.NewJSONHandler(&bytes.Buffer{}, nil), 3, 1<<20)
	if got := logs.RecentErrors(); len(got) != 0 {
		t.Fatalf("RecentErrors = %q before any", got)
	}
	now := time.Now()
	for i := range 15 {
		logAt(t, logs, now, slog.LevelError, fmt.Sprint("e", i))
		logAt(t, logs, now, slog.LevelWarn, fmt.Sprint("w", i))
	}
	logAt(t, logs, now, slog.LevelError+4, "worse")
	want := []string{"worse", "e14", "e13", "e12", "e11", "e10", "e9", "e8", "e7", "e6"}
	if got := msgs(t, logs.RecentErrors()); !slices.Equal(got, want) {
		t.Fatalf("RecentErrors = %v, want %v (they outlive the 3 lines kept)", got, want)
	}
}

func TestLogsConcurrent(t *testing.T) {
	logs := newLogs(slog.NewJSONHandler(&bytes.Buffer{}, nil), 100, 1<<20)
	log := slog.New(logs)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			l := log.With("g", g)
			for i := range 200 {
				l.Error("failed", "i", i)
				logs.Lines(time.Now().Add(-time.Second), 10)
				logs.RecentErrors()
			}
		})
	}
	wg.Wait()
	lines, _ := logs.Lines(time.Time{}, 0)
	if len(lines) != 100 || len(logs.RecentErrors()) != RecentErrors {
		t.Fatalf("%d lines, %d errors", len(lines), len(logs.RecentErrors()))
	}
}
