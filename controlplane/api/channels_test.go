package api

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// deployServices stores a package registering services, uncompiled: the
// store only needs their names.
func (e *adminEnv) deployServices(t *testing.T, services ...string) {
	t.Helper()
	files := []*adminv1.SourceFile{{Name: "orders.go", Content: []byte("package orders")}}
	res, err := e.store.Deploy(context.Background(), "test", []*adminv1.Package{{
		Name: "orders", Sha256: snapshot.PackageHash(files), Services: services,
		Sources: []*adminv1.SourceFile{{Name: "orders.go", Content: files[0].Content}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.watch.Advance(res.Revision)
}

// channelStored reads a channel from the store as the API shows it,
// without the output-only fields.
func channelStored(t *testing.T, st store.Store, name string) *adminv1.Channel {
	t.Helper()
	c, err := st.GetChannel(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return marks.ClearOutputOnly(c)
}

func TestChannelSecurityRateAndSOAP(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	e.deployServices(t, "orders.place", "orders.cancel", "orders.other")
	for _, d := range []*adminv1.SecurityDefinition{
		{Name: "partner", Kind: "basic_auth", Username: "u", Password: "p"},
		{Name: "outbound", Kind: "bearer", Token: "t"},
	} {
		if _, err := e.security.CreateSecurityDefinition(ctx, &adminv1.CreateSecurityDefinitionRequest{Definition: d}); err != nil {
			t.Fatal(err)
		}
	}
	e.watchAt(t, 3)
	soap := &adminv1.Channel{
		Name: "orders", Path: "/soap/orders", DataFormat: "soap11", Security: "partner",
		RateLimit: 2.5, RateBurst: 5, SoapActions: map[string]string{"urn:Place": "orders.place", "Cancel": "orders.cancel"},
	}
	res, err := e.channels.CreateChannel(ctx, &adminv1.CreateChannelRequest{Channel: soap})
	if err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(soap).(*adminv1.Channel)
	want.Methods, want.Active = []string{"POST"}, proto.Bool(true)
	got := res.GetChannel()
	got.CreatedAt, got.UpdatedAt, got.Revision = nil, nil, 0
	if !proto.Equal(got, want) {
		t.Fatalf("create = %v, want %v", got, want)
	}
	if st := channelStored(t, e.store, "orders"); !proto.Equal(st, want) {
		t.Fatalf("stored %v, want %v", st, want)
	}
	one, err := e.channels.GetChannel(ctx, &adminv1.GetChannelRequest{Name: "orders"})
	if err != nil || one.GetChannel().GetRateLimit() != 2.5 || one.GetChannel().GetSoapActions()["Cancel"] != "orders.cancel" {
		t.Fatalf("get = %v, %v", one, err)
	}
	list, err := e.channels.ListChannels(ctx, &adminv1.ListChannelsRequest{})
	if err != nil || len(list.GetChannels()) != 1 || list.GetChannels()[0].GetSecurity() != "partner" || list.GetChannels()[0].GetRateBurst() != 5 {
		t.Fatalf("list = %v, %v", list, err)
	}

	steps := []struct {
		name   string
		in     *adminv1.Channel
		mask   []string
		change func(*adminv1.Channel)
	}{
		{"rate_limit alone", &adminv1.Channel{Name: "orders", RateLimit: 10, RateBurst: 1}, []string{"rate_limit"},
			func(c *adminv1.Channel) { c.RateLimit = 10 }},
		{"rate_burst alone", &adminv1.Channel{Name: "orders", RateBurst: 20}, []string{"rate_burst"},
			func(c *adminv1.Channel) { c.RateBurst = 20 }},
		{"soap_actions replaced", &adminv1.Channel{Name: "orders", SoapActions: map[string]string{"Other": "orders.other"}}, []string{"soap_actions"},
			func(c *adminv1.Channel) { c.SoapActions = map[string]string{"Other": "orders.other"} }},
		{"security cleared", &adminv1.Channel{Name: "orders"}, []string{"security"},
			func(c *adminv1.Channel) { c.Security = "" }},
	}
	for i, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.channels.UpdateChannel(ctx, &adminv1.UpdateChannelRequest{Channel: tt.in, UpdateMask: &fieldmaskpb.FieldMask{Paths: tt.mask}})
			if err != nil {
				t.Fatal(err)
			}
			if rev := int64(i + 5); res.GetChannel().GetRevision() != rev {
				t.Errorf("revision %d, want %d", res.GetChannel().GetRevision(), rev)
			}
			tt.change(want)
			if st := channelStored(t, e.store, "orders"); !proto.Equal(st, want) {
				t.Fatalf("stored %v, want %v", st, want)
			}
		})
	}
	e.watchAt(t, 8)

	update := func(c *adminv1.Channel, paths ...string) error {
		_, err := e.channels.UpdateChannel(ctx, &adminv1.UpdateChannelRequest{Channel: c, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
		return err
	}
	create := func(c *adminv1.Channel) error {
		_, err := e.channels.CreateChannel(ctx, &adminv1.CreateChannelRequest{Channel: c})
		return err
	}
	tests := []struct {
		name string
		err  error
		code codes.Code
		text string
	}{
		{"mask names no field", update(&adminv1.Channel{Name: "orders"}, "rate"),
			codes.InvalidArgument, `update_mask: unknown or read-only field "rate"`},
		{"soap_actions on a json channel", update(&adminv1.Channel{Name: "orders", DataFormat: "json"}, "data_format"),
			codes.InvalidArgument, "soap_actions: only soap11 and soap12 channels route SOAP actions"},
		{"negative rate", update(&adminv1.Channel{Name: "orders", RateLimit: -1}, "rate_limit"),
			codes.InvalidArgument, "rate_limit -1"},
		{"an outbound-only definition", update(&adminv1.Channel{Name: "orders", Security: "outbound"}, "security"),
			codes.FailedPrecondition, "cannot verify inbound requests"},
		{"an unknown definition", update(&adminv1.Channel{Name: "orders", Security: "ghost"}, "security"),
			codes.FailedPrecondition, `security definition "ghost" does not exist`},
		{"create with an outbound-only definition", create(&adminv1.Channel{Name: "refunds", Path: "/refunds", Service: "orders.other", Security: "outbound"}),
			codes.FailedPrecondition, `create channel "refunds": channel "refunds": security: security definition "outbound" is bearer, which cannot verify inbound requests`},
		{"create a taken name", create(&adminv1.Channel{Name: "orders", Path: "/other", Service: "orders.other"}),
			codes.AlreadyExists, `channel "orders" already exists`},
		{"an action to an unknown service", update(&adminv1.Channel{Name: "orders", SoapActions: map[string]string{"X": "orders.ghost"}}, "soap_actions"),
			codes.FailedPrecondition, `"orders.ghost" is not deployed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.err, tt.code, tt.text)
		})
	}
	e.watchAt(t, 8)
	if st := channelStored(t, e.store, "orders"); !proto.Equal(st, want) {
		t.Fatalf("after the refusals stored %v, want %v", st, want)
	}
}

// staleServices is a store whose list of services still holds one that
// was undeployed since it was read: the race that the store's own check
// guards against.
type staleServices struct {
	ChannelStore
	gone string
}

func (s staleServices) ListServices(ctx context.Context) ([]*adminv1.Service, error) {
	l, err := s.ChannelStore.ListServices(ctx)
	return append(l, &adminv1.Service{Name: s.gone}), err
}

// A reference that held when the write checked it, and no longer does
// in the store's transaction, is refused by the store, as the last guard.
func TestChannelStoreChecksLast(t *testing.T) {
	e := newAdminEnv(t)
	srv := &channels{base: &base{watch: e.watch, log: slog.New(slog.DiscardHandler)}, store: staleServices{e.store, "gone.run"}}
	_, err := srv.CreateChannel(context.Background(), &adminv1.CreateChannelRequest{Channel: &adminv1.Channel{Name: "c", Path: "/c", Service: "gone.run"}})
	wantCode(t, err, codes.FailedPrecondition, `create channel "c": channel "c": service "gone.run" is not deployed`)
	if _, err := e.store.GetChannel(context.Background(), "c"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("channel c after the refusal: %v; want none", err)
	}
}
