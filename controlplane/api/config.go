package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/ctl/configfile"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

type configs struct {
	adminv1.UnimplementedConfigServiceServer
	*Server
}

var _ adminv1.ConfigServiceServer = (*configs)(nil)

// configVersion is the version of the export format.
const configVersion = 1

// The kinds of object an export holds, as ExportConfigRequest.kinds names
// them.
const (
	kindSecurity = "security"
	kindOutgoing = "outgoing"
	kindChannel  = "channel"
	kindJob      = "job"
	kindPackage  = "package"
)

// configKinds are the kinds in the order of the Config message.
var configKinds = []string{kindSecurity, kindOutgoing, kindChannel, kindJob, kindPackage}

// outputOnly are the fields the control plane sets, which an export leaves
// out: they differ between two control planes holding the same config.
var outputOnly = []protoreflect.Name{"created_at", "updated_at", "revision", "next_run_at", "lease", "last_run"}

// ExportConfig returns the config at one revision, secrets as placeholders.
func (s *configs) ExportConfig(ctx context.Context, req *adminv1.ExportConfigRequest) (*adminv1.ExportConfigResponse, error) {
	sel, err := newSelection(req.GetKinds(), req.GetNames())
	if err != nil {
		return nil, invalid("export config", err)
	}
	// One snapshot: every object at the same revision, secrets in clear
	// (they become placeholders below and never leave this function).
	d, err := s.store.Desired(ctx)
	if err != nil {
		return nil, storeError("export config", err)
	}
	cfg := exportConfig(d, sel, req.GetIncludeSource())
	if missing := sel.unmatched(); len(missing) > 0 {
		return nil, status.Errorf(codes.NotFound, "export config: %s", sel.describeMissing(missing))
	}
	s.log.Info("config exported", "revision", d.Revision, "security", len(cfg.Security), "outgoing", len(cfg.Outgoing),
		"channels", len(cfg.Channels), "jobs", len(cfg.Jobs), "packages", len(cfg.Packages),
		"source", req.GetIncludeSource(), "caller", caller(ctx))
	return &adminv1.ExportConfigResponse{Config: cfg}, nil
}

// exportConfig is the part of d that sel selects, as a config document.
func exportConfig(d store.Desired, sel *selection, withSource bool) *adminv1.Config {
	cfg := &adminv1.Config{Version: configVersion}
	vars := secretVarNames(d.Security)
	for _, def := range d.Security {
		if sel.wants(kindSecurity, def.Name) {
			cfg.Security = append(cfg.Security, securityExport(def, vars[def.Name]))
		}
	}
	for _, c := range d.Outgoing {
		if sel.wants(kindOutgoing, c.Name) {
			cfg.Outgoing = append(cfg.Outgoing, exported(outgoingOut(c)))
		}
	}
	for _, c := range d.Channels {
		if sel.wants(kindChannel, c.Name) {
			cfg.Channels = append(cfg.Channels, exported(channelOut(c)))
		}
	}
	for _, j := range d.Jobs {
		if sel.wants(kindJob, j.Name) {
			cfg.Jobs = append(cfg.Jobs, exported(jobProto(j)))
		}
	}
	for _, p := range d.Packages {
		if sel.wants(kindPackage, p.Name) {
			cfg.Packages = append(cfg.Packages, packageExport(p, withSource))
		}
	}
	// The store reads in name order already; sorting here makes byte order
	// part of the export's contract rather than of the store's queries.
	sortByName(cfg.Security)
	sortByName(cfg.Outgoing)
	sortByName(cfg.Channels)
	sortByName(cfg.Jobs)
	sortByName(cfg.Packages)
	return cfg
}

// securityExport is def with each secret that is set replaced by its
// placeholder (varName names the definition in it), and without
// output-only fields. It starts from the redacted form, so a secret in
// clear is never copied into the message.
func securityExport(def store.SecurityDefinition, varName string) *adminv1.SecurityDefinition {
	p := exported(securityOut(def))
	m := p.ProtoReflect()
	for _, f := range secretFields(def) {
		if f.value == "" {
			continue
		}
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(f.name))
		m.Set(fd, protoreflect.ValueOfString(secretPlaceholder(varName, f.name)))
	}
	return p
}

// secretPlaceholder is the ${VAR} written in place of a secret field of
// the definition varName names: WEFT_SECRET_<VARNAME>_<FIELD>.
func secretPlaceholder(varName, field string) string {
	return "${WEFT_SECRET_" + varName + "_" + envName(field) + "}"
}

// secretVarNames names each definition in its placeholders: its name
// upper-cased, every character other than A-Z and 0-9 written as _. Names
// that would read the same (crm-token, crm.token) each get the first 8 hex
// digits of their name's SHA-256 as well, so that no two definitions
// share a variable. Every definition is named, exported or not, so that a
// filtered export writes the placeholders a full one does.
func secretVarNames(defs []store.SecurityDefinition) map[string]string {
	byVar := map[string][]string{}
	for _, def := range defs {
		v := envName(def.Name)
		byVar[v] = append(byVar[v], def.Name)
	}
	out := make(map[string]string, len(defs))
	for v, names := range byVar {
		for _, n := range names {
			out[n] = v
			if len(names) > 1 {
				sum := sha256.Sum256([]byte(n))
				out[n] = v + "_" + strings.ToUpper(hex.EncodeToString(sum[:4]))
			}
		}
	}
	return out
}

// envName is s upper-cased with every character other than A-Z and 0-9
// written as _, so that it can be part of an environment variable's name.
func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		default:
			return '_'
		}
	}, s)
}

// packageExport is p by name, with its files when withSource is set. Its
// strings (names) are escaped as every other kind's are; a file's content
// is bytes, which a config file takes as they are.
func packageExport(p store.Package, withSource bool) *adminv1.PackageSource {
	out := &adminv1.PackageSource{Name: p.Name}
	if withSource {
		for _, f := range p.Files {
			out.Files = append(out.Files, &adminv1.SourceFile{Name: f.Name, Content: f.Content})
		}
		slices.SortFunc(out.Files, func(a, b *adminv1.SourceFile) int { return strings.Compare(a.GetName(), b.GetName()) })
	}
	return exported(out)
}

// exported is m as an export writes it: without output-only fields, and
// every string as a config file holds it (each "${" written "$${"), so
// that reading the file gives back each value exactly.
func exported[M proto.Message](m M) M {
	configfile.EscapeStrings(clearOutputOnly(m).ProtoReflect())
	return m
}

// clearOutputOnly clears the output-only fields of m and returns it.
func clearOutputOnly[M proto.Message](m M) M {
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for _, n := range outputOnly {
		if fd := fields.ByName(n); fd != nil {
			r.Clear(fd)
		}
	}
	return m
}

// named is an exported message: each has a name.
type named interface{ GetName() string }

// sortByName sorts l by name, in byte order.
func sortByName[T named](l []T) {
	slices.SortFunc(l, func(a, b T) int { return strings.Compare(a.GetName(), b.GetName()) })
}

// selection is what an export request asks for: some kinds (nil means
// every kind) and some names (nil means every name). It notes which names
// matched an object, so that one matching nothing can be reported.
type selection struct {
	kinds   map[string]bool
	names   []string
	matched map[string]bool
}

// newSelection checks kinds and names: a kind must be one of configKinds
// and a name must not be empty.
func newSelection(kinds, names []string) (*selection, error) {
	sel := &selection{matched: map[string]bool{}}
	for i, k := range kinds {
		if !slices.Contains(configKinds, k) {
			return nil, fmt.Errorf("kinds[%d]: unknown kind %q; want one of %s", i, k, strings.Join(configKinds, ", "))
		}
		if sel.kinds == nil {
			sel.kinds = map[string]bool{}
		}
		sel.kinds[k] = true
	}
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			return nil, fmt.Errorf("names[%d]: is empty", i)
		}
		if !slices.Contains(sel.names, n) {
			sel.names = append(sel.names, n)
		}
	}
	return sel, nil
}

// wants reports whether the object name of kind is selected.
func (sel *selection) wants(kind, name string) bool {
	if sel.kinds != nil && !sel.kinds[kind] {
		return false
	}
	if sel.names == nil {
		return true
	}
	if !slices.Contains(sel.names, name) {
		return false
	}
	sel.matched[name] = true
	return true
}

// unmatched lists the names asked for that matched no object, in the
// order they were asked for.
func (sel *selection) unmatched() []string {
	var out []string
	for _, n := range sel.names {
		if !sel.matched[n] {
			out = append(out, n)
		}
	}
	return out
}

// describeMissing says which names matched nothing, and among which kinds.
func (sel *selection) describeMissing(missing []string) string {
	quoted := make([]string, len(missing))
	for i, n := range missing {
		quoted[i] = strconv.Quote(n)
	}
	among := "any kind"
	if sel.kinds != nil {
		var ks []string
		for _, k := range configKinds {
			if sel.kinds[k] {
				ks = append(ks, k)
			}
		}
		among = "kind " + strings.Join(ks, ", ")
	}
	return fmt.Sprintf("no object of %s is named %s", among, strings.Join(quoted, ", "))
}
