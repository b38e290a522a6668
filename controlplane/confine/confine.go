// Package confine confines a process that runs code the control plane
// does not trust: the child that evaluates a deployment package. The child
// sets hard resource limits on itself and seals itself with a system call
// filter, so that the code it runs can neither open a file, start a
// program, open a socket nor read another process's memory; the parent
// starts it in a process group of its own that dies with the parent.
// All of it needs Linux; elsewhere Self, Seal and Command say they cannot.
package confine

import "time"

// Limits are what a confined process may use.
type Limits struct {
	// CPU is the CPU time it may use, user and system, counted in whole
	// seconds (rounded up): past it, the kernel kills it.
	CPU time.Duration
	// Memory is the address space, in bytes, it may add to what it has
	// when it confines itself (RLIMIT_AS): past it, an allocation fails
	// and the Go runtime ends the process with "out of memory". The Go
	// runtime reserves address space as its heap grows, so this bounds
	// the heap; counting from the start gives the code the same room
	// whatever the program reserved before (a race-detector build takes
	// hundreds of MiB more). RLIMIT_DATA would not do: memory reserved
	// first and mapped writable after, as the Go runtime maps its heap,
	// escapes it.
	Memory int64
}
