package validate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store"
)

func TestChannel(t *testing.T) {
	existing := []store.Channel{{Name: "orders", Path: "/api/orders/{id}", Methods: []string{"GET"}, Service: "s", Active: true}}
	tests := []struct {
		name string
		ch   store.Channel
		want string // "" when valid
	}{
		{"valid", store.Channel{Name: "a", Path: "/api/a", Service: "s"}, ""},
		{"same path other method", store.Channel{Name: "a", Path: "/api/orders/{x}", Service: "s", Methods: []string{"DELETE"}}, ""},
		{"update of itself", store.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "s", Methods: []string{"GET"}}, ""},
		{"no name", store.Channel{Path: "/a", Service: "s"}, "channel name is required"},
		{"bad name", store.Channel{Name: "a b", Path: "/a", Service: "s"}, `channel name "a b"`},
		{"no service", store.Channel{Name: "a", Path: "/a"}, "service is required"},
		{"bad method", store.Channel{Name: "a", Path: "/a", Service: "s", Methods: []string{"FETCH"}}, `methods: "FETCH"`},
		{"bad path", store.Channel{Name: "a", Path: "a", Service: "s"}, "path: \"a\" must start with /"},
		{"negative timeout", store.Channel{Name: "a", Path: "/a", Service: "s", TimeoutMs: -1}, "timeout_ms -1"},
		{"huge body", store.Channel{Name: "a", Path: "/a", Service: "s", MaxBodyBytes: 1 << 40}, "max_body_bytes"},
		{"collides", store.Channel{Name: "b", Path: "/api/orders/{n}", Service: "s", Methods: []string{"get"}}, `channels "b" (/api/orders/{n}) and "orders" (/api/orders/{id}) both take GET`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Channel(tt.ch, existing)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Channel = %v", err)
				}
				if len(got.Methods) == 0 {
					t.Fatal("methods not defaulted")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Channel = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPackage(t *testing.T) {
	const good = `package greet

import "github.com/weft-dev/weft/agent/sdk"

type In struct{ Name string ` + "`json:\"name\"`" + ` }

func init() { sdk.Register("greet.hi", func(c *sdk.Context, in In) (In, error) { return in, nil }) }
`
	tests := []struct {
		name  string
		pname string
		files []File
		want  string // "" when valid
	}{
		{"valid", "", []File{{Name: "greet.go", Content: []byte(good)}}, ""},
		{"no files", "", nil, "no .go files"},
		{"test file", "", []File{{Name: "greet.go", Content: []byte(good)}, {Name: "greet_test.go", Content: []byte("package greet")}}, "test files are not deployed"},
		{"not go", "", []File{{Name: "greet.txt", Content: []byte(good)}}, "ending in .go"},
		{"two packages", "", []File{{Name: "a.go", Content: []byte(good)}, {Name: "b.go", Content: []byte("package other")}}, "b.go: package other; the other files say package greet"},
		{"bad name", "a b", []File{{Name: "greet.go", Content: []byte(good)}}, `package name "a b"`},
		{"compile error", "", []File{{Name: "greet.go", Content: []byte(good + "\nfunc f() { nope() }\n")}}, "greet.go:9:"},
		{"forbidden import", "", []File{{Name: "greet.go", Content: []byte(strings.Replace(good, `import "github.com/weft-dev/weft/agent/sdk"`, "import (\n\t\"github.com/weft-dev/weft/agent/sdk\"\n\t_ \"os/exec\"\n)", 1))}}, `greet.go:5:4: import "os/exec" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Package(context.Background(), tt.pname, tt.files, 10*time.Second)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Package = %v", err)
				}
				if p.Name != "greet" || len(p.Services) != 1 || p.Services[0] != "greet.hi" || len(p.Sha256) != 64 {
					t.Fatalf("Package = %+v", p)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Package = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
