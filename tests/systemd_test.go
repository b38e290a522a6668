package tests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// units are the systemd units in deploy/systemd, by the binary each starts
// from /usr/local/bin, as their install comments put it there.
var units = []struct{ file, binary string }{
	{file: "weft-agent.service", binary: "weft-agent"},
	{file: "weft-controlplane.service", binary: "weft-controlplane"},
}

// unitBinDir is where the units expect the binaries.
const unitBinDir = "/usr/local/bin/"

// requiredDirective is a [Service] directive every unit must set, each with
// a comment right above it that says why. want, when not empty, is the only
// value accepted; nonEmpty requires some value.
type requiredDirective struct {
	key      string
	want     string
	nonEmpty bool
}

// requiredDirectives are the limits and the hardening both units need:
// services are other teams' code, and the agent's workers and the control
// plane's deploy check run under the same unit.
var requiredDirectives = []requiredDirective{
	{key: "Type", want: "notify"},
	{key: "NotifyAccess", want: "main"},
	{key: "Restart", want: "on-failure"},
	{key: "DynamicUser", want: "yes"},
	{key: "StateDirectory", nonEmpty: true},
	{key: "UMask", want: "0077"},
	{key: "MemoryMax", nonEmpty: true},
	{key: "OOMPolicy", want: "continue"},
	{key: "TasksMax", nonEmpty: true},
	{key: "CapabilityBoundingSet", want: ""},
	{key: "SystemCallFilter", want: "@system-service"},
	{key: "SystemCallArchitectures", want: "native"},
	{key: "ProtectClock", want: "yes"},
	{key: "NoNewPrivileges", want: "yes"},
	{key: "ProtectSystem", want: "strict"},
	{key: "ProtectHome", want: "yes"},
	{key: "PrivateTmp", want: "yes"},
	{key: "PrivateDevices", want: "yes"},
	{key: "ProtectKernelTunables", want: "yes"},
	{key: "ProtectKernelModules", want: "yes"},
	{key: "ProtectKernelLogs", want: "yes"},
	{key: "ProtectControlGroups", want: "yes"},
	{key: "RestrictAddressFamilies", want: "AF_UNIX AF_INET AF_INET6"},
	{key: "RestrictNamespaces", want: "yes"},
	{key: "RestrictRealtime", want: "yes"},
	{key: "RestrictSUIDSGID", want: "yes"},
	{key: "MemoryDenyWriteExecute", want: "yes"},
	{key: "LockPersonality", want: "yes"},
}

// spawnCalls are what the agent starts its workers with, and the control
// plane its deploy check: no SystemCallFilter line may take them away.
var spawnCalls = []string{"@process", "execve", "execveat", "fork", "vfork", "clone", "clone3"}

// unitLine is one directive of a unit file.
type unitLine struct {
	section   string
	key       string
	value     string
	line      int
	commented bool // the line right above is a comment
}

// parseUnit reads the directives of a unit file. It does not join
// continuation lines: the units use none, and a test below refuses them.
func parseUnit(data []byte) ([]unitLine, error) {
	var (
		lines       []unitLine
		section     string
		prevComment bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		switch {
		case text == "":
			prevComment = false
			continue
		case strings.HasPrefix(text, "#") || strings.HasPrefix(text, ";"):
			prevComment = true
			continue
		case strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]"):
			section = strings.Trim(text, "[]")
		case strings.HasSuffix(text, `\`):
			return nil, fmt.Errorf("line %d: continuation lines are not used in these units", n)
		default:
			key, value, ok := strings.Cut(text, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is neither a section, a comment nor KEY=VALUE", n, text)
			}
			lines = append(lines, unitLine{
				section:   section,
				key:       strings.TrimSpace(key),
				value:     strings.TrimSpace(value),
				line:      n,
				commented: prevComment,
			})
		}
		prevComment = false
	}
	return lines, sc.Err()
}

func readUnit(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testModuleRoot(t), "deploy", "systemd", file))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestSystemdUnitDirectives checks that both units set the limits and the
// hardening they need, each commented, and keep fork and execve allowed.
func TestSystemdUnitDirectives(t *testing.T) {
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			lines, err := parseUnit(readUnit(t, u.file))
			if err != nil {
				t.Fatalf("%s: %v", u.file, err)
			}
			for _, req := range requiredDirectives {
				t.Run(req.key, func(t *testing.T) {
					i := slices.IndexFunc(lines, func(l unitLine) bool { return l.section == "Service" && l.key == req.key })
					if i < 0 {
						t.Fatalf("%s: [Service] has no %s=", u.file, req.key)
					}
					l := lines[i]
					switch {
					case req.nonEmpty && l.value == "":
						t.Errorf("%s:%d: %s= is empty; it needs a value", u.file, l.line, req.key)
					case !req.nonEmpty && l.value != req.want:
						t.Errorf("%s:%d: %s=%s, want %s=%s", u.file, l.line, req.key, l.value, req.key, req.want)
					}
					if !l.commented {
						t.Errorf("%s:%d: %s= has no comment line right above it saying why", u.file, l.line, req.key)
					}
				})
			}
			for _, l := range lines {
				if l.key != "SystemCallFilter" || !strings.HasPrefix(l.value, "~") {
					continue
				}
				for _, call := range strings.Fields(strings.TrimPrefix(l.value, "~")) {
					if slices.Contains(spawnCalls, call) {
						t.Errorf("%s:%d: SystemCallFilter=%s denies %s, which starting worker and check processes needs", u.file, l.line, l.value, call)
					}
				}
			}
		})
	}
}

// TestSystemdVerify runs systemd-analyze verify on both units, and fails on
// a non-zero exit or on any warning about them (an unknown directive or a
// bad value is only a warning, with exit status 0).
//
// verify reads the unit files itself and needs no running systemd; it works
// where systemd is not PID 1, as in containers. It does check that
// ExecStart's binary exists and is executable (it never runs it), so the
// units are checked as copies whose ExecStart names an executable stub of
// the same name: building the real binaries would add a minute and check
// nothing more. The copy's ExecStart must name /usr/local/bin/<binary>, so
// a typo in that path fails too.
func TestSystemdVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			path := stageUnit(t, u.file, u.binary, readUnit(t, u.file))
			if problems := verifyUnit(t, analyze, path); problems != "" {
				t.Errorf("systemd-analyze verify %s:\n%s", u.file, problems)
			}
		})
	}
}

// TestSystemdVerifyCatchesBadUnit checks that the check above fails on an
// unknown directive and on a bad value, which systemd-analyze verify only
// warns about: without it, TestSystemdVerify could pass on anything.
func TestSystemdVerifyCatchesBadUnit(t *testing.T) {
	analyze := systemdAnalyze(t)
	u := units[0]
	bad := append(readUnit(t, u.file), []byte("\n[Service]\nMemoryMaxx=1G\nTasksMax=lots\n")...)
	problems := verifyUnit(t, analyze, stageUnit(t, u.file, u.binary, bad))
	for _, want := range []string{"MemoryMaxx", "lots"} {
		if !strings.Contains(problems, want) {
			t.Errorf("a unit with MemoryMaxx=1G and TasksMax=lots: the check does not name %q; it reported:\n%s", want, problems)
		}
	}
}

// systemdAnalyze returns the path of systemd-analyze. It skips the test
// when the command is missing, except under CI=true, where it is required.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		reason := fmt.Sprintf("systemd-analyze is not installed (it comes with systemd): %v", err)
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true requires systemd-analyze: %s", reason)
		}
		t.Skip(reason)
	}
	return path
}

// stageUnit writes data as dir/file with its ExecStart binary replaced by
// an executable stub of the same name in dir, and returns the unit's path.
func stageUnit(t *testing.T, file, binary string, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	stub := filepath.Join(dir, binary)
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := "ExecStart=" + unitBinDir + binary
	var out []string
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, want); ok && (rest == "" || rest[0] == ' ') {
			line = "ExecStart=" + stub + rest
			found++
		}
		out = append(out, line)
	}
	if found != 1 {
		t.Fatalf("%s: want one line starting %q, found %d", file, want, found)
	}
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// otherUnit matches a message about a unit, as verify starts it: the path
// of the unit's file or the unit's name, then a colon or a space.
var otherUnit = regexp.MustCompile(`^(?:\S*/)?([\w@.:\\-]+\.(?:service|socket|target|device|mount|automount|swap|timer|path|slice|scope))[: ]`)

// verifyUnit runs systemd-analyze verify on the unit at path and returns
// what is wrong with it: its exit status when not zero, and every line it
// printed, except those about other units (the host's targets that the unit
// names), which are logged. It returns "" when all is well.
func verifyUnit(t *testing.T, analyze, path string) string {
	t.Helper()
	// --man=no: a man: link in Documentation= is not looked up, so the
	// result does not depend on the man pages installed.
	args := []string{"verify", "--man=no"}
	// --recursive-errors=no (systemd 250 and later): the exit status
	// reflects this unit, not a problem in one of the host's units.
	if help, _ := exec.Command(analyze, "--help").Output(); bytes.Contains(help, []byte("--recursive-errors")) {
		args = append(args, "--recursive-errors=no")
	}
	cmd := exec.Command(analyze, append(args, path)...)
	// Plain messages, at the default level, whatever the caller's settings.
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=info", "SYSTEMD_LOG_COLOR=0", "SYSTEMD_LOG_LOCATION=0", "SYSTEMD_PAGER=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()

	var problems []string
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		problems = append(problems, fmt.Sprintf("exit status %d", exitErr.ExitCode()))
	case err != nil:
		problems = append(problems, fmt.Sprintf("run: %v", err))
	}
	name := filepath.Base(path)
	for _, line := range strings.Split(stdout.String()+stderr.String(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if m := otherUnit.FindStringSubmatch(line); m != nil && m[1] != name {
			t.Logf("systemd-analyze verify %s, about another unit: %s", name, line)
			continue
		}
		problems = append(problems, line)
	}
	return strings.Join(problems, "\n")
}
