package recent

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// Bounds of the log lines Logs keeps.
const (
	LogLines        = 5000
	LogBytes        = 2 << 20
	RecentErrors    = 10
	maxLogLineBytes = 16 << 10
)

// Logs is an slog.Handler that passes every record to the agent's handler
// and keeps it too, rendered as one JSON line, among the last LogLines
// lines or LogBytes bytes, whichever is fewer, and the last RecentErrors
// lines of level ERROR or above apart. Handlers derived with WithAttrs and
// WithGroup share what is kept.
type Logs struct {
	inner slog.Handler
	json  slog.Handler // writes into keep
	keep  *logRing
}

var _ slog.Handler = (*Logs)(nil)

// NewLogs returns a handler that tees what inner handles into a ring. It
// handles what inner is enabled for.
func NewLogs(inner slog.Handler) *Logs {
	return newLogs(inner, LogLines, LogBytes)
}

func newLogs(inner slog.Handler, maxLines, maxBytes int) *Logs {
	r := &logRing{maxLines: maxLines, maxBytes: maxBytes}
	return &Logs{inner: inner, json: slog.NewJSONHandler(r, nil), keep: r}
}

// Enabled reports whether the agent's handler handles level.
func (l *Logs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.inner.Enabled(ctx, level)
}

// Handle passes r on, then keeps it.
func (l *Logs) Handle(ctx context.Context, r slog.Record) error {
	err := l.inner.Handle(ctx, r)
	at := r.Time
	if at.IsZero() {
		at = time.Now()
	}
	// The JSON handler writes each record with one Write; formatting one
	// record at a time tells that Write the record's time and level.
	l.keep.format.Lock()
	l.keep.at, l.keep.level = at, r.Level
	_ = l.json.Handle(ctx, r) // writing to the ring cannot fail
	l.keep.format.Unlock()
	return err
}

// WithAttrs returns a handler that adds attrs, keeping into the same ring.
func (l *Logs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Logs{inner: l.inner.WithAttrs(attrs), json: l.json.WithAttrs(attrs), keep: l.keep}
}

// WithGroup returns a handler that opens group, keeping into the same ring.
func (l *Logs) WithGroup(name string) slog.Handler {
	return &Logs{inner: l.inner.WithGroup(name), json: l.json.WithGroup(name), keep: l.keep}
}

// Lines returns the kept lines written at or after since (all of them when
// since is zero), oldest first, at most the newest limit when limit > 0.
// truncated says lines of that period were written but are no longer kept.
func (l *Logs) Lines(since time.Time, limit int) (lines []string, truncated bool) {
	return l.keep.lines(since, limit)
}

// RecentErrors returns the newest lines of level ERROR or above, newest
// first, at most RecentErrors of them.
func (l *Logs) RecentErrors() []string {
	return l.keep.recentErrors()
}

// logRing keeps log lines.
type logRing struct {
	maxLines, maxBytes int

	format sync.Mutex // held while one record is formatted
	at     time.Time  // that record's time
	level  slog.Level // and level

	mu      sync.Mutex
	kept    []logLine // oldest first, from head
	head    int
	bytes   int
	evicted time.Time // the newest evicted line's time; zero when none was
	errors  [RecentErrors]string
	errN    int // errors written, ever
}

type logLine struct {
	at   time.Time
	line string
}

// Write keeps one rendered record. It is called with format held.
func (r *logRing) Write(p []byte) (int, error) {
	n := len(p)
	if n > 0 && p[n-1] == '\n' {
		p = p[:n-1]
	}
	line := string(p)
	if len(line) > maxLogLineBytes {
		line = cutLine(line, r.at, r.level)
	}
	r.add(logLine{at: r.at, line: line}, r.level >= slog.LevelError)
	return n, nil
}

// cutLine replaces a line too long to keep with a JSON record that holds
// its start.
func cutLine(line string, at time.Time, level slog.Level) string {
	b, _ := json.Marshal(struct {
		Time      time.Time `json:"time"`
		Level     string    `json:"level"`
		Msg       string    `json:"msg"`
		Truncated bool      `json:"truncated"`
	}{at, level.String(), clip(line, maxLogLineBytes/2), true})
	return string(b)
}

func (r *logRing) add(l logLine, isError bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kept = append(r.kept, l)
	r.bytes += len(l.line)
	for len(r.kept)-r.head > r.maxLines || r.bytes > r.maxBytes && len(r.kept)-r.head > 1 {
		old := r.kept[r.head]
		r.kept[r.head] = logLine{}
		r.head++
		r.bytes -= len(old.line)
		if old.at.After(r.evicted) {
			r.evicted = old.at
		}
	}
	if r.head > len(r.kept)/2 && r.head > 64 {
		r.kept = append([]logLine(nil), r.kept[r.head:]...)
		r.head = 0
	}
	if isError {
		r.errors[r.errN%RecentErrors] = l.line
		r.errN++
	}
}

func (r *logRing) lines(since time.Time, limit int) ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.kept[r.head:] {
		if !l.at.Before(since) { // records race to the ring, so filter every line
			out = append(out, l.line)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	truncated := !r.evicted.IsZero() && !since.After(r.evicted)
	return out, truncated
}

func (r *logRing) recentErrors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := min(r.errN, RecentErrors)
	out := make([]string, n)
	for i := range n {
		out[i] = r.errors[(r.errN-1-i)%RecentErrors]
	}
	return out
}
