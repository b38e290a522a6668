package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Defaults of --wait.
const (
	defaultWaitTimeout = 30 * time.Second
	// --wait asks where a deploy stands first after waitPollFirst, then
	// twice as long each time up to waitPollMax: most deploys land within
	// tens of milliseconds, and a slow one should not be polled hard.
	waitPollFirst = 5 * time.Millisecond
	waitPollMax   = 200 * time.Millisecond
)

// waitFlags are --wait and --wait-timeout, shared by deploy and rollback.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

// register adds the flags to cmd.
func (w *waitFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.BoolVar(&w.wait, "wait", false, "wait until every connected agent has applied it")
	fs.DurationVar(&w.timeout, "wait-timeout", defaultWaitTimeout, "how long --wait waits")
}

// check refuses a wait timeout that cannot be waited for.
func (w *waitFlags) check() error {
	if w.timeout <= 0 {
		return fmt.Errorf("--wait-timeout %s: must be positive", w.timeout)
	}
	return nil
}

// waitTarget is a package version to wait for.
type waitTarget struct {
	name    string
	version int64
}

func (t waitTarget) String() string { return fmt.Sprintf("%s v%d", t.name, t.version) }

// waitVerdict is what one deploy status says about a wait.
type waitVerdict struct {
	revision     int64
	deployed     []string // connected agents that applied it
	pending      []string // connected agents that have not, with their revision
	failed       []string // agents that refused it, with their error
	disconnected []string // agents neither connected nor deployed
	unpersisted  []string // agents that serve it but could not keep it on disk, with why
}

// judge reads a deploy status for --wait. A failure counts on any agent,
// connected or not: it refused the revision.
func judge(resp *adminv1.GetDeployStatusResponse) waitVerdict {
	v := waitVerdict{revision: resp.GetPackage().GetRevision()}
	for _, ag := range resp.GetAgents() {
		if why := ag.GetNotPersisted(); why != "" && ag.GetState() == adminv1.DeployState_DEPLOY_STATE_DEPLOYED {
			v.unpersisted = append(v.unpersisted, fmt.Sprintf("%s: %s", ag.GetAgentId(), why))
		}
		switch {
		case ag.GetState() == adminv1.DeployState_DEPLOY_STATE_FAILED:
			msg := ag.GetError()
			if msg == "" {
				msg = "(no message)"
			}
			v.failed = append(v.failed, fmt.Sprintf("%s: %s", ag.GetAgentId(), msg))
		case !ag.GetConnected() && ag.GetState() != adminv1.DeployState_DEPLOY_STATE_DEPLOYED:
			v.disconnected = append(v.disconnected, ag.GetAgentId())
		case !ag.GetConnected():
			// Deployed before it went away; nothing to wait for.
		case ag.GetState() == adminv1.DeployState_DEPLOY_STATE_DEPLOYED:
			v.deployed = append(v.deployed, ag.GetAgentId())
		default:
			v.pending = append(v.pending, fmt.Sprintf("%s (at revision %d)", ag.GetAgentId(), ag.GetAppliedRevision()))
		}
	}
	return v
}

// waitDeployed polls the deploy status of each target until every
// connected agent has applied it. It fails when an agent refuses one, or
// when timeout passes, saying which agents are still pending. What it finds
// goes to stdout, or to stderr with -o json (stdout then holds JSON only).
func (a *app) waitDeployed(ctx context.Context, targets []waitTarget, timeout time.Duration) error {
	out := a.stdout
	if a.json() {
		out = a.stderr
	}
	deadline := time.Now().Add(timeout)
	last := map[waitTarget]waitVerdict{}
	poll := waitPollFirst
	for {
		var next []waitTarget
		for _, t := range targets {
			resp, err := call(ctx, a, versionLabel("deploy status of", t.name, t.version), func(ctx context.Context, c *conn) (*adminv1.GetDeployStatusResponse, error) {
				return c.packages.GetDeployStatus(ctx, &adminv1.GetDeployStatusRequest{Name: t.name, Version: t.version})
			})
			if err != nil {
				return err
			}
			v := judge(resp)
			switch {
			case len(v.failed) == 1:
				return fmt.Errorf("%s failed on agent %s", t, v.failed[0])
			case len(v.failed) > 1:
				return fmt.Errorf("%s failed on %d agents:\n  %s", t, len(v.failed), strings.Join(v.failed, "\n  "))
			case len(v.pending) == 0:
				printWaited(out, t, v)
				// Served, so the deploy succeeded; but a restart without
				// the control plane would not serve it.
				for _, u := range v.unpersisted {
					fmt.Fprintf(a.stderr, "warning: %s is served but not kept on disk by agent %s\n", t, u)
				}
			default:
				last[t] = v
				next = append(next, t)
			}
		}
		if len(next) == 0 {
			return nil
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			var lines []string
			for _, t := range next {
				lines = append(lines, fmt.Sprintf("%s (revision %d) is still pending on %s", t, last[t].revision, strings.Join(last[t].pending, ", ")))
			}
			return fmt.Errorf("--wait-timeout %s passed: %s", timeout, strings.Join(lines, "; "))
		}
		timer := time.NewTimer(min(poll, remaining))
		poll = min(2*poll, waitPollMax)
		select {
		case <-ctx.Done():
			timer.Stop()
			return errors.New("--wait: interrupted")
		case <-timer.C:
		}
		targets = next
	}
}

// printWaited says that t reached every connected agent.
func printWaited(out io.Writer, t waitTarget, v waitVerdict) {
	if len(v.deployed) == 0 {
		fmt.Fprintf(out, "%s: no agent is connected; the deploy will reach agents when they connect\n", t)
		return
	}
	agents := "agents"
	if len(v.deployed) == 1 {
		agents = "agent"
	}
	fmt.Fprintf(out, "%s deployed on %d %s: %s\n", t, len(v.deployed), agents, strings.Join(v.deployed, ", "))
	if len(v.disconnected) > 0 {
		fmt.Fprintf(out, "%s: not connected, will catch up when they connect: %s\n", t, strings.Join(v.disconnected, ", "))
	}
}
