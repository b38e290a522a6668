package cli

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestTokenCreate(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantReq    *adminv1.CreateTokenRequest
		wantStdout string
		wantErr    string
	}{
		{
			name:    "deployer for the default 720h",
			args:    []string{"ci", "--role", "deployer"},
			wantReq: &adminv1.CreateTokenRequest{Name: "ci", Role: adminv1.Role_ROLE_DEPLOYER, TtlSeconds: 720 * 3600},
			wantStdout: `created token "ci" with role deployer; it expires ` + stamp(timestamppb.New(testNow.Add(720*time.Hour))) + " (in 30d)\n" +
				"secret: wt_ci_s3cret\n" +
				"The secret will not be shown again: store it now (weftctl context add NAME --addr HOST:PORT --token-file FILE, or WEFT_TOKEN).\n",
		},
		{
			name:       "admin for ever, role in capitals",
			args:       []string{"ops", "--role", "ADMIN", "--ttl", "0"},
			wantReq:    &adminv1.CreateTokenRequest{Name: "ops", Role: adminv1.Role_ROLE_ADMIN},
			wantStdout: `created token "ops" with role admin; it never expires` + "\n",
		},
		{name: "no role", args: []string{"ci"}, wantErr: "--role is required: viewer, deployer or admin"},
		{name: "bad role", args: []string{"ci", "--role", "root"}, wantErr: `--role "root": want viewer, deployer or admin`},
		{name: "negative ttl", args: []string{"ci", "--role", "viewer", "--ttl", "-1h"}, wantErr: "--ttl -1h0m0s: must not be negative"},
		{name: "fractional ttl", args: []string{"ci", "--role", "viewer", "--ttl", "1.5s"}, wantErr: "--ttl 1.5s: want whole seconds"},
		{name: "not a duration", args: []string{"ci", "--role", "viewer", "--ttl", "30d"}, wantErr: `invalid argument "30d" for "--ttl" flag`},
		{name: "bad name", args: []string{"c i", "--role", "viewer"}, wantErr: `token name "c i": want letters, digits, '.', '_' and '-'`},
		{name: "empty name", args: []string{"", "--role", "viewer"}, wantErr: "NAME must not be empty"},
		{name: "no name", args: []string{"--role", "viewer"}, wantErr: "missing NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, _, err := e.run(append([]string{"token", "create"}, tt.args...)...)
			seen := e.access.requestsSeen()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if len(seen) != 0 {
					t.Errorf("server saw %v, want nothing", seen)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != 1 || !proto.Equal(seen[0], tt.wantReq) {
				t.Errorf("requests = %v, want %v", seen, tt.wantReq)
			}
			if !strings.HasPrefix(stdout, tt.wantStdout) {
				t.Errorf("stdout =\n%s\nwant it to start with\n%s", stdout, tt.wantStdout)
			}
		})
	}
}

func TestTokenCreateJSON(t *testing.T) {
	e := newTestEnv(t)
	stdout, _, err := e.run("token", "create", "ci", "--role", "viewer", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp adminv1.CreateTokenResponse
	if err := protojson.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if resp.GetSecret() != "wt_ci_s3cret" || resp.GetToken().GetRole() != adminv1.Role_ROLE_VIEWER {
		t.Errorf("json = %s", stdout)
	}
}

func TestTokenListAndRevoke(t *testing.T) {
	e := newTestEnv(t)
	for _, args := range [][]string{
		{"token", "create", "ci", "--role", "deployer", "--ttl", "1h"},
		{"token", "create", "ops", "--role", "admin", "--ttl", "0"},
	} {
		if _, _, err := e.run(args...); err != nil {
			t.Fatal(err)
		}
	}
	stdout, _, err := e.run("token", "revoke", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if want := "revoked token \"ci\" (role deployer): the control plane refuses it from now on\n"; stdout != want {
		t.Errorf("token revoke = %q, want %q", stdout, want)
	}
	stdout, _, err = e.run("token", "list")
	if err != nil {
		t.Fatal(err)
	}
	created, expires := tableTime(timestamppb.New(testNow)), tableTime(timestamppb.New(testNow.Add(time.Hour)))
	want := "NAME  ROLE      STATE    CREATED              EXPIRES              REVOKED              CREATED BY\n" +
		"ci    deployer  revoked  " + created + "  " + expires + "  " + created + "  root\n" +
		"ops   admin     active   " + created + "  never                -                    root\n"
	if stdout != want {
		t.Errorf("token list =\n%s\nwant\n%s", stdout, want)
	}
	if strings.Contains(stdout, "s3cret") {
		t.Error("token list shows a secret")
	}
	_, _, err = e.run("token", "revoke", "nope")
	if err == nil || err.Error() != `revoke token "nope": token "nope" not found` {
		t.Errorf("error = %v", err)
	}
	before := len(e.access.requestsSeen())
	if _, _, err := e.run("token", "revoke", "a/b"); err == nil || !strings.Contains(err.Error(), `token name "a/b"`) {
		t.Errorf("error = %v", err)
	}
	if len(e.access.requestsSeen()) != before {
		t.Error("a refused revoke reached the server")
	}
}

func TestStateNow(t *testing.T) {
	past, future := timestamppb.New(testNow.Add(-time.Second)), timestamppb.New(testNow.Add(time.Second))
	tests := []struct {
		name             string
		expires, revoked *timestamppb.Timestamp
		want             string
	}{
		{name: "no expiry", want: "active"},
		{name: "not yet", expires: future, want: "active"},
		{name: "expired", expires: past, want: "expired"},
		{name: "revoked wins", expires: past, revoked: past, want: "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stateNow(testNow, tt.expires, tt.revoked); got != tt.want {
				t.Errorf("stateNow = %s, want %s", got, tt.want)
			}
		})
	}
}
