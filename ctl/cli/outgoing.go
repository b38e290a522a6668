package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newOutgoingCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "outgoing",
		Aliases: []string{"out"},
		Short:   "Manage outgoing HTTP connections, which services call with ctx.Outgoing(NAME)",
	}
	cmd.AddCommand(
		a.newOutgoingCreateCmd(),
		a.newOutgoingListCmd(),
		a.newOutgoingGetCmd(),
		a.newOutgoingUpdateCmd(),
		a.newOutgoingDeleteCmd(),
		a.newOutgoingPingCmd(),
	)
	return cmd
}

// outgoingFlags set a connection's fields, for create and update.
type outgoingFlags struct {
	address, path, method, dataFormat, soapAction, timeout, caFile, security string
	tlsSkipVerify, active, inactive                                          bool
	poolSize                                                                 int32
	headers                                                                  []string
}

func (f *outgoingFlags) register(cmd *cobra.Command, update bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.address, "address", "", "scheme://host[:port][/prefix], http or https")
	fs.StringVar(&f.path, "path", "", "path template appended to the address, such as /customers/{id}")
	fs.StringVar(&f.method, "method", "", "HTTP method (default GET)")
	fs.StringVar(&f.dataFormat, "format", "", "data format: json (the default), xml, soap11 or soap12")
	fs.StringVar(&f.soapAction, "soap-action", "", "SOAP action sent with soap11 and soap12")
	fs.StringVar(&f.timeout, "timeout", "", "bound on each call, such as 5s; 0 for 30s")
	fs.BoolVar(&f.tlsSkipVerify, "tls-skip-verify", false, "do not verify the server's TLS certificate (never in production)")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM bundle of the CAs to trust instead of the system's; \"\" for the system's")
	fs.StringVar(&f.security, "security", "", "outbound security definition to present; \"\" for none")
	fs.Int32Var(&f.poolSize, "pool-size", 0, "connections per host; 0 for 10")
	fs.StringArrayVar(&f.headers, "header", nil, "header sent with every call, NAME=VALUE; repeat for several")
	fs.BoolVar(&f.inactive, "inactive", false, "services cannot call the connection until it is activated")
	if update {
		fs.BoolVar(&f.active, "active", false, "activate the connection")
		cmd.MarkFlagsMutuallyExclusive("active", "inactive")
	}
}

// apply sets the fields of c whose flags were given and returns their
// proto field names, as an update mask wants them.
func (f *outgoingFlags) apply(cmd *cobra.Command, c *adminv1.OutgoingConnection) ([]string, error) {
	changed := cmd.Flags().Changed
	var mask []string
	set := func(flag, field string, dst *string, v string) {
		if changed(flag) {
			*dst = strings.TrimSpace(v)
			mask = append(mask, field)
		}
	}
	set("address", "address", &c.Address, f.address)
	set("path", "path_template", &c.PathTemplate, f.path)
	set("method", "method", &c.Method, strings.ToUpper(f.method))
	set("format", "data_format", &c.DataFormat, strings.ToLower(f.dataFormat))
	set("soap-action", "soap_action", &c.SoapAction, f.soapAction)
	set("security", "security", &c.Security, f.security)
	if changed("timeout") {
		ms, err := parseMillis(f.timeout)
		if err != nil {
			return nil, fmt.Errorf("--timeout %q: %w", f.timeout, err)
		}
		c.TimeoutMs = ms
		mask = append(mask, "timeout_ms")
	}
	if changed("tls-skip-verify") {
		c.TlsSkipVerify = f.tlsSkipVerify
		mask = append(mask, "tls_skip_verify")
	}
	if changed("ca-file") {
		pem, err := readFileFlag("ca-file", f.caFile)
		if err != nil {
			return nil, err
		}
		if pem != "" && !strings.Contains(pem, "-----BEGIN CERTIFICATE-----") {
			return nil, fmt.Errorf("--ca-file %s: holds no PEM certificate", f.caFile)
		}
		c.CaBundlePem = pem
		mask = append(mask, "ca_bundle_pem")
	}
	if changed("pool-size") {
		if f.poolSize < 0 {
			return nil, fmt.Errorf("--pool-size %d: must not be negative", f.poolSize)
		}
		c.PoolSize = f.poolSize
		mask = append(mask, "pool_size")
	}
	if changed("header") {
		h, err := parsePairs("--header", f.headers)
		if err != nil {
			return nil, err
		}
		c.Headers = h
		mask = append(mask, "headers")
	}
	if changed("active") || changed("inactive") {
		c.Active = proto.Bool(f.active || !f.inactive)
		mask = append(mask, "active")
	}
	return mask, nil
}

func (a *app) newOutgoingCreateCmd() *cobra.Command {
	var f outgoingFlags
	cmd := &cobra.Command{
		Use:   "create NAME --address URL [flags]",
		Short: "Create an outgoing HTTP connection",
		Example: `  weftctl outgoing create crm --address https://crm.example --path /api/customers/{id} --security crm-token --timeout 5s
  weftctl outgoing create erp --address https://erp.internal --method POST --format xml --ca-file internal-ca.pem --header X-Tenant=acme
  weftctl outgoing create quotes --address http://quotes.example --path /soap --method POST --format soap11 --soap-action urn:quotes#GetQuote`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("create outgoing connection %q", name)
			c := &adminv1.OutgoingConnection{Name: name}
			if _, err := f.apply(cmd, c); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, cn *conn) (*adminv1.CreateOutgoingConnectionResponse, error) {
				return cn.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{Connection: c})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "created outgoing connection %s (revision %d)\n", name, resp.GetConnection().GetRevision())
			return nil
		},
	}
	f.register(cmd, false)
	_ = cmd.MarkFlagRequired("address")
	return cmd
}

func (a *app) newOutgoingUpdateCmd() *cobra.Command {
	var f outgoingFlags
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change an outgoing connection; services use it with no restart",
		Long: `Update changes only the fields whose flags are given; the rest keep their
values. --header replaces every extra header; --header "" removes them.`,
		Example: `  weftctl outgoing update crm --address https://crm-2.example
  weftctl outgoing update crm --inactive`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("update outgoing connection %q", name)
			c := &adminv1.OutgoingConnection{Name: name}
			mask, err := f.apply(cmd, c)
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			if len(mask) == 0 {
				return fmt.Errorf("%s: nothing to change; give at least one field's flag (see --help)", op)
			}
			req := &adminv1.UpdateOutgoingConnectionRequest{Connection: c, UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}}
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, cn *conn) (*adminv1.UpdateOutgoingConnectionResponse, error) {
				return cn.outgoing.UpdateOutgoingConnection(ctx, req)
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "updated outgoing connection %s (revision %d)\n", name, resp.GetConnection().GetRevision())
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func (a *app) newOutgoingListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List outgoing connections",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(cmd.Context(), a, "list outgoing connections", func(ctx context.Context, c *conn) (*adminv1.ListOutgoingConnectionsResponse, error) {
				return c.outgoing.ListOutgoingConnections(ctx, &adminv1.ListOutgoingConnectionsRequest{})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			t := newTable(a.stdout, "NAME", "METHOD", "URL", "FORMAT", "SECURITY", "ACTIVE", "REVISION")
			for _, c := range resp.GetConnections() {
				t.row(c.GetName(), methodOf(c), c.GetAddress()+c.GetPathTemplate(), outFormatOf(c), c.GetSecurity(),
					yesNo(c.GetActive()), strconv.FormatInt(c.GetRevision(), 10))
			}
			return t.flush()
		},
	}
}

func methodOf(c *adminv1.OutgoingConnection) string {
	if c.GetMethod() == "" {
		return "GET"
	}
	return c.GetMethod()
}

func outFormatOf(c *adminv1.OutgoingConnection) string {
	if c.GetDataFormat() == "" {
		return "json"
	}
	return c.GetDataFormat()
}

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
			c := resp.GetConnection()
			timeout, pool := "30s", "10"
			if ms := c.GetTimeoutMs(); ms > 0 {
				timeout = (time.Duration(ms) * time.Millisecond).String()
			}
			if n := c.GetPoolSize(); n > 0 {
				pool = strconv.Itoa(int(n))
			}
			tlsCA := "system"
			if c.GetCaBundlePem() != "" {
				tlsCA = "own bundle (" + firstLine(c.GetCaBundlePem()) + ")"
			}
			if c.GetTlsSkipVerify() {
				tlsCA = "NOT VERIFIED"
			}
			now := a.now()
			t := newTable(a.stdout)
			t.kv("name", c.GetName())
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
		},
	}
}

func (a *app) newOutgoingDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an outgoing connection",
		Args:  args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			resp, err := call(cmd.Context(), a, fmt.Sprintf("delete outgoing connection %q", name), func(ctx context.Context, c *conn) (*adminv1.DeleteOutgoingConnectionResponse, error) {
				return c.outgoing.DeleteOutgoingConnection(ctx, &adminv1.DeleteOutgoingConnectionRequest{Name: name})
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "deleted outgoing connection %s (revision %d)\n", name, resp.GetRevision())
			return nil
		},
	}
}

func (a *app) newOutgoingPingCmd() *cobra.Command {
	var agent string
	cmd := &cobra.Command{
		Use:   "ping NAME [--agent ID]",
		Short: "Call a connection's address from an agent and show the status and latency",
		Long: `Ping asks an agent to send a HEAD (a GET when the server refuses HEAD) to the
connection's address with its headers and credentials. Any HTTP answer means
the remote is reachable; ping fails, naming why, when there is none.`,
		Example: `  weftctl outgoing ping crm
  weftctl outgoing ping crm --agent edge-berlin-1`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			op := fmt.Sprintf("ping outgoing connection %q", name)
			resp, err := call(cmd.Context(), a, op, func(ctx context.Context, c *conn) (*adminv1.PingOutgoingConnectionResponse, error) {
				return c.outgoing.PingOutgoingConnection(ctx, &adminv1.PingOutgoingConnectionRequest{Name: name, AgentId: agent})
			})
			if err != nil {
				return err
			}
			if a.json() {
				if err := a.printJSON(resp); err != nil {
					return err
				}
			} else {
				latency := (time.Duration(resp.GetLatencyUs()) * time.Microsecond).Round(10 * time.Microsecond)
				t := newTable(a.stdout, "AGENT", "URL", "STATUS", "LATENCY")
				st := "-"
				if resp.GetStatus() != 0 {
					st = strconv.Itoa(int(resp.GetStatus()))
				}
				t.row(resp.GetAgentId(), resp.GetUrl(), st, latency.String())
				if err := t.flush(); err != nil {
					return err
				}
			}
			if resp.GetError() != "" {
				return errors.New(op + " from agent " + resp.GetAgentId() + ": no answer: " + resp.GetError())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "agent to ping from (default: any connected agent)")
	return cmd
}
