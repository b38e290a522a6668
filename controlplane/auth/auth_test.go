package auth_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// TestPolicyCoversEveryMethod fails for a method of Weft's services that
// has no policy: add one to Policy.
func TestPolicyCoversEveryMethod(t *testing.T) {
	for _, f := range []protoreflect.FileDescriptor{adminv1.File_weft_admin_v1_admin_proto, agentv1.File_weft_agent_v1_agent_proto} {
		for i := 0; i < f.Services().Len(); i++ {
			svc := f.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				full := "/" + string(svc.FullName()) + "/" + string(svc.Methods().Get(j).Name())
				if _, err := auth.Need(full); err != nil {
					t.Errorf("%v: add it to auth.Policy", err)
				}
			}
		}
	}
}

// TestTokens checks the bearer tokens of calls against a real store.
func TestTokens(t *testing.T) {
	st := storetest.Open(t, storetest.SQLite(t))
	ctx := context.Background()
	add := func(name, role string, expires time.Time) string {
		secret := auth.NewSecret(auth.TokenPrefix)
		if _, err := st.CreateToken(ctx, store.NewToken{Name: name, Role: role, Hash: auth.HashSecret(secret), ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	viewer := add("ops", store.RoleViewer, time.Time{})
	deployer := add("ci", store.RoleDeployer, time.Now().Add(time.Hour))
	expired := add("old", store.RoleAdmin, time.Now().Add(-time.Minute))
	revoked := add("gone", store.RoleAdmin, time.Time{})
	if _, err := st.RevokeToken(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	a := auth.New(st, auth.NewRevocations(), slog.New(slog.DiscardHandler))

	deploy := adminv1.PackageService_Deploy_FullMethodName
	list := adminv1.PackageService_ListPackages_FullMethodName
	tests := []struct {
		name, method, header string
		code                 codes.Code // OK: allowed
		msg                  string
	}{
		{"viewer reads", list, "Bearer " + viewer, codes.OK, ""},
		{"viewer cannot deploy", deploy, "Bearer " + viewer, codes.PermissionDenied, `token "ops" has role viewer; ` + deploy + " needs role deployer"},
		{"deployer deploys", deploy, "bearer " + deployer, codes.OK, ""},
		{"deployer cannot make tokens", adminv1.AccessService_CreateToken_FullMethodName, "Bearer " + deployer, codes.PermissionDenied, "needs role admin"},
		{"no header", list, "", codes.Unauthenticated, "this call needs a token"},
		{"not bearer", list, "Basic abc", codes.Unauthenticated, `must be "Bearer SECRET"`},
		{"unknown", list, "Bearer weft_nothing", codes.Unauthenticated, "unknown token"},
		{"expired", list, "Bearer " + expired, codes.Unauthenticated, `token "old" expired at`},
		{"revoked", list, "Bearer " + revoked, codes.Unauthenticated, `token "gone" was revoked at`},
		{"a token is no agent", agentv1.AgentService_Sync_FullMethodName, "Bearer " + deployer, codes.Unauthenticated, "client certificate"},
		{"health is public", "/grpc.health.v1.Health/Check", "", codes.OK, ""},
		{"no policy", "/weft.admin.v1.PackageService/Nothing", "Bearer " + deployer, codes.PermissionDenied, "has no access policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ctx
			if tt.header != "" {
				c = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", tt.header))
			}
			got, err := a.Authorize(c, tt.method)
			if status.Code(err) != tt.code || (err != nil && !strings.Contains(status.Convert(err).Message(), tt.msg)) {
				t.Fatalf("Authorize = %v; want %s with %q", err, tt.code, tt.msg)
			}
			if err == nil && tt.header != "" {
				if c, ok := auth.CallerFrom(got); !ok || c.Name == "" {
					t.Errorf("an allowed call names no caller")
				}
			}
			if err != nil && strings.Contains(err.Error(), auth.TokenPrefix) {
				t.Errorf("the refusal quotes the secret: %v", err)
			}
		})
	}
}

// TestCheckAgent refuses a request naming another agent than the
// certificate's.
func TestCheckAgent(t *testing.T) {
	ctx := auth.WithAgent(context.Background(), "edge-1")
	if err := auth.CheckAgent(ctx, "edge-1"); err != nil {
		t.Errorf("own id refused: %v", err)
	}
	if err := auth.CheckAgent(ctx, "edge-2"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("another id: %v; want PermissionDenied", err)
	}
	if err := auth.CheckAgent(context.Background(), "edge-1"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no certificate: %v; want Unauthenticated", err)
	}
}

// TestRevocationsFollowTheStore: an agent revoked through the store (as
// by another replica) is refused here after the next reload, and Run
// reports it once so that its streams close.
func TestRevocationsFollowTheStore(t *testing.T) {
	st := storetest.Open(t, storetest.SQLite(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := auth.NewRevocations()
	r.Add("local", time.Now())
	if added, err := r.Load(ctx, st); err != nil || len(added) != 0 {
		t.Fatalf("Load of an empty store = %v, %v; want nothing added", added, err)
	}
	if _, ok := r.At("local"); !ok {
		t.Fatal("a reload forgot a revocation taken here")
	}
	seen := make(chan string, 4)
	go func() {
		_ = r.Run(ctx, st, 10*time.Millisecond, func(id string) { seen <- id }, slog.New(slog.DiscardHandler))
	}()
	if _, err := st.RevokeAgent(ctx, "edge-9"); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-seen:
		if id != "edge-9" {
			t.Fatalf("Run reported %q; want edge-9", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run never reported the agent revoked through the store")
	}
	if _, ok := r.At("edge-9"); !ok {
		t.Fatal("the reloaded set does not hold the revoked agent")
	}
	select {
	case id := <-seen:
		t.Fatalf("Run reported %q again", id)
	default:
	}
}
