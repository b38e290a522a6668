package outgoing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func named(t *testing.T, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRegistrySwap(t *testing.T) {
	a, b := named(t, "A"), named(t, "B")
	var applied []string
	r := NewRegistry(func(cfg Config) []Option {
		applied = append(applied, cfg.Name)
		return []Option{WithMaxBody(1024)}
	})
	t.Cleanup(r.Close)

	call := func(name string) string {
		t.Helper()
		c, ok := r.Get(name)
		if !ok {
			t.Fatalf("Get(%q): missing", name)
		}
		resp, err := c.Do(context.Background(), nil, nil, nil)
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
		return string(resp.Body)
	}

	if err := r.Set([]Config{{Name: "crm", Address: a.URL}, {Name: "erp", Address: b.URL}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got := call("crm"); got != "A" {
		t.Fatalf("crm answered %q, want A", got)
	}
	if c, _ := r.Get("crm"); c.maxBody != 1024 {
		t.Fatal("the options were not applied")
	}

	if err := r.Set([]Config{{Name: "crm", Address: b.URL}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got := call("crm"); got != "B" {
		t.Fatalf("after the swap crm answered %q, want B", got)
	}
	if _, ok := r.Get("erp"); ok {
		t.Fatal("erp survived a set without it")
	}

	tests := []struct {
		name string
		cfgs []Config
		want string
	}{
		{"bad config", []Config{{Name: "crm", Address: a.URL}, {Name: "erp", Address: "ftp://h"}},
			`outgoing connections: #1: outgoing "erp": Address: scheme "ftp" is not http or https`},
		{"duplicate name", []Config{{Name: "crm", Address: a.URL}, {Name: "crm", Address: a.URL}},
			`outgoing connections: #1: name "crm" is used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Set(tt.cfgs)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Set: %v, want %q", err, tt.want)
			}
			if got := call("crm"); got != "B" {
				t.Fatalf("a refused set changed crm: it answered %q", got)
			}
			if names := r.Names(); len(names) != 1 {
				t.Fatalf("Names: %v", names)
			}
		})
	}

	var zero Registry
	if err := zero.Set([]Config{{Name: "crm", Address: a.URL}}); err != nil {
		t.Fatalf("zero Registry Set: %v", err)
	}
	zero.Close()
	if _, ok := zero.Get("crm"); ok || !strings.Contains(strings.Join(applied, ","), "crm") {
		t.Fatal("Close left connections behind")
	}
}
