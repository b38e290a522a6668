// Package configplan holds config as code: the objects of a config
// document as the admin API gives them and as the store keeps them
// (normalised alike for a single write and for an import), the rules
// between objects that both check (references, paths), the plan that
// takes the live config to a document, and the export that writes the
// live config as one. It knows nothing of gRPC: the admin API (package
// api) calls it and maps its errors to statuses.
package configplan

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

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	"github.com/weft-dev/weft/proto/configfile"
	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
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

// Check refuses a config that is missing, of another version, or holds
// a ${VAR} left unresolved in a secret (then as Problems).
func Check(cfg *adminv1.Config) error {
	if cfg == nil {
		return errors.New("config is required")
	}
	if v := cfg.GetVersion(); v != 0 && v != Version {
		return fmt.Errorf("version %d: want %d", v, Version)
	}
	ps := &problems{}
	checkResolved(cfg, ps)
	return ps.err()
}

// Plan is what applying a config does: the items a person reads, and the
// change the store makes.
type Plan struct {
	// Items are the objects in dependency order (security, outgoing,
	// package, channel, job), then by name.
	Items []*adminv1.PlanItem
	// Change makes the items, planned at the live config's revision.
	Change store.ConfigChange
}

// Changes reports whether any item changes its object.
func (p *Plan) Changes() bool {
	for _, it := range p.Items {
		if it.GetAction() != actionUnchanged {
			return true
		}
	}
	return false
}

// Counts are the items by action, as log attributes.
func (p *Plan) Counts() []any {
	n := map[string]int{}
	for _, it := range p.Items {
		n[it.GetAction()]++
	}
	return []any{"create", n[actionCreate], "update", n[actionUpdate], "unchanged", n[actionUnchanged], "delete", n[actionDelete]}
}

// Unchanged reports whether next, an object's new form, is what a plan
// calls unchanged from cur: equal field by field, output-only fields
// aside. cur and next are left as they are.
func Unchanged(cur, next proto.Message) bool {
	a := marks.ClearOutputOnly(proto.Clone(cur))
	b := marks.ClearOutputOnly(proto.Clone(next))
	return len(fieldChanges(a, b)) == 0
}

// planned is one object on one side of a plan, normalised to the shape an
// export has, secrets in clear; on the config's side with its index in
// the config's list and the object as the store takes it.
type planned struct {
	name  string
	msg   proto.Message
	index int
	obj   any
}

// Planner plans configs against the live config. It compiles each
// package content of the configs once however often it plans them, so
// that an import planning again (the config moved meanwhile) does not
// compile again. It is not safe for concurrent use.
type Planner struct {
	ev   *validate.Evaluator
	done map[string]compiled // by name and sha256
}

type compiled struct {
	pkg *adminv1.Package
	err error
}

// NewPlanner returns a Planner that compiles packages as a deploy does,
// with ev (nil refuses the packages whose services only running them
// tells).
func NewPlanner(ev *validate.Evaluator) *Planner {
	return &Planner{ev: ev, done: map[string]compiled{}}
}

// Plan compares cfg with d, the live config, object by object and field
// by field, and returns the plan that takes d to cfg; with prune it
// deletes the live objects cfg lacks. Every problem of every object is
// reported at once, as Problems naming each by its path in the config.
// cfg is checked (Check) by the caller.
func (pl *Planner) Plan(ctx context.Context, d store.Desired, cfg *adminv1.Config, prune bool) (*Plan, error) {
	ps := &problems{}
	sec := wantSecurity(cfg.GetSecurity(), ps)
	out := wantOutgoing(cfg.GetOutgoing(), ps)
	chs := wantChannels(cfg.GetChannels(), d.Channels, prune, ps)
	jobs := wantJobs(cfg.GetJobs(), d.Jobs, ps)
	before := len(ps.l)
	pkgs := pl.packages(ctx, cfg.GetPackages(), d.Packages, ps)
	refs := refsOf{security: sec, outgoing: out, channels: chs, jobs: jobs, packages: pkgs, packagesFailed: len(ps.l) > before}
	checkRefs(d, refs, prune, ps)
	if err := ps.err(); err != nil {
		return nil, err
	}

	p := &Plan{Change: store.ConfigChange{BaseRevision: d.Revision}}
	c := &p.Change
	items := planKind(KindSecurity, liveOf(d.Security, proto.CloneOf[*adminv1.SecurityDefinition]), sec, prune)
	c.Security, c.DeleteSecurity = changesOf[*adminv1.SecurityDefinition](items, sec)
	p.Items = append(p.Items, items...)

	items = planKind(KindOutgoing, liveOf(d.Outgoing, proto.CloneOf[*adminv1.OutgoingConnection]), out, prune)
	c.Outgoing, c.DeleteOutgoing = changesOf[*adminv1.OutgoingConnection](items, out)
	p.Items = append(p.Items, items...)

	items = planPackages(d.Packages, pkgs, prune)
	c.Deploy, c.Undeploy = changesOf[*adminv1.Package](items, pkgs)
	p.Items = append(p.Items, items...)

	items = planKind(KindChannel, liveOf(d.Channels, proto.CloneOf[*adminv1.Channel]), chs, prune)
	c.Channels, c.DeleteChannels = changesOf[*adminv1.Channel](items, chs)
	p.Items = append(p.Items, items...)

	items = planKind(KindJob, liveOf(d.Jobs, proto.CloneOf[*adminv1.Job]), jobs, prune)
	c.Jobs, c.DeleteJobs = changesOf[*adminv1.Job](items, jobs)
	p.Items = append(p.Items, items...)
	return p, nil
}

// changesOf are the objects of want that items create or update, and the
// names of those they delete.
func changesOf[T any](items []*adminv1.PlanItem, want []planned) (put []T, del []string) {
	byName := make(map[string]any, len(want))
	for _, w := range want {
		byName[w.name] = w.obj
	}
	for _, it := range items {
		switch it.GetAction() {
		case actionCreate, actionUpdate:
			put = append(put, byName[it.GetName()].(T))
		case actionDelete:
			del = append(del, it.GetName())
		}
	}
	return put, del
}

// liveOf are the stored objects l as their API messages, output-only
// fields cleared: the shape an export has.
func liveOf[T any, M interface {
	proto.Message
	named
}](l []T, toProto func(T) M) []planned {
	out := make([]planned, 0, len(l))
	for _, x := range l {
		m := marks.ClearOutputOnly(toProto(x))
		out = append(out, planned{name: m.GetName(), msg: m})
	}
	return out
}

// checkNames refuses an object given twice, naming both places.
func checkNames[T named](kind string, l []T, ps *problems) {
	first := map[string]int{}
	for i, x := range l {
		if j, ok := first[x.GetName()]; ok {
			ps.object(kind, i, x.GetName(), fmt.Errorf("given twice (also %s); names are unique within a kind", itemPath(kind, j)))
			continue
		}
		first[x.GetName()] = i
	}
}

// wantSecurity normalises the config's definitions as creating them would:
// checked by CheckSecurity, read back in clear.
func wantSecurity(l []*adminv1.SecurityDefinition, ps *problems) []planned {
	checkNames(KindSecurity, l, ps)
	var out []planned
	for i, p := range l {
		if err := CheckSecurity(p); err != nil {
			ps.object(KindSecurity, i, p.GetName(), err)
			continue
		}
		d := proto.CloneOf(p)
		out = append(out, planned{d.Name, marks.ClearOutputOnly(proto.Clone(d)), i, d})
	}
	return out
}

// wantOutgoing normalises the config's connections as creating them would.
func wantOutgoing(l []*adminv1.OutgoingConnection, ps *problems) []planned {
	checkNames(KindOutgoing, l, ps)
	var out []planned
	for i, p := range l {
		c, err := validate.OutgoingConnection(p)
		if err != nil {
			ps.object(KindOutgoing, i, p.GetName(), err)
			continue
		}
		out = append(out, planned{c.Name, marks.ClearOutputOnly(proto.Clone(c)), i, c})
	}
	return out
}

// wantChannels normalises the config's channels as creating them would
// (methods sorted, POST when none), then checks that their paths do not
// collide with each other or with the live channels the plan keeps: those
// the config lacks, unless prune deletes them.
func wantChannels(l []*adminv1.Channel, live []*adminv1.Channel, prune bool, ps *problems) []planned {
	checkNames(KindChannel, l, ps)
	var out []planned
	var final []*adminv1.Channel
	inConfig := map[string]int{}
	for i, p := range l {
		inConfig[p.GetName()] = i
		ch, err := validate.Channel(p, nil)
		if err != nil {
			ps.object(KindChannel, i, p.GetName(), err)
			continue
		}
		final = append(final, ch)
		out = append(out, planned{ch.Name, marks.ClearOutputOnly(proto.Clone(ch)), i, ch})
	}
	if !prune {
		for _, ch := range live {
			if _, ok := inConfig[ch.Name]; !ok {
				final = append(final, ch)
			}
		}
	}
	checkPaths(final, inConfig, ps)
	if ps.any() || len(final) == 0 {
		return out
	}
	// One check of every route at once: validate.Channel asks the agents'
	// router with the channel and all the others, and names both channels
	// of a collision. The problem sits at the first of them in the config.
	if _, err := validate.Channel(final[0], final[1:]); err != nil {
		at := ""
		for _, m := range quotedName.FindAllStringSubmatch(err.Error(), -1) {
			if i, ok := inConfig[m[1]]; ok {
				at = itemPath(KindChannel, i) + ".path"
				break
			}
		}
		ps.add(at, err)
	}
	return out
}

// checkPaths refuses a channel of the config whose path another channel
// has after the import, whatever their methods: a path is one channel's.
// final are the channels after the import: the config's, and the live
// ones it keeps.
func checkPaths(final []*adminv1.Channel, inConfig map[string]int, ps *problems) {
	owner := map[string]string{} // path -> channel
	for _, ch := range final {
		if _, ok := inConfig[ch.Name]; !ok {
			owner[ch.Path] = ch.Name
		}
	}
	for _, ch := range final {
		i, ok := inConfig[ch.Name]
		if !ok {
			continue
		}
		if other, taken := owner[ch.Path]; taken {
			ps.add(itemPath(KindChannel, i)+".path", objectError(KindChannel, ch.Name, pathTaken(ch.Path, other)))
			continue
		}
		owner[ch.Path] = ch.Name
	}
}

// quotedName finds the names a message quotes, such as channel "orders".
var quotedName = regexp.MustCompile(`"([^"]+)"`)

// wantJobs normalises the config's jobs as creating them, or replacing
// the live ones, would (placement every when empty, active when unset,
// start_at the live job's or now when unset).
func wantJobs(l []*adminv1.Job, live []*adminv1.Job, ps *problems) []planned {
	checkNames(KindJob, l, ps)
	byName := map[string]*adminv1.Job{}
	for _, j := range live {
		byName[j.Name] = j
	}
	var out []planned
	for i, p := range l {
		j, err := JobToStore(p, byName[p.GetName()])
		if err != nil {
			ps.object(KindJob, i, p.GetName(), err)
			continue
		}
		out = append(out, planned{j.Name, marks.ClearOutputOnly(proto.Clone(j)), i, j})
	}
	return out
}

// packages checks the config's packages. A package with files is new
// (isNew), compiled unless the live version has the same files; a package
// without files, or with the live version's, stands for the live one, and
// must be deployed already. A package that failed is left out.
func (pl *Planner) packages(ctx context.Context, l []*adminv1.PackageSource, live []*adminv1.Package, ps *problems) []planned {
	checkNames(KindPackage, l, ps)
	byName := map[string]*adminv1.Package{}
	for _, p := range live {
		byName[p.Name] = p
	}
	var out []planned
	for i, src := range l {
		name := src.GetName()
		if err := validate.Name("package", name); err != nil {
			ps.object(KindPackage, i, name, err)
			continue
		}
		cur, isLive := byName[name]
		if len(src.GetFiles()) == 0 {
			if !isLive {
				ps.add(itemPath(KindPackage, i), objectError(KindPackage, name,
					errors.New("is not deployed here, and the config carries no source to deploy it (export with --include-source)")))
				continue
			}
			out = append(out, planned{name: name, index: i, obj: cur})
			continue
		}
		sf := slices.Clone(src.GetFiles())
		slices.SortFunc(sf, func(a, b *adminv1.SourceFile) int { return strings.Compare(a.GetName(), b.GetName()) })
		sha := snapshot.PackageHash(sf)
		if isLive && sha == cur.Sha256 {
			out = append(out, planned{name: name, index: i, obj: cur})
			continue
		}
		key := name + "\x00" + sha
		res, ok := pl.done[key]
		if !ok {
			res.pkg, res.err = validate.Package(ctx, name, sf, pl.ev)
			pl.done[key] = res
		}
		if res.err != nil {
			ps.add(itemPath(KindPackage, i), objectError(KindPackage, name, fmt.Errorf("does not compile:\n%s", indent(res.err.Error()))))
			continue
		}
		out = append(out, planned{name: name, index: i, obj: res.pkg})
	}
	return out
}

// isNew says whether p, a package the config plans, is a new version to
// deploy, compiled from the config's files, rather than the live version
// it keeps: a stored version has a number.
func isNew(p *adminv1.Package) bool { return p.GetVersion() == 0 }

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// planPackages plans the packages by name, and by the sha256 of the files
// for those of want that are new.
func planPackages(live []*adminv1.Package, want []planned, prune bool) []*adminv1.PlanItem {
	liveSha := map[string]string{}
	for _, p := range live {
		liveSha[p.Name] = p.Sha256
	}
	var items []*adminv1.PlanItem
	inConfig := map[string]bool{}
	for _, w := range want {
		inConfig[w.name] = true
		it := &adminv1.PlanItem{Kind: KindPackage, Name: w.name, Action: actionUnchanged}
		np := w.obj.(*adminv1.Package)
		carries := isNew(np)
		sha, ok := liveSha[w.name]
		switch {
		case !ok:
			it.Action = actionCreate
		case carries && np.Sha256 != sha:
			it.Action = actionUpdate
			it.Changes = []*adminv1.FieldChange{{Field: "sha256", From: strconv.Quote(sha), To: strconv.Quote(np.Sha256)}}
		}
		items = append(items, it)
	}
	if prune {
		for _, p := range live {
			if !inConfig[p.Name] {
				items = append(items, &adminv1.PlanItem{Kind: KindPackage, Name: p.Name, Action: actionDelete})
			}
		}
	}
	sortByName(items)
	return items
}

// planKind plans the objects of one kind: each of want is created, updated
// or unchanged; with prune each live object want lacks is deleted.
func planKind(kind string, live, want []planned, prune bool) []*adminv1.PlanItem {
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
			it.Changes = fieldChanges(cur, w.msg)
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

// fieldChanges lists the fields whose values differ between from and to,
// two messages of one type, in the order of the message.
func fieldChanges(from, to proto.Message) []*adminv1.FieldChange {
	a, b := from.ProtoReflect(), to.ProtoReflect()
	fields := a.Descriptor().Fields()
	var out []*adminv1.FieldChange
	for i := range fields.Len() {
		fd := fields.Get(i)
		va, vb := fieldJSON(a, fd), fieldJSON(b, fd)
		if va == vb {
			continue
		}
		from, to := shortenPair(va, vb)
		c := &adminv1.FieldChange{Field: string(fd.Name()), From: from, To: to}
		if marks.Secret(fd) { // a plan never shows a secret's value
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

// shownBefore is how much of two values a plan shows before the first
// character in which they differ, when that lies past what shorten keeps.
const shownBefore = 20

// shortenPair cuts two values that differ to maxShown characters each so
// that the cut values differ too: from their start, or, when the first
// difference lies past that (one "$" more deep in a payload), from a
// little before it, marked by a leading "…".
func shortenPair(a, b string) (string, string) {
	ra, rb := []rune(a), []rune(b)
	d := 0
	for d < len(ra) && d < len(rb) && ra[d] == rb[d] {
		d++
	}
	if d < maxShown-1 {
		return shorten(a), shorten(b)
	}
	window := func(r []rune) string {
		r = r[d-shownBefore:]
		if len(r) <= maxShown-1 {
			return "…" + string(r)
		}
		return "…" + string(r[:maxShown-2]) + "…"
	}
	return window(ra), window(rb)
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

// checkResolved refuses a security definition whose secret holds a
// ${VAR}: the client resolves placeholders, and one left would be stored
// as the secret. It does not say the variable: a secret that merely looks
// like one would show. A "${" that is no variable (a password "pa${ss")
// is a secret's own text, and other fields may hold any literal ${...}
// (a config file writes it $${...}).
func checkResolved(cfg *adminv1.Config, ps *problems) {
	for i, d := range cfg.GetSecurity() {
		m := d.ProtoReflect()
		for _, fd := range marks.Fields(m.Descriptor(), marks.Secret) {
			if configfile.HasVariable(m.Get(fd).String()) {
				ps.add(itemPath(KindSecurity, i)+"."+string(fd.Name()), objectError(KindSecurity, d.GetName(),
					fmt.Errorf("%s: holds a ${...} placeholder; resolve it first (weftctl does, from the environment or --env-file)", fd.Name())))
			}
		}
	}
}
