package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestSettingsFileAndSIGHUP starts both binaries with a settings file
// (--config). A SIGHUP after the file changed sets the new log level at
// once and names the changes that wait for a restart; one after the file
// broke changes nothing; neither ends the process.
func TestSettingsFileAndSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cpFile, agentFile := filepath.Join(dir, "controlplane.yaml"), filepath.Join(dir, "agent.yaml")
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(cpFile, "log-level: info\npoll-interval: 400ms\n")
	write(agentFile, "log-level: info\nlabels:\n  site: from-the-file\n")
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN, testenv.WithArgs("--config", cpFile))
	agent := testenv.StartAgent(t, cp, "hup-1", testenv.WithArgs("--config", agentFile))
	if got := agent.Record(t).GetLabels()["site"]; got != "from-the-file" {
		t.Fatalf("the agent's label site = %q; want the settings file's", got)
	}

	for _, p := range []struct {
		name, file, next string
		pid              func() int
		log              func() string
	}{
		{"control plane", cpFile, "log-level: debug\npoll-interval: 1s\n", cp.PID, func() string { return readLog(t, cp.LogPath()) }},
		{"agent", agentFile, "log-level: debug\nbackoff-max: 3s\nlabels: {site: from-the-file}\n", agent.PID, func() string { return readLog(t, agent.LogPath()) }},
	} {
		t.Run(p.name, func(t *testing.T) {
			write(p.file, p.next)
			if err := syscall.Kill(p.pid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			testenv.Await(t, 30*time.Second, "the log to say what the SIGHUP changed", func() (bool, string) {
				l := p.log()
				return strings.Contains(l, "SIGHUP: log level changed") && strings.Contains(l, "take effect at the next restart"), l
			})
			write(p.file, "log-level: [\n")
			if err := syscall.Kill(p.pid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			testenv.Await(t, 30*time.Second, "the log to say the broken file changed nothing", func() (bool, string) {
				l := p.log()
				return strings.Contains(l, "the settings do not parse; nothing changed"), l
			})
		})
	}
	if !agent.Running() || !cp.Running() {
		t.Fatalf("a SIGHUP ended a process: agent running %v, control plane running %v", agent.Running(), cp.Running())
	}
}
