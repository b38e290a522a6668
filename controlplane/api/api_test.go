package api

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// withUnknown returns m with an unknown varint field num appended.
func withUnknown[M proto.Message](m M, num protowire.Number) M {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	m.ProtoReflect().SetUnknown(b)
	return m
}

func TestRejectUnknownFields(t *testing.T) {
	tests := []struct {
		name string
		req  proto.Message
		want string // "" when the request must pass
	}{
		{"known fields pass", &adminv1.CreateChannelRequest{Channel: &adminv1.Channel{Name: "x"}}, ""},
		{"top level", withUnknown(&adminv1.ListAgentsRequest{}, 99), "weft.admin.v1.ListAgentsRequest has unknown fields: #99"},
		{"nested", &adminv1.CreateChannelRequest{Channel: withUnknown(&adminv1.Channel{Name: "x"}, 42)}, "channel.#42"},
		{"in a list", &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{{}, withUnknown(&adminv1.PackageSource{}, 7)}}, "packages[1].#7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			next := func(context.Context, any) (any, error) { called = true; return nil, nil }
			_, err := RejectUnknownFields(context.Background(), tt.req, &grpc.UnaryServerInfo{}, next)
			if tt.want == "" {
				if err != nil || !called {
					t.Fatalf("err = %v, called = %v; want the handler called", err, called)
				}
				return
			}
			if called || status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, called = %v; want InvalidArgument containing %q", err, called, tt.want)
			}
		})
	}
}
