package cli

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// deadAddr returns a local address with nothing listening on it.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestUnreachable(t *testing.T) {
	addr := deadAddr(t)
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"service", "list", "--addr", addr, "--plaintext"}, &stdout, &stderr)
	want := "cannot reach the control plane at " + addr + ": connection refused (set --addr, WEFT_ADDR or a context)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("code = %v, want Unavailable", status.Code(err))
	}
	if stdout.Len()+stderr.Len() != 0 {
		t.Errorf("wrote %q / %q; main prints the error", stdout.String(), stderr.String())
	}
}

func TestNotAGRPCServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, _, err = runApp(nil, "--addr", lis.Addr().String(), "channel", "list")
	prefix := "cannot reach the control plane at " + lis.Addr().String() + ": "
	if err == nil || !strings.HasPrefix(err.Error(), prefix) || strings.Contains(err.Error(), "desc =") {
		t.Fatalf("error = %v", err)
	}
}

func TestAddr(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{name: "from WEFT_ADDR", env: map[string]string{"WEFT_ADDR": e.addr}},
		{name: "flag beats WEFT_ADDR", env: map[string]string{"WEFT_ADDR": deadAddr(t)}, args: []string{"--addr", e.addr}},
		{name: "default", env: nil, wantErr: "at " + defaultAddr + ": "},
		{name: "no port", args: []string{"--addr", "localhost"}, wantErr: `--addr "localhost": want host:port`},
		{name: "empty", args: []string{"--addr", ""}, wantErr: "--addr is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "default" {
				// Only meaningful when nothing serves the default address here.
				if c, err := net.Dial("tcp", defaultAddr); err == nil {
					c.Close()
					t.Skip("something listens on " + defaultAddr)
				}
			}
			_, _, err := runApp(tt.env, append(tt.args, "service", "list")...)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("error = %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestCallDeadline(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv) { e.packages.stall = true })
	_, _, err := e.run("service", "list", "--rpc-timeout", "100ms")
	want := "list services: no answer within 100ms (raise --rpc-timeout if the control plane is busy)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
}

func TestServiceList(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv) {
		e.packages.services = []*adminv1.Service{
			{Name: "hello.greet", Package: "hello", PackageVersion: 2},
			{Name: "orders.get", Package: "orders", PackageVersion: 11},
		}
	})
	stdout, _, err := e.run("service", "list")
	if err != nil {
		t.Fatal(err)
	}
	want := "NAME         PACKAGE  VERSION\nhello.greet  hello    2\norders.get   orders   11\n"
	if stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "bad output", args: []string{"service", "list", "-o", "xml"}, wantErr: `--output "xml": want table, json or yaml`},
		{name: "unknown flag", args: []string{"service", "list", "--frob"}, wantErr: "unknown flag: --frob (see weftctl service list --help)"},
		{name: "unknown command", args: []string{"frob"}, wantErr: `unknown command "frob"`},
		{name: "extra argument", args: []string{"channel", "get", "a", "b"}, wantErr: `unexpected argument "b" (usage: weftctl channel get NAME [flags])`},
		{name: "bad timeout", args: []string{"service", "list", "--rpc-timeout", "0s"}, wantErr: "--rpc-timeout 0s: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runApp(nil, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	stdout, _, err := runApp(nil, "version")
	if err != nil || !strings.HasPrefix(stdout, "weftctl ") || !strings.Contains(stdout, runtime.Version()) {
		t.Fatalf("version = %q, %v", stdout, err)
	}
	stdout, _, err = runApp(nil, "version", "-o", "json")
	if err != nil || !strings.Contains(stdout, `"version":`) {
		t.Fatalf("version -o json = %q, %v", stdout, err)
	}
}

// TestDeps checks that weftctl reaches the control plane only through the
// generated API: it imports nothing from controlplane/ or agent/.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/weft-dev/weft/ctl").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/weft-dev/weft/controlplane", "github.com/weft-dev/weft/agent"} {
			if pkg == banned || strings.HasPrefix(pkg, banned+"/") {
				t.Errorf("weftctl depends on %s", pkg)
			}
		}
	}
}
