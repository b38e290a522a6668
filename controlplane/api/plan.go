package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weft-dev/weft/agent/snapshot"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// The actions of a plan item.
const (
	actionCreate    = "create"
	actionUpdate    = "update"
	actionUnchanged = "unchanged"
	actionDelete    = "delete"
)

// secretShown is what a plan shows for a secret that is set.
const secretShown = "(secret)"

// maxShown bounds a value a plan shows; longer ones are cut with "…".
const maxShown = 80

// placeholderPattern finds a ${VAR} a client left unresolved.
var placeholderPattern = regexp.MustCompile(`\$\{([^}]*)\}`)

// PlanConfig compares the config with the live one, object by object and
// field by field, and changes nothing.
func (s *configs) PlanConfig(ctx context.Context, req *adminv1.PlanConfigRequest) (*adminv1.PlanConfigResponse, error) {
	cfg := req.GetConfig()
	if cfg == nil {
		return nil, status.Error(codes.InvalidArgument, "plan config: config is required")
	}
	if v := cfg.GetVersion(); v != 0 && v != configVersion {
		return nil, status.Errorf(codes.InvalidArgument, "plan config: version %d: want %d", v, configVersion)
	}
	if err := checkResolved(cfg); err != nil {
		return nil, invalid("plan config", err)
	}
	d, err := s.store.Desired(ctx)
	if err != nil {
		return nil, storeError("plan config", err)
	}
	items, err := planConfig(d, cfg, req.GetPrune())
	if err != nil {
		return nil, invalid("plan config", err)
	}
	resp := &adminv1.PlanConfigResponse{Items: items}
	counts := map[string]int{}
	for _, it := range items {
		counts[it.GetAction()]++
		if it.GetAction() != actionUnchanged {
			resp.Changes = true
		}
	}
	s.log.Info("config planned", "revision", d.Revision, "create", counts[actionCreate], "update", counts[actionUpdate],
		"unchanged", counts[actionUnchanged], "delete", counts[actionDelete], "prune", req.GetPrune(), "caller", caller(ctx))
	return resp, nil
}

// planned is one object on one side of a plan, normalised to the shape an
// export has, secrets in clear.
type planned struct {
	name string
	msg  proto.Message
}

// planConfig is the plan that takes d to cfg, in dependency order
// (security, outgoing, package, channel, job) and then by name.
func planConfig(d store.Desired, cfg *adminv1.Config, prune bool) ([]*adminv1.PlanItem, error) {
	var errs []error
	want := map[string][]planned{}
	add := func(kind string, l []planned, err error) {
		want[kind] = l
		if err != nil {
			errs = append(errs, err)
		}
	}
	l, err := wantSecurity(cfg.GetSecurity())
	add(kindSecurity, l, err)
	l, err = wantOutgoing(cfg.GetOutgoing())
	add(kindOutgoing, l, err)
	l, err = wantChannels(cfg.GetChannels(), d.Channels, prune)
	add(kindChannel, l, err)
	l, err = wantJobs(cfg.GetJobs(), d.Jobs)
	add(kindJob, l, err)
	pkgs, err := wantPackages(cfg.GetPackages())
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var items []*adminv1.PlanItem
	items = append(items, planKind(kindSecurity, liveSecurity(d.Security), want[kindSecurity], prune, isSecretField)...)
	items = append(items, planKind(kindOutgoing, liveOf(d.Outgoing, outgoingOut), want[kindOutgoing], prune, nil)...)
	items = append(items, planPackages(d.Packages, pkgs, prune)...)
	items = append(items, planKind(kindChannel, liveOf(d.Channels, channelOut), want[kindChannel], prune, nil)...)
	items = append(items, planKind(kindJob, liveOf(d.Jobs, jobProto), want[kindJob], prune, nil)...)
	return items, nil
}

// liveSecurity are the stored definitions as plans compare them: secrets
// in clear, output-only fields cleared.
func liveSecurity(defs []store.SecurityDefinition) []planned {
	out := make([]planned, 0, len(defs))
	for _, def := range defs {
		out = append(out, planned{def.Name, clearOutputOnly(securityClear(def))})
	}
	return out
}

// liveOf are the stored objects l as their API messages, output-only
// fields cleared: the shape an export has.
func liveOf[T any, M interface {
	proto.Message
	named
}](l []T, toProto func(T) M) []planned {
	out := make([]planned, 0, len(l))
	for _, x := range l {
		m := clearOutputOnly(toProto(x))
		out = append(out, planned{m.GetName(), m})
	}
	return out
}

// validateNames are the words validate names some kinds by, in errors
// that name the object already.
var validateNames = map[string]string{kindOutgoing: "outgoing connection", kindJob: "job"}

// objectError names the object an error is about, unless validate named
// it already.
func objectError(kind, name string, err error) error {
	if long, ok := validateNames[kind]; ok && strings.HasPrefix(err.Error(), fmt.Sprintf("%s %q: ", long, name)) {
		return err
	}
	return fmt.Errorf("%s %q: %w", kind, name, err)
}

// checkNames refuses an object given twice, naming it.
func checkNames[T named](kind string, l []T) error {
	seen := map[string]bool{}
	var errs []error
	for _, x := range l {
		if seen[x.GetName()] {
			errs = append(errs, objectError(kind, x.GetName(), errors.New("given twice; names are unique within a kind")))
		}
		seen[x.GetName()] = true
	}
	return errors.Join(errs...)
}

// wantSecurity normalises the config's definitions as creating them would:
// checked by checkSecurity, read back in clear.
func wantSecurity(l []*adminv1.SecurityDefinition) ([]planned, error) {
	errs := []error{checkNames(kindSecurity, l)}
	var out []planned
	for _, p := range l {
		d := securityIn(p)
		if err := checkSecurity(d); err != nil {
			errs = append(errs, objectError(kindSecurity, p.GetName(), err))
			continue
		}
		out = append(out, planned{d.Name, clearOutputOnly(securityClear(d))})
	}
	return out, errors.Join(errs...)
}

// wantOutgoing normalises the config's connections as creating them would.
func wantOutgoing(l []*adminv1.OutgoingConnection) ([]planned, error) {
	errs := []error{checkNames(kindOutgoing, l)}
	var out []planned
	for _, p := range l {
		c := outgoingIn(p)
		if err := validate.OutgoingConnection(c); err != nil {
			errs = append(errs, objectError(kindOutgoing, p.GetName(), err))
			continue
		}
		out = append(out, planned{c.Name, clearOutputOnly(outgoingOut(c))})
	}
	return out, errors.Join(errs...)
}

// wantChannels normalises the config's channels as creating them would
// (methods sorted, POST when none), then checks that their paths do not
// collide with each other or with the live channels the plan keeps: those
// the config lacks, unless prune deletes them.
func wantChannels(l []*adminv1.Channel, live []store.Channel, prune bool) ([]planned, error) {
	errs := []error{checkNames(kindChannel, l)}
	var out []planned
	var final []store.Channel
	inConfig := map[string]bool{}
	for _, p := range l {
		inConfig[p.GetName()] = true
		ch, err := validate.Channel(channelIn(p), nil)
		if err != nil {
			errs = append(errs, objectError(kindChannel, p.GetName(), err))
			continue
		}
		final = append(final, ch)
		out = append(out, planned{ch.Name, clearOutputOnly(channelOut(ch))})
	}
	if !prune {
		for _, ch := range live {
			if !inConfig[ch.Name] {
				final = append(final, ch)
			}
		}
	}
	if err := errors.Join(errs...); err != nil || len(final) == 0 {
		return out, err
	}
	// One check of every route at once: validate.Channel asks the agents'
	// router with the channel and all the others, and names both channels
	// of a collision.
	if _, err := validate.Channel(final[0], final[1:]); err != nil {
		return out, err
	}
	return out, nil
}

// wantJobs normalises the config's jobs as creating them would (placement
// every when empty, active when unset). A job without start_at keeps the
// live job's, as it would not change it; a new one starts when created.
func wantJobs(l []*adminv1.Job, live []store.Job) ([]planned, error) {
	errs := []error{checkNames(kindJob, l)}
	startAt := map[string]time.Time{}
	for _, j := range live {
		startAt[j.Name] = j.StartAt
	}
	var out []planned
	for _, p := range l {
		j, err := jobIn(p)
		if err != nil {
			errs = append(errs, objectError(kindJob, p.GetName(), err))
			continue
		}
		if j.StartAt.IsZero() && j.Type != "one_time" {
			at, ok := startAt[j.Name]
			if !ok {
				at = time.Now().UTC().Truncate(time.Second)
			}
			j.StartAt = at
		}
		if err := validate.Job(j); err != nil {
			errs = append(errs, objectError(kindJob, p.GetName(), err))
			continue
		}
		out = append(out, planned{j.Name, clearOutputOnly(jobProto(j))})
	}
	return out, errors.Join(errs...)
}

// wantPackage is a package of the config: its name, and the sha256 of its
// files when it carries them.
type wantPackage struct {
	name, sha256 string
}

// wantPackages checks the config's packages' names and hashes the files of
// those that carry them, as a deploy does: sorted by name.
func wantPackages(l []*adminv1.PackageSource) ([]wantPackage, error) {
	errs := []error{checkNames(kindPackage, l)}
	var out []wantPackage
	for _, p := range l {
		if err := validate.Name("package", p.GetName()); err != nil {
			errs = append(errs, objectError(kindPackage, p.GetName(), err))
			continue
		}
		w := wantPackage{name: p.GetName()}
		if files := p.GetFiles(); len(files) > 0 {
			sf := make([]*agentv1.SourceFile, 0, len(files))
			for _, f := range files {
				sf = append(sf, &agentv1.SourceFile{Name: f.GetName(), Content: f.GetContent()})
			}
			slices.SortFunc(sf, func(a, b *agentv1.SourceFile) int { return strings.Compare(a.GetName(), b.GetName()) })
			w.sha256 = snapshot.PackageHash(sf)
		}
		out = append(out, w)
	}
	return out, errors.Join(errs...)
}

// planPackages plans the packages: by name, and by the sha256 of the files
// for those of want that carry files.
func planPackages(live []store.Package, want []wantPackage, prune bool) []*adminv1.PlanItem {
	liveSha := map[string]string{}
	for _, p := range live {
		liveSha[p.Name] = p.Sha256
	}
	var items []*adminv1.PlanItem
	inConfig := map[string]bool{}
	for _, w := range want {
		inConfig[w.name] = true
		it := &adminv1.PlanItem{Kind: kindPackage, Name: w.name}
		sha, ok := liveSha[w.name]
		switch {
		case !ok:
			it.Action = actionCreate
		case w.sha256 != "" && w.sha256 != sha:
			it.Action = actionUpdate
			it.Changes = []*adminv1.FieldChange{{Field: "sha256", From: strconv.Quote(sha), To: strconv.Quote(w.sha256)}}
		default:
			it.Action = actionUnchanged
		}
		items = append(items, it)
	}
	if prune {
		for _, p := range live {
			if !inConfig[p.Name] {
				items = append(items, &adminv1.PlanItem{Kind: kindPackage, Name: p.Name, Action: actionDelete})
			}
		}
	}
	sortByName(items)
	return items
}

// planKind plans the objects of one kind: each of want is created, updated
// or unchanged; with prune each live object want lacks is deleted. secret
// says which fields are secrets, whose values a plan never shows.
func planKind(kind string, live, want []planned, prune bool, secret func(protoreflect.Name) bool) []*adminv1.PlanItem {
	byName := map[string]proto.Message{}
	for _, p := range live {
		byName[p.name] = p.msg
	}
	var items []*adminv1.PlanItem
	inConfig := map[string]bool{}
	for _, w := range want {
		inConfig[w.name] = true
		it := &adminv1.PlanItem{Kind: kind, Name: w.name}
		cur, ok := byName[w.name]
		switch {
		case !ok:
			it.Action = actionCreate
		default:
			it.Changes = fieldChanges(cur, w.msg, secret)
			it.Action = actionUnchanged
			if len(it.Changes) > 0 {
				it.Action = actionUpdate
			}
		}
		items = append(items, it)
	}
	if prune {
		for _, p := range live {
			if !inConfig[p.name] {
				items = append(items, &adminv1.PlanItem{Kind: kind, Name: p.name, Action: actionDelete})
			}
		}
	}
	sortByName(items)
	return items
}

// isSecretField reports whether a security definition's field is a secret.
func isSecretField(n protoreflect.Name) bool {
	for _, f := range secretFields(store.SecurityDefinition{}) {
		if string(n) == f.name {
			return true
		}
	}
	return false
}

// fieldChanges lists the fields whose values differ between from and to,
// two messages of one type, in the order of the message.
func fieldChanges(from, to proto.Message, secret func(protoreflect.Name) bool) []*adminv1.FieldChange {
	a, b := from.ProtoReflect(), to.ProtoReflect()
	fields := a.Descriptor().Fields()
	var out []*adminv1.FieldChange
	for i := range fields.Len() {
		fd := fields.Get(i)
		va, vb := fieldJSON(a, fd), fieldJSON(b, fd)
		if va == vb {
			continue
		}
		c := &adminv1.FieldChange{Field: string(fd.Name()), From: shorten(va), To: shorten(vb)}
		if secret != nil && secret(fd.Name()) {
			c.From, c.To = secretText(va), secretText(vb)
		}
		out = append(out, c)
	}
	return out
}

// secretText is what a plan shows of a secret: whether it is set.
func secretText(v string) string {
	if v == "" {
		return ""
	}
	return secretShown
}

// shorten cuts v to maxShown characters.
func shorten(v string) string {
	r := []rune(v)
	if len(r) <= maxShown {
		return v
	}
	return string(r[:maxShown-1]) + "…"
}

// fieldJSON is the value of fd in m as compact JSON text, "" when unset.
// Numbers and booleans read as themselves (int64 too, which protojson
// quotes); lists, maps and messages as protojson renders them, map keys
// sorted.
func fieldJSON(m protoreflect.Message, fd protoreflect.FieldDescriptor) string {
	if !m.Has(fd) {
		return ""
	}
	v := m.Get(fd)
	if !fd.IsList() && !fd.IsMap() {
		switch fd.Kind() {
		case protoreflect.StringKind:
			return strconv.Quote(v.String())
		case protoreflect.BoolKind:
			return strconv.FormatBool(v.Bool())
		case protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.Sint32Kind, protoreflect.Sint64Kind,
			protoreflect.Sfixed32Kind, protoreflect.Sfixed64Kind:
			return strconv.FormatInt(v.Int(), 10)
		case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
			return strconv.FormatUint(v.Uint(), 10)
		}
	}
	// The field alone in a message of the same type, rendered and taken out.
	one := m.New()
	one.Set(fd, v)
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(one.Interface())
	if err != nil {
		return fmt.Sprintf("(cannot render: %v)", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Sprintf("(cannot render: %v)", err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, obj[string(fd.Name())]); err != nil {
		return fmt.Sprintf("(cannot render: %v)", err)
	}
	return out.String()
}

// checkResolved refuses a config holding a ${VAR} in any string: the
// client resolves them, and one left would be stored as text.
func checkResolved(cfg *adminv1.Config) error {
	var errs []error
	check := func(kind string, l []named) {
		for _, x := range l {
			m, ok := x.(proto.Message)
			if !ok {
				continue
			}
			found := placeholders(m.ProtoReflect(), "")
			slices.SortFunc(found, func(a, b placeholder) int { return strings.Compare(a.field, b.field) })
			for _, p := range found {
				errs = append(errs, objectError(kind, x.GetName(),
					fmt.Errorf("%s: ${%s} is not resolved; set the variable %s", p.field, p.variable, p.variable)))
			}
		}
	}
	check(kindSecurity, asNamed(cfg.GetSecurity()))
	check(kindOutgoing, asNamed(cfg.GetOutgoing()))
	check(kindChannel, asNamed(cfg.GetChannels()))
	check(kindJob, asNamed(cfg.GetJobs()))
	check(kindPackage, asNamed(cfg.GetPackages()))
	return errors.Join(errs...)
}

// asNamed is l as a list of named.
func asNamed[T named](l []T) []named {
	out := make([]named, len(l))
	for i, x := range l {
		out[i] = x
	}
	return out
}

// placeholder is a ${VAR} found in a field.
type placeholder struct{ field, variable string }

// placeholders finds every ${VAR} in the strings of m, naming each by its
// field path under prefix.
func placeholders(m protoreflect.Message, prefix string) []placeholder {
	var out []placeholder
	find := func(path, s string) {
		for _, sub := range placeholderPattern.FindAllStringSubmatch(s, -1) {
			out = append(out, placeholder{path, sub[1]})
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := prefix + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				at := fmt.Sprintf("%s[%d]", path, i)
				switch fd.Kind() {
				case protoreflect.StringKind:
					find(at, l.Get(i).String())
				case protoreflect.MessageKind:
					out = append(out, placeholders(l.Get(i).Message(), at+".")...)
				}
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				at := fmt.Sprintf("%s[%q]", path, k.String())
				find(at, k.String())
				if fd.MapValue().Kind() == protoreflect.StringKind {
					find(at, mv.String())
				}
				return true
			})
		case fd.Kind() == protoreflect.StringKind:
			find(path, v.String())
		case fd.Kind() == protoreflect.MessageKind:
			out = append(out, placeholders(v.Message(), path+".")...)
		}
		return true
	})
	return out
}
