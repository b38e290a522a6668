package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Result is the outcome of running a command-line tool.
type Result struct {
	// Stdout and Stderr are what the command printed.
	Stdout, Stderr string
	// ExitCode is the exit status; -1 when the command could not run or was
	// killed.
	ExitCode int
}

// String sums up the result for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.ExitCode, r.Stdout, r.Stderr)
}

// Ctl runs the real weftctl binary against cp with args, such as
// "deploy", "deploy/examples/hello". It does not fail the test on a non-zero
// exit; the caller checks Result.
func Ctl(t testing.TB, cp *ControlPlane, args ...string) Result {
	t.Helper()
	return CtlEnv(t, cp, nil, args...)
}

// CtlEnv is Ctl with extra KEY=VALUE environment variables, such as the
// ones a config file's ${VAR} placeholders name.
func CtlEnv(t testing.TB, cp *ControlPlane, env []string, args ...string) Result {
	t.Helper()
	full := append([]string{"--addr", cp.Addr}, args...)
	return run(t, Binary(t, CtlBinary), full, append(cp.ctlEnv(), env...)...)
}

// CtlAddr runs weftctl against the control plane at addr, which need not be
// listening.
func CtlAddr(t testing.TB, addr string, args ...string) Result {
	t.Helper()
	full := append([]string{"--addr", addr}, args...)
	return run(t, Binary(t, CtlBinary), full, "WEFT_ADDR="+addr)
}

// CtlJSON runs weftctl -o json against cp, requires exit status 0 and decodes
// stdout into v: with protojson when v is a proto.Message (int64 as strings,
// enums by name), with encoding/json otherwise. It returns the Result.
func CtlJSON(t testing.TB, cp *ControlPlane, v any, args ...string) Result {
	t.Helper()
	res := Ctl(t, cp, append([]string{"-o", "json"}, args...)...)
	if res.ExitCode != 0 {
		t.Fatalf("weftctl -o json %s: %s", strings.Join(args, " "), res)
	}
	if err := decodeJSON([]byte(res.Stdout), v); err != nil {
		t.Fatalf("weftctl -o json %s: decode output: %v\n%s", strings.Join(args, " "), err, res)
	}
	return res
}

// decodeJSON decodes data into v, with protojson for proto messages.
func decodeJSON(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		return protojson.Unmarshal(data, m)
	}
	return json.Unmarshal(data, v)
}

// Grpcurl runs the grpcurl binary pinned in go.mod with args, such as
// "-plaintext", cp.Addr, "list".
func Grpcurl(t testing.TB, args ...string) Result {
	t.Helper()
	return run(t, GrpcurlBinary(t), args)
}

// run runs bin with args under a timeout and returns what it printed.
func run(t testing.TB, bin string, args []string, env ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		t.Fatalf("run %s: %v", bin, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %s: no exit within %v\n%s", bin, strings.Join(args, " "), ctlTimeout, res)
	}
	name := bin[strings.LastIndexByte(bin, '/')+1:]
	if res.ExitCode != 0 {
		t.Logf("$ %s %s  # exit %d, stderr: %s", name, strings.Join(args, " "), res.ExitCode, strings.TrimSpace(res.Stderr))
	} else {
		t.Logf("$ %s %s  # exit 0", name, strings.Join(args, " "))
	}
	return res
}
