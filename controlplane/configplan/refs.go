package configplan

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/weft-dev/weft/agent/shared/secdef"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// The rules between objects: a channel's path is its own, and the
// references of channels, outgoing connections and jobs point at services
// that are deployed and at security definitions that exist and work in
// the direction the object needs. A write through the API checks them
// against the live config (CheckChannel, CheckOutgoing, CheckJob); an
// import against the config it leaves (Planner.Plan). The store checks the
// same in its transaction, as the last guard against a race.

// ruleError is a broken rule between objects. It wraps the store's error
// for the same refusal (store.ErrNotFound, store.ErrWrongKind or
// store.ErrConflict), so that a caller maps both alike; its message is
// its own.
type ruleError struct {
	msg  string
	kind error
}

func (e *ruleError) Error() string { return e.msg }
func (e *ruleError) Unwrap() error { return e.kind }

func ruleErrorf(kind error, format string, args ...any) error {
	return &ruleError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// Targets are what references point at: the deployed services and the
// security definitions, in the config that a change leaves.
type Targets struct {
	services map[string]bool
	// servicesUnknown is set when the services are not known (a package
	// of the config failed): service references go unchecked.
	servicesUnknown bool
	security        map[string]*adminv1.SecurityDefinition
	// inConfig says that a config's objects are among the targets, so
	// that one missing is said to be missing from the config too.
	inConfig bool
}

// LiveTargets are the targets of the live config: services, the deployed
// services; defs, the stored security definitions. A caller reads those
// its object can name: a job names no definition, a connection no service.
func LiveTargets(services []*adminv1.Service, defs []*adminv1.SecurityDefinition) Targets {
	t := Targets{services: map[string]bool{}, security: map[string]*adminv1.SecurityDefinition{}}
	for _, s := range services {
		t.services[s.Name] = true
	}
	for _, d := range defs {
		t.security[d.Name] = d
	}
	return t
}

// refProblem is a reference that does not hold: field is where the object
// holds it, as the API names it (service, soap_actions["x"], security);
// err says what is wrong, starting with the field.
type refProblem struct {
	field string
	err   error
}

// service notes a service that is not deployed.
func (t Targets) service(out []refProblem, field, service string) []refProblem {
	if t.servicesUnknown || t.services[service] {
		return out
	}
	where := ""
	if t.inConfig {
		where = ", and no package of the config registers it"
	}
	return append(out, refProblem{field, ruleErrorf(store.ErrNotFound, "%s: service %q is not deployed%s", field, service, where)})
}

// securityRef notes a security definition that is not there, or that
// cannot be used in the direction the object needs.
func (t Targets) securityRef(out []refProblem, ref string, inbound bool) []refProblem {
	if ref == "" {
		return out
	}
	def, ok := t.security[ref]
	var err error
	switch {
	case !ok && t.inConfig:
		err = ruleErrorf(store.ErrNotFound, "security: security definition %q does not exist, and the config does not define it", ref)
	case !ok:
		err = ruleErrorf(store.ErrNotFound, "security: security definition %q does not exist", ref)
	case inbound && !secdef.Of(def).Inbound():
		err = ruleErrorf(store.ErrWrongKind, "security: security definition %q is %s, which cannot verify inbound requests%s", ref, def.GetKind(), store.DirectionHint(def, true))
	case !inbound && !secdef.Of(def).Outbound():
		err = ruleErrorf(store.ErrWrongKind, "security: security definition %q is %s, which cannot supply outbound credentials%s", ref, store.OutboundKind(def), store.DirectionHint(def, false))
	default:
		return out
	}
	return append(out, refProblem{"security", err})
}

// channel checks that the services ch calls are deployed and that its
// security definition exists and verifies inbound requests.
func (t Targets) channel(ch *adminv1.Channel) []refProblem {
	var out []refProblem
	if ch.Service != "" {
		out = t.service(out, "service", ch.Service)
	}
	for _, op := range slices.Sorted(maps.Keys(ch.SoapActions)) {
		out = t.service(out, fmt.Sprintf("soap_actions[%q]", op), ch.SoapActions[op])
	}
	return t.securityRef(out, ch.Security, true)
}

// outgoing checks that c's security definition exists and supplies
// outbound credentials.
func (t Targets) outgoing(c *adminv1.OutgoingConnection) []refProblem {
	return t.securityRef(nil, c.Security, false)
}

// job checks that the service j invokes is deployed.
func (t Targets) job(j *adminv1.Job) []refProblem {
	return t.service(nil, "service", j.Service)
}

// pathTaken says that path, which a channel wants, is the channel other's.
func pathTaken(path, other string) error {
	return ruleErrorf(store.ErrConflict, "path %q is also channel %q's; a path belongs to one channel, whatever the methods", path, other)
}

// CheckChannel checks ch, valid by itself (validate.Channel), against the
// live channels others (its own name among them is skipped) and the
// targets t, as an import of ch would: its path is no other channel's,
// its routes collide with none, and its references hold. A broken rule
// between objects wraps the store's error for it (store.ErrConflict,
// ErrNotFound, ErrWrongKind); a route collision wraps none.
func CheckChannel(ch *adminv1.Channel, others []*adminv1.Channel, t Targets) error {
	for _, o := range others {
		if o.Name != ch.Name && o.Path == ch.Path {
			return fmt.Errorf("channel %q: %w", ch.Name, pathTaken(ch.Path, o.Name))
		}
	}
	if _, err := validate.Channel(ch, others); err != nil {
		return err
	}
	return refsError("channel", ch.Name, t.channel(ch))
}

// CheckOutgoing checks that the references of c hold in t, as an import
// of c would. The errors wrap the store's as CheckChannel's do.
func CheckOutgoing(c *adminv1.OutgoingConnection, t Targets) error {
	return refsError("outgoing connection", c.Name, t.outgoing(c))
}

// CheckJob checks that the references of j hold in t, as an import of j
// would. The errors wrap the store's as CheckChannel's do.
func CheckJob(j *adminv1.Job, t Targets) error {
	return refsError("job", j.Name, t.job(j))
}

// refsError is nil without problems, else each problem of the object
// noun name on a line.
func refsError(noun, name string, ps []refProblem) error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = fmt.Errorf("%s %q: %w", noun, name, p.err)
	}
	return errors.Join(errs...)
}

// refsOf is the config's side of a plan, checked object by object.
type refsOf struct {
	security, outgoing, channels, jobs, packages []planned
	// packagesFailed is set when a package of the config was refused, so
	// that the services it would register are unknown.
	packagesFailed bool
}

// checkRefs checks that every channel, connection and job the import
// leaves, in the config or kept live, points at a service and a security
// definition that will be there, of a kind it can use. Problems of the
// config's objects sit at their field; those of live objects the config
// leaves as they are sit nowhere and say so.
func checkRefs(d store.Desired, r refsOf, prune bool, ps *problems) {
	t := Targets{services: map[string]bool{}, servicesUnknown: r.packagesFailed, security: map[string]*adminv1.SecurityDefinition{}, inConfig: true}
	checkServiceOwners(d, r, prune, ps)
	if !r.packagesFailed {
		for _, w := range r.packages {
			addAll(t.services, w.obj.(*adminv1.Package).Services)
		}
		for _, p := range kept(d.Packages, r.packages, prune, (*adminv1.Package).GetName) {
			addAll(t.services, p.Services)
		}
	}
	for _, def := range kept(d.Security, r.security, prune, (*adminv1.SecurityDefinition).GetName) {
		t.security[def.Name] = def
	}
	for _, w := range r.security {
		t.security[w.name] = w.obj.(*adminv1.SecurityDefinition)
	}

	for _, w := range r.channels {
		ch := w.obj.(*adminv1.Channel)
		refProblems(ps, KindChannel, ch.Name, itemPath(KindChannel, w.index), t.channel(ch))
	}
	for _, ch := range kept(d.Channels, r.channels, prune, (*adminv1.Channel).GetName) {
		refProblems(ps, KindChannel, ch.Name, "", t.channel(ch))
	}
	for _, w := range r.outgoing {
		c := w.obj.(*adminv1.OutgoingConnection)
		refProblems(ps, KindOutgoing, c.Name, itemPath(KindOutgoing, w.index), t.outgoing(c))
	}
	for _, c := range kept(d.Outgoing, r.outgoing, prune, (*adminv1.OutgoingConnection).GetName) {
		refProblems(ps, KindOutgoing, c.Name, "", t.outgoing(c))
	}
	for _, w := range r.jobs {
		j := w.obj.(*adminv1.Job)
		refProblems(ps, KindJob, j.Name, itemPath(KindJob, w.index), t.job(j))
	}
	for _, j := range kept(d.Jobs, r.jobs, prune, (*adminv1.Job).GetName) {
		refProblems(ps, KindJob, j.Name, "", t.job(j))
	}
}

// refProblems notes the problems of the object name of kind: at their
// field under path in the config, or as a live object the config keeps
// when path is empty.
func refProblems(ps *problems, kind, name, path string, l []refProblem) {
	for _, p := range l {
		if path == "" {
			ps.add("", fmt.Errorf("%s %q (live, not in the config): %w", kind, name, p.err))
			continue
		}
		ps.add(path+"."+p.field, objectError(kind, name, p.err))
	}
}

// checkServiceOwners refuses a package of the config that registers a
// service another package registers after the import: a live package the
// import keeps, or another package of the config. A service may move
// between packages of the config.
func checkServiceOwners(d store.Desired, r refsOf, prune bool, ps *problems) {
	owner := map[string]string{} // service -> package
	for _, p := range kept(d.Packages, r.packages, prune, (*adminv1.Package).GetName) {
		for _, svc := range p.Services {
			owner[svc] = p.Name
		}
	}
	for _, w := range r.packages {
		if p := w.obj.(*adminv1.Package); !isNew(p) {
			for _, svc := range p.Services {
				owner[svc] = p.Name
			}
		}
	}
	for _, w := range r.packages {
		np := w.obj.(*adminv1.Package)
		if !isNew(np) {
			continue
		}
		for _, svc := range np.Services {
			if other, taken := owner[svc]; taken && other != np.Name {
				ps.add(itemPath(KindPackage, w.index), objectError(KindPackage, np.Name,
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
