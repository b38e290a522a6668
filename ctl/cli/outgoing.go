package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

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
	description                                                              string
	tlsSkipVerify, active, inactive                                          bool
	poolSize                                                                 int32
	headers                                                                  []string
}

// register adds the flags to cmd; update also gets --active.
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
	fs.StringVar(&f.description, "description", "", "what the connection is for, at most 1024 characters")
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
	set("description", "description", &c.Description, f.description)
	set("path", "path_template", &c.PathTemplate, f.path)
	if changed("method") {
		method := ""
		if strings.TrimSpace(f.method) != "" {
			m, err := parseMethods([]string{f.method})
			if err != nil {
				return nil, err
			}
			method = m[0]
		}
		c.Method = method
		mask = append(mask, "method")
	}
	if changed("format") {
		format, err := parseFormat(f.dataFormat)
		if err != nil {
			return nil, err
		}
		c.DataFormat = format
		mask = append(mask, "data_format")
	}
	set("soap-action", "soap_action", &c.SoapAction, f.soapAction)
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
		pem, err := readPEMFlag("ca-file", f.caFile, pemCertificate)
		if err != nil {
			return nil, err
		}
		c.CaBundlePem = pem
		mask = append(mask, "ca_bundle_pem")
	}
	set("security", "security", &c.Security, f.security)
	if changed("pool-size") {
		if f.poolSize < 0 {
			return nil, fmt.Errorf("--pool-size %d: must not be negative", f.poolSize)
		}
		c.PoolSize = f.poolSize
		mask = append(mask, "pool_size")
	}
	if changed("header") {
		h, err := parseHeaders(f.headers)
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

// parseHeaders parses --header NAME=VALUE values and checks the names;
// "" alone clears them all.
func parseHeaders(in []string) (map[string]string, error) {
	h, err := parsePairs("--header", in)
	if err != nil {
		return nil, err
	}
	for name := range h {
		if !isToken(name) {
			return nil, fmt.Errorf("--header %q: not a valid HTTP header name", name)
		}
	}
	return h, nil
}

// isToken reports whether s is an HTTP token (RFC 9110 5.6.2), as header
// names must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// methodOf names a connection's method; empty means GET.
func methodOf(c *adminv1.OutgoingConnection) string {
	if c.GetMethod() == "" {
		return "GET"
	}
	return c.GetMethod()
}

// outFormatOf names a connection's data format; empty means json.
func outFormatOf(c *adminv1.OutgoingConnection) string {
	if c.GetDataFormat() == "" {
		return "json"
	}
	return c.GetDataFormat()
}
