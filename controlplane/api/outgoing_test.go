package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// connStored reads a connection from the store as the API shows it,
// without the output-only fields.
func connStored(t *testing.T, st store.Store, name string) *adminv1.OutgoingConnection {
	t.Helper()
	c, err := st.GetOutgoingConnection(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	c.CreatedAt, c.UpdatedAt, c.Revision = nil, nil, 0
	return c
}

func TestOutgoingConnectionsAPI(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	crm := &adminv1.OutgoingConnection{
		Name: "crm", Address: "https://crm.example/api", PathTemplate: "/customers/{id}", Method: "GET",
		TimeoutMs: 2000, PoolSize: 4, Headers: map[string]string{"X-Team": "weft"},
	}
	res, err := e.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{Connection: crm})
	if err != nil {
		t.Fatal(err)
	}
	got := res.GetConnection()
	if got.GetRevision() != 1 || got.GetCreatedAt().AsTime().IsZero() || !got.GetActive() || got.GetAddress() != crm.GetAddress() {
		t.Fatalf("create = %v, want revision 1, active", got)
	}
	e.watchAt(t, 1)
	wantCRM := proto.Clone(crm).(*adminv1.OutgoingConnection)
	wantCRM.Active = proto.Bool(true) // a create that leaves it out makes it active
	if st := connStored(t, e.store, "crm"); !proto.Equal(st, wantCRM) {
		t.Fatalf("stored %v, want %v", st, wantCRM)
	}
	if _, err := e.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{
		Connection: &adminv1.OutgoingConnection{Name: "billing", Address: "http://billing.example", Active: proto.Bool(false)},
	}); err != nil {
		t.Fatal(err)
	}
	list, err := e.outgoing.ListOutgoingConnections(ctx, &adminv1.ListOutgoingConnectionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetConnections()); n != 2 || list.GetConnections()[0].GetName() != "billing" || list.GetConnections()[0].GetActive() {
		t.Fatalf("list = %v, want billing (inactive) then crm", list)
	}
	one, err := e.outgoing.GetOutgoingConnection(ctx, &adminv1.GetOutgoingConnectionRequest{Name: "crm"})
	if err != nil || one.GetConnection().GetPathTemplate() != "/customers/{id}" {
		t.Fatalf("get = %v, %v", one, err)
	}

	steps := []struct {
		name   string
		in     *adminv1.OutgoingConnection
		mask   []string
		change func(*adminv1.OutgoingConnection)
	}{
		{"empty mask sets what is given", &adminv1.OutgoingConnection{Name: "crm", TimeoutMs: 5000}, nil,
			func(c *adminv1.OutgoingConnection) { c.TimeoutMs = 5000 }},
		{"mask clears what is not given", &adminv1.OutgoingConnection{Name: "crm"}, []string{"headers", "path_template"},
			func(c *adminv1.OutgoingConnection) { c.Headers, c.PathTemplate = nil, "" }},
		{"mask leaves out what it does not name", &adminv1.OutgoingConnection{Name: "crm", Method: "POST", PoolSize: 9}, []string{"method"},
			func(c *adminv1.OutgoingConnection) { c.Method = "POST" }},
		{"deactivate", &adminv1.OutgoingConnection{Name: "crm", Active: proto.Bool(false)}, nil,
			func(c *adminv1.OutgoingConnection) { c.Active = proto.Bool(false) }},
		{"an unset active is kept", &adminv1.OutgoingConnection{Name: "crm", Method: "PUT"}, nil,
			func(c *adminv1.OutgoingConnection) { c.Method = "PUT" }},
	}
	want := wantCRM
	for i, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			var mask *fieldmaskpb.FieldMask
			if tt.mask != nil {
				mask = &fieldmaskpb.FieldMask{Paths: tt.mask}
			}
			res, err := e.outgoing.UpdateOutgoingConnection(ctx, &adminv1.UpdateOutgoingConnectionRequest{Connection: tt.in, UpdateMask: mask})
			if err != nil {
				t.Fatal(err)
			}
			rev := int64(i + 3)
			if res.GetConnection().GetRevision() != rev {
				t.Errorf("revision %d, want %d", res.GetConnection().GetRevision(), rev)
			}
			e.watchAt(t, rev)
			tt.change(want)
			if st := connStored(t, e.store, "crm"); !proto.Equal(st, want) {
				t.Fatalf("stored %v, want %v", st, want)
			}
		})
	}

	del, err := e.outgoing.DeleteOutgoingConnection(ctx, &adminv1.DeleteOutgoingConnectionRequest{Name: "billing"})
	if err != nil || del.GetRevision() != 8 {
		t.Fatalf("delete = %v, %v; want revision 8", del, err)
	}
	e.watchAt(t, 8)
	_, err = e.outgoing.GetOutgoingConnection(ctx, &adminv1.GetOutgoingConnectionRequest{Name: "billing"})
	wantCode(t, err, codes.NotFound, `get outgoing connection "billing": outgoing connection "billing" does not exist`)
}

func TestOutgoingConnectionRefusals(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	if _, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{
		Definition: &adminv1.SecurityDefinition{Name: "idp", Kind: "jwt", Algorithms: []string{"RS256"}, JwksUrl: "https://idp.example/jwks", Issuer: "idp"},
	}); err != nil {
		t.Fatal(err)
	}
	crm := &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example"}
	if _, err := e.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{Connection: crm}); err != nil {
		t.Fatal(err)
	}
	e.watchAt(t, 2)
	create := func(c *adminv1.OutgoingConnection) func() error {
		return func() error {
			_, err := e.outgoing.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{Connection: c})
			return err
		}
	}
	update := func(c *adminv1.OutgoingConnection, paths ...string) func() error {
		return func() error {
			req := &adminv1.UpdateOutgoingConnectionRequest{Connection: c}
			if paths != nil {
				req.UpdateMask = &fieldmaskpb.FieldMask{Paths: paths}
			}
			_, err := e.outgoing.UpdateOutgoingConnection(ctx, req)
			return err
		}
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
		text string
	}{
		{"create without a connection", create(nil), codes.InvalidArgument, "create outgoing connection: connection is required"},
		{"create with a bad name", create(&adminv1.OutgoingConnection{Name: "a b", Address: "https://x.example"}),
			codes.InvalidArgument, `outgoing connection name "a b"`},
		{"create without an address", create(&adminv1.OutgoingConnection{Name: "x"}),
			codes.InvalidArgument, `create outgoing connection "x": outgoing "x": address: must not be empty`},
		{"create with credentials in the address", create(&adminv1.OutgoingConnection{Name: "x", Address: "https://u:p@x.example"}),
			codes.InvalidArgument, "address: must not carry credentials"},
		{"create with a negative timeout", create(&adminv1.OutgoingConnection{Name: "x", Address: "https://x.example", TimeoutMs: -1}),
			codes.InvalidArgument, "timeout_ms -1"},
		{"create a taken name", create(crm), codes.AlreadyExists, `outgoing connection "crm" already exists`},
		{"create with an unknown definition", create(&adminv1.OutgoingConnection{Name: "x", Address: "https://x.example", Security: "ghost"}),
			codes.FailedPrecondition, `security definition "ghost" does not exist`},
		{"create with an inbound-only definition", create(&adminv1.OutgoingConnection{Name: "x", Address: "https://x.example", Security: "idp"}),
			codes.FailedPrecondition, `create outgoing connection "x": outgoing connection "x": security: security definition "idp" is a jwt definition without an HS256 secret, which cannot supply outbound credentials`},
		{"create with an unknown field", create(withUnknown(&adminv1.OutgoingConnection{Name: "x", Address: "https://x.example"}, 77)),
			codes.InvalidArgument, "connection.#77"},
		{"update to an inbound-only definition", update(&adminv1.OutgoingConnection{Name: "crm", Security: "idp"}),
			codes.FailedPrecondition, "cannot supply outbound credentials"},
		{"update mask names no field", update(&adminv1.OutgoingConnection{Name: "crm"}, "adress"),
			codes.InvalidArgument, `update_mask: unknown or read-only field "adress"`},
		{"update mask names an output-only field", update(&adminv1.OutgoingConnection{Name: "crm"}, "created_at"),
			codes.InvalidArgument, `update_mask: unknown or read-only field "created_at"`},
		{"update clears the address", update(&adminv1.OutgoingConnection{Name: "crm"}, "address"),
			codes.InvalidArgument, "address: must not be empty"},
		{"update unknown", update(&adminv1.OutgoingConnection{Name: "ghost", Method: "GET"}),
			codes.NotFound, `update outgoing connection "ghost": outgoing connection "ghost" does not exist`},
		{"delete unknown", func() error {
			_, err := e.outgoing.DeleteOutgoingConnection(ctx, &adminv1.DeleteOutgoingConnectionRequest{Name: "ghost"})
			return err
		}, codes.NotFound, `delete outgoing connection "ghost"`},
		{"ping unknown, asking no agent", func() error {
			_, err := e.outgoing.PingOutgoingConnection(ctx, &adminv1.PingOutgoingConnectionRequest{Name: "ghost"})
			return err
		}, codes.NotFound, `ping outgoing connection "ghost": outgoing connection "ghost" does not exist`},
		{"ping with no agent connected", func() error {
			_, err := e.outgoing.PingOutgoingConnection(ctx, &adminv1.PingOutgoingConnectionRequest{Name: "crm"})
			return err
		}, codes.FailedPrecondition, `ping outgoing connection "crm": no agent is connected to this control plane`},
		{"ping from an agent not connected", func() error {
			_, err := e.outgoing.PingOutgoingConnection(ctx, &adminv1.PingOutgoingConnectionRequest{Name: "crm", AgentId: "edge-9"})
			return err
		}, codes.FailedPrecondition, `agent "edge-9" is not connected to this control plane`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(), tt.code, tt.text)
			e.watchAt(t, 2)
		})
	}
	if st := connStored(t, e.store, "crm"); !proto.Equal(st, &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", Active: proto.Bool(true)}) {
		t.Fatalf("after the refusals crm = %v, want it as created", st)
	}
}

func TestPingOutgoingConnection(t *testing.T) {
	e := newBackupsEnv(t)
	api := e.admin.outgoing
	ctx := context.Background()
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	t.Cleanup(remote.Close)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := "http://" + closed.Addr().String()
	closed.Close()
	var rev int64
	for _, c := range []*adminv1.OutgoingConnection{{Name: "up", Address: remote.URL}, {Name: "down", Address: deadAddr, TimeoutMs: 2000}} {
		res, err := api.CreateOutgoingConnection(ctx, &adminv1.CreateOutgoingConnectionRequest{Connection: c})
		if err != nil {
			t.Fatal(err)
		}
		rev = res.GetConnection().GetRevision()
	}
	e.startAgent(t, "edge-1", 1)
	e.await(t, "edge-1", "the connections", func(a store.Agent) bool { return a.Connected && a.AppliedRevision == rev })

	up, err := api.PingOutgoingConnection(ctx, &adminv1.PingOutgoingConnectionRequest{Name: "up"})
	if err != nil {
		t.Fatal(err)
	}
	if up.GetAgentId() != "edge-1" || up.GetUrl() != remote.URL || up.GetStatus() != http.StatusTeapot || up.GetLatencyUs() <= 0 || up.GetError() != "" {
		t.Fatalf("ping up = %v, want edge-1 answered %d from %s", up, http.StatusTeapot, remote.URL)
	}
	down, err := api.PingOutgoingConnection(ctx, &adminv1.PingOutgoingConnectionRequest{Name: "down", AgentId: "edge-1"})
	if err != nil {
		t.Fatal(err)
	}
	if down.GetStatus() != 0 || down.GetError() == "" || down.GetUrl() != deadAddr {
		t.Fatalf("ping down = %v, want no status and an error", down)
	}
}
