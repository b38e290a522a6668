// Package validate checks what users send the control plane before anything
// is stored: channel fields, and deployment packages, which it parses and
// type-checks against the symbols agents offer without running any of
// their code; a package whose services only its initialisation tells is
// evaluated in a confined child process (Evaluator), never in the control
// plane. Every error names the field, or the file and line, that is wrong.
package validate

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/shared/format"
	"github.com/weft-dev/weft/agent/shared/outgoingconf"
	"github.com/weft-dev/weft/agent/shared/route"
	"github.com/weft-dev/weft/agent/shared/secdef"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/agent/shared/svcpkg"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Limits on what a deploy may carry.
const (
	MaxFileBytes    = 1 << 20
	MaxPackageBytes = 8 << 20
	MaxTimeout      = time.Hour
	MaxBodyBytes    = 64 << 20
)

var (
	namePattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	fileNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.go$`)
	allowedMethods  = []string{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}
)

// Name checks the name of an object of kind.
func Name(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is required", kind)
	}
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%s name %q: want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", kind, name)
	}
	return nil
}

// MaxDescription bounds an object's description, in characters.
const MaxDescription = 1024

// Description checks an object's description: text of at most
// MaxDescription characters, lines and tabs allowed, no other control
// characters.
func Description(d string) error {
	if !utf8.ValidString(d) {
		return errors.New("description: is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(d); n > MaxDescription {
		return fmt.Errorf("description: is %d characters; want at most %d", n, MaxDescription)
	}
	for i, r := range d {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return fmt.Errorf("description: holds the control character %U at byte %d", r, i)
		}
	}
	return nil
}

// Channel checks a channel's fields and returns a copy normalised, as every
// write stores it, through the API or an import: active when unset, the
// data format's canonical name (json when none is given), methods upper
// case, sorted and unique, POST when none are given. existing are the
// other stored channels, to refuse a path that would collide with one of
// theirs.
func Channel(in *adminv1.Channel, existing []*adminv1.Channel) (*adminv1.Channel, error) {
	ch := proto.Clone(in).(*adminv1.Channel)
	if ch.Active == nil {
		ch.Active = proto.Bool(true)
	}
	var errs []error
	if err := Name("channel", ch.Name); err != nil {
		errs = append(errs, err)
	}
	f, ferr := format.Parse(ch.DataFormat)
	switch {
	case ch.Service == "" && (ferr != nil || !f.IsSOAP() || len(ch.SoapActions) == 0):
		errs = append(errs, errors.New("service is required (a SOAP channel may leave it out when soap_actions route every operation)"))
	case ch.Service != "":
		if err := Name("service", ch.Service); err != nil {
			errs = append(errs, fmt.Errorf("service: %w", err))
		}
	}
	if len(ch.SoapActions) > 0 && (ferr != nil || !f.IsSOAP()) {
		errs = append(errs, fmt.Errorf("soap_actions: only soap11 and soap12 channels route SOAP actions; this one's data_format is %q", ch.DataFormat))
	}
	for _, op := range slices.Sorted(maps.Keys(ch.SoapActions)) {
		svc := ch.SoapActions[op]
		if strings.TrimSpace(op) == "" || len(op) > 1024 {
			errs = append(errs, fmt.Errorf("soap_actions: action %q: want 1-1024 characters", op))
		}
		if err := Name("service", svc); err != nil {
			errs = append(errs, fmt.Errorf("soap_actions[%q]: %w", op, err))
		}
	}
	if math.IsNaN(ch.RateLimit) || math.IsInf(ch.RateLimit, 0) || ch.RateLimit < 0 || ch.RateLimit > MaxRateLimit {
		errs = append(errs, fmt.Errorf("rate_limit %g: want 0 (no limit) to %d requests a second", ch.RateLimit, MaxRateLimit))
	}
	if ch.RateBurst < 0 || ch.RateBurst > MaxRateLimit {
		errs = append(errs, fmt.Errorf("rate_burst %d: want 0 (the rate rounded up) to %d", ch.RateBurst, MaxRateLimit))
	}
	if ch.RateBurst > 0 && ch.RateLimit == 0 {
		errs = append(errs, errors.New("rate_burst is set but rate_limit is 0; set rate_limit too"))
	}
	if ch.Security != "" {
		if err := Name("security definition", ch.Security); err != nil {
			errs = append(errs, fmt.Errorf("security: %w", err))
		}
	}
	if err := Description(ch.Description); err != nil {
		errs = append(errs, err)
	}
	var methods []string
	for _, m := range ch.Methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if !slices.Contains(allowedMethods, m) {
			errs = append(errs, fmt.Errorf("methods: %q is not one of %s", m, strings.Join(allowedMethods, ", ")))
			continue
		}
		if !slices.Contains(methods, m) {
			methods = append(methods, m)
		}
	}
	if len(ch.Methods) == 0 {
		methods = []string{"POST"}
	}
	sort.Strings(methods)
	ch.Methods = methods
	if ch.TimeoutMs < 0 || ch.TimeoutMs > MaxTimeout.Milliseconds() {
		errs = append(errs, fmt.Errorf("timeout_ms %d: want 0 (the agent's default) to %d", ch.TimeoutMs, MaxTimeout.Milliseconds()))
	}
	if ch.MaxBodyBytes < 0 || ch.MaxBodyBytes > MaxBodyBytes {
		errs = append(errs, fmt.Errorf("max_body_bytes %d: want 0 (the agent's default) to %d", ch.MaxBodyBytes, MaxBodyBytes))
	}
	if ferr != nil {
		errs = append(errs, fmt.Errorf("data_format: %w", ferr))
	} else {
		ch.DataFormat = f.String()
	}
	if err := route.CheckPath(ch.Path); err != nil {
		errs = append(errs, fmt.Errorf("path: %w", err))
	}
	if len(errs) > 0 {
		return ch, errors.Join(errs...)
	}
	// The agents' router decides what collides; ask it, with every channel.
	all := []*adminv1.Channel{ch}
	for _, e := range existing {
		if e.Name != ch.Name {
			all = append(all, e)
		}
	}
	if err := route.Check(all); err != nil {
		return ch, fmt.Errorf("path: %w", err)
	}
	return ch, nil
}

// MaxRateLimit bounds a channel's rate limit and burst.
const MaxRateLimit = 1_000_000

// SecurityDefinition checks a security definition with the rules agents
// apply (agent/shared/secdef), so that what the control plane stores an
// agent can use.
func SecurityDefinition(d *adminv1.SecurityDefinition) error {
	if err := Name("security definition", d.GetName()); err != nil {
		return err
	}
	if err := Description(d.GetDescription()); err != nil {
		return fmt.Errorf("security definition %q: %w", d.GetName(), err)
	}
	if d.GetLeewayMs() < 0 || d.GetLeewayMs() > MaxLeeway.Milliseconds() {
		return fmt.Errorf("security definition %q: leeway_ms %d: want 0 to %d", d.GetName(), d.GetLeewayMs(), MaxLeeway.Milliseconds())
	}
	return secdef.Of(d).Validate()
}

// MaxLeeway bounds the clock skew a JWT definition allows.
const MaxLeeway = 10 * time.Minute

// OutgoingConnection checks an outgoing connection with the rules agents
// apply (agent/shared/outgoingconf) and returns a copy normalised, as every
// write stores it, through the API or an import: active when unset.
func OutgoingConnection(in *adminv1.OutgoingConnection) (*adminv1.OutgoingConnection, error) {
	c := proto.CloneOf(in)
	if c.Active == nil {
		c.Active = proto.Bool(true)
	}
	if err := Name("outgoing connection", c.Name); err != nil {
		return c, err
	}
	if err := Description(c.Description); err != nil {
		return c, fmt.Errorf("outgoing connection %q: %w", c.Name, err)
	}
	if c.TimeoutMs < 0 || c.TimeoutMs > MaxTimeout.Milliseconds() {
		return c, fmt.Errorf("outgoing connection %q: timeout_ms %d: want 0 (30 s) to %d", c.Name, c.TimeoutMs, MaxTimeout.Milliseconds())
	}
	if c.PoolSize < 0 || c.PoolSize > 10_000 {
		return c, fmt.Errorf("outgoing connection %q: pool_size %d: want 0 (10) to 10000", c.Name, c.PoolSize)
	}
	if c.Security != "" {
		if err := Name("security definition", c.Security); err != nil {
			return c, fmt.Errorf("outgoing connection %q: security: %w", c.Name, err)
		}
	}
	return c, outgoingconf.Of(c).Validate()
}

// Package checks one package's files and returns it ready to store, with
// the services it registers. It parses and type-checks them in this
// process (svcpkg.Check) and runs none of their code: when only running
// the package's initialisation tells its services, ev evaluates it in a
// child process; with a nil ev, such a package is refused. name may be
// empty: the Go package name of the files is used. The error lists every
// problem found, each with its file and line where it has one.
func Package(ctx context.Context, name string, files []*adminv1.SourceFile, ev *Evaluator) (*adminv1.Package, error) {
	var errs []error
	if len(files) == 0 {
		return nil, errors.New("no .go files")
	}
	files = slices.Clone(files)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	var total int
	goName := ""
	for i, f := range files {
		switch {
		case !fileNamePattern.MatchString(f.Name):
			errs = append(errs, fmt.Errorf("file %q: want a base name of letters, digits, '.', '_' or '-', ending in .go", f.Name))
		case strings.HasSuffix(f.Name, "_test.go"):
			errs = append(errs, fmt.Errorf("file %q: test files are not deployed; leave them out", f.Name))
		case i > 0 && files[i-1].Name == f.Name:
			errs = append(errs, fmt.Errorf("file %q: given twice", f.Name))
		}
		if len(f.Content) > MaxFileBytes {
			errs = append(errs, fmt.Errorf("file %q: %d bytes; the limit is %d", f.Name, len(f.Content), MaxFileBytes))
		}
		total += len(f.Content)
		pf, err := parser.ParseFile(token.NewFileSet(), f.Name, f.Content, parser.PackageClauseOnly)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case goName == "":
			goName = pf.Name.Name
		case pf.Name.Name != goName:
			errs = append(errs, fmt.Errorf("%s: package %s; the other files say package %s", f.Name, pf.Name.Name, goName))
		}
	}
	if total > MaxPackageBytes {
		errs = append(errs, fmt.Errorf("package: %d bytes; the limit is %d", total, MaxPackageBytes))
	}
	if name == "" {
		name = goName
	}
	if err := Name("package", name); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	src := &adminv1.PackageSource{Name: name, Files: files}
	np := &adminv1.Package{Name: name, Sources: files}
	for _, f := range files {
		np.Files = append(np.Files, f.Name)
	}
	checked, err := svcpkg.Check(src)
	if err != nil {
		return nil, err
	}
	services := checked.Services
	if checked.Eval != "" {
		if ev == nil {
			return nil, fmt.Errorf("only running the package tells its services (%s), and this control plane does not evaluate packages", checked.Eval)
		}
		if services, err = ev.Eval(ctx, src); err != nil {
			return nil, err
		}
	}
	sort.Strings(services)
	np.Services = services
	np.Sha256 = snapshot.PackageHash(files)
	return np, nil
}
