package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestTour runs the README's five-minute tour as it is written, and checks
// that every command prints what the README shows and that the tour leaves
// git status clean. The control plane and the agent run with the README's
// flags and their default paths, in a directory that is a git repository
// holding only the project's .gitignore and examples; the test gives them free ports
// instead of 7400 and 8080, and a temporary directory for /tmp.
func TestTour(t *testing.T) {
	for _, tool := range []string{"git", "bash", "cp", "sed", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the tour needs %s, and CI runs it: %v", tool, err)
			}
			t.Skipf("the tour needs %s: %v", tool, err)
		}
	}
	root := testenv.ModuleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := parseTour(string(readme))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}

	// The directory the tour is run from, as a git repository.
	repo := t.TempDir()
	ignore, err := os.ReadFile(filepath.Join(root, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, ".gitignore"), ignore, 0o644); err != nil {
		t.Fatal(err)
	}
	// The tour's commands name the examples by their paths in the
	// checkout: the repository holds them too, so that the commands run in
	// it and whatever they write shows in its git status.
	copyTree(t, filepath.Join(root, "deploy", "examples"), filepath.Join(repo, "deploy", "examples"))
	git(t, repo, "init", "--quiet")
	git(t, repo, "add", ".gitignore", "deploy")
	git(t, repo, "-c", "user.name=tour", "-c", "user.email=tour@example.invalid", "commit", "--quiet", "--message", "the project's .gitignore")

	bin := testenv.BinDir(t)
	cpAddr, httpAddr, tmp, logs := testenv.FreeAddr(t), testenv.FreeAddr(t), t.TempDir(), t.TempDir()
	env := []string{"WEFT_ADDR=" + cpAddr, "WEFT_CONFIG=" + filepath.Join(tmp, "weftctl.yaml")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WEFT_") { // the tour sets none
			env = append(env, kv)
		}
	}
	// What the tour's steps export, for the steps after them: each runs
	// in a shell of its own.
	exports := filepath.Join(tmp, "exports.sh")
	var procs []*exec.Cmd
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for i := len(procs) - 1; i >= 0; i-- { // the agent first
			stopProcess(t, procs[i])
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			for _, name := range []string{testenv.ControlPlaneBinary, testenv.AgentBinary} {
				b, _ := os.ReadFile(filepath.Join(logs, name+".log"))
				t.Logf("--- log of %s:\n%s", name, b)
			}
		}
	})

	// The tour's control plane writes its CA and first token in the
	// repository, beside its database.
	conn, err := grpc.NewClient(cpAddr,
		grpc.WithTransportCredentials(testenv.TLSCredentials(cpAddr, filepath.Join(repo, "weft-ca.pem"))),
		grpc.WithPerRPCCredentials(testenv.TokenFileCredentials(filepath.Join(repo, "weft-admin.token"))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fleet := adminv1.NewFleetServiceClient(conn)
	agentStarted := false
	synced := func() {
		t.Helper()
		if !agentStarted {
			return
		}
		testenv.Await(t, 60*time.Second, "the tour's agent connected and in sync", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := fleet.ListAgents(ctx, &adminv1.ListAgentsRequest{})
			if err != nil {
				return false, err.Error()
			}
			if len(resp.GetAgents()) != 1 {
				return false, fmt.Sprintf("%d agents", len(resp.GetAgents()))
			}
			a := resp.GetAgents()[0]
			return a.GetConnected() && a.GetAppliedRevision() == a.GetDesiredRevision() &&
				a.GetSyncStatus() == adminv1.SyncStatus_SYNC_STATUS_IN_SYNC, testenv.DescribeAgent(a)
		})
	}
	// The join token and CA fingerprint the tour printed last, which its
	// agent's command line shows as "…".
	joinToken := regexp.MustCompile(`weftjoin_[A-Za-z0-9_-]+`)
	fingerprint := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	var printedToken, printedFingerprint string

	for _, s := range steps {
		if s.start != "" {
			line := strings.ReplaceAll(s.start, "127.0.0.1:8080", httpAddr)
			line = regexp.MustCompile(`weftjoin_\S*`).ReplaceAllLiteralString(line, printedToken)
			line = regexp.MustCompile(`sha256:\S*`).ReplaceAllLiteralString(line, printedFingerprint)
			args := strings.Fields(line)
			name := strings.TrimPrefix(args[0], "bin/")
			switch name {
			case testenv.ControlPlaneBinary:
				args = append(args, "--listen", cpAddr)
			case testenv.AgentBinary:
				args = append(args, "--controlplane", cpAddr)
				agentStarted = true
			default:
				t.Fatalf("tour starts %q; want %s and %s", args[0], testenv.ControlPlaneBinary, testenv.AgentBinary)
			}
			cmd := exec.Command(filepath.Join(bin, name), args[1:]...)
			cmd.Dir, cmd.Env = repo, env
			logf, err := os.Create(filepath.Join(logs, name+".log"))
			if err != nil {
				t.Fatal(err)
			}
			defer logf.Close()
			cmd.Stdout, cmd.Stderr = logf, logf
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Logf("started %s (pid %d) in %s", strings.Join(cmd.Args, " "), cmd.Process.Pid, repo)
			procs = append(procs, cmd)
			if name == testenv.ControlPlaneBinary {
				testenv.Await(t, 60*time.Second, "the tour's control plane serving", func() (bool, string) {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_, err := fleet.ListAgents(ctx, &adminv1.ListAgentsRequest{})
					return err == nil, fmt.Sprint(err)
				})
			}
			synced()
			continue
		}
		command := strings.NewReplacer(
			"bin/weftctl", filepath.Join(bin, testenv.CtlBinary),
			"127.0.0.1:8080", httpAddr,
			"/tmp/", tmp+"/",
		).Replace(s.command)
		script := fmt.Sprintf("[ -f %[1]q ] && . %[1]q\n%[2]s\nstatus=$?\nexport -p > %[1]q\nexit $status\n", exports, command)
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir, cmd.Env = repo, env
		out, err := cmd.CombinedOutput()
		t.Logf("$ %s  # %v\n%s", s.command, err, out)
		// A command the README shows failing prints weftctl's error.
		wantFail := len(s.want) > 0 && strings.HasPrefix(s.want[0], "weftctl: ")
		if (err != nil) != wantFail {
			t.Fatalf("$ %s: exit %v; the README shows it %s", s.command, err, map[bool]string{true: "failing", false: "succeeding"}[wantFail])
		}
		var got []string
		if printed := strings.TrimRight(string(out), "\n"); printed != "" {
			got = strings.Split(printed, "\n")
		}
		if !tourOutputMatches(got, s.want, httpAddr, cpAddr) {
			t.Errorf("$ %s printed:\n%s\nthe README shows:\n%s", s.command, out, strings.Join(s.want, "\n"))
		}
		if m := joinToken.FindString(string(out)); m != "" {
			printedToken = m
		}
		if m := fingerprint.FindString(string(out)); m != "" {
			printedFingerprint = m
		}
		synced()
	}

	stop()
	if status := git(t, repo, "status", "--porcelain", "--untracked-files=all"); status != "" {
		t.Errorf("after the tour, git status is not clean; .gitignore misses:\n%s", status)
	}
	// The tour did make the files the .gitignore is for.
	ignored := git(t, repo, "status", "--porcelain", "--ignored", "--untracked-files=all")
	for _, f := range []string{"weft.db", "weft-secrets.key", "weft-ca.pem", "weft-admin.token", "weft-agent-state/snapshot.pb", "weft-agent-state/identity/agent.key"} {
		if !strings.Contains(ignored, "!! "+f+"\n") {
			t.Errorf("the tour did not make %s; ignored files:\n%s", f, ignored)
		}
	}
}

// tourStep is one action of the tour: a binary it starts (start), or a
// "$ command" with the lines the README shows it printing.
type tourStep struct {
	start   string
	command string
	want    []string
}

// parseTour reads the tour section of the README: in order, the lines of
// its code blocks that start the binaries and every "$ command" with its
// output.
func parseTour(readme string) (steps []tourStep, err error) {
	_, section, ok := strings.Cut(readme, "\n## A five-minute tour\n")
	if !ok {
		return nil, fmt.Errorf("no section \"A five-minute tour\"")
	}
	if i := regexp.MustCompile(`\n##+ `).FindStringIndex(section); i != nil {
		section = section[:i[0]]
	}
	var blocks [][]string
	var block []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```") && !in:
			in, block = true, nil
		case strings.HasPrefix(line, "```"):
			in = false
			blocks = append(blocks, block)
		case in:
			block = append(block, line)
		}
	}
	starts := 0
	for _, b := range blocks {
		first := len(steps)
		for _, line := range b {
			if cmd, _, _ := strings.Cut(line, "#"); strings.HasPrefix(cmd, "bin/weft-") {
				steps = append(steps, tourStep{start: strings.TrimSpace(cmd)})
				starts++
			} else if cmd, ok := strings.CutPrefix(line, "$ "); ok {
				steps = append(steps, tourStep{command: cmd})
			} else if len(steps) > first && steps[len(steps)-1].start == "" && (line != "" || len(steps[len(steps)-1].want) > 0) {
				steps[len(steps)-1].want = append(steps[len(steps)-1].want, line)
			}
		}
	}
	// A blank line between steps is no output.
	for i := range steps {
		for len(steps[i].want) > 0 && steps[i].want[len(steps[i].want)-1] == "" {
			steps[i].want = steps[i].want[:len(steps[i].want)-1]
		}
	}
	if starts != 2 || len(steps) == starts {
		return nil, fmt.Errorf("tour starts %d binaries and has %d steps; want 2 and some", starts, len(steps)-starts)
	}
	return steps, nil
}

// tourOutputMatches compares printed lines with the README's, in which "…"
// stands for anything. Spaces are compared as runs, since the agent's
// address changes the width of a table column, and an agent last seen some
// seconds ago counts as "just now".
func tourOutputMatches(got, want []string, httpAddr, cpAddr string) bool {
	if len(got) != len(want) {
		return false
	}
	ago := regexp.MustCompile(`\b\d+s ago\b`)
	for i := range want {
		w := strings.Join(strings.Fields(strings.NewReplacer("127.0.0.1:8080", httpAddr, "127.0.0.1:7400", cpAddr).Replace(want[i])), " ")
		g := strings.Join(strings.Fields(ago.ReplaceAllString(got[i], "just now")), " ")
		re := "^" + strings.ReplaceAll(regexp.QuoteMeta(w), "…", ".*") + "$"
		if !regexp.MustCompile(re).MatchString(g) {
			return false
		}
	}
	return true
}

// stopProcess stops cmd with SIGINT, as Ctrl-C would, and kills it if it
// has not exited within a bound.
func stopProcess(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", cmd.Args[0], err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("%s did not stop within 30s of SIGINT; killed", cmd.Args[0])
	}
}

// git runs git in dir and returns its output, failing the test on an error.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// copyTree copies the regular files under src to dst, making directories as
// it goes.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}
