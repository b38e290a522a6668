package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/weft-dev/weft/agent/snapshot"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// compiler compiles the packages of configs at the door, as a deploy
// does, each content once however often it is planned.
type compiler struct {
	ev   *validate.Evaluator
	done map[string]compiled // by name and sha256
}

type compiled struct {
	pkg store.NewPackage
	err error
}

func newCompiler(ev *validate.Evaluator) *compiler {
	return &compiler{ev: ev, done: map[string]compiled{}}
}

// packages checks the config's packages. A package with files is a
// store.NewPackage, compiled unless the live version has the same files; a
// package without files stands for the live one (a store.Package), and
// must be deployed already. A package that failed is left out.
func (c *compiler) packages(ctx context.Context, l []*adminv1.PackageSource, live []store.Package, ps *problems) []planned {
	checkNames(kindPackage, l, ps)
	byName := map[string]store.Package{}
	for _, p := range live {
		byName[p.Name] = p
	}
	var out []planned
	for i, src := range l {
		name := src.GetName()
		if err := validate.Name("package", name); err != nil {
			ps.object(kindPackage, i, name, err)
			continue
		}
		cur, isLive := byName[name]
		if len(src.GetFiles()) == 0 {
			if !isLive {
				ps.add(itemPath(kindPackage, i), objectError(kindPackage, name,
					errors.New("is not deployed here, and the config carries no source to deploy it (export with --include-source)")))
				continue
			}
			out = append(out, planned{name: name, index: i, obj: cur})
			continue
		}
		files := make([]validate.File, 0, len(src.GetFiles()))
		sf := make([]*agentv1.SourceFile, 0, len(src.GetFiles()))
		for _, f := range src.GetFiles() {
			files = append(files, validate.File{Name: f.GetName(), Content: f.GetContent()})
			sf = append(sf, &agentv1.SourceFile{Name: f.GetName(), Content: f.GetContent()})
		}
		slices.SortFunc(sf, func(a, b *agentv1.SourceFile) int { return strings.Compare(a.GetName(), b.GetName()) })
		sha := snapshot.PackageHash(sf)
		if isLive && sha == cur.Sha256 {
			out = append(out, planned{name: name, index: i, obj: cur})
			continue
		}
		key := name + "\x00" + sha
		res, ok := c.done[key]
		if !ok {
			res.pkg, res.err = validate.Package(ctx, name, files, c.ev)
			c.done[key] = res
		}
		if res.err != nil {
			ps.add(itemPath(kindPackage, i), objectError(kindPackage, name, fmt.Errorf("does not compile:\n%s", indent(res.err.Error()))))
			continue
		}
		out = append(out, planned{name: name, index: i, obj: res.pkg})
	}
	return out
}

// refsOf is the config's side of a plan, checked object by object.
type refsOf struct {
	security, outgoing, channels, jobs, packages []planned
	// packagesFailed is set when a package of the config was refused, so
	// that the services it would register are unknown.
	packagesFailed bool
}

// after is the config an import leaves: what references may point at.
type after struct {
	services map[string]bool // nil when unknown
	security map[string]store.SecurityDefinition
}

// checkRefs checks that every channel, connection and job the import
// leaves, in the config or kept live, points at a service and a security
// definition that will be there, of a kind it can use. Problems of the
// config's objects sit at their field; those of live objects the config
// leaves as they are sit nowhere and say so.
func checkRefs(d store.Desired, r refsOf, prune bool, ps *problems) {
	a := after{security: map[string]store.SecurityDefinition{}}
	checkServiceOwners(d, r, prune, ps)
	if !r.packagesFailed {
		a.services = map[string]bool{}
		for _, w := range r.packages {
			switch p := w.obj.(type) {
			case store.NewPackage:
				addAll(a.services, p.Services)
			case store.Package:
				addAll(a.services, p.Services)
			}
		}
		for _, p := range kept(d.Packages, r.packages, prune, func(p store.Package) string { return p.Name }) {
			addAll(a.services, p.Services)
		}
	}
	for _, def := range kept(d.Security, r.security, prune, func(d store.SecurityDefinition) string { return d.Name }) {
		a.security[def.Name] = def
	}
	for _, w := range r.security {
		a.security[w.name] = w.obj.(store.SecurityDefinition)
	}

	for _, w := range r.channels {
		a.checkChannel(w.obj.(store.Channel), itemPath(kindChannel, w.index), ps)
	}
	for _, ch := range kept(d.Channels, r.channels, prune, func(c store.Channel) string { return c.Name }) {
		a.checkChannel(ch, "", ps)
	}
	for _, w := range r.outgoing {
		a.checkOutgoing(w.obj.(store.OutgoingConnection), itemPath(kindOutgoing, w.index), ps)
	}
	for _, c := range kept(d.Outgoing, r.outgoing, prune, func(c store.OutgoingConnection) string { return c.Name }) {
		a.checkOutgoing(c, "", ps)
	}
	for _, w := range r.jobs {
		a.checkJob(w.obj.(store.Job), itemPath(kindJob, w.index), ps)
	}
	for _, j := range kept(d.Jobs, r.jobs, prune, func(j store.Job) string { return j.Name }) {
		a.checkJob(j, "", ps)
	}
}

// checkServiceOwners refuses a package of the config that registers a
// service another package registers after the import: a live package the
// import keeps, or another package of the config. A service may move
// between packages of the config.
func checkServiceOwners(d store.Desired, r refsOf, prune bool, ps *problems) {
	owner := map[string]string{} // service -> package
	for _, p := range kept(d.Packages, r.packages, prune, func(p store.Package) string { return p.Name }) {
		for _, svc := range p.Services {
			owner[svc] = p.Name
		}
	}
	for _, w := range r.packages {
		if p, ok := w.obj.(store.Package); ok {
			for _, svc := range p.Services {
				owner[svc] = p.Name
			}
		}
	}
	for _, w := range r.packages {
		np, ok := w.obj.(store.NewPackage)
		if !ok {
			continue
		}
		for _, svc := range np.Services {
			if other, taken := owner[svc]; taken && other != np.Name {
				ps.add(itemPath(kindPackage, w.index), objectError(kindPackage, np.Name,
					fmt.Errorf("registers service %q, which package %q registers too; a service belongs to one package", svc, other)))
				continue
			}
			owner[svc] = np.Name
		}
	}
}

// kept are the live objects an import leaves as they are: those the
// config lacks, unless prune deletes them.
func kept[T any](live []T, want []planned, prune bool, name func(T) string) []T {
	if prune {
		return nil
	}
	in := map[string]bool{}
	for _, w := range want {
		in[w.name] = true
	}
	var out []T
	for _, x := range live {
		if !in[name(x)] {
			out = append(out, x)
		}
	}
	return out
}

func addAll(set map[string]bool, l []string) {
	for _, x := range l {
		set[x] = true
	}
}

// refProblem notes err about the object name of kind: at path in the
// config, or as a live object the config keeps when path is empty.
func refProblem(ps *problems, kind, name, path, field string, err error) {
	if path == "" {
		ps.add("", fmt.Errorf("%s %q (live, not in the config): %w", kind, name, err))
		return
	}
	ps.add(path+"."+field, objectError(kind, name, err))
}

// checkService notes a service that will not be deployed.
func (a after) checkService(ps *problems, kind, name, path, field, service string) {
	if a.services == nil || a.services[service] {
		return
	}
	refProblem(ps, kind, name, path, field, fmt.Errorf("%s: service %q is not deployed, and no package of the config registers it", field, service))
}

// checkSecurity notes a security definition that will not be there, or
// that cannot be used in the direction the user needs.
func (a after) checkSecurity(ps *problems, kind, name, path, ref string, inbound bool) {
	if ref == "" {
		return
	}
	def, ok := a.security[ref]
	switch {
	case !ok:
		refProblem(ps, kind, name, path, "security", fmt.Errorf("security: security definition %q does not exist, and the config does not define it", ref))
	case inbound && !def.Definition().Inbound():
		refProblem(ps, kind, name, path, "security", fmt.Errorf("security: security definition %q is %s, which cannot verify inbound requests%s", ref, def.Kind, def.DirectionHint(true)))
	case !inbound && !def.Definition().Outbound():
		refProblem(ps, kind, name, path, "security", fmt.Errorf("security: security definition %q is %s, which cannot supply outbound credentials%s", ref, def.Kind, def.DirectionHint(false)))
	}
}

func (a after) checkChannel(ch store.Channel, path string, ps *problems) {
	if ch.Service != "" {
		a.checkService(ps, kindChannel, ch.Name, path, "service", ch.Service)
	}
	for _, op := range slices.Sorted(maps.Keys(ch.SOAPActions)) {
		a.checkService(ps, kindChannel, ch.Name, path, fmt.Sprintf("soap_actions[%q]", op), ch.SOAPActions[op])
	}
	a.checkSecurity(ps, kindChannel, ch.Name, path, ch.Security, true)
}

func (a after) checkOutgoing(c store.OutgoingConnection, path string, ps *problems) {
	a.checkSecurity(ps, kindOutgoing, c.Name, path, c.Security, false)
}

func (a after) checkJob(j store.Job, path string, ps *problems) {
	a.checkService(ps, kindJob, j.Name, path, "service", j.Service)
}
