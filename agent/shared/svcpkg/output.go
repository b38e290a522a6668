package svcpkg

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
)

// panicLine is what Yaegi writes to the interpreter's standard error when
// interpreted code panics: `src/weftsvc/a.go:9:3: panic: ...`.
var panicLine = regexp.MustCompile(`^src/` + importPath + `/(\S+\.go:\d+:\d+): panic`)

// outputs receives a package's standard output and error and logs it line
// by line. It also remembers where the first panic was reported, which a
// failed load uses.
type outputs struct {
	stdout, stderr *lineWriter

	mu       sync.Mutex
	panicPos *Problem
}

func newOutputs(logger *slog.Logger) *outputs {
	o := &outputs{}
	o.stdout = &lineWriter{logger: logger, stream: "stdout", level: slog.LevelInfo}
	o.stderr = &lineWriter{logger: logger, stream: "stderr", level: slog.LevelWarn, onLine: o.sawStderr}
	return o
}

func (o *outputs) sawStderr(line string) {
	m := panicLine.FindStringSubmatch(line)
	if m == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.panicPos == nil {
		p := parseProblem(m[1] + ": ")
		o.panicPos = &p
	}
}

func (o *outputs) panicAt() *Problem {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.panicPos
}

// maxLine is the longest line kept; longer output is logged in pieces.
const maxLine = 16 << 10

// lineWriter logs each line written to it.
type lineWriter struct {
	logger *slog.Logger
	stream string
	level  slog.Level
	onLine func(string)

	mu  sync.Mutex
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		var line string
		switch i := bytes.IndexByte(w.buf, '\n'); {
		case i >= 0 && i <= maxLine:
			line, w.buf = string(w.buf[:i]), w.buf[i+1:]
		case len(w.buf) >= maxLine:
			line, w.buf = string(w.buf[:maxLine]), w.buf[maxLine:]
		default:
			return len(p), nil
		}
		w.logger.Log(context.Background(), w.level, "service output",
			"stream", w.stream, "line", strings.ReplaceAll(line, "src/"+importPath+"/", ""))
		if w.onLine != nil {
			w.onLine(line)
		}
	}
}
