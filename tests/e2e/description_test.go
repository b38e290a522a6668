package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestDescription follows the description field, which issue 21 added to
// every kind to show what one field costs once a kind is stored as its API
// message, through every way in and out with the real binaries: weftctl
// create and update, get, export, diff and import of the exported file, a
// refusal naming the field that changes nothing, and the channel still
// serving.
func TestDescription(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t).DSN)
	e.ctlOK(t, "deploy", e.example, "--wait")
	kinds := []struct {
		noun, word, name string   // weftctl's noun, how a plan names the kind, the object
		create           []string // flags besides --description
	}{
		{"channel", "channel", channelName, []string{"--path", channelPath, "--service", exampleService}},
		{"outgoing", "outgoing", "crm", []string{"--address", "https://crm.example"}},
		{"security", "security", "idp", []string{"--kind", "jwt", "--algorithms", "RS256", "--jwks-url", "https://idp.example/jwks", "--issuer", "https://idp.example"}},
		{"job", "job", "nightly", []string{"--service", exampleService, "--type", "interval", "--every", "24h", "--inactive"}},
	}
	const first, second = "Made for the front desk.\nOwned by the shop team.", "Made for two desks."
	for _, k := range kinds {
		e.ctlOK(t, append([]string{k.noun, "create", k.name, "--description", first}, k.create...)...)
	}
	e.sync(t)
	for _, k := range kinds {
		if out := e.ctlOK(t, k.noun, "get", k.name).Stdout; !strings.Contains(out, "Made for the front desk.") {
			t.Errorf("%s get does not show the description:\n%s", k.noun, out)
		}
		out := e.ctlOK(t, k.noun, "get", k.name, "-o", "json").Stdout
		var got map[string]struct {
			Description string `json:"description"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
			t.Fatalf("%s get -o json: %v, want one object:\n%s", k.noun, err, out)
		}
		for _, obj := range got {
			if obj.Description != first {
				t.Errorf("%s get -o json gives the description %q, want %q", k.noun, obj.Description, first)
			}
		}
	}

	file := filepath.Join(t.TempDir(), "weft.yaml")
	e.ctlOK(t, "export", "--file", file)
	exported, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(exported), "description: |-\n"); n != len(kinds) {
		t.Fatalf("the export holds %d descriptions, want %d:\n%s", n, len(kinds), exported)
	}

	for _, k := range kinds {
		rev := e.cp.DesiredRevision(t)
		e.ctlOK(t, k.noun, "update", k.name, "--description", second)
		if got := e.cp.DesiredRevision(t); got != rev+1 {
			t.Fatalf("updating the description of %s %s moved the revision from %d to %d, want %d", k.noun, k.name, rev, got, rev+1)
		}
	}
	res := testenv.Ctl(t, e.cp, "diff", file)
	for _, k := range kinds {
		want := `~ ` + k.word + ` ` + k.name + `: description "Made for two desks." → "Made for the front desk.\nOwned by the shop team."`
		if res.ExitCode != 1 || !strings.Contains(res.Stdout, want) {
			t.Errorf("weftctl diff of the first export: %s\nwant exit 1 and %q", res, want)
		}
	}
	e.ctlOK(t, "import", file)
	if out := e.ctlOK(t, "export").Stdout; out != string(exported) {
		t.Fatalf("export after importing the first export differs from it:\n%s\nwant:\n%s", out, exported)
	}

	e.sync(t)
	e.greeting = "Hello, Ada!"
	before := e.stored(t)
	beforeExport := e.ctlOK(t, "export").Stdout
	for _, k := range kinds {
		for _, bad := range []struct{ value, want string }{
			{strings.Repeat("x", 1025), "description: is 1025 characters; want at most 1024"},
			{"bell\a", "description: holds the control character U+0007"},
		} {
			res := testenv.Ctl(t, e.cp, k.noun, "update", k.name, "--description", bad.value)
			if res.ExitCode == 0 || !strings.Contains(res.Stderr, bad.want) {
				t.Errorf("%s update with a bad description: %s\nwant a refusal saying %q", k.noun, res, bad.want)
			}
		}
	}
	if after := e.ctlOK(t, "export").Stdout; after != beforeExport {
		t.Errorf("refused updates changed the config:\n%s\nwant:\n%s", after, beforeExport)
	}
	e.wantUnchanged(t, before)
}
