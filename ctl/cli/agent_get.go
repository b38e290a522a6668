package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newAgentGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one agent",
		Args:  args("ID"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("get agent %q", id), func(ctx context.Context, c *conn) (*adminv1.GetAgentResponse, error) {
				return c.fleet.GetAgent(ctx, &adminv1.GetAgentRequest{Id: id})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			if err := a.printAgent(resp.GetAgent()); err != nil {
				return err
			}
			return a.printInventory(resp)
		},
	}
}

// printAgent writes every field of an agent as key: value lines, the last
// error and why the agent could not keep its state on disk (which may
// span lines) last and indented.
func (a *app) printAgent(ag *adminv1.Agent) error {
	now := a.now()
	labels := make([]string, 0, len(ag.GetLabels()))
	for k, v := range ag.GetLabels() {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	failed := ""
	if r := ag.GetFailedRevision(); r > 0 {
		failed = strconv.FormatInt(r, 10)
	}
	pid := ""
	if p := ag.GetPid(); p > 0 {
		pid = strconv.FormatInt(p, 10)
	}
	t := newTable(a.stdout)
	t.kv("id", ag.GetId())
	t.kv("status", agentStatus(ag))
	t.kv("connected", yesNo(ag.GetConnected()))
	if r := ag.GetReplica(); r != "" {
		t.kv("replica", r)
	}
	t.kv("applied revision", strconv.FormatInt(ag.GetAppliedRevision(), 10))
	t.kv("applied hash", ag.GetAppliedHash())
	t.kv("desired revision", strconv.FormatInt(ag.GetDesiredRevision(), 10))
	t.kv("failed revision", failed)
	t.kv("labels", strings.Join(labels, ","))
	t.kv("build version", ag.GetBuildVersion())
	t.kv("http address", ag.GetHttpAddress())
	t.kv("pid", pid)
	t.kv("started", when(now, ag.GetStartedAt()))
	t.kv("first seen", when(now, ag.GetFirstSeen()))
	t.kv("last seen", when(now, ag.GetLastSeen()))
	t.kv("enrolled by", ag.GetEnrolledBy())
	t.kv("cert expires", whenNext(now, ag.GetCertificateExpiresAt()))
	revoked := "no"
	if at := ag.GetRevokedAt(); at != nil {
		revoked = when(now, at)
	}
	t.kv("revoked", revoked)
	blocks := []struct{ key, text string }{
		{"last error", ag.GetLastError()},
		{"not persisted", ag.GetNotPersisted()},
	}
	for _, b := range blocks {
		if b.text == "" {
			t.kv(b.key, "")
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, b := range blocks {
		if b.text == "" {
			continue
		}
		fmt.Fprintln(a.stdout, b.key+":")
		for _, line := range strings.Split(strings.TrimRight(b.text, "\n"), "\n") {
			fmt.Fprintln(a.stdout, "  "+line)
		}
	}
	return nil
}

// printInventory writes what the agent said it runs, or why it could not.
func (a *app) printInventory(resp *adminv1.GetAgentResponse) error {
	inv := resp.GetInventory()
	if inv == nil {
		fmt.Fprintf(a.stdout, "\nlive: %s\n", resp.GetInventoryError())
		return nil
	}
	live := fmt.Sprintf("revision %d, %d goroutines, heap %s", inv.GetAppliedRevision(), inv.GetGoroutines(), humanBytes(inv.GetHeapBytes()))
	if sys := inv.GetSysBytes(); sys > 0 {
		live += fmt.Sprintf(", %s from the system", humanBytes(sys))
	}
	if at := inv.GetStartedAt(); at != nil {
		live += fmt.Sprintf(", up %s", a.now().Sub(at.AsTime()).Round(time.Second))
	}
	fmt.Fprintf(a.stdout, "\nlive: %s\n\n", live)
	t := newTable(a.stdout)
	t.row("PACKAGE", "VERSION", "SHA256", "MEMORY", "LOADED", "SERVICES")
	for _, p := range inv.GetPackages() {
		t.row(p.GetName(), strconv.FormatInt(p.GetVersion(), 10), shortHash(p.GetSha256()), humanBytes(p.GetMemoryBytes()),
			when(a.now(), p.GetLoadedAt()), strings.Join(p.GetServices(), ", "))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if errs := inv.GetRecentErrors(); len(errs) > 0 {
		fmt.Fprintln(a.stdout, "\nrecent errors, newest first:")
		for _, e := range errs {
			fmt.Fprintln(a.stdout, "  "+readableLog(e))
		}
	}
	return a.printWorkers(inv.GetWorkers())
}

// printWorkers writes the agent's worker processes as a table, if it runs
// its services in any. A worker being replaced has no process to describe.
func (a *app) printWorkers(workers []*adminv1.AgentWorker) error {
	if len(workers) == 0 {
		return nil
	}
	fmt.Fprintln(a.stdout)
	t := newTable(a.stdout, "WORKER", "PID", "UP", "RESTARTS", "HEAP", "GOROUTINES", "CAP", "LAST EXIT")
	for _, w := range workers {
		pid, up, heap, goroutines := "replacing", "", "", ""
		if w.GetPid() > 0 {
			pid = strconv.FormatInt(w.GetPid(), 10)
			heap = humanBytes(w.GetHeapBytes())
			goroutines = strconv.FormatInt(w.GetGoroutines(), 10)
			if at := w.GetStartedAt(); at != nil {
				up = a.now().Sub(at.AsTime()).Round(time.Second).String()
			}
		}
		limit := "none"
		if l := w.GetMemoryLimitBytes(); l > 0 {
			limit = humanBytes(l)
		}
		t.row(strconv.Itoa(int(w.GetIndex())), pid, up, strconv.FormatInt(w.GetRestarts(), 10), heap, goroutines, limit, w.GetLastExit())
	}
	return t.flush()
}
