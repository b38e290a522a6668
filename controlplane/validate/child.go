package validate

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	goruntime "runtime"
	"runtime/debug"
	"time"

	"github.com/weft-dev/weft/agent/shared/svcpkg"
	"github.com/weft-dev/weft/controlplane/confine"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// maxMessageBytes bounds one problem's message in an answer: a panic's
// value is the package's own text, of any length.
const maxMessageBytes = 1 << 10

// ChildMain is the main of the child process that evaluates one package
// (weft-controlplane check-package, started by an Evaluator). Before it
// reads anything it confines itself: hard CPU-time and memory limits, and
// the system call filter of package confine. It then reads the package
// (JSON) from stdin, loads it with svcpkg.Validate, which runs its
// initialisation, and writes the outcome (JSON) to stdout. It returns the
// exit code: 0 when it wrote an outcome, even one that refuses the
// package.
func ChildMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(ChildCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		lim     confine.Limits
		timeout time.Duration
	)
	fs.DurationVar(&lim.CPU, "cpu", DefaultEvalCPU, "CPU time limit")
	fs.Int64Var(&lim.Memory, "memory", DefaultEvalMemory, "memory limit, bytes")
	fs.DurationVar(&timeout, "timeout", DefaultEvalTimeout, "bound of the package's initialisation")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := confine.Self(lim); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", ChildCommand, err)
		return 3
	}
	// A soft limit under the hard one makes the collector work hard before
	// an allocation fails; one processor leaves the others to the control
	// plane (the package cannot start goroutines) and stops the runtime
	// from re-reading its CPU quota, which the filter would refuse.
	debug.SetMemoryLimit(lim.Memory / 4 * 3)
	debug.SetMaxStack(int(min(lim.Memory/4, 256<<20)))
	goruntime.GOMAXPROCS(1)

	var ans childAnswer
	if err := confine.Seal(); err != nil {
		ans.Unsealed = err.Error()
	}
	var in childInput
	// The input is a package the door has checked: at most
	// MaxPackageBytes of source, base64 in JSON.
	if err := json.NewDecoder(io.LimitReader(stdin, 2*MaxPackageBytes)).Decode(&in); err != nil {
		ans.Error = fmt.Sprintf("read the package: %v", err)
	} else {
		// The load timeout, not a context's, so that a runaway init is
		// reported as the package's problem.
		services, err := svcpkg.Validate(context.Background(), &adminv1.PackageSource{Name: in.Name, Files: in.Files}, svcpkg.WithLoadTimeout(timeout))
		var le *svcpkg.LoadError
		switch {
		case errors.As(err, &le):
			ans.Problems = le.Problems
			for i := range ans.Problems {
				ans.Problems[i].Message = clip(ans.Problems[i].Message, maxMessageBytes)
			}
		case err != nil:
			ans.Error = err.Error()
		default:
			ans.Services = services
		}
	}
	if err := json.NewEncoder(stdout).Encode(ans); err != nil {
		fmt.Fprintf(stderr, "%s: write the answer: %v\n", ChildCommand, err)
		return 1
	}
	return 0
}
