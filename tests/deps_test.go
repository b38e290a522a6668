// Package tests holds the tests that look at the whole module rather than one
// package: here, that dependencies point the one way DESIGN.md fixes.
package tests

import (
	"bytes"
	"encoding/json"
	"errors"
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

// TestDependencyDirection checks what each binary's code may link: weftctl
// only the generated API, agents nothing of the control plane.
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

// sharedWithControlPlane lists the packages outside controlplane/ that the
// control plane may import directly, and why. The agent's parsers are shared
// definitions, so that the door refuses exactly what an agent would; the two
// ctl/ packages are config-as-code readers that the one-model work moves out
// of ctl/ (the control plane is to import nothing of ctl/). Any other edge
// fails TestControlPlaneImports: add it here only with a reason.
var sharedWithControlPlane = map[string]string{
	"agent/channel":        "channel routes and limits, checked at the door as agents read them",
	"agent/channel/format": "data formats of channels",
	"agent/outgoing":       "outgoing connection config",
	"agent/runtime":        "the door type-checks packages with the agents' symbol tables",
	"agent/scheduler":      "cron and interval specs",
	"agent/secrets":        "one way of sealing secrets at rest, on the control plane and in agents' state directories",
	"agent/security":       "security definitions",
	"agent/snapshot":       "the snapshot's hash, computed alike on both sides",
	"agent/stats":          "the statistics scale (bucket bounds)",
	"ctl/configfile":       "config files read from the pickup directory and escaped on export (debt: to leave ctl/)",
	"ctl/sources":          "the sources list read at start (debt: to leave ctl/)",
}

// TestControlPlaneImports checks that the control plane's code imports from
// agent/ and ctl/ only the shared definitions listed in
// sharedWithControlPlane. Its tests may import more: they run real agents.
func TestControlPlaneImports(t *testing.T) {
	used := map[string]bool{}
	for _, p := range goList(t, "./controlplane/...") {
		for _, imp := range p.Imports {
			if !under(imp, "agent") && !under(imp, "ctl") {
				continue
			}
			rel := strings.TrimPrefix(imp, module+"/")
			if _, ok := sharedWithControlPlane[rel]; !ok {
				t.Errorf("%s imports %s: the control plane may import only the shared definitions listed in sharedWithControlPlane", p.ImportPath, imp)
				continue
			}
			used[rel] = true
		}
	}
	for rel := range sharedWithControlPlane {
		if !used[rel] {
			t.Errorf("sharedWithControlPlane lists %s, which no control plane package imports: remove it", rel)
		}
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
