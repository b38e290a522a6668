package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newTailCmd() *cobra.Command {
	var (
		agent, channel string
		samples        bool
	)
	cmd := &cobra.Command{
		Use:   "tail [SERVICE|CHANNEL]",
		Short: "Stream the invocations that end on the agents, live, until Ctrl-C",
		Long: `tail prints each service invocation, channel request and job run as it
ends on the agents connected to the control plane: time, correlation id,
agent, where it came from, service, status and duration, and with
--samples the start of the request and response (secrets redacted).

NAME is a channel's name when a channel has it, else a service's.
--channel picks a channel even if a service has the same name.

Agents never wait for a tail: when the stream cannot keep up, the agent
leaves invocations out and tail says how many. With -o json each line is a
JSON object, for jq.`,
		Example: `  weftctl tail
  weftctl tail orders.place --agent berlin-1
  weftctl tail --channel orders --samples
  weftctl tail -o json | jq .sample.cid`,
		Args: func(cmd *cobra.Command, got []string) error {
			if len(got) > 1 {
				return fmt.Errorf("unexpected argument %q (usage: %s)", got[1], cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			req := &adminv1.TailRequest{AgentId: agent, Channel: channel, Samples: samples}
			if len(argv) == 1 {
				if channel != "" {
					return fmt.Errorf("give NAME or --channel, not both")
				}
				isChannel, err := a.isChannel(cmd.Context(), argv[0])
				if err != nil {
					return err
				}
				if isChannel {
					req.Channel = argv[0]
				} else {
					req.Service = argv[0]
				}
			}
			return a.tail(cmd.Context(), req)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&agent, "agent", "", "tail this agent only")
	fl.StringVar(&channel, "channel", "", "tail the requests of this channel")
	fl.BoolVar(&samples, "samples", false, "print the start of each request and response")
	return cmd
}

// isChannel reports whether a channel is named name.
func (a *app) isChannel(ctx context.Context, name string) (bool, error) {
	resp, err := call(ctx, a, "list channels", func(ctx context.Context, c *conn) (*adminv1.ListChannelsResponse, error) {
		return c.channels.ListChannels(ctx, &adminv1.ListChannelsRequest{})
	})
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(resp.GetChannels(), func(c *adminv1.Channel) bool { return c.GetName() == name }), nil
}

// tail streams until the control plane ends the stream or the command is
// interrupted.
func (a *app) tail(ctx context.Context, req *adminv1.TailRequest) error {
	c, err := a.conn()
	if err != nil {
		return err
	}
	var header metadata.MD
	stream, err := c.stats.Tail(ctx, req, grpc.Header(&header))
	if err != nil {
		return c.explain(ctx, ctx, a.timeout, "tail", err)
	}
	first := true
	for {
		resp, err := stream.Recv()
		if first {
			first = false
			for _, m := range header.Get("weft-tail-missing") {
				fmt.Fprintf(a.stderr, "not tailing: %s\n", m)
			}
		}
		switch {
		case errors.Is(err, io.EOF), ctx.Err() != nil, status.Code(err) == codes.Canceled:
			return nil
		case err != nil:
			return c.explain(ctx, ctx, a.timeout, "tail", err)
		}
		if a.json() {
			if err := a.printJSONLine(resp); err != nil {
				return err
			}
			continue
		}
		if d := resp.GetDropped(); d != nil {
			fmt.Fprintf(a.stdout, "... %s left out %d invocations: the tail could not keep up\n", d.GetAgentId(), d.GetCount())
			continue
		}
		a.printTailLine(resp.GetSample(), req.GetSamples())
	}
}

// printTailLine writes one invocation on a line, and its samples below
// when asked for.
func (a *app) printTailLine(s *adminv1.Sample, samples bool) {
	line := []string{s.GetAt().AsTime().Local().Format("15:04:05.000"), s.GetCid(), s.GetAgentId(), origin(s), s.GetService(),
		strconv.Itoa(int(s.GetStatus())), humanMicros(s.GetDurationUs())}
	if s.GetError() != "" {
		line = append(line, shorten(s.GetError(), 120))
	}
	fmt.Fprintln(a.stdout, strings.Join(line, "  "))
	if !samples {
		return
	}
	for _, part := range []struct{ name, text string }{{"request", string(s.GetRequestSample())}, {"response", string(s.GetResponseSample())}} {
		if part.text != "" {
			fmt.Fprintf(a.stdout, "  %s: %s\n", part.name, shorten(part.text, 200))
		}
	}
}
