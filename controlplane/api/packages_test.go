package api

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// helloSource is a service whose greeting differs per version.
func helloSource(greeting string) *adminv1.PackageSource {
	src := fmt.Sprintf(`package hello

import "github.com/weft-dev/weft/agent/sdk"

type In struct{}

type Out struct {
	Greeting string `+"`json:\"greeting\"`"+`
}

func init() { sdk.Register("hello.greet", Greet) }

func Greet(ctx *sdk.Context, in In) (Out, error) { return Out{Greeting: %q}, nil }
`, greeting)
	return &adminv1.PackageSource{Files: []*adminv1.SourceFile{{Name: "hello.go", Content: []byte(src)}}}
}

// wantCode checks a status code and a message part.
func wantCode(t *testing.T, err error, code codes.Code, text string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), text) {
		t.Fatalf("err = %v, want %v containing %q", err, code, text)
	}
}

func TestPackageHistoryAPI(t *testing.T) {
	ctx := WithCaller(context.Background(), "tester")
	st := storetest.Open(t, storetest.SQLite(t))
	watch := dispatch.NewWatch(0)
	srv := New(st, watch, nil, Options{}, slog.New(slog.DiscardHandler)).Packages()
	watchAt := func(want int64) {
		t.Helper()
		if rev, _ := watch.Current(); rev != want {
			t.Fatalf("watch at revision %d, want %d", rev, want)
		}
	}

	for _, g := range []string{"Hello", "Howdy"} {
		if _, err := srv.Deploy(ctx, &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{helloSource(g)}}); err != nil {
			t.Fatal(err)
		}
	}
	watchAt(2)

	hist, err := srv.ListPackageVersions(ctx, &adminv1.ListPackageVersionsRequest{Name: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.GetVersions()) != 2 || hist.GetVersions()[0].GetVersion() != 2 || hist.GetVersions()[0].GetAuthor() != "tester" ||
		!slices.Equal(hist.GetVersions()[0].GetFiles(), []string{"hello.go"}) {
		t.Fatalf("history = %v", hist)
	}

	got, err := srv.GetPackage(ctx, &adminv1.GetPackageRequest{Name: "hello", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetCurrent() || len(got.GetSources()) != 1 || !strings.Contains(string(got.GetSources()[0].GetContent()), `"Hello"`) {
		t.Fatalf("GetPackage v1 = %v", got)
	}

	rb, err := srv.Rollback(ctx, &adminv1.RollbackRequest{Name: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if rb.GetRevision() != 3 || rb.GetRestoredVersion() != 1 || rb.GetPackage().GetVersion() != 3 ||
		rb.GetPackage().GetSha256() != hist.GetVersions()[1].GetSha256() {
		t.Fatalf("Rollback = %v", rb)
	}
	watchAt(3)

	if err := st.AgentHello(ctx, store.AgentHello{ID: "edge-1", AppliedRevision: 3}); err != nil {
		t.Fatal(err)
	}
	if err := st.AgentHello(ctx, store.AgentHello{ID: "edge-2", AppliedRevision: 2}); err != nil {
		t.Fatal(err)
	}
	ds, err := srv.GetDeployStatus(ctx, &adminv1.GetDeployStatusRequest{Name: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if ds.GetPackage().GetVersion() != 3 || len(ds.GetAgents()) != 2 ||
		ds.GetAgents()[0].GetState() != adminv1.DeployState_DEPLOY_STATE_DEPLOYED ||
		ds.GetAgents()[1].GetState() != adminv1.DeployState_DEPLOY_STATE_PENDING || !ds.GetAgents()[1].GetConnected() {
		t.Fatalf("GetDeployStatus = %v", ds)
	}

	if _, err := st.CreateChannel(ctx, &adminv1.Channel{Name: "hello", Path: "/hello", Service: "hello.greet", Methods: []string{"POST"}, Active: proto.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	watch.Advance(4)

	refused := []struct {
		name string
		call func() error
		code codes.Code
		text string
	}{
		{"rollback to unknown version", func() error {
			_, err := srv.Rollback(ctx, &adminv1.RollbackRequest{Name: "hello", ToVersion: 9})
			return err
		}, codes.NotFound, `rollback "hello": package "hello" has no version 9 (it has v1 to v3)`},
		{"rollback to the current content", func() error {
			_, err := srv.Rollback(ctx, &adminv1.RollbackRequest{Name: "hello", ToVersion: 1})
			return err
		}, codes.FailedPrecondition, `rollback "hello": hello v3 already has the content of v1`},
		{"rollback negative", func() error {
			_, err := srv.Rollback(ctx, &adminv1.RollbackRequest{Name: "hello", ToVersion: -1})
			return err
		}, codes.InvalidArgument, "to_version -1 must not be negative"},
		{"rollback without a name", func() error {
			_, err := srv.Rollback(ctx, &adminv1.RollbackRequest{})
			return err
		}, codes.InvalidArgument, "package name is required"},
		{"undeploy in use", func() error {
			_, err := srv.Undeploy(ctx, &adminv1.UndeployRequest{Name: "hello"})
			return err
		}, codes.FailedPrecondition, `undeploy "hello": package "hello" is used by channel "hello" (hello.greet); deactivate or delete it first, or undeploy --force`},
		{"undeploy unknown", func() error {
			_, err := srv.Undeploy(ctx, &adminv1.UndeployRequest{Name: "nope"})
			return err
		}, codes.NotFound, `package "nope" has never been deployed`},
		{"get unknown version", func() error {
			_, err := srv.GetPackage(ctx, &adminv1.GetPackageRequest{Name: "hello", Version: 7})
			return err
		}, codes.NotFound, `get package "hello" v7: package "hello" has no version 7`},
		{"history limit", func() error {
			_, err := srv.ListPackageVersions(ctx, &adminv1.ListPackageVersionsRequest{Limit: -1})
			return err
		}, codes.InvalidArgument, "limit -1 must not be negative"},
		{"status version without a name", func() error {
			_, err := srv.GetDeployStatus(ctx, &adminv1.GetDeployStatusRequest{Version: 2})
			return err
		}, codes.InvalidArgument, "version 2 needs a package name"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(), tt.code, tt.text)
			watchAt(4)
		})
	}

	un, err := srv.Undeploy(ctx, &adminv1.UndeployRequest{Name: "hello", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if un.GetRevision() != 5 || !slices.Equal(un.GetServices(), []string{"hello.greet"}) || !slices.Equal(un.GetDeactivatedChannels(), []string{"hello"}) {
		t.Fatalf("Undeploy = %v", un)
	}
	watchAt(5)
	list, err := srv.ListPackages(ctx, &adminv1.ListPackagesRequest{})
	if err != nil || len(list.GetPackages()) != 0 {
		t.Fatalf("ListPackages after undeploy = %v, %v", list, err)
	}
}
