package svcpkg

import (
	"context"
	"errors"
	"fmt"
	"go/token"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/traefik/yaegi/interp"
)

// Problem is one thing wrong with a package's code. File is "" for a
// problem of the package as a whole; Line and Col are 0 when unknown.
type Problem struct {
	File    string
	Line    int
	Col     int
	Message string
}

// String returns the problem as "file:line:col: message", leaving out the
// parts that are unknown.
func (p Problem) String() string {
	switch {
	case p.File == "":
		return p.Message
	case p.Line == 0:
		return p.File + ": " + p.Message
	case p.Col == 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
}

func problemAt(pos token.Position, msg string) Problem {
	return Problem{File: pos.Filename, Line: pos.Line, Col: pos.Column, Message: msg}
}

// LoadError reports what is wrong with a package's code, one problem per
// line.
type LoadError struct {
	Problems []Problem
}

// Error returns the problems, one "file:line:col: message" per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

var (
	// yaegiPrefix is what Yaegi puts before the message of an error in an
	// imported package: `1:21: import "weftsvc" error: `.
	yaegiPrefix = regexp.MustCompile(`^\d+:\d+: import "` + importPath + `" error: `)
	// filePos is a message that starts with file:line:col.
	filePos = regexp.MustCompile(`^([^:\s]+\.go):(\d+):(\d+): (.*)$`)
)

// loadError turns an error from evaluating a package into a *LoadError.
// panicAt is where Yaegi said a panic happened, if it did.
func loadError(err error, panicAt *Problem, timeout time.Duration) *LoadError {
	if errors.Is(err, context.DeadlineExceeded) {
		return &LoadError{Problems: []Problem{{Message: fmt.Sprintf(
			"initialisation did not finish within %s: an init function or package variable may loop forever", timeout)}}}
	}
	var p interp.Panic
	if errors.As(err, &p) {
		v := p.Value
		if rv, ok := v.(reflect.Value); ok && rv.IsValid() && rv.CanInterface() {
			v = rv.Interface()
		}
		if panicAt != nil {
			pr := *panicAt
			pr.Message = fmt.Sprintf("panic during initialisation: %v", v)
			return &LoadError{Problems: []Problem{pr}}
		}
		return &LoadError{Problems: []Problem{{Message: fmt.Sprintf(
			"the interpreter failed on this package (%v); it may use a Go feature the interpreter does not support", v)}}}
	}
	var probs []Problem
	for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
		probs = append(probs, parseProblem(line))
	}
	return &LoadError{Problems: probs}
}

// parseProblem parses one line of a Yaegi error, dropping Yaegi's prefix and
// the package's path inside the interpreter.
func parseProblem(line string) Problem {
	line = yaegiPrefix.ReplaceAllString(line, "")
	line = strings.ReplaceAll(line, "src/"+importPath+"/", "")
	m := filePos.FindStringSubmatch(line)
	if m == nil {
		return Problem{Message: line}
	}
	l, _ := strconv.Atoi(m[2])
	c, _ := strconv.Atoi(m[3])
	return Problem{File: m[1], Line: l, Col: c, Message: m[4]}
}
