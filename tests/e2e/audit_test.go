package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestAudit runs a scenario of every kind of change through weftctl and
// the pickup directory, on both backends, and reads it back with weftctl
// audit: one entry per object each change created, updated or deleted,
// newest first, with who (the token's name for weftctl, pickup:FILE for
// the directory, agent:ID for an enrollment, first-start for the CA and
// the first token)
// and the object's hashes chaining from one change to the next.
func TestAudit(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			pickup := t.TempDir()
			cp := testenv.StartControlPlane(t, b.DSN, testenv.WithArgs("--pickup-dir", pickup))
			e := &env{cp: cp}
			hello := filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello")
			steps := [][]string{
				{"deploy", hello},
				{"security", "create", "partner", "--kind", "api_key", "--header", "X-Key", "--key", "k-1"},
				{"channel", "create", "hello", "--path", "/api/hello", "--service", "hello.greet", "--security", "partner"},
				{"outgoing", "create", "crm", "--address", "http://127.0.0.1:9"},
				{"job", "create", "nightly", "--service", "hello.greet", "--type", "cron", "--cron", "0 3 * * *"},
				{"security", "update", "partner", "--key", "k-2"},
				{"channel", "update", "hello", "--path", "/api/hi"},
				{"job", "delete", "nightly"},
			}
			for _, s := range steps {
				e.ctlOK(t, s...)
			}
			// A config file dropped in the pickup directory: another way in.
			file := "outgoing:\n  - name: erp\n    address: http://127.0.0.1:10\n"
			if err := os.WriteFile(filepath.Join(pickup, "erp.yaml"), []byte(file), 0o600); err != nil {
				t.Fatal(err)
			}
			testenv.Await(t, time.Minute, "the pickup directory's change in the audit trail", func() (bool, string) {
				r := testenv.Ctl(t, cp, "audit", "--kind", "outgoing")
				return strings.Contains(r.Stdout, "erp"), r.String()
			})

			// Changes of trust: tokens, join tokens, an agent's enrollment
			// and its revocation.
			e.ctlOK(t, "token", "create", "ci", "--role", "deployer")
			agent := testenv.StartAgent(t, cp, "edge-1")
			e.ctlOK(t, "agent", "revoke", "edge-1")
			e.ctlOK(t, "token", "revoke", "ci")
			joinToken := agent.Record(t).GetEnrolledBy()

			var trail struct {
				Entries []struct {
					Revision   string `json:"revision"`
					Who        string `json:"who"`
					Kind       string `json:"kind"`
					Name       string `json:"name"`
					Action     string `json:"action"`
					HashBefore string `json:"hashBefore"`
					HashAfter  string `json:"hashAfter"`
				} `json:"entries"`
			}
			if r := testenv.CtlJSON(t, cp, &trail, "audit", "-o", "json"); r.ExitCode != 0 {
				t.Fatalf("weftctl audit: %s", r)
			}
			var got []string
			for _, en := range trail.Entries {
				got = append(got, fmt.Sprintf("%s %s %s %s", en.Who, en.Kind, en.Name, en.Action))
			}
			slices.Reverse(got) // oldest first, as the scenario ran
			want := []string{
				"first-start ca ca created",
				"first-start token admin created",
				"admin package hello created",
				"admin security partner created",
				"admin channel hello created",
				"admin outgoing crm created",
				"admin job nightly created",
				"admin security partner updated",
				"admin channel hello updated",
				"admin job nightly deleted",
				"pickup:erp.yaml outgoing erp created",
				"admin token ci created",
				"admin join-token " + joinToken + " created",
				"agent:edge-1 agent edge-1 enrolled",
				"agent:edge-1 join-token " + joinToken + " updated",
				"admin agent edge-1 revoked",
				"admin token ci revoked",
			}
			if !slices.Equal(got, want) {
				t.Fatalf("weftctl audit:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// The hashes chain: an update's "before" is what the create left.
			after := map[string]string{}
			for i := len(trail.Entries) - 1; i >= 0; i-- {
				en := trail.Entries[i]
				key := en.Kind + " " + en.Name
				if en.HashBefore != after[key] {
					t.Errorf("%s %s: hash before %q, want the last one after, %q", key, en.Action, en.HashBefore, after[key])
				}
				after[key] = en.HashAfter
			}
			if r := testenv.Ctl(t, cp, "audit", "--kind", "nope"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "--kind") {
				t.Errorf("weftctl audit --kind nope: %s; want a refusal naming --kind", r)
			}
		})
	}
}
