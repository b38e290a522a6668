package cli

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newChannelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "channel",
		Aliases: []string{"channels", "ch"},
		Short:   "Manage the HTTP channels agents serve",
	}
	cmd.AddCommand(
		a.newChannelCreateCmd(),
		a.newChannelListCmd(),
		a.newChannelGetCmd(),
		a.newChannelUpdateCmd(),
		a.newChannelDeleteCmd(),
	)
	return cmd
}

// channelFlags are the flags that set a channel's fields, shared by create
// and update.
type channelFlags struct {
	path, service    string
	methods          []string
	timeout, maxBody string
	dataFormat       string
	active, inactive bool
	security         string
	rateLimit        float64
	rateBurst        int32
	soapActions      []string
	description      string
}

// register adds the flags to cmd; update also gets --active.
func (f *channelFlags) register(cmd *cobra.Command, update bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.path, "path", "", "URL path template, such as /api/orders/{id}")
	fs.StringSliceVar(&f.methods, "method", nil, "HTTP method; repeat or comma-separate for several (default POST)")
	fs.StringVar(&f.service, "service", "", "service the channel calls")
	fs.StringVar(&f.timeout, "timeout", "", "bound on one invocation, such as 5s; 0 for the agent's default")
	fs.StringVar(&f.maxBody, "max-body", "", "bound on the request body in bytes, or with a KiB, MiB or GiB suffix, such as 1MiB; 0 for the agent's default")
	fs.StringVar(&f.dataFormat, "format", "", "data format: json (the default), xml, soap11 or soap12")
	fs.StringVar(&f.security, "security", "", "inbound security definition every request must satisfy (basic_auth, api_key or jwt); \"\" for none")
	fs.Float64Var(&f.rateLimit, "rate-limit", 0, "requests a second each client address may make; 0 for no limit")
	fs.Int32Var(&f.rateBurst, "rate-burst", 0, "requests a client may make at once before the rate applies; 0 for the rate rounded up")
	fs.StringArrayVar(&f.soapActions, "soap-action", nil, "route a SOAP operation to a service, OPERATION=SERVICE; repeat for several")
	fs.StringVar(&f.description, "description", "", "what the channel is for, at most 1024 characters")
	fs.BoolVar(&f.inactive, "inactive", false, "answer 404 until the channel is activated")
	if update {
		fs.BoolVar(&f.active, "active", false, "activate the channel")
		cmd.MarkFlagsMutuallyExclusive("active", "inactive")
	}
}

// apply sets the fields of ch whose flags were given and returns their
// proto field names, as an update mask wants them.
func (f *channelFlags) apply(cmd *cobra.Command, ch *adminv1.Channel) ([]string, error) {
	changed := cmd.Flags().Changed
	var mask []string
	if changed("path") {
		if !strings.HasPrefix(f.path, "/") {
			return nil, fmt.Errorf("--path %q: must start with /", f.path)
		}
		ch.Path = f.path
		mask = append(mask, "path")
	}
	if changed("method") {
		methods, err := parseMethods(f.methods)
		if err != nil {
			return nil, err
		}
		ch.Methods = methods
		mask = append(mask, "methods")
	}
	if changed("service") {
		if strings.TrimSpace(f.service) == "" {
			return nil, errors.New("--service must not be empty")
		}
		ch.Service = f.service
		mask = append(mask, "service")
	}
	if changed("active") || changed("inactive") {
		ch.Active = proto.Bool(f.active || !f.inactive)
		mask = append(mask, "active")
	}
	if changed("timeout") {
		ms, err := parseMillis(f.timeout)
		if err != nil {
			return nil, fmt.Errorf("--timeout %q: %w", f.timeout, err)
		}
		ch.TimeoutMs = ms
		mask = append(mask, "timeout_ms")
	}
	if changed("max-body") {
		n, err := parseBytes(f.maxBody)
		if err != nil {
			return nil, fmt.Errorf("--max-body %q: %w", f.maxBody, err)
		}
		ch.MaxBodyBytes = n
		mask = append(mask, "max_body_bytes")
	}
	if changed("format") {
		format, err := parseFormat(f.dataFormat)
		if err != nil {
			return nil, err
		}
		ch.DataFormat = format
		mask = append(mask, "data_format")
	}
	if changed("security") {
		ch.Security = strings.TrimSpace(f.security)
		mask = append(mask, "security")
	}
	if changed("rate-limit") {
		if f.rateLimit < 0 || math.IsNaN(f.rateLimit) || math.IsInf(f.rateLimit, 0) {
			return nil, fmt.Errorf("--rate-limit %g: want 0 (no limit) or more requests a second", f.rateLimit)
		}
		ch.RateLimit = f.rateLimit
		mask = append(mask, "rate_limit")
	}
	if changed("rate-burst") {
		if f.rateBurst < 0 {
			return nil, fmt.Errorf("--rate-burst %d: must not be negative", f.rateBurst)
		}
		ch.RateBurst = f.rateBurst
		mask = append(mask, "rate_burst")
	}
	if changed("soap-action") {
		actions, err := parsePairs("--soap-action", f.soapActions)
		if err != nil {
			return nil, err
		}
		ch.SoapActions = actions
		mask = append(mask, "soap_actions")
	}
	if changed("description") {
		ch.Description = f.description
		mask = append(mask, "description")
	}
	return mask, nil
}

// dataFormats are the values --format accepts; "" means json.
var dataFormats = []string{"json", "xml", "soap11", "soap12"}

// parseFormat lower-cases a --format value and refuses an unknown one.
func parseFormat(s string) (string, error) {
	f := strings.ToLower(strings.TrimSpace(s))
	if f != "" && !slices.Contains(dataFormats, f) {
		return "", fmt.Errorf("--format %q: want %s", s, strings.Join(dataFormats, ", "))
	}
	return f, nil
}

// parsePairs parses KEY=VALUE flag values; "" alone clears them all.
func parsePairs(flag string, in []string) (map[string]string, error) {
	out := map[string]string{}
	if len(in) == 1 && in[0] == "" {
		return out, nil
	}
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", flag, kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s: %q is given twice", flag, k)
		}
		out[k] = v
	}
	return out, nil
}

// parseMethods upper-cases and checks HTTP methods.
func parseMethods(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, m := range in {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" {
			return nil, errors.New("--method: empty method")
		}
		for _, r := range m {
			if (r < 'A' || r > 'Z') && r != '-' && r != '_' {
				return nil, fmt.Errorf("--method %q: not an HTTP method", m)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// parseMillis parses a Go duration such as 5s or 250ms into whole
// milliseconds; 0 is allowed and means the default.
func parseMillis(s string) (int64, error) {
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("want a duration such as 5s or 250ms")
	}
	switch {
	case d < 0:
		return 0, errors.New("must not be negative")
	case d%time.Millisecond != 0:
		return 0, errors.New("must be whole milliseconds")
	}
	return d.Milliseconds(), nil
}

// byteUnits are the suffixes parseBytes accepts, longest first.
var byteUnits = []struct {
	suffix, name string
	size         int64
}{
	{"gib", "GiB", 1 << 30},
	{"mib", "MiB", 1 << 20},
	{"kib", "KiB", 1 << 10},
	{"b", "B", 1},
}

// parseBytes parses a size in bytes, optionally with a B, KiB, MiB or GiB
// suffix (case does not matter): 1048576, 1MiB, 512KiB.
func parseBytes(s string) (int64, error) {
	num, unit := strings.TrimSpace(s), int64(1)
	lower := strings.ToLower(num)
	for _, u := range byteUnits {
		if strings.HasSuffix(lower, u.suffix) {
			num, unit = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.size
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	switch {
	case err != nil:
		return 0, errors.New("want a whole number of bytes, or one with a KiB, MiB or GiB suffix, such as 1MiB")
	case n < 0:
		return 0, errors.New("must not be negative")
	case n > math.MaxInt64/unit:
		return 0, errors.New("too large")
	}
	return n * unit, nil
}

// formatBytes renders a size the way --max-body accepts it.
func formatBytes(n int64) string {
	for _, u := range byteUnits {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// methodsOf renders a channel's methods; none means POST.
func methodsOf(ch *adminv1.Channel) string {
	if len(ch.GetMethods()) == 0 {
		return "POST"
	}
	return strings.Join(ch.GetMethods(), ",")
}

// printChannel writes a channel as key: value lines.
func (a *app) printChannel(ch *adminv1.Channel) error {
	now := a.now()
	timeout, maxBody := "default", "default"
	if ms := ch.GetTimeoutMs(); ms > 0 {
		timeout = (time.Duration(ms) * time.Millisecond).String()
	}
	if n := ch.GetMaxBodyBytes(); n > 0 {
		maxBody = formatBytes(n)
	}
	t := newTable(a.stdout)
	t.kv("name", ch.GetName())
	if d := ch.GetDescription(); d != "" {
		t.kv("description", d)
	}
	t.kv("path", ch.GetPath())
	t.kv("methods", methodsOf(ch))
	t.kv("service", ch.GetService())
	t.kv("active", yesNo(ch.GetActive()))
	t.kv("timeout", timeout)
	t.kv("max body", maxBody)
	t.kv("format", formatOf(ch))
	t.kv("security", ch.GetSecurity())
	t.kv("rate limit", rateOf(ch))
	for _, op := range slices.Sorted(maps.Keys(ch.GetSoapActions())) {
		t.kv("soap action", op+" -> "+ch.GetSoapActions()[op])
	}
	t.kv("revision", strconv.FormatInt(ch.GetRevision(), 10))
	t.kv("created", when(now, ch.GetCreatedAt()))
	t.kv("updated", when(now, ch.GetUpdatedAt()))
	return t.flush()
}

// rateOf renders a channel's rate limit, such as "10/s, burst 20".
func rateOf(ch *adminv1.Channel) string {
	if ch.GetRateLimit() <= 0 {
		return "none"
	}
	burst := ch.GetRateBurst()
	if burst <= 0 {
		burst = int32(max(1, math.Ceil(ch.GetRateLimit())))
	}
	return fmt.Sprintf("%g/s, burst %d", ch.GetRateLimit(), burst)
}

// formatOf names a channel's data format; empty means json.
func formatOf(ch *adminv1.Channel) string {
	if ch.GetDataFormat() == "" {
		return "json"
	}
	return ch.GetDataFormat()
}
