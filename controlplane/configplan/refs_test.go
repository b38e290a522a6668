package configplan

import (
	"errors"
	"strings"
	"testing"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// liveTargets are two services and three definitions: one that works both
// ways, one outbound only, one inbound only.
func liveTargets() Targets {
	return LiveTargets(
		[]*adminv1.Service{{Name: "orders.place"}, {Name: "orders.cancel"}},
		[]*adminv1.SecurityDefinition{
			{Name: "basic", Kind: "basic_auth"},
			{Name: "send-token", Kind: "bearer", Token: "t"},
			{Name: "jwt-in", Kind: "jwt", JwksUrl: "https://idp.example/jwks"},
		})
}

// The rules of one object: each broken one is named with its field, wraps
// the store's error for it, and says nothing of a config.
func TestCheckOneObject(t *testing.T) {
	live := []*adminv1.Channel{{Name: "orders", Path: "/orders", Methods: []string{"POST"}, Service: "orders.place", DataFormat: "json"}}
	tests := []struct {
		name string
		err  error
		kind error // nil: no error
		text string
	}{
		{"a channel that holds", CheckChannel(&adminv1.Channel{Name: "cancel", Path: "/cancel", Methods: []string{"POST"}, Service: "orders.cancel", Security: "basic", DataFormat: "json"}, live, liveTargets()), nil, ""},
		{"a channel replacing itself", CheckChannel(live[0], live, liveTargets()), nil, ""},
		{"a missing service", CheckChannel(&adminv1.Channel{Name: "c", Path: "/c", Methods: []string{"POST"}, Service: "nope", DataFormat: "json"}, live, liveTargets()),
			store.ErrNotFound, `channel "c": service: service "nope" is not deployed`},
		{"a SOAP action's missing service", CheckChannel(&adminv1.Channel{Name: "c", Path: "/c", Methods: []string{"POST"}, DataFormat: "soap11", SoapActions: map[string]string{"urn:X": "gone"}}, live, liveTargets()),
			store.ErrNotFound, `channel "c": soap_actions["urn:X"]: service "gone" is not deployed`},
		{"a missing definition", CheckChannel(&adminv1.Channel{Name: "c", Path: "/c", Methods: []string{"POST"}, Service: "orders.place", Security: "ghost", DataFormat: "json"}, live, liveTargets()),
			store.ErrNotFound, `channel "c": security: security definition "ghost" does not exist`},
		{"an outbound-only definition", CheckChannel(&adminv1.Channel{Name: "c", Path: "/c", Methods: []string{"POST"}, Service: "orders.place", Security: "send-token", DataFormat: "json"}, live, liveTargets()),
			store.ErrWrongKind, `channel "c": security: security definition "send-token" is bearer, which cannot verify inbound requests (bearer checks inbound tokens with introspection_url; this one sends a token)`},
		{"a taken path", CheckChannel(&adminv1.Channel{Name: "c", Path: "/orders", Methods: []string{"GET"}, Service: "orders.place", DataFormat: "json"}, live, liveTargets()),
			store.ErrConflict, `channel "c": path "/orders" is also channel "orders"'s; a path belongs to one channel, whatever the methods`},
		{"a connection that holds", CheckOutgoing(&adminv1.OutgoingConnection{Name: "crm", Security: "send-token"}, liveTargets()), nil, ""},
		{"an inbound-only definition", CheckOutgoing(&adminv1.OutgoingConnection{Name: "crm", Security: "jwt-in"}, liveTargets()),
			store.ErrWrongKind, `outgoing connection "crm": security: security definition "jwt-in" is a jwt definition without an HS256 secret, which cannot supply outbound credentials`},
		{"a job that holds", CheckJob(&adminv1.Job{Name: "sweep", Service: "orders.cancel"}, liveTargets()), nil, ""},
		{"a job's missing service", CheckJob(&adminv1.Job{Name: "sweep", Service: "gone"}, liveTargets()),
			store.ErrNotFound, `job "sweep": service: service "gone" is not deployed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch {
			case tt.kind == nil && tt.err != nil:
				t.Fatalf("err = %v, want none", tt.err)
			case tt.kind == nil:
				return
			case !errors.Is(tt.err, tt.kind):
				t.Errorf("err = %v, want one wrapping %v", tt.err, tt.kind)
			}
			if tt.err.Error() != tt.text {
				t.Errorf("err = %q\nwant  %q", tt.err, tt.text)
			}
		})
	}
}

// Every broken reference of one object is named, each on a line.
func TestCheckChannelEveryProblem(t *testing.T) {
	err := CheckChannel(&adminv1.Channel{Name: "c", Path: "/c", Methods: []string{"POST"}, Service: "nope", Security: "ghost", DataFormat: "json"}, nil, liveTargets())
	want := `channel "c": service: service "nope" is not deployed` + "\n" + `channel "c": security: security definition "ghost" does not exist`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want\n%s", err, want)
	}
}

// A route that collides with another channel's is refused as validate
// says, wrapping no store error: it is the request that is wrong.
func TestCheckChannelRoutes(t *testing.T) {
	live := []*adminv1.Channel{{Name: "one", Path: "/orders/{id}", Methods: []string{"GET"}, Service: "orders.place", DataFormat: "json"}}
	err := CheckChannel(&adminv1.Channel{Name: "two", Path: "/orders/{key}", Methods: []string{"GET"}, Service: "orders.place", DataFormat: "json"}, live, liveTargets())
	if err == nil || !strings.HasPrefix(err.Error(), "path: ") {
		t.Fatalf("err = %v, want a route collision starting with path:", err)
	}
	for _, kind := range []error{store.ErrNotFound, store.ErrWrongKind, store.ErrConflict} {
		if errors.Is(err, kind) {
			t.Errorf("err = %v wraps %v", err, kind)
		}
	}
}
