package api

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/proto/configfile"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// resolved is e's export with source, each secret placeholder replaced by
// the value the definition was created with, as a client resolving the
// variables would send it.
func (e *configEnv) resolved(t *testing.T) *adminv1.Config {
	t.Helper()
	cfg := e.export(t, &adminv1.ExportConfigRequest{IncludeSource: true})
	for _, d := range cfg.GetSecurity() {
		i := slices.IndexFunc(e.defs, func(in *adminv1.SecurityDefinition) bool { return in.GetName() == d.GetName() })
		if i < 0 {
			t.Fatalf("exported security definition %s was not created", d.GetName())
		}
		m, in := d.ProtoReflect(), e.defs[i].ProtoReflect()
		for _, n := range secretNames {
			fd := m.Descriptor().Fields().ByName(n)
			if m.Has(fd) {
				m.Set(fd, in.Get(fd))
			}
		}
	}
	return cfg
}

func (e *configEnv) plan(t *testing.T, cfg *adminv1.Config, prune bool) *adminv1.PlanConfigResponse {
	t.Helper()
	res, err := e.config.PlanConfig(context.Background(), &adminv1.PlanConfigRequest{Config: cfg, Prune: prune})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return res
}

// planLines lists the items of a plan as "action kind/name", with the
// changes of an update as " field from->to".
func planLines(res *adminv1.PlanConfigResponse) []string {
	var out []string
	for _, it := range res.GetItems() {
		line := it.GetAction() + " " + it.GetKind() + "/" + it.GetName()
		for _, c := range it.GetChanges() {
			line += " " + c.GetField() + " " + c.GetFrom() + "->" + c.GetTo()
		}
		out = append(out, line)
	}
	return out
}

// allUnchanged is the plan of e's config unchanged, in dependency order.
var allUnchanged = []string{
	"unchanged security/apikey", "unchanged security/basic", "unchanged security/bearer", "unchanged security/crm-token.v2",
	"unchanged security/jwt", "unchanged security/mtls", "unchanged security/oauth",
	"unchanged outgoing/alpha", "unchanged outgoing/zeta",
	"unchanged package/billing", "unchanged package/orders",
	"unchanged channel/Orders", "unchanged channel/legacy-soap",
	"unchanged job/report", "unchanged job/sweep",
}

func TestConfigPlanOfExport(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newConfigEnv(t, b)
			ctx := context.Background()
			rev, err := e.store.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			res := e.plan(t, e.resolved(t), true)
			if got := planLines(res); !slices.Equal(got, allUnchanged) {
				t.Errorf("plan of the export:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(allUnchanged, "\n"))
			}
			if res.GetChanges() {
				t.Error("changes = true for a plan with every object unchanged")
			}
			if after, err := e.store.Revision(ctx); err != nil || after != rev {
				t.Errorf("revision after plan %d, %v; want %d", after, err, rev)
			}
		})
	}
}

// edit returns a plan test's config: e's resolved export changed by f.
type edit func(cfg *adminv1.Config)

// channel, job and so on find an object of cfg by name.
func channelOf(cfg *adminv1.Config, name string) *adminv1.Channel {
	return cfg.GetChannels()[slices.IndexFunc(cfg.GetChannels(), func(c *adminv1.Channel) bool { return c.GetName() == name })]
}

func jobOf(cfg *adminv1.Config, name string) *adminv1.Job {
	return cfg.GetJobs()[slices.IndexFunc(cfg.GetJobs(), func(j *adminv1.Job) bool { return j.GetName() == name })]
}

func outgoingOf(cfg *adminv1.Config, name string) *adminv1.OutgoingConnection {
	return cfg.GetOutgoing()[slices.IndexFunc(cfg.GetOutgoing(), func(c *adminv1.OutgoingConnection) bool { return c.GetName() == name })]
}

func securityOf(cfg *adminv1.Config, name string) *adminv1.SecurityDefinition {
	return cfg.GetSecurity()[slices.IndexFunc(cfg.GetSecurity(), func(d *adminv1.SecurityDefinition) bool { return d.GetName() == name })]
}

// billingSha is the sha256 of the files of package billing, the second
// file's content replaced by b when b is not empty.
func billingSha(files []*adminv1.SourceFile, b string) string {
	var sf []*adminv1.SourceFile
	for i, f := range files {
		c := f.GetContent()
		if i == 1 && b != "" {
			c = []byte(b)
		}
		sf = append(sf, &adminv1.SourceFile{Name: f.GetName(), Content: c})
	}
	return snapshot.PackageHash(sf)
}

// replaced is allUnchanged with the line of each object in lines replaced
// by it (matched by kind/name), and the lines of new objects added in
// dependency order.
func replaced(lines ...string) []string {
	out := slices.Clone(allUnchanged)
	for _, l := range lines {
		obj := strings.Fields(l)[1]
		i := slices.IndexFunc(out, func(u string) bool { return strings.Fields(u)[1] == obj })
		if i < 0 {
			panic("replaced: no line for " + obj)
		}
		out[i] = l
	}
	return out
}

// billingB2 is a new b.go for package billing: one that compiles, as a
// plan compiles a package whose files changed.
const billingB2 = `package billing

import "github.com/weft-dev/weft/agent/sdk"

func init() { sdk.Register("billing.run", Run) }

func Run(ctx *sdk.Context, in struct{}) (struct{}, error) { return struct{}{}, nil }
`

func TestConfigPlanChanges(t *testing.T) {
	e := newConfigEnv(t, storetest.SQLite(t))
	tests := []struct {
		name    string
		edit    edit
		prune   bool
		want    []string
		changes bool
	}{
		{"a changed field", func(cfg *adminv1.Config) { outgoingOf(cfg, "alpha").TimeoutMs = 3000 }, false,
			replaced("update outgoing/alpha timeout_ms 2500->3000"), true},
		{"fields set and cleared", func(cfg *adminv1.Config) {
			c := channelOf(cfg, "Orders")
			c.RateLimit, c.RateBurst, c.TimeoutMs = 0, 0, 1500
			c.SoapActions = map[string]string{}
		}, false, replaced(`update channel/Orders timeout_ms ->1500 rate_limit 2.5-> rate_burst 5->`), true},
		{"lists and maps", func(cfg *adminv1.Config) {
			channelOf(cfg, "Orders").Methods = []string{"GET"}
			outgoingOf(cfg, "zeta").Headers["X-C"] = "3"
		}, false, replaced(`update outgoing/zeta headers {"X-A":"1","X-B":"2"}->{"X-A":"1","X-B":"2","X-C":"3"}`,
			`update channel/Orders methods ["DELETE","GET"]->["GET"]`), true},
		{"a new object", func(cfg *adminv1.Config) {
			cfg.Channels = append(cfg.Channels, &adminv1.Channel{Name: "new", Path: "/new", Service: "orders.place"})
		}, false, append(slices.Clone(allUnchanged[:13]), "create channel/new", allUnchanged[13], allUnchanged[14]), true},
		{"defaults compare equal", func(cfg *adminv1.Config) {
			soap := channelOf(cfg, "legacy-soap")
			soap.Methods, soap.Active = nil, nil // POST, active
			orders := channelOf(cfg, "Orders")
			orders.Methods = []string{"delete", "get", "GET"}
			orders.DataFormat = ""
			sweep := jobOf(cfg, "sweep")
			sweep.Placement, sweep.Active = "", nil // every, active
			sweep.Interval = &adminv1.JobInterval{Minutes: 90}
			outgoingOf(cfg, "zeta").Active = nil
		}, false, allUnchanged, false},
		{"without prune a missing object is left out", func(cfg *adminv1.Config) {
			cfg.Jobs = cfg.Jobs[1:]
			cfg.Security = nil
		}, false, slices.Concat(allUnchanged[7:13], allUnchanged[14:]), false},
		{"prune deletes what the file lacks", func(cfg *adminv1.Config) {
			cfg.Jobs = cfg.Jobs[1:]
			cfg.Packages = cfg.Packages[1:]
		}, true, replaced("delete job/report", "delete package/billing"), true},
		{"a package whose files changed", func(cfg *adminv1.Config) {
			cfg.Packages[0].Files[1].Content = []byte(billingB2)
			slices.Reverse(cfg.Packages[0].Files) // hashed in name order
		}, false, replaced(`update package/billing sha256 "` + billingSha(e.billing, "") + `"->"` + billingSha(e.billing, billingB2) + `"`), true},
		{"a package without files is compared by name", func(cfg *adminv1.Config) {
			cfg.Packages[0].Files = nil
		}, false, allUnchanged, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.resolved(t)
			tt.edit(cfg)
			res := e.plan(t, cfg, tt.prune)
			if got := planLines(res); !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if res.GetChanges() != tt.changes {
				t.Errorf("changes = %v, want %v", res.GetChanges(), tt.changes)
			}
		})
	}
}

func TestConfigPlanSecrets(t *testing.T) {
	e := newConfigEnv(t, storetest.SQLite(t))
	cfg := e.resolved(t)
	securityOf(cfg, "bearer").Token = "token-bearer-changed"
	res := e.plan(t, cfg, false)
	want := replaced(`update security/bearer token (secret)->(secret)`)
	if got := planLines(res); !slices.Equal(got, want) {
		t.Errorf("plan:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	text := prototext.Format(res)
	for _, secret := range append(clearSecrets(e.defs...), "token-bearer-changed") {
		if strings.Contains(text, secret) {
			t.Errorf("the plan shows the secret %q:\n%s", secret, text)
		}
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the log shows the secret %q", secret)
		}
	}
}

func TestConfigPlanRefusals(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newConfigEnv(t, b)
			ctx := context.Background()
			rev, err := e.store.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name string
				edit edit
				want string
			}{
				{"an unresolved placeholder", func(cfg *adminv1.Config) {
					securityOf(cfg, "bearer").Token = "${WEFT_SECRET_BEARER_TOKEN}"
				}, `security "bearer": token: holds a ${...} placeholder; resolve it first`},
				{"a bad field", func(cfg *adminv1.Config) { outgoingOf(cfg, "alpha").TimeoutMs = -1 },
					`outgoing connection "alpha": timeout_ms -1`},
				{"a bad method", func(cfg *adminv1.Config) { channelOf(cfg, "Orders").Methods = []string{"FETCH"} },
					`channel "Orders": methods: "FETCH" is not one of`},
				{"a bad job", func(cfg *adminv1.Config) { jobOf(cfg, "report").Cron = "not cron" }, `job "report": cron: expected 5 or 6 fields, found 2 in "not cron"`},
				{"a bad payload", func(cfg *adminv1.Config) { jobOf(cfg, "sweep").Payload = "[1]" },
					`job "sweep": payload: want a JSON object`},
				{"a missing secret", func(cfg *adminv1.Config) { securityOf(cfg, "bearer").Token = "" }, `security "bearer": bearer "bearer": token is required`},
				{"a name given twice", func(cfg *adminv1.Config) { cfg.Jobs = append(cfg.Jobs, cfg.Jobs[0]) },
					`job "report": given twice`},
				{"a path taken by a live channel", func(cfg *adminv1.Config) {
					cfg.Channels = []*adminv1.Channel{{Name: "thief", Path: "/soap/orders", Service: "orders.place"}}
				}, `channel "thief": path "/soap/orders" is also channel "legacy-soap"'s`},
				{"a bad package name", func(cfg *adminv1.Config) { cfg.Packages[0].Name = "-x" }, `package "-x": package name "-x"`},
				{"an unknown version", func(cfg *adminv1.Config) { cfg.Version = 2 }, "version 2: want 1"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					cfg := e.resolved(t)
					tt.edit(cfg)
					_, err := e.config.PlanConfig(ctx, &adminv1.PlanConfigRequest{Config: cfg})
					wantCode(t, err, codes.InvalidArgument, tt.want)
				})
			}
			_, err = e.config.PlanConfig(ctx, &adminv1.PlanConfigRequest{})
			wantCode(t, err, codes.InvalidArgument, "config is required")
			if after, err := e.store.Revision(ctx); err != nil || after != rev {
				t.Errorf("revision after refused plans %d, %v; want %d", after, err, rev)
			}
		})
	}
}

// dollars holds the forms of "$" and "${" a value may hold as its own text.
const dollars = "for ${order.id} ${5} ${a-b} ${} ${ x } $${x} $$ $`{y}` ${HOME} ${open $"

// Values holding "${" as their own text are exported escaped (every string
// of every kind, package names too), a plan of the export read back as a
// file is read is all unchanged, one "$" more or less is a change the plan
// shows, and a secret may hold a "${" that is no variable.
func TestConfigPlanLiteralDollars(t *testing.T) {
	e := newConfigEnv(t, storetest.SQLite(t))
	ctx := context.Background()
	if _, err := e.adminEnv.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{Connection: &adminv1.OutgoingConnection{
		Name: "dollar", Address: "https://crm.example/${tenant}", PathTemplate: "/$$/{id}/$",
		Headers: map[string]string{"X-Note": dollars},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := adminv1.NewJobServiceClient(e.conn).CreateJob(ctx, &adminv1.CreateJobRequest{Job: &adminv1.Job{
		Name: "dollar", Service: "orders.sweep", Type: "cron", Cron: "0 6 * * *", Payload: `{"note":"` + dollars + `"}`,
	}}); err != nil {
		t.Fatal(err)
	}

	exported := e.export(t, &adminv1.ExportConfigRequest{IncludeSource: true})
	c := outgoingOf(exported, "dollar")
	for _, f := range []struct{ got, want string }{
		{c.GetAddress(), "https://crm.example/$${tenant}"},
		{c.GetPathTemplate(), "/$$/{id}/$"},
		{c.GetHeaders()["X-Note"], configfile.Escape(dollars)},
		{jobOf(exported, "dollar").GetPayload(), `{"note":"` + configfile.Escape(dollars) + `"}`},
		{securityOf(exported, "bearer").GetToken(), "${WEFT_SECRET_BEARER_TOKEN}"}, // a placeholder, not escaped
	} {
		if f.got != f.want {
			t.Errorf("exported %q, want %q", f.got, f.want)
		}
	}

	// The export with its secrets resolved, read as a file is: unchanged.
	cfg := e.resolved(t)
	if err := (&configfile.Doc{Config: cfg}).Resolve(func(name string) (string, bool) {
		t.Errorf("looked up %s", name)
		return "", false
	}); err != nil {
		t.Fatal(err)
	}
	if res := e.plan(t, cfg, false); res.GetChanges() {
		t.Fatalf("the export read back plans changes:\n%s", strings.Join(planLines(res), "\n"))
	}

	outgoingOf(cfg, "dollar").Headers["X-Note"] = strings.Replace(dollars, "${5}", "$${5}", 1)
	securityOf(cfg, "bearer").Token = "token-${5}-${a-b}"
	got := strings.Join(planLines(e.plan(t, cfg, false)), "\n")
	for _, want := range []string{
		`update outgoing/dollar headers {"X-Note":"for ${order.id} ${5} ${a-b}`,
		`->{"X-Note":"for ${order.id} $${5} ${a-b}`,
		`update security/bearer token (secret)->(secret)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %s:\n%s", want, got)
		}
	}
}
