package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/proto/configfile"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// BenchmarkConfigImport imports a config of 1,000 objects (100 security
// definitions, 200 outgoing connections, 500 channels, 200 jobs) into a
// control plane holding only the example package, on each backend: over
// the admin API (the plan, the checks, and the one transaction that stores
// them as one revision), and as a YAML file with `weftctl import` (the
// process, reading the file, and the same call). Between iterations a
// pruning import of the empty config takes them away again, untimed.
//
//	go test -run '^$' -bench ConfigImport -benchtime 5x ./tests/bench/
func BenchmarkConfigImport(b *testing.B) {
	cfg := thousandObjects()
	file := filepath.Join(b.TempDir(), "thousand.yaml")
	y, err := configfile.Marshal(cfg, configfile.YAML)
	if err != nil {
		b.Fatal(err)
	}
	if err := configfile.WriteFile(file, y); err != nil {
		b.Fatal(err)
	}
	for _, backend := range []func(testing.TB) storetest.Backend{storetest.SQLite, storetest.MySQL} {
		for _, via := range []string{"api", "weftctl"} {
			b.Run(backend(b).Name+"/"+via, func(b *testing.B) {
				// The harness runs this function more than once: a new
				// database each time, as each control plane makes its own key.
				cp := testenv.StartControlPlane(b, backend(b).DSN)
				if r := testenv.Ctl(b, cp, "deploy", "../../deploy/examples/hello"); r.ExitCode != 0 {
					b.Fatalf("deploy: %s", r)
				}
				api := adminv1.NewConfigServiceClient(cp.Conn())
				ctx := context.Background()
				importOnce := func() *adminv1.ImportConfigResponse {
					if via == "api" {
						res, err := api.ImportConfig(ctx, &adminv1.ImportConfigRequest{Config: cfg})
						if err != nil {
							b.Fatalf("import: %v", err)
						}
						return res
					}
					res := &adminv1.ImportConfigResponse{}
					if r := testenv.CtlJSON(b, cp, res, "import", file, "-o", "json"); r.ExitCode != 0 {
						b.Fatalf("weftctl import: %s", r)
					}
					return res
				}
				keep := &adminv1.Config{Packages: []*adminv1.PackageSource{{Name: "hello"}}}
				// A dry run says the current revision.
				cur, err := api.ImportConfig(ctx, &adminv1.ImportConfigRequest{Config: keep, DryRun: true})
				if err != nil {
					b.Fatal(err)
				}
				before := cur.GetRevision()
				var took []time.Duration
				b.ResetTimer()
				for range b.N {
					start := time.Now()
					res := importOnce()
					took = append(took, time.Since(start))
					if !res.GetApplied() || res.GetRevision() != before+1 || len(res.GetItems()) != 1001 {
						b.Fatalf("import: applied %v at revision %d, %d items; want 1,001 items in one revision after %d",
							res.GetApplied(), res.GetRevision(), len(res.GetItems()), before)
					}
					b.StopTimer()
					pruned, err := api.ImportConfig(ctx, &adminv1.ImportConfigRequest{Config: keep, Prune: true})
					if err != nil {
						b.Fatalf("prune: %v", err)
					}
					before = pruned.GetRevision()
					b.StartTimer()
				}
				b.StopTimer()
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
				b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
			})
		}
	}
}

// thousandObjects is a config of 1,000 objects calling the example's
// hello.greet: channels use the basic auth definitions, connections the
// bearer ones.
func thousandObjects() *adminv1.Config {
	cfg := &adminv1.Config{Version: 1, Packages: []*adminv1.PackageSource{{Name: "hello"}}}
	for i := range 50 {
		cfg.Security = append(cfg.Security,
			&adminv1.SecurityDefinition{Name: fmt.Sprintf("basic-%03d", i), Kind: "basic_auth", Username: "u", Password: fmt.Sprintf("password-%03d", i)},
			&adminv1.SecurityDefinition{Name: fmt.Sprintf("bearer-%03d", i), Kind: "bearer", Token: fmt.Sprintf("token-%03d", i)})
	}
	for i := range 200 {
		cfg.Outgoing = append(cfg.Outgoing, &adminv1.OutgoingConnection{
			Name: fmt.Sprintf("conn-%03d", i), Address: fmt.Sprintf("https://crm-%03d.example", i), PathTemplate: "/v1/{id}",
			Security: fmt.Sprintf("bearer-%03d", i%50), Headers: map[string]string{"X-Tenant": fmt.Sprint(i)},
		})
	}
	for i := range 500 {
		cfg.Channels = append(cfg.Channels, &adminv1.Channel{
			Name: fmt.Sprintf("channel-%03d", i), Path: fmt.Sprintf("/api/v1/things-%03d/{id}", i), Methods: []string{"GET", "POST"},
			Service: "hello.greet", Security: fmt.Sprintf("basic-%03d", i%50), RateLimit: 100,
		})
	}
	for i := range 200 {
		cfg.Jobs = append(cfg.Jobs, &adminv1.Job{
			Name: fmt.Sprintf("job-%03d", i), Service: "hello.greet", Type: "cron", Cron: fmt.Sprintf("%d * * * *", i%60),
			TimeZone: "Europe/Berlin", Payload: `{"name":"Ada"}`,
		})
	}
	return cfg
}
