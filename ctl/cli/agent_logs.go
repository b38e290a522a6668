package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newAgentLogsCmd() *cobra.Command {
	var (
		since time.Duration
		limit int32
		raw   bool
	)
	cmd := &cobra.Command{
		Use:   "logs AGENT",
		Short: "Fetch an agent's recent log lines",
		Long: `logs fetches the log lines an agent keeps in memory (the newest 5,000,
or 2 MiB): time, level, message, then the other fields as key=value, the
correlation id among them for every line about an invocation. --raw
prints the JSON records as the agent wrote them. The agent must be
connected to this control plane.`,
		Example: `  weftctl agent logs berlin-1 --since 10m
  weftctl agent logs berlin-1 --limit 50 --raw | jq 'select(.level=="ERROR")'`,
		Args: args("AGENT"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := argv[0]
			if since < 0 {
				return fmt.Errorf("--since %s: must not be negative", since)
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: must not be negative", limit)
			}
			req := &adminv1.GetAgentLogsRequest{AgentId: id, Limit: limit}
			if since > 0 {
				req.Since = durationpb.New(since)
			}
			resp, err := call(cmd.Context(), a, fmt.Sprintf("get the logs of agent %q", id), func(ctx context.Context, c *conn) (*adminv1.GetAgentLogsResponse, error) {
				return c.fleet.GetAgentLogs(ctx, req)
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			if resp.GetTruncated() {
				fmt.Fprintln(a.stderr, "the agent no longer keeps the oldest lines asked for")
			}
			for _, line := range resp.GetLines() {
				if !raw {
					line = readableLog(line)
				}
				fmt.Fprintln(a.stdout, line)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&since, "since", 0, "the lines of this last stretch, such as 10m (default: all kept)")
	fl.Int32Var(&limit, "limit", 0, "the newest lines, at most this many (default: all kept)")
	fl.BoolVar(&raw, "raw", false, "print the JSON records as they are")
	return cmd
}

// readableLog renders a JSON log record as "time LEVEL message k=v ...",
// or returns it as it is when it is not one.
func readableLog(line string) string {
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		return line
	}
	var b strings.Builder
	if t, ok := rec["time"].(string); ok {
		if at, err := time.Parse(time.RFC3339Nano, t); err == nil {
			t = at.Local().Format("2006-01-02 15:04:05.000")
		}
		b.WriteString(t + " ")
	}
	fmt.Fprintf(&b, "%-5v %v", rec["level"], rec["msg"])
	keys := make([]string, 0, len(rec))
	for k := range rec {
		if k != "time" && k != "level" && k != "msg" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := json.Marshal(rec[k])
		if err != nil {
			continue
		}
		s := string(v)
		if str, ok := rec[k].(string); ok && !strings.ContainsAny(str, " \"=") {
			s = str
		}
		fmt.Fprintf(&b, " %s=%s", k, s)
	}
	return b.String()
}
