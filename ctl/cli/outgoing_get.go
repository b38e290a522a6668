package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newOutgoingGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show an outgoing connection",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("get outgoing connection %q", name), func(ctx context.Context, c *conn) (*adminv1.GetOutgoingConnectionResponse, error) {
				return c.outgoing.GetOutgoingConnection(ctx, &adminv1.GetOutgoingConnectionRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			return a.printOutgoing(resp.GetConnection())
		},
	}
}

// printOutgoing writes a connection as key: value lines, defaults filled
// in.
func (a *app) printOutgoing(c *adminv1.OutgoingConnection) error {
	timeout, pool := "30s", "10"
	if ms := c.GetTimeoutMs(); ms > 0 {
		timeout = (time.Duration(ms) * time.Millisecond).String()
	}
	if n := c.GetPoolSize(); n > 0 {
		pool = strconv.Itoa(int(n))
	}
	tlsCA := "system roots"
	if c.GetCaBundlePem() != "" {
		tlsCA = "own CA bundle (" + firstLine(c.GetCaBundlePem()) + ")"
	}
	if c.GetTlsSkipVerify() {
		tlsCA = "NOT VERIFIED"
	}
	now := a.now()
	t := newTable(a.stdout)
	t.kv("name", c.GetName())
	if d := c.GetDescription(); d != "" {
		t.kv("description", d)
	}
	t.kv("address", c.GetAddress())
	t.kv("path", c.GetPathTemplate())
	t.kv("method", methodOf(c))
	t.kv("format", outFormatOf(c))
	if c.GetSoapAction() != "" {
		t.kv("soap action", c.GetSoapAction())
	}
	t.kv("timeout", timeout)
	t.kv("tls", tlsCA)
	t.kv("security", c.GetSecurity())
	t.kv("pool size", pool)
	for _, k := range slices.Sorted(maps.Keys(c.GetHeaders())) {
		t.kv("header", k+": "+c.GetHeaders()[k])
	}
	t.kv("active", yesNo(c.GetActive()))
	t.kv("revision", strconv.FormatInt(c.GetRevision(), 10))
	t.kv("created", when(now, c.GetCreatedAt()))
	t.kv("updated", when(now, c.GetUpdatedAt()))
	return t.flush()
}
