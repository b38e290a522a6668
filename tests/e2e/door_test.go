package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// doorCPULimit is the CPU time the test's control plane gives the
// evaluation of one package: short, so that a spinning init is cut soon.
const doorCPULimit = "2s"

// TestDoor deploys packages whose init functions attack the control plane
// that checks them: one reads its secrets key and environment, one spins
// forever, one allocates 1 GB. Each is refused with a message that says
// why and carries none of what it read; the control plane's memory and CPU
// stay flat, and nothing of the package runs on in it. A package whose
// registrations are all literal is checked without starting a child; one
// that registers in a loop is evaluated in one.
func TestDoor(t *testing.T) {
	d := newDoorEnv(t)
	runSteps(t, []step{
		{"a package of literal registrations starts no child", d.static},
		{"a package that registers in a loop is evaluated in a child", d.dynamic},
		{"init reading the control plane's key and environment gets neither", d.readKey},
		{"init spinning forever is cut at the CPU limit", d.spin},
		{"init allocating 1 GB is cut at the memory limit", d.allocate},
	})
}

type doorEnv struct {
	cp      *testenv.ControlPlane
	metrics string
	key     []byte // the secrets key's content
	keyPath string
	canary  string // in the control plane's environment
}

func newDoorEnv(t *testing.T) *doorEnv {
	d := &doorEnv{metrics: testenv.FreeAddr(t), keyPath: filepath.Join(t.TempDir(), "weft-secrets.key")}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	d.canary = "weft-door-canary-" + hex.EncodeToString(b)
	d.cp = testenv.StartControlPlane(t, storetest.SQLite(t).DSN,
		testenv.WithArgs("--secrets-key", d.keyPath, "--metrics", d.metrics,
			"--eval-cpu-limit", doorCPULimit, "--deploy-timeout", "2m"),
		testenv.WithEnv("WEFT_DOOR_CANARY="+d.canary))
	key, err := os.ReadFile(d.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	d.key = key
	return d
}

func (d *doorEnv) static(t *testing.T) {
	src, err := os.ReadFile("../../deploy/examples/hello/hello.go")
	if err != nil {
		t.Fatal(err)
	}
	before := d.metric(t, "weft_controlplane_package_evaluations_total")
	res, err := d.deploy("hello", map[string]string{"hello.go": string(src)})
	if err != nil {
		t.Fatalf("deploy hello: %v", err)
	}
	if got := res.GetPackages()[0].GetPackage().GetServices(); !slices.Equal(got, []string{"hello.greet"}) {
		t.Fatalf("services %q, want [hello.greet]", got)
	}
	if after := d.metric(t, "weft_controlplane_package_evaluations_total"); after != before {
		t.Fatalf("evaluations went from %g to %g: the door started a child for a package it can check", before, after)
	}
}

func (d *doorEnv) dynamic(t *testing.T) {
	before := d.metric(t, "weft_controlplane_package_evaluations_total")
	res, err := d.deploy("dyn", map[string]string{"dyn.go": `package dyn

import "github.com/weft-dev/weft/agent/sdk"

func init() {
	for _, n := range []string{"b", "a"} {
		sdk.Register("dyn."+n, hi)
	}
}

func hi(ctx *sdk.Context, in map[string]any) (map[string]any, error) { return in, nil }
`})
	if err != nil {
		t.Fatalf("deploy dyn: %v", err)
	}
	if got := res.GetPackages()[0].GetPackage().GetServices(); !slices.Equal(got, []string{"dyn.a", "dyn.b"}) {
		t.Fatalf("services %q, want [dyn.a dyn.b]", got)
	}
	if after := d.metric(t, "weft_controlplane_package_evaluations_total"); after != before+1 {
		t.Fatalf("evaluations went from %g to %g, want one more", before, after)
	}
	d.noChildren(t)
}

// readKey tries every file a package could read the control plane's
// secrets through: its key file, its environment and command line in
// /proc. The door refuses text/template.ParseFiles outright; were a route
// left, the child's system call filter would refuse the open (see package
// confine's test).
func (d *doorEnv) readKey(t *testing.T) {
	targets := []string{d.keyPath, fmt.Sprintf("/proc/%d/environ", d.cp.PID()), "/proc/self/environ", fmt.Sprintf("/proc/%d/cmdline", d.cp.PID())}
	quoted := make([]string, len(targets))
	for i, f := range targets {
		quoted[i] = strconv.Quote(f)
	}
	msg := d.refused(t, "keyread", `package keyread

import (
	"fmt"
	"strings"
	"text/template"

	"github.com/weft-dev/weft/agent/sdk"
)

func init() {
	sdk.Register("keyread.hi", func(ctx *sdk.Context, in map[string]any) (map[string]any, error) { return in, nil })
	var out []string
	for _, f := range []string{`+strings.Join(quoted, ", ")+`} {
		t, err := template.ParseFiles(f)
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		var b strings.Builder
		if err := t.Execute(&b, nil); err != nil {
			out = append(out, err.Error())
			continue
		}
		out = append(out, fmt.Sprintf("%s=%x", f, b.String()), b.String())
	}
	panic(strings.Join(out, "; "))
}
`, "")
	for what, s := range map[string]string{
		"the key": string(d.key), "the key in hex": hex.EncodeToString(d.key),
		"the key in base64": base64.StdEncoding.EncodeToString(d.key), "the environment": d.canary,
	} {
		if strings.Contains(msg, s) {
			t.Errorf("the answer holds %s", what)
		}
	}
}

func (d *doorEnv) spin(t *testing.T) {
	d.refused(t, "spin", `package spin

import "github.com/weft-dev/weft/agent/sdk"

var spins int

func init() {
	sdk.Register("spin.hi", func(ctx *sdk.Context, in map[string]any) (map[string]any, error) { return in, nil })
	for {
		spins++
	}
}
`, "the package's evaluation exceeded its "+doorCPULimit[:len(doorCPULimit)-1]+" s CPU time limit")
}

func (d *doorEnv) allocate(t *testing.T) {
	d.refused(t, "alloc", `package alloc

import "github.com/weft-dev/weft/agent/sdk"

var sink []byte

func init() {
	sdk.Register("alloc.hi", func(ctx *sdk.Context, in map[string]any) (map[string]any, error) { return in, nil })
	sink = make([]byte, 1<<30)
	for i := 0; i < len(sink); i += 4096 {
		sink[i] = 1
	}
}
`, "the package's evaluation exceeded its 512 MiB memory limit")
}

// refused deploys the one-file package name, requires the door to refuse
// it (with want in the answer, when not ""), and checks what the attempt
// cost the control plane: its RSS may not grow by more than 100 MB, its
// CPU time must stop growing once the answer is in, it keeps no more
// goroutines and no child, and the package is not stored. It logs the figures and returns the answer.
func (d *doorEnv) refused(t *testing.T, name, src, want string) string {
	t.Helper()
	pid := d.cp.PID()
	goroutines := d.metric(t, "go_goroutines")
	rss0, cpu0 := procRSS(t, pid), testenv.CPUTime(t, pid)
	start := time.Now()
	_, err := d.deploy(name, map[string]string{name + ".go": src})
	took := time.Since(start)
	if err == nil {
		t.Fatalf("deploy %s was accepted", name)
	}
	msg := status.Convert(err).Message()
	if !strings.Contains(msg, "deploy refused") || !strings.Contains(msg, want) {
		t.Fatalf("deploy %s: %q; want a refusal with %q", name, msg, want)
	}
	rss1, cpu1 := procRSS(t, pid), testenv.CPUTime(t, pid)
	settled := testenv.AwaitIdle(t, pid, 30*time.Second, "the control plane")
	rss2, cpu2 := procRSS(t, pid), testenv.CPUTime(t, pid)
	t.Logf("%s: refused in %v: %q", name, took.Round(time.Millisecond), msg)
	t.Logf("%s: control plane RSS %d MB before, %d MB at the answer, %d MB once idle; CPU %v during the check, %v more until idle (%v)",
		name, rss0>>20, rss1>>20, rss2>>20, cpu1-cpu0, cpu2-cpu1, settled.Round(time.Millisecond))
	if grew := max(rss1, rss2) - rss0; grew > 100<<20 {
		t.Errorf("the control plane's RSS grew by %d MB", grew>>20)
	}
	// The deploy's own goroutines (its gRPC call) end soon after it.
	testenv.Await(t, 10*time.Second, "the control plane back to its goroutines before the deploy", func() (bool, string) {
		after := d.metric(t, "go_goroutines")
		return after <= goroutines, fmt.Sprintf("%g goroutines, %g before", after, goroutines)
	})
	d.noChildren(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := d.cp.Packages().ListPackages(ctx, &adminv1.ListPackagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.GetPackages() {
		if p.GetName() == name {
			t.Errorf("the refused package %s is stored", name)
		}
	}
	return msg
}

func (d *doorEnv) deploy(name string, files map[string]string) (*adminv1.DeployResponse, error) {
	src := &adminv1.PackageSource{Name: name}
	for _, f := range slices.Sorted(maps.Keys(files)) {
		src.Files = append(src.Files, &adminv1.SourceFile{Name: f, Content: []byte(files[f])})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return d.cp.Packages().Deploy(ctx, &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{src}})
}

// noChildren fails the test when the control plane has a child process,
// running or not yet reaped.
func (d *doorEnv) noChildren(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// The fields after the command's closing parenthesis: state, ppid.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(d.cp.PID()) {
			t.Errorf("the control plane has a child: pid %s, state %s", e.Name(), fields[0])
		}
	}
}

// metric reads the value of a gauge or counter without labels from the
// control plane's /metrics.
func (d *doorEnv) metric(t *testing.T, family string) float64 {
	t.Helper()
	f := testenv.Metrics(t, d.metrics)[family]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("/metrics: no single %s", family)
	}
	m := f.GetMetric()[0]
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// procRSS reads a process's resident memory, in bytes, from /proc.
func procRSS(t *testing.T, pid int) int64 {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no VmRSS", pid)
	return 0
}
