package cli

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestYAMLMatchesJSON checks that -o yaml carries what -o json does, under
// the same field names, for commands of every kind.
func TestYAMLMatchesJSON(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv) {
		e.packages.services = []*adminv1.Service{{Name: "hello.greet", Package: "hello", PackageVersion: 2}}
		e.channels.put(&adminv1.Channel{Name: "orders", Path: "/o", Service: "orders.get", Security: "s", RateLimit: 1.5, RateBurst: 3,
			SoapActions: map[string]string{"A": "a.b"}, Active: proto.Bool(true)})
		e.security.put(&adminv1.SecurityDefinition{Name: "s", Kind: "basic_auth", Username: "u", Password: "p"})
		e.outgoing.put(&adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", Headers: map[string]string{"X-A": "1"}})
		e.fleet.agents = []*adminv1.Agent{{Id: "a1", Labels: map[string]string{"zone": "eu"}, Connected: true}}
	})
	for _, argv := range [][]string{
		{"service", "list"},
		{"channel", "list"},
		{"channel", "get", "orders"},
		{"security", "list"},
		{"security", "get", "s"},
		{"outgoing", "list"},
		{"outgoing", "get", "crm"},
		{"outgoing", "ping", "crm"},
		{"agent", "list"},
		{"version"},
	} {
		t.Run(strings.Join(argv, " "), func(t *testing.T) {
			asJSON, _, err := e.run(append(argv, "-o", "json")...)
			if err != nil {
				t.Fatal(err)
			}
			asYAML, _, err := e.run(append(argv, "-o", "YAML")...)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(strings.TrimSpace(asYAML), "{") {
				t.Fatalf("-o yaml wrote JSON:\n%s", asYAML)
			}
			fromYAML, err := yamlToJSON([]byte(asYAML))
			if err != nil {
				t.Fatalf("-o yaml is not YAML: %v\n%s", err, asYAML)
			}
			var j, y any
			if err := json.Unmarshal([]byte(asJSON), &j); err != nil {
				t.Fatalf("-o json: %v\n%s", err, asJSON)
			}
			if err := json.Unmarshal(fromYAML, &y); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(j, y) {
				t.Errorf("-o yaml differs from -o json:\n%s\n%s", asYAML, asJSON)
			}
		})
	}
}

// yamlToJSON is the YAML document b as JSON, to compare with -o json.
func yamlToJSON(b []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
