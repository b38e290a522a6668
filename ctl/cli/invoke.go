package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// invokeSlack is added to --timeout-ms for the call's own deadline, so the
// agent's timeout answer arrives before the call gives up.
const invokeSlack = 5 * time.Second

func (a *app) newInvokeCmd() *cobra.Command {
	var (
		data      string
		agentID   string
		timeoutMs int64
	)
	cmd := &cobra.Command{
		Use:   "invoke SERVICE",
		Short: "Run a service on an agent and print its output",
		Long: `Invoke runs SERVICE with the JSON input --data on one agent (any connected
agent in sync unless --agent names one) and prints its JSON output. When the
service fails, the status, correlation id and message go to stderr and
weftctl exits non-zero. With -o json or -o yaml it prints the whole answer
(agent_id, cid, output, status, error, duration_us), the output as a JSON
value (null when the call failed), not as base64.`,
		Example: `  weftctl invoke hello.greet --data '{"name":"Ada"}'
  weftctl invoke orders.get --agent berlin-1 --timeout-ms 2000 -o json`,
		Args: args("SERVICE"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			service := argv[0]
			op := fmt.Sprintf("invoke %s", service)
			var input []byte
			if cmd.Flags().Changed("data") {
				if err := checkJSON([]byte(data)); err != nil {
					return fmt.Errorf("%s: --data is not valid JSON: %w", op, err)
				}
				input = []byte(data)
			}
			if timeoutMs < 0 {
				return fmt.Errorf("%s: --timeout-ms %d: must not be negative", op, timeoutMs)
			}
			deadline := a.timeout
			if d := time.Duration(timeoutMs)*time.Millisecond + invokeSlack; d > deadline {
				deadline = d
			}
			req := &adminv1.InvokeRequest{Service: service, Input: input, AgentId: agentID, TimeoutMs: timeoutMs}
			resp, err := callWithin(cmd.Context(), a, deadline, op, func(ctx context.Context, c *conn) (*adminv1.InvokeResponse, error) {
				return c.fleet.Invoke(ctx, req)
			})
			if err != nil {
				return err
			}
			if a.json() {
				err := a.printJSONWith(resp, map[string]json.RawMessage{"output": outputValue(resp.GetOutput())})
				if err != nil {
					return err
				}
			} else if resp.GetStatus() == 200 {
				a.printOutput(resp.GetOutput())
			}
			if resp.GetStatus() != 200 {
				msg := resp.GetError()
				if msg == "" {
					msg = "(no message)"
				}
				fmt.Fprintf(a.stderr, "error (status %d, cid %s): %s\n", resp.GetStatus(), resp.GetCid(), msg)
				return fmt.Errorf("%s: status %d: %w", op, resp.GetStatus(), ErrReported)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&data, "data", "", "the service's JSON input (default {})")
	fs.StringVar(&agentID, "agent", "", "id of the agent to run it on (default: any connected agent in sync)")
	fs.Int64Var(&timeoutMs, "timeout-ms", 0, "bound on the invocation in milliseconds (default: the service's)")
	return cmd
}

// printOutput writes a service's output, indented when it is JSON.
func (a *app) printOutput(out []byte) {
	if len(bytes.TrimSpace(out)) == 0 {
		return
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "  "); err != nil {
		buf.Reset()
		buf.Write(out)
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
		buf.WriteByte('\n')
	}
	_, _ = a.stdout.Write(buf.Bytes())
}

// outputValue is a service's output as a value of -o json and -o yaml: the
// JSON itself, null when there is none (a failed call), and a string when
// it is not JSON, which an agent never sends (services' outputs are
// marshalled JSON) but an older or foreign one might. Such a string holds
// the bytes as text, invalid UTF-8 replaced by U+FFFD.
func outputValue(out []byte) json.RawMessage {
	switch {
	case len(bytes.TrimSpace(out)) == 0:
		return json.RawMessage("null")
	case json.Valid(out):
		return out
	}
	s, _ := json.Marshal(string(out)) // a string always marshals
	return s
}

// checkJSON reports whether b is one JSON value, naming the line and column
// of the first error.
func checkJSON(b []byte) error {
	var v any
	err := json.Unmarshal(b, &v)
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		return err
	}
	// Offset counts the bytes read, including the offending one.
	before := b[:min(max(syn.Offset-1, 0), int64(len(b)))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Errorf("line %d, column %d: %s", line, col, syn.Error())
}
