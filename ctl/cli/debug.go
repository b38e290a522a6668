package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newDebugCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "debug",
		Short: "Show the recent failed and slow invocations the agents kept",
	}
	cmd.AddCommand(a.newSamplesCmd("failures", "failed"), a.newSamplesCmd("slow", "slow"))
	return cmd
}

// newSamplesCmd is debug failures or debug slow.
func (a *app) newSamplesCmd(use, which string) *cobra.Command {
	var (
		agent   string
		limit   int32
		verbose bool
	)
	short := map[string]string{
		"failed": "The last failed invocations of a service (each agent keeps 100), newest first",
		"slow":   "The last invocations of a service slower than its threshold (each agent keeps 100), newest first",
	}[which]
	cmd := &cobra.Command{
		Use:   use + " [SERVICE]",
		Short: short,
		Long: short + `.

Each agent keeps, per service, the last 100 failed invocations (a service
error, or a status of 500 or more) and the last 100 that took longer than
the service's slow threshold: sdk.SlowAfter in its code, else the agent's
--slow-threshold (1s). Each comes with its correlation id (the X-Weft-CID
a caller got), where it came from, its status, duration and error, and
the start of the request and response with secrets (passwords, tokens,
keys) redacted; -v prints those and a panic's stack. Without SERVICE,
every service's. Asks every connected agent, or --agent.`,
		Example: `  weftctl debug failures orders.place
  weftctl debug slow orders.place -v --limit 5
  weftctl debug failures --agent berlin-1 -o json`,
		Args: func(cmd *cobra.Command, got []string) error {
			if len(got) > 1 {
				return fmt.Errorf("unexpected argument %q (usage: %s)", got[1], cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			req := &adminv1.ListSamplesRequest{Which: which, AgentId: agent, Limit: limit}
			if len(argv) == 1 {
				req.Service = argv[0]
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: must not be negative", limit)
			}
			resp, err := call(cmd.Context(), a, "list "+which+" invocations", func(ctx context.Context, c *conn) (*adminv1.ListSamplesResponse, error) {
				return c.stats.ListSamples(ctx, req, grpc.MaxCallRecvMsgSize(exportMaxBytes))
			})
			if err != nil {
				return err
			}
			if a.json() {
				if err := a.printJSON(resp); err != nil {
					return err
				}
			} else if err := a.printSamples(resp, which, verbose); err != nil {
				return err
			}
			if n := len(resp.GetUnreachable()); n > 0 {
				return fmt.Errorf("the list is partial: %d agent(s) not asked", n)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&agent, "agent", "", "ask this agent only")
	fl.Int32Var(&limit, "limit", 20, "show at most this many, newest first (0: all kept, up to 100 per service and agent)")
	fl.BoolVarP(&verbose, "verbose", "v", false, "print the request and response samples and a panic's stack")
	return cmd
}

// printSamples writes the samples as a table, or one block each when
// verbose, then the agents that did not answer.
func (a *app) printSamples(resp *adminv1.ListSamplesResponse, which string, verbose bool) error {
	if len(resp.GetSamples()) == 0 {
		fmt.Fprintf(a.stdout, "no %s invocations kept\n", which)
	}
	if !verbose && len(resp.GetSamples()) > 0 {
		t := newTable(a.stdout)
		t.row("AT", "CID", "AGENT", "FROM", "SERVICE", "STATUS", "TOOK", "ERROR")
		for _, s := range resp.GetSamples() {
			t.row(s.GetAt().AsTime().Local().Format("2006-01-02 15:04:05.000"), s.GetCid(), s.GetAgentId(), origin(s),
				s.GetService(), strconv.Itoa(int(s.GetStatus())), humanMicros(s.GetDurationUs()), shorten(s.GetError(), 80))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if verbose {
		for i, s := range resp.GetSamples() {
			if i > 0 {
				fmt.Fprintln(a.stdout)
			}
			a.printSample(s)
		}
	}
	for _, u := range resp.GetUnreachable() {
		fmt.Fprintf(a.stderr, "not asked: %s\n", u)
	}
	return nil
}

// printSample writes one sample in full.
func (a *app) printSample(s *adminv1.Sample) {
	t := newTable(a.stdout)
	t.kv("cid", s.GetCid())
	t.kv("at", s.GetAt().AsTime().Local().Format("2006-01-02 15:04:05.000 MST"))
	t.kv("agent", s.GetAgentId())
	t.kv("from", origin(s))
	t.kv("service", s.GetService())
	t.kv("status", strconv.Itoa(int(s.GetStatus())))
	t.kv("took", humanMicros(s.GetDurationUs()))
	t.kv("error", s.GetError())
	t.kv("bytes", fmt.Sprintf("%d in, %d out", s.GetBytesIn(), s.GetBytesOut()))
	_ = t.flush()
	for _, part := range []struct{ name, text string }{
		{"request", string(s.GetRequestSample())}, {"response", string(s.GetResponseSample())}, {"stack", s.GetStack()},
	} {
		if part.text == "" {
			continue
		}
		cut := ""
		if s.GetTruncated() && part.name != "stack" {
			cut = " (cut)"
		}
		fmt.Fprintf(a.stdout, "%s%s:\n", part.name, cut)
		for _, line := range strings.Split(strings.TrimRight(part.text, "\n"), "\n") {
			fmt.Fprintln(a.stdout, "  "+line)
		}
	}
}

// origin says where an invocation came from: channel NAME, job NAME,
// invoke or service.
func origin(s *adminv1.Sample) string {
	switch {
	case s.GetChannel() != "":
		return "channel " + s.GetChannel()
	case s.GetJob() != "":
		return "job " + s.GetJob()
	default:
		return s.GetKind()
	}
}
