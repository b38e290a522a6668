// Package tests holds the tests that look at the whole module rather than one
// package: here, that dependencies point the one way DESIGN.md fixes.
package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/weft-dev/weft"

// listedPackage is the part of `go list -json` output the rules read.
type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// goList runs `go list -e -json args...` in the module's root directory and
// decodes every package it prints.
func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-json"}, args...)...)
	cmd.Dir = testModuleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list %s: decode: %v", strings.Join(args, " "), err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %s: no packages", strings.Join(args, " "))
	}
	return pkgs
}

// inModule reports whether import path p belongs to this module.
func inModule(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }

// under reports whether import path p is dir of the module or inside it.
func under(p, dir string) bool {
	full := module + "/" + dir
	return p == full || strings.HasPrefix(p, full+"/")
}

// rel is import path p of the module relative to the module's root.
func rel(p string) string { return strings.TrimPrefix(p, module+"/") }

// area is a part of the module, by the patterns of its packages.
type area struct {
	name     string
	patterns []string
}

// areas are the parts of the module that allowedEdges speaks of. A package
// belongs to the area of the most specific pattern that matches it, as
// `go list` reads patterns: "dir/..." matches dir and every package under
// it, a pattern without "/..." that one package.
var areas = []area{
	{"controlplane", []string{"controlplane/..."}},
	{"agent", []string{"agent/..."}},
	// The definitions the control plane's door and the agents must read
	// alike, so that the door refuses exactly what an agent would.
	{"agent/shared", []string{"agent/shared/..."}},
	// The service API that deployed packages import (not agent/sdk/sdktest,
	// the test kit built on the agent's handler, which is agent code).
	{"agent/sdk", []string{"agent/sdk", "agent/sdk/internal/..."}},
	{"ctl", []string{"ctl/..."}},
	{"proto", []string{"proto/..."}},
	{"deploy", []string{"deploy/..."}},
	{"tests", []string{"tests/..."}},
}

// exemptAreas import whatever they need: the tests of the whole module.
var exemptAreas = []string{"tests"}

// allowedEdges lists every area that the code (not the tests) of an area
// may import from this module, each with why. TestDependencyEdges fails on
// any other edge; the standard library and third-party modules are always
// allowed. Add an edge here only with a reason.
var allowedEdges = []struct{ from, to, why string }{
	{"controlplane", "controlplane", "its own packages"},
	{"controlplane", "proto", "the APIs it serves, the snapshot it sends agents, and the config files it reads and writes"},
	{"controlplane", "agent/shared", "the definitions agents read (channel routes, data formats, security definitions, outgoing config, job specs, the stats scale, the snapshot hash, sealing, the check and the evaluation of service packages): the door checks with the agents' own code"},

	{"agent", "agent", "its own packages"},
	{"agent", "agent/shared", "the definitions it shares with the control plane"},
	{"agent", "agent/sdk", "the service API whose calls it serves"},
	{"agent", "proto", "the agent API and the snapshot it runs"},

	{"agent/shared", "agent/shared", "one another: they are a leaf set"},
	{"agent/shared", "proto", "the snapshot's messages they read (channels, jobs, packages)"},
	{"agent/shared", "agent/sdk", "an exception: the symbol tables that interpreted code sees, the handler shape and sdk.Register's options are the service API's own types; agent/sdk stays at the path service packages import it by, and links nothing else of the module (the next edge)"},

	{"agent/sdk", "agent/sdk", "the service API and its internal registry, and nothing else of the module: service packages, and the shared definitions that describe the API, link nothing more"},

	{"ctl", "ctl", "its own packages"},
	{"ctl", "proto", "weftctl talks to the control plane through the generated admin API and the config-file formats alone"},

	{"proto", "proto", "the generated code and the formats defined with it, which import nothing else"},

	{"deploy", "agent/sdk", "the examples are service packages, written against the service API alone"},
}

// allowedPackageEdges are edges between two packages that their areas'
// edges do not allow, each with why. Keep it short.
var allowedPackageEdges = []struct{ from, to, why string }{
	{"agent/identity/identitytest", "tests/testenv", "a test helper (a fake control plane's side of the agents' identities): it builds on the test environment's CA, and only tests import it"},
}

// matches reports whether the module-relative import path p matches
// pattern, and how specific the pattern is: the deeper its directory the
// more, and a package more than the tree of the same directory.
func matches(p, pattern string) (bool, int) {
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == dir || strings.HasPrefix(p, dir+"/"), 2 * len(dir)
	}
	return p == pattern, 2*len(pattern) + 1
}

// areaOf is the area of the module-relative import path p, "" if none.
func areaOf(p string) string {
	area, best := "", -1
	for _, a := range areas {
		for _, pat := range a.patterns {
			if ok, n := matches(p, pat); ok && n > best {
				area, best = a.name, n
			}
		}
	}
	return area
}

// TestDependencyEdges checks every import of this module's packages made by
// code, not tests, against allowedEdges and allowedPackageEdges. Tests may
// import more (the control plane's run real agents); the packages of
// exemptAreas may import anything.
func TestDependencyEdges(t *testing.T) {
	type edge struct{ from, to string }
	allowed := map[edge]bool{}
	used := map[edge]bool{}
	names := map[string]bool{}
	for _, a := range areas {
		names[a.name] = true
	}
	for _, e := range allowedEdges {
		if !names[e.from] || !names[e.to] {
			t.Errorf("allowedEdges: %s -> %s: both ends must be areas", e.from, e.to)
		}
		allowed[edge{e.from, e.to}] = true
	}
	pkgAllowed := map[edge]bool{}
	for _, e := range allowedPackageEdges {
		pkgAllowed[edge{e.from, e.to}] = true
	}

	for _, p := range goList(t, "./...") {
		from := areaOf(rel(p.ImportPath))
		if from == "" {
			t.Errorf("%s is in no area: add it to areas, and its edges to allowedEdges", p.ImportPath)
			continue
		}
		if slices.Contains(exemptAreas, from) {
			continue
		}
		for _, imp := range p.Imports {
			if !inModule(imp) {
				continue
			}
			to := areaOf(rel(imp))
			switch e, pe := (edge{from, to}), (edge{rel(p.ImportPath), rel(imp)}); {
			case allowed[e]:
				used[e] = true
			case pkgAllowed[pe]:
				used[pe] = true
			default:
				t.Errorf("%s imports %s: %s may not import %s (the allowed edges are in allowedEdges)",
					rel(p.ImportPath), rel(imp), from, describeArea(to))
			}
		}
	}
	// An edge that nothing uses is a rule nobody checks: drop it.
	for _, e := range allowedEdges {
		if !used[edge{e.from, e.to}] {
			t.Errorf("allowedEdges lists %s -> %s, which no package uses: remove it", e.from, e.to)
		}
	}
	for _, e := range allowedPackageEdges {
		if !used[edge{e.from, e.to}] {
			t.Errorf("allowedPackageEdges lists %s -> %s, which is not an import any more: remove it", e.from, e.to)
		}
	}
}

// describeArea names area for a message.
func describeArea(area string) string {
	if area == "" {
		return "a package in no area"
	}
	return fmt.Sprintf("the %s area", area)
}

// TestDependencyDirection checks what each binary's code may link, through
// any chain of imports: weftctl only ctl/ and the generated API, agents
// nothing of the control plane, the control plane nothing of ctl/.
func TestDependencyDirection(t *testing.T) {
	tests := []struct {
		name    string
		pattern string                // the packages whose dependencies are checked
		allowed func(dep string) bool // says whether they may link dep
		rule    string
	}{
		{
			name:    "ctl imports only the generated API",
			pattern: "./ctl/...",
			allowed: func(dep string) bool {
				return !inModule(dep) || under(dep, "ctl") || under(dep, "proto")
			},
			rule: "ctl may import, from this module, only ctl/ and proto/",
		},
		{
			name:    "agent never imports the control plane",
			pattern: "./agent/...",
			allowed: func(dep string) bool { return !under(dep, "controlplane") },
			rule:    "agent must not import controlplane/",
		},
		{
			name:    "the control plane never imports ctl",
			pattern: "./controlplane/...",
			allowed: func(dep string) bool { return !under(dep, "ctl") },
			rule:    "controlplane must not import ctl/",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// -deps lists the packages and everything they link.
			for _, p := range goList(t, "-deps", tt.pattern) {
				if !tt.allowed(p.ImportPath) {
					t.Errorf("%s links %s: %s (see who imports it with: go list -deps -f '{{.ImportPath}} {{.Imports}}' %s)",
						tt.pattern, p.ImportPath, tt.rule, tt.pattern)
				}
			}
		})
	}
}

// TestGormStaysInStore checks that only the store (and its test helpers)
// imports gorm, in code and in tests alike.
func TestGormStaysInStore(t *testing.T) {
	storeUsesGorm := false
	for _, p := range goList(t, "./...") {
		imports := slices.Concat(p.Imports, p.TestImports, p.XTestImports)
		for _, imp := range imports {
			if imp != "gorm.io" && !strings.HasPrefix(imp, "gorm.io/") {
				continue
			}
			if under(p.ImportPath, "controlplane/store") {
				storeUsesGorm = true
				continue
			}
			t.Errorf("%s imports %s: gorm belongs to controlplane/store alone", p.ImportPath, imp)
		}
	}
	// A rule that sees nothing proves nothing.
	if !storeUsesGorm {
		t.Errorf("no package under controlplane/store imports gorm: is go list seeing the module?")
	}
}

// testModuleRoot returns the module's root directory.
func testModuleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}
