package testenv

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// pollInterval is how often the Await helpers look again.
const pollInterval = 10 * time.Millisecond

// minWait is the least time Await gives a condition. A bound says only how
// long a failing test takes to say so; on a loaded machine (two suites side
// by side on two cores) what takes a second on a quiet one can take ten, and
// that must make the suite slower, never red.
const minWait = time.Minute

// Await polls cond until it returns true, and fails the test when timeout,
// or minWait if that is longer, passes first. cond's string says what it saw
// last; the failure quotes it next to what.
func Await(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	timeout = max(timeout, minWait)
	deadline := time.Now().Add(timeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v; last seen: %s", what, timeout, seen)
		}
		time.Sleep(pollInterval)
	}
}

// AwaitAgentsSynced waits until every agent in ids is connected, has applied
// exactly revision and is IN_SYNC, as the control plane reports them, and
// fails the test when timeout passes first. It returns the agents' records.
func AwaitAgentsSynced(t testing.TB, cp *ControlPlane, revision int64, timeout time.Duration, ids ...string) []*adminv1.Agent {
	t.Helper()
	if len(ids) == 0 {
		t.Fatal("AwaitAgentsSynced: no agent ids")
	}
	var synced []*adminv1.Agent
	Await(t, timeout, fmt.Sprintf("agents %s in sync at revision %d", strings.Join(ids, ", "), revision), func() (bool, string) {
		agents, err := cp.listAgents()
		if err != nil {
			return false, err.Error()
		}
		synced = synced[:0]
		var states []string
		done := true
		for _, id := range ids {
			i := slices.IndexFunc(agents, func(a *adminv1.Agent) bool { return a.GetId() == id })
			if i < 0 {
				states = append(states, id+": not listed")
				done = false
				continue
			}
			a := agents[i]
			states = append(states, DescribeAgent(a))
			if !a.GetConnected() || a.GetAppliedRevision() != revision || a.GetSyncStatus() != adminv1.SyncStatus_SYNC_STATUS_IN_SYNC {
				done = false
			}
			synced = append(synced, a)
		}
		return done, strings.Join(states, "; ")
	})
	return synced
}

// DescribeAgent sums up an agent record in one line for failure messages.
func DescribeAgent(a *adminv1.Agent) string {
	s := fmt.Sprintf("%s: connected=%t applied=%d desired=%d status=%s pid=%d",
		a.GetId(), a.GetConnected(), a.GetAppliedRevision(), a.GetDesiredRevision(),
		a.GetSyncStatus(), a.GetPid())
	if a.GetFailedRevision() != 0 || a.GetLastError() != "" {
		s += fmt.Sprintf(" failed_revision=%d last_error=%q", a.GetFailedRevision(), a.GetLastError())
	}
	return s
}
