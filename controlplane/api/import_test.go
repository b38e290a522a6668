package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (e *configEnv) importConfig(t *testing.T, cfg *adminv1.Config, prune, dryRun bool) *adminv1.ImportConfigResponse {
	t.Helper()
	res, err := e.config.ImportConfig(context.Background(), &adminv1.ImportConfigRequest{Config: cfg, Prune: prune, DryRun: dryRun})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return res
}

// importLines lists an import's items as planLines does.
func importLines(res *adminv1.ImportConfigResponse) []string {
	return planLines(&adminv1.PlanConfigResponse{Items: res.GetItems()})
}

func TestConfigImport(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newConfigEnv(t, b)
			ctx := context.Background()
			rev, err := e.store.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			exported := e.export(t, &adminv1.ExportConfigRequest{IncludeSource: true})

			// The live config imported again is a plan of unchanged objects.
			res := e.importConfig(t, e.resolved(t), true, false)
			if res.GetApplied() || res.GetChanges() || res.GetRevision() != rev {
				t.Fatalf("import of the live config: applied %v, changes %v, revision %d; want false, false, %d",
					res.GetApplied(), res.GetChanges(), res.GetRevision(), rev)
			}

			// A change of several kinds at once.
			cfg := e.resolved(t)
			outgoingOf(cfg, "alpha").TimeoutMs = 3000
			cfg.Channels = append(cfg.Channels, &adminv1.Channel{Name: "new", Path: "/new", Service: "orders.place"})
			cfg.Jobs = cfg.Jobs[1:] // report goes
			securityOf(cfg, "basic").Password = "a-new-password"
			want := replaced("update security/basic password (secret)->(secret)", "update outgoing/alpha timeout_ms 2500->3000", "delete job/report")
			want = slices.Insert(want, 13, "create channel/new")

			dry := e.importConfig(t, cfg, true, true)
			if got := importLines(dry); !slices.Equal(got, want) {
				t.Errorf("dry run plan:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if dry.GetApplied() || !dry.GetChanges() || dry.GetRevision() != rev {
				t.Errorf("dry run: applied %v, changes %v, revision %d; want false, true, %d", dry.GetApplied(), dry.GetChanges(), dry.GetRevision(), rev)
			}
			if got := e.export(t, &adminv1.ExportConfigRequest{IncludeSource: true}); !proto.Equal(got, exported) {
				t.Fatal("a dry run changed the config")
			}

			// A plan reviewed at another revision is not applied.
			_, err = e.config.ImportConfig(ctx, &adminv1.ImportConfigRequest{Config: cfg, Prune: true, BaseRevision: rev - 1})
			if status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), fmt.Sprintf("moved from revision %d, the plan's, to %d", rev-1, rev)) {
				t.Fatalf("import based on revision %d at %d: %v; want Aborted naming both", rev-1, rev, err)
			}
			if got := e.export(t, &adminv1.ExportConfigRequest{IncludeSource: true}); !proto.Equal(got, exported) {
				t.Fatal("an import based on an old revision changed the config")
			}

			res, err = e.config.ImportConfig(ctx, &adminv1.ImportConfigRequest{Config: cfg, Prune: true, BaseRevision: rev})
			if err != nil {
				t.Fatalf("import based on the current revision: %v", err)
			}
			if got := importLines(res); !slices.Equal(got, want) {
				t.Errorf("import plan:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if !res.GetApplied() || res.GetRevision() != rev+1 {
				t.Fatalf("import: applied %v, revision %d; want true, %d (one revision)", res.GetApplied(), res.GetRevision(), rev+1)
			}
			e.watchAt(t, rev+1)
			after := e.export(t, &adminv1.ExportConfigRequest{IncludeSource: true})
			if got := outgoingOf(after, "alpha").GetTimeoutMs(); got != 3000 {
				t.Errorf("alpha timeout_ms = %d, want 3000", got)
			}
			if got := names(after.GetChannels()); !slices.Contains(got, "new") {
				t.Errorf("channels = %v, want new among them", got)
			}
			if got := names(after.GetJobs()); !slices.Equal(got, []string{"sweep"}) {
				t.Errorf("jobs = %v, want sweep alone", got)
			}
			basic, err := e.store.GetSecurityDefinition(ctx, "basic")
			if err != nil || basic.Password != "a-new-password" {
				t.Errorf("basic password = %q, %v; want the imported one", basic.Password, err)
			}

			// Again: nothing to do, even with a start finer than the
			// store keeps.
			jobOf(cfg, "sweep").StartAt.Nanos += 123456
			res = e.importConfig(t, cfg, true, false)
			if res.GetApplied() || res.GetChanges() || res.GetRevision() != rev+1 {
				t.Errorf("second import: applied %v, changes %v, revision %d; want false, false, %d",
					res.GetApplied(), res.GetChanges(), res.GetRevision(), rev+1)
			}
			if strings.Contains(e.logs.String(), "a-new-password") {
				t.Error("the control plane's log holds an imported secret")
			}
		})
	}
}

// violations are the fields a refusal's BadRequest detail names.
func violations(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

func TestConfigImportRefused(t *testing.T) {
	e := newConfigEnv(t, storetest.SQLite(t))
	ctx := context.Background()
	rev, err := e.store.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exported := e.export(t, &adminv1.ExportConfigRequest{IncludeSource: true})
	// channels are in name order in the export: Orders (0), legacy-soap (1).
	tests := []struct {
		name   string
		edit   edit
		prune  bool
		fields []string
		text   []string
	}{
		{"a channel's missing service", func(cfg *adminv1.Config) { channelOf(cfg, "Orders").Service = "nope.run" }, false,
			[]string{"config.channels[0].service"}, []string{`channel "Orders": service: service "nope.run" is not deployed`}},
		{"a missing security definition", func(cfg *adminv1.Config) { channelOf(cfg, "Orders").Security = "ghost" }, false,
			[]string{"config.channels[0].security"}, []string{`channel "Orders": security: security definition "ghost" does not exist`}},
		{"a definition of the wrong kind", func(cfg *adminv1.Config) { channelOf(cfg, "Orders").Security = "oauth" }, false,
			[]string{"config.channels[0].security"}, []string{`security definition "oauth" is oauth2_client_credentials, which cannot verify inbound requests`}},
		{"a job's missing service", func(cfg *adminv1.Config) { jobOf(cfg, "sweep").Service = "gone.run" }, false,
			[]string{"config.jobs[1].service"}, []string{`job "sweep": service: service "gone.run" is not deployed`}},
		{"a pruned package a channel still calls", func(cfg *adminv1.Config) { cfg.Packages = cfg.Packages[:1] }, true,
			[]string{"config.channels[0].service", `config.channels[1].soap_actions["Cancel"]`, `config.channels[1].soap_actions["urn:Place"]`, "config.jobs[0].service", "config.jobs[1].service"},
			[]string{`service "orders.place" is not deployed`}},
		{"a bad field", func(cfg *adminv1.Config) { jobOf(cfg, "report").Cron = "61 * * * *" }, false,
			[]string{"config.jobs[0].cron"}, []string{`job "report": cron:`}},
		{"an unresolved variable", func(cfg *adminv1.Config) { securityOf(cfg, "basic").Password = "${NOT_SET}" }, false,
			[]string{"config.security[1].password"}, []string{`security "basic": password: holds a ${...} placeholder`}},
		{"a name given twice", func(cfg *adminv1.Config) {
			cfg.Outgoing = append(cfg.Outgoing, proto.Clone(cfg.Outgoing[0]).(*adminv1.OutgoingConnection))
		}, false, []string{"config.outgoing[2]"}, []string{`outgoing "alpha": given twice (also outgoing[0])`}},
		{"a new package without source", func(cfg *adminv1.Config) {
			cfg.Packages = append(cfg.Packages, &adminv1.PackageSource{Name: "nowhere"})
		}, false, []string{"config.packages[2]"}, []string{`package "nowhere": is not deployed here, and the config carries no source`}},
		{"a package that does not compile", func(cfg *adminv1.Config) {
			cfg.Packages[0].Files[0].Content = []byte("package billing\n\nfunc broken( {\n")
		}, false, []string{"config.packages[0]"}, []string{`package "billing": does not compile`, "a.go:3"}},
		{"two channels on one path", func(cfg *adminv1.Config) {
			cfg.Channels = append(cfg.Channels, &adminv1.Channel{Name: "twin", Path: "/soap/orders", Service: "orders.place"})
		}, false, []string{"config.channels[2].path"}, []string{`channel "twin": path "/soap/orders" is also channel "legacy-soap"'s`}},
		{"one path, other methods", func(cfg *adminv1.Config) {
			cfg.Channels = append(cfg.Channels, &adminv1.Channel{Name: "twin", Path: "/orders/{id}", Methods: []string{"POST"}, Service: "orders.place"})
		}, false, []string{"config.channels[2].path"}, []string{`path "/orders/{id}" is also channel "Orders"'s`}},
		{"a path a kept live channel has", func(cfg *adminv1.Config) {
			cfg.Channels = []*adminv1.Channel{{Name: "twin", Path: "/orders/{id}", Methods: []string{"PUT"}, Service: "orders.place"}}
		}, false, []string{"config.channels[0].path"}, []string{`path "/orders/{id}" is also channel "Orders"'s`}},
		{"a service a kept live package registers", func(cfg *adminv1.Config) {
			cfg.Packages = []*adminv1.PackageSource{{Name: "billing2", Files: []*adminv1.SourceFile{{Name: "b.go", Content: []byte(strings.ReplaceAll(billingB2, "package billing", "package billing2"))}}}}
		}, false, []string{"config.packages[0]"}, []string{`package "billing2": registers service "billing.run", which package "billing" registers too`}},
		{"two new packages, one service", func(cfg *adminv1.Config) {
			cfg.Packages = append(cfg.Packages[1:],
				&adminv1.PackageSource{Name: "billing", Files: []*adminv1.SourceFile{{Name: "b.go", Content: []byte(billingB2)}}},
				&adminv1.PackageSource{Name: "billing2", Files: []*adminv1.SourceFile{{Name: "b.go", Content: []byte(strings.ReplaceAll(billingB2, "package billing", "package billing2"))}}})
		}, false, []string{"config.packages[2]"}, []string{`package "billing2": registers service "billing.run", which package "billing" registers too`}},
		{"a one_time job in the past", func(cfg *adminv1.Config) {
			cfg.Jobs = append(cfg.Jobs, &adminv1.Job{Name: "once", Service: "orders.sweep", Type: "one_time", StartAt: timestamppb.New(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))})
		}, false, []string{"config.jobs[2].start_at"}, []string{`job "once": start_at: 2001-01-01T00:00:00Z is in the past`}},
		{"several problems at once", func(cfg *adminv1.Config) {
			channelOf(cfg, "Orders").Service = "nope.run"
			jobOf(cfg, "sweep").Service = "gone.run"
		}, false, []string{"config.channels[0].service", "config.jobs[1].service"}, []string{"nope.run", "gone.run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.resolved(t)
			tt.edit(cfg)
			_, err := e.config.ImportConfig(ctx, &adminv1.ImportConfigRequest{Config: cfg, Prune: tt.prune})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("import: %v; want InvalidArgument", err)
			}
			for _, text := range tt.text {
				if !strings.Contains(err.Error(), text) {
					t.Errorf("error %q does not say %q", err, text)
				}
			}
			if got := violations(t, err); !slices.Equal(got, tt.fields) {
				t.Errorf("field violations %q, want %q", got, tt.fields)
			}
			if after, err := e.store.Revision(ctx); err != nil || after != rev {
				t.Errorf("revision after a refused import %d, %v; want %d", after, err, rev)
			}
			if got := e.export(t, &adminv1.ExportConfigRequest{IncludeSource: true}); !proto.Equal(got, exported) {
				t.Error("a refused import changed the config")
			}
			// The plan refuses it the same way.
			_, perr := e.config.PlanConfig(ctx, &adminv1.PlanConfigRequest{Config: cfg, Prune: tt.prune})
			if got := violations(t, perr); !slices.Equal(got, tt.fields) {
				t.Errorf("plan's field violations %q, want %q", got, tt.fields)
			}
		})
	}
}

// A write of one object and an import refuse a broken rule between
// objects with the same words: the import's problem is the write's, with
// where it also looked (the config) when a target is missing. The write
// is refused before the store's own check, with the store's status code.
func TestRefusalsAlike(t *testing.T) {
	e := newConfigEnv(t, storetest.SQLite(t))
	ctx := context.Background()
	jobs := adminv1.NewJobServiceClient(e.conn)
	rev, err := e.store.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nope := &adminv1.Channel{Name: "new", Path: "/new", Service: "nope.run"}
	oauth := &adminv1.Channel{Name: "new", Path: "/new", Service: "orders.place", Security: "oauth"}
	twin := &adminv1.Channel{Name: "twin", Path: "/soap/orders", Methods: []string{"PUT"}, Service: "orders.place"}
	ghost := &adminv1.OutgoingConnection{Name: "new", Address: "https://x.example", Security: "ghost"}
	gone := &adminv1.Job{Name: "new", Service: "gone.run", Type: "interval", Interval: &adminv1.JobInterval{Minutes: 1}}
	tests := []struct {
		name  string
		write func() error
		add   func(cfg *adminv1.Config)
		code  codes.Code
		what  string // the write's operation, before the problem
		field string // the import's field violation
	}{
		{"a channel's missing service", func() error {
			_, err := e.adminEnv.channels.CreateChannel(ctx, &adminv1.CreateChannelRequest{Channel: nope})
			return err
		}, func(cfg *adminv1.Config) { cfg.Channels = append(cfg.Channels, nope) },
			codes.FailedPrecondition, `create channel "new"`, "config.channels[2].service"},
		{"a definition that cannot verify inbound requests", func() error {
			_, err := e.adminEnv.channels.CreateChannel(ctx, &adminv1.CreateChannelRequest{Channel: oauth})
			return err
		}, func(cfg *adminv1.Config) { cfg.Channels = append(cfg.Channels, oauth) },
			codes.FailedPrecondition, `create channel "new"`, "config.channels[2].security"},
		{"a path another channel has", func() error {
			_, err := e.adminEnv.channels.CreateChannel(ctx, &adminv1.CreateChannelRequest{Channel: twin})
			return err
		}, func(cfg *adminv1.Config) { cfg.Channels = append(cfg.Channels, twin) },
			codes.AlreadyExists, `create channel "twin"`, "config.channels[2].path"},
		{"a job's missing service", func() error {
			_, err := jobs.CreateJob(ctx, &adminv1.CreateJobRequest{Job: gone})
			return err
		}, func(cfg *adminv1.Config) { cfg.Jobs = append(cfg.Jobs, gone) },
			codes.FailedPrecondition, `create job "new"`, "config.jobs[2].service"},
		{"an update to a missing service", func() error {
			_, err := jobs.UpdateJob(ctx, &adminv1.UpdateJobRequest{Job: &adminv1.Job{Name: "sweep", Service: "gone.run"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"service"}}})
			return err
		}, func(cfg *adminv1.Config) { jobOf(cfg, "sweep").Service = "gone.run" },
			codes.FailedPrecondition, `update job "sweep"`, "config.jobs[1].service"},
		{"a connection's missing definition", func() error {
			_, err := e.adminEnv.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{Connection: ghost})
			return err
		}, func(cfg *adminv1.Config) { cfg.Outgoing = append(cfg.Outgoing, ghost) },
			codes.FailedPrecondition, `create outgoing connection "new"`, "config.outgoing[2].security"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			werr := tt.write()
			if status.Code(werr) != tt.code {
				t.Fatalf("write: %v; want %s", werr, tt.code)
			}
			cfg := e.resolved(t)
			tt.add(cfg)
			_, ierr := e.config.ImportConfig(ctx, &adminv1.ImportConfigRequest{Config: cfg})
			var problem string
			for _, d := range status.Convert(ierr).Details() {
				if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 && br.GetFieldViolations()[0].GetField() == tt.field {
					problem = br.GetFieldViolations()[0].GetDescription()
				}
			}
			if problem == "" {
				t.Fatalf("import: %v; want one problem at %s", ierr, tt.field)
			}
			// The write names the object as the store does (outgoing
			// connection, not the config's list name outgoing).
			said := strings.TrimPrefix(status.Convert(werr).Message(), tt.what+": ")
			said = strings.Replace(said, "outgoing connection ", "outgoing ", 1)
			rest, ok := strings.CutPrefix(problem, said)
			if !ok || rest != "" && !strings.HasPrefix(rest, ", and ") {
				t.Errorf("the write says\n  %s\nthe import\n  %s", said, problem)
			}
			if strings.Contains(status.Convert(werr).Message(), "already used by") {
				t.Errorf("the write was refused by the store's check, not the plan's: %v", werr)
			}
		})
	}
	if after, err := e.store.Revision(ctx); err != nil || after != rev {
		t.Errorf("revision after the refusals %d, %v; want %d", after, err, rev)
	}
}
