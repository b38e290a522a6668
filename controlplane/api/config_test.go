package api

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/configplan"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// configEnv is an admin env holding one object or more of every kind,
// created out of name order, and what was created.
type configEnv struct {
	*adminEnv
	config   adminv1.ConfigServiceClient
	defs     []*adminv1.SecurityDefinition
	outgoing []*adminv1.OutgoingConnection
	channels []*adminv1.Channel
	jobs     []*adminv1.Job
	billing  []*adminv1.SourceFile // the files of package billing
}

func newConfigEnv(t *testing.T, b storetest.Backend) *configEnv {
	t.Helper()
	ctx := context.Background()
	e := &configEnv{adminEnv: newAdminEnvOn(t, b)}
	e.config = adminv1.NewConfigServiceClient(e.conn)
	e.deployServices(t, "orders.place", "orders.cancel", "orders.sweep")
	e.billing = []*adminv1.SourceFile{
		{Name: "a.go", Content: []byte("package billing\n\n// a\n")},
		{Name: "b.go", Content: []byte("package billing\n\n// b\n")},
	}
	e.deployPackage(t, "billing", e.billing, "billing.run")

	// every secret kind, then one whose name needs rewriting for a variable.
	e.defs = append(everyKind(t), &adminv1.SecurityDefinition{Name: "crm-token.v2", Kind: "bearer", Token: "token-crm-4242"})
	for _, d := range e.defs {
		if _, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{Definition: d}); err != nil {
			t.Fatalf("create security definition %s: %v", d.GetName(), err)
		}
	}
	e.outgoing = []*adminv1.OutgoingConnection{
		{Name: "zeta", Address: "https://zeta.example", Security: "bearer", Headers: map[string]string{"X-B": "2", "X-A": "1"}},
		{Name: "alpha", Address: "http://alpha.example:8080", PathTemplate: "/v1/{id}", Method: "PUT", TimeoutMs: 2500, Active: proto.Bool(false)},
	}
	for _, c := range e.outgoing {
		if _, err := e.adminEnv.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{Connection: c}); err != nil {
			t.Fatalf("create outgoing connection %s: %v", c.GetName(), err)
		}
	}
	e.channels = []*adminv1.Channel{
		{Name: "legacy-soap", Path: "/soap/orders", DataFormat: "soap11", Security: "basic",
			SoapActions: map[string]string{"urn:Place": "orders.place", "Cancel": "orders.cancel"}},
		{Name: "Orders", Path: "/orders/{id}", Methods: []string{"GET", "DELETE"}, Service: "orders.place", RateLimit: 2.5, RateBurst: 5},
	}
	for _, c := range e.channels {
		if _, err := e.adminEnv.channels.CreateChannel(ctx, &adminv1.CreateChannelRequest{Channel: c}); err != nil {
			t.Fatalf("create channel %s: %v", c.GetName(), err)
		}
	}
	jobs := adminv1.NewJobServiceClient(e.conn)
	e.jobs = []*adminv1.Job{
		{Name: "sweep", Service: "orders.sweep", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 90},
			StartAt: timestamppb.New(mustTime(t, "2026-01-02T03:04:05Z")), Payload: `{"full":true}`, AgentLabels: map[string]string{"site": "berlin"}},
		{Name: "report", Service: "orders.sweep", Type: "cron", Cron: "0 6 * * 1-5", TimeZone: "Europe/Berlin",
			StartAt: timestamppb.New(mustTime(t, "2026-01-01T00:00:00Z")), Placement: store.PlacementOne, Active: proto.Bool(false)},
	}
	for _, j := range e.jobs {
		if _, err := jobs.CreateJob(ctx, &adminv1.CreateJobRequest{Job: j}); err != nil {
			t.Fatalf("create job %s: %v", j.GetName(), err)
		}
	}
	return e
}

// deployPackage stores package name with files, uncompiled.
func (e *configEnv) deployPackage(t *testing.T, name string, files []*adminv1.SourceFile, services ...string) {
	t.Helper()
	var sf []*adminv1.SourceFile
	for _, f := range files {
		sf = append(sf, &adminv1.SourceFile{Name: f.GetName(), Content: f.GetContent()})
	}
	res, err := e.store.Deploy(context.Background(), "test", []*adminv1.Package{{
		Name: name, Sha256: snapshot.PackageHash(sf), Services: services, Sources: sf,
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.watch.Advance(res.Revision)
}

// mustTime parses an RFC 3339 time.
func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func (e *configEnv) export(t *testing.T, req *adminv1.ExportConfigRequest) *adminv1.Config {
	t.Helper()
	res, err := e.config.ExportConfig(context.Background(), req)
	if err != nil {
		t.Fatalf("export %v: %v", req, err)
	}
	return res.GetConfig()
}

// named is an exported message: each has a name.
type named interface{ GetName() string }

// names lists the names of l.
func names[T named](l []T) []string {
	out := []string{}
	for _, x := range l {
		out = append(out, x.GetName())
	}
	return out
}

// configNames lists every object of cfg as kind/name.
func configNames(cfg *adminv1.Config) []string {
	var out []string
	add := func(kind string, ns []string) {
		for _, n := range ns {
			out = append(out, kind+"/"+n)
		}
	}
	add(configplan.KindSecurity, names(cfg.GetSecurity()))
	add(configplan.KindOutgoing, names(cfg.GetOutgoing()))
	add(configplan.KindChannel, names(cfg.GetChannels()))
	add(configplan.KindJob, names(cfg.GetJobs()))
	add(configplan.KindPackage, names(cfg.GetPackages()))
	return out
}

// outputOnly are the fields the control plane sets, which an export
// leaves out.
var outputOnly = []protoreflect.Name{"created_at", "updated_at", "revision", "next_run_at", "lease", "last_run"}

// wantNoOutputOnly fails if any message of cfg has an output-only field set.
func wantNoOutputOnly(t *testing.T, cfg *adminv1.Config) {
	t.Helper()
	var msgs []proto.Message
	for _, m := range cfg.GetSecurity() {
		msgs = append(msgs, m)
	}
	for _, m := range cfg.GetOutgoing() {
		msgs = append(msgs, m)
	}
	for _, m := range cfg.GetChannels() {
		msgs = append(msgs, m)
	}
	for _, m := range cfg.GetJobs() {
		msgs = append(msgs, m)
	}
	for _, m := range msgs {
		r := m.ProtoReflect()
		for _, n := range outputOnly {
			if fd := r.Descriptor().Fields().ByName(n); fd != nil && r.Has(fd) {
				t.Errorf("%s %v: output-only field %s is set", r.Descriptor().Name(), m, n)
			}
		}
	}
}

func TestConfigExportEverything(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newConfigEnv(t, b)
			ctx := context.Background()
			rev, err := e.store.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cfg := e.export(t, &adminv1.ExportConfigRequest{})

			if cfg.GetVersion() != 1 {
				t.Errorf("version = %d, want 1", cfg.GetVersion())
			}
			want := []string{
				"security/apikey", "security/basic", "security/bearer", "security/crm-token.v2", "security/jwt", "security/mtls", "security/oauth",
				"outgoing/alpha", "outgoing/zeta",
				"channel/Orders", "channel/legacy-soap", // byte order
				"job/report", "job/sweep",
				"package/billing", "package/orders",
			}
			if got := configNames(cfg); !slices.Equal(got, want) {
				t.Fatalf("exported\n%v\nwant (sorted by name)\n%v", got, want)
			}
			wantNoOutputOnly(t, cfg)

			// Objects come out as they went in, defaults filled, secrets aside.
			for _, c := range cfg.GetChannels() {
				if st := channelStored(t, e.store, c.GetName()); !proto.Equal(c, st) {
					t.Errorf("channel %s exported as %v, stored %v", c.GetName(), c, st)
				}
			}
			for _, c := range cfg.GetOutgoing() {
				if st := connStored(t, e.store, c.GetName()); !proto.Equal(c, st) {
					t.Errorf("outgoing %s exported as %v, stored %v", c.GetName(), c, st)
				}
			}
			for _, j := range cfg.GetJobs() {
				st, err := e.store.GetJob(ctx, j.GetName())
				if err != nil {
					t.Fatal(err)
				}
				if want := withoutOutput(st); !proto.Equal(j, want) {
					t.Errorf("job %s exported as %v, stored %v", j.GetName(), j, want)
				}
			}
			if s := cfg.GetJobs()[1].GetStartAt().AsTime(); !s.Equal(mustTime(t, "2026-01-02T03:04:05Z")) {
				t.Errorf("job sweep start_at = %v", s)
			}

			// Without include_source, packages are names only.
			for _, p := range cfg.GetPackages() {
				if len(p.GetFiles()) != 0 {
					t.Errorf("package %s exported with %d files without include_source", p.GetName(), len(p.GetFiles()))
				}
			}

			// Nothing changed: an export is a read.
			if after, err := e.store.Revision(ctx); err != nil || after != rev {
				t.Errorf("revision after export %d, %v; want %d", after, err, rev)
			}

			// A second export is equal, and marshals to the same bytes.
			again := e.export(t, &adminv1.ExportConfigRequest{})
			b1, _ := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
			b2, _ := proto.MarshalOptions{Deterministic: true}.Marshal(again)
			if !proto.Equal(cfg, again) || string(b1) != string(b2) {
				t.Errorf("two exports differ:\n%v\n%v", cfg, again)
			}
		})
	}
}

func TestConfigExportSecrets(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newConfigEnv(t, b)
			cfg := e.export(t, &adminv1.ExportConfigRequest{IncludeSource: true})
			want := map[string]map[protoreflect.Name]string{
				"basic":        {"password": "${WEFT_SECRET_BASIC_PASSWORD}"},
				"apikey":       {"key": "${WEFT_SECRET_APIKEY_KEY}"},
				"jwt":          {"secret": "${WEFT_SECRET_JWT_SECRET}"},
				"bearer":       {"token": "${WEFT_SECRET_BEARER_TOKEN}"},
				"oauth":        {"client_secret": "${WEFT_SECRET_OAUTH_CLIENT_SECRET}"},
				"mtls":         {"key_pem": "${WEFT_SECRET_MTLS_KEY_PEM}"},
				"crm-token.v2": {"token": "${WEFT_SECRET_CRM_TOKEN_V2_TOKEN}"},
			}
			for _, d := range cfg.GetSecurity() {
				m := d.ProtoReflect()
				for _, n := range secretNames {
					got := m.Get(m.Descriptor().Fields().ByName(n)).String()
					if w := want[d.GetName()][n]; got != w {
						t.Errorf("%s %s = %q, want %q", d.GetName(), n, got, w)
					}
				}
			}
			// The rest of a definition is kept: compare with what was created.
			for _, in := range e.defs {
				i := slices.IndexFunc(cfg.GetSecurity(), func(d *adminv1.SecurityDefinition) bool { return d.GetName() == in.GetName() })
				got := proto.Clone(cfg.GetSecurity()[i]).(*adminv1.SecurityDefinition)
				wantDef := proto.Clone(in).(*adminv1.SecurityDefinition)
				for n, v := range want[in.GetName()] {
					wantDef.ProtoReflect().Set(wantDef.ProtoReflect().Descriptor().Fields().ByName(n), protoreflect.ValueOfString(v))
				}
				if !proto.Equal(got, wantDef) {
					t.Errorf("security %s exported as %v, want %v", in.GetName(), got, wantDef)
				}
			}

			// No secret in clear anywhere in the response, nor in the log.
			text := prototext.Format(cfg)
			clear := clearSecrets(e.defs...)
			if len(clear) != len(secretNames)+1 {
				t.Fatalf("the definitions hold %d secrets, want one per secret field and one more", len(clear))
			}
			for _, c := range clear {
				// A PEM key is matched by a line of its body, not whole.
				probe := c
				if lines := strings.Split(c, "\n"); len(lines) > 2 {
					probe = lines[1]
				}
				if strings.Contains(text, probe) {
					t.Errorf("the export shows the secret %q", probe)
				}
				if strings.Contains(e.logs.String(), probe) {
					t.Errorf("the log shows the secret %q", probe)
				}
			}
		})
	}
}

func TestConfigExportSource(t *testing.T) {
	e := newConfigEnv(t, storetest.SQLite(t))
	cfg := e.export(t, &adminv1.ExportConfigRequest{Kinds: []string{"package"}, IncludeSource: true})
	if got := configNames(cfg); !slices.Equal(got, []string{"package/billing", "package/orders"}) {
		t.Fatalf("exported %v, want the two packages", got)
	}
	want := &adminv1.PackageSource{Name: "billing", Files: e.billing}
	if got := cfg.GetPackages()[0]; !proto.Equal(got, want) {
		t.Errorf("package billing = %v, want %v", got, want)
	}
}

func TestConfigExportFilters(t *testing.T) {
	e := newConfigEnv(t, storetest.SQLite(t))
	tests := []struct {
		name  string
		kinds []string
		names []string
		want  []string
	}{
		{"one kind", []string{"channel"}, nil, []string{"channel/Orders", "channel/legacy-soap"}},
		{"two kinds", []string{"job", "outgoing"}, nil, []string{"outgoing/alpha", "outgoing/zeta", "job/report", "job/sweep"}},
		{"a kind twice", []string{"job", "job"}, nil, []string{"job/report", "job/sweep"}},
		{"names across kinds", nil, []string{"basic", "Orders", "billing"}, []string{"security/basic", "channel/Orders", "package/billing"}},
		{"a name within a kind", []string{"security"}, []string{"mtls"}, []string{"security/mtls"}},
		{"names are case-sensitive", []string{"channel"}, []string{"Orders"}, []string{"channel/Orders"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.export(t, &adminv1.ExportConfigRequest{Kinds: tt.kinds, Names: tt.names})
			if got := configNames(cfg); !slices.Equal(got, tt.want) {
				t.Errorf("exported %v, want %v", got, tt.want)
			}
			if cfg.GetVersion() != 1 {
				t.Errorf("version = %d, want 1", cfg.GetVersion())
			}
		})
	}
}

func TestConfigExportRefusals(t *testing.T) {
	e := newConfigEnv(t, storetest.SQLite(t))
	tests := []struct {
		name string
		req  *adminv1.ExportConfigRequest
		code codes.Code
		want string
	}{
		{"unknown kind", &adminv1.ExportConfigRequest{Kinds: []string{"channel", "channels"}},
			codes.InvalidArgument, `kinds[1]: unknown kind "channels"; want one of security, outgoing, channel, job, package`},
		{"empty name", &adminv1.ExportConfigRequest{Names: []string{"basic", " "}}, codes.InvalidArgument, "names[1]: is empty"},
		{"unknown name", &adminv1.ExportConfigRequest{Names: []string{"basic", "nope", "zilch"}},
			codes.NotFound, `export config: no object of any kind is named "nope", "zilch"`},
		{"name of another kind", &adminv1.ExportConfigRequest{Kinds: []string{"channel", "job"}, Names: []string{"Orders", "basic"}},
			codes.NotFound, `no object of kind channel, job is named "basic"`},
		{"name in another case", &adminv1.ExportConfigRequest{Names: []string{"legacy-SOAP"}}, codes.NotFound, `"legacy-SOAP"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.config.ExportConfig(context.Background(), tt.req)
			wantCode(t, err, tt.code, tt.want)
		})
	}
}
