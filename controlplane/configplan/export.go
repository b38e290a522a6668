package configplan

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/proto/configfile"
	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Version is the version of the config format.
const Version = 1

// The kinds of object an export holds, as ExportConfigRequest.kinds names
// them.
const (
	KindSecurity = "security"
	KindOutgoing = "outgoing"
	KindChannel  = "channel"
	KindJob      = "job"
	KindPackage  = "package"
)

// configKinds are the kinds in the order of the Config message.
var configKinds = []string{KindSecurity, KindOutgoing, KindChannel, KindJob, KindPackage}

// Export is the part of d that sel selects, as a config document: every
// object without its output-only fields, sorted by name, each secret as
// a ${VAR} placeholder, and packages with their files when withSource is
// set. The error names the names sel asks for that match no object.
func Export(d store.Desired, sel *Selection, withSource bool) (*adminv1.Config, error) {
	cfg := &adminv1.Config{Version: Version}
	vars := secretVarNames(d.Security)
	for _, def := range d.Security {
		if sel.wants(KindSecurity, def.Name) {
			cfg.Security = append(cfg.Security, securityExport(def, vars[def.Name]))
		}
	}
	for _, c := range d.Outgoing {
		if sel.wants(KindOutgoing, c.Name) {
			cfg.Outgoing = append(cfg.Outgoing, exported(proto.CloneOf(c)))
		}
	}
	for _, c := range d.Channels {
		if sel.wants(KindChannel, c.Name) {
			cfg.Channels = append(cfg.Channels, exported(proto.CloneOf(c)))
		}
	}
	for _, j := range d.Jobs {
		if sel.wants(KindJob, j.Name) {
			cfg.Jobs = append(cfg.Jobs, exported(proto.CloneOf(j)))
		}
	}
	for _, p := range d.Packages {
		if sel.wants(KindPackage, p.Name) {
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
	if missing := sel.unmatched(); len(missing) > 0 {
		return nil, errors.New(sel.describeMissing(missing))
	}
	return cfg, nil
}

// securityExport is def with each secret that is set replaced by its
// placeholder (varName names the definition in it), and without
// output-only fields. It starts from the redacted form, so a secret in
// clear is never copied into the message.
func securityExport(def *adminv1.SecurityDefinition, varName string) *adminv1.SecurityDefinition {
	return marks.ReplaceSecrets(exported(SecurityOut(def)), func(fd protoreflect.FieldDescriptor, _ string) string {
		return secretPlaceholder(varName, string(fd.Name()))
	})
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
func secretVarNames(defs []*adminv1.SecurityDefinition) map[string]string {
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
func packageExport(p *adminv1.Package, withSource bool) *adminv1.PackageSource {
	out := &adminv1.PackageSource{Name: p.Name}
	if withSource {
		for _, f := range p.Sources {
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
	configfile.EscapeStrings(marks.ClearOutputOnly(m).ProtoReflect())
	return m
}

// named is an exported message: each has a name.
type named interface{ GetName() string }

// sortByName sorts l by name, in byte order.
func sortByName[T named](l []T) {
	slices.SortFunc(l, func(a, b T) int { return strings.Compare(a.GetName(), b.GetName()) })
}

// Selection is what an export asks for: some kinds (nil means
// every kind) and some names (nil means every name). It notes which names
// matched an object, so that one matching nothing can be reported.
type Selection struct {
	kinds   map[string]bool
	names   []string
	matched map[string]bool
}

// Select is the selection of kinds (nil: every kind) and names (nil:
// every name). A kind must be one of those of the Config message
// (security, outgoing, channel, job, package) and a name must not be
// empty.
func Select(kinds, names []string) (*Selection, error) {
	sel := &Selection{matched: map[string]bool{}}
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
func (sel *Selection) wants(kind, name string) bool {
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
func (sel *Selection) unmatched() []string {
	var out []string
	for _, n := range sel.names {
		if !sel.matched[n] {
			out = append(out, n)
		}
	}
	return out
}

// describeMissing says which names matched nothing, and among which kinds.
func (sel *Selection) describeMissing(missing []string) string {
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
