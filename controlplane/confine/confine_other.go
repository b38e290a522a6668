//go:build !linux

package confine

import (
	"errors"
	"os/exec"
)

var errNotLinux = errors.New("confining a process needs Linux")

// Self cannot limit a process on this system.
func Self(Limits) error { return errNotLinux }

// Seal cannot filter system calls on this system.
func Seal() error { return errNotLinux }

// Command leaves cmd as it is: the child, unable to confine itself,
// refuses to run.
func Command(*exec.Cmd) {}
