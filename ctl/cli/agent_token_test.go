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

func TestAgentTokenCreate(t *testing.T) {
	inAnHour := stamp(timestamppb.New(testNow.Add(time.Hour)))
	tests := []struct {
		name string
		args []string
		// addr is the address the command should name; "" for the one
		// weftctl dialed.
		addr       string
		wantReq    *adminv1.CreateJoinTokenRequest
		wantStdout string
		wantErr    string
	}{
		{
			name:    "defaults",
			wantReq: &adminv1.CreateJoinTokenRequest{Labels: map[string]string{}, TtlSeconds: 3600, Uses: 1},
			wantStdout: "created join token jt-1: 1 use, expires " + inAnHour + " (in 1h)\n" +
				"\nOn the new agent's host, run (the secret will not be shown again):\n" +
				"\n  weft-agent --controlplane ADDR --join wjt_jt-1_s3cret --ca-fingerprint sha256:c0ffee\n",
		},
		{
			name:    "labels, uses and ttl",
			args:    []string{"--labels", "site=berlin,env=prod", "--labels", "tier=edge", "--uses", "5", "--ttl", "24h"},
			wantReq: &adminv1.CreateJoinTokenRequest{Labels: map[string]string{"site": "berlin", "env": "prod", "tier": "edge"}, TtlSeconds: 86400, Uses: 5},
			wantStdout: "created join token jt-1: 5 uses, expires " + stamp(timestamppb.New(testNow.Add(24*time.Hour))) + " (in 24h), labels env=prod,site=berlin,tier=edge\n" +
				"\nOn the new agent's host, run (the secret will not be shown again):\n" +
				"\n  weft-agent --controlplane ADDR --join wjt_jt-1_s3cret --ca-fingerprint sha256:c0ffee\n",
		},
		{
			name:       "another address for the agent",
			args:       []string{"--controlplane", "cp.internal:7400"},
			addr:       "cp.internal:7400",
			wantReq:    &adminv1.CreateJoinTokenRequest{Labels: map[string]string{}, TtlSeconds: 3600, Uses: 1},
			wantStdout: "created join token jt-1: 1 use",
		},
		{name: "label without value", args: []string{"--labels", "site"}, wantErr: `--labels "site": want KEY=VALUE`},
		{name: "label twice", args: []string{"--labels", "a=1,a=2"}, wantErr: `--labels: "a" is given twice`},
		{name: "zero ttl", args: []string{"--ttl", "0"}, wantErr: "--ttl 0s: must be positive"},
		{name: "negative ttl", args: []string{"--ttl", "-5m"}, wantErr: "--ttl -5m0s: must not be negative"},
		{name: "zero uses", args: []string{"--uses", "0"}, wantErr: "--uses 0: want at least 1"},
		{name: "too many uses", args: []string{"--uses", "3000000000"}, wantErr: "--uses 3000000000: want at least 1"},
		{name: "bad controlplane", args: []string{"--controlplane", "cp"}, wantErr: `--controlplane "cp": want host:port`},
		{name: "argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, _, err := e.run(append([]string{"agent", "token", "create"}, tt.args...)...)
			seen := e.fleet.requestsSeen()
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
			addr := tt.addr
			if addr == "" {
				addr = e.addr
			}
			if want := strings.ReplaceAll(tt.wantStdout, "ADDR", addr); !strings.HasPrefix(stdout, want) {
				t.Errorf("stdout =\n%s\nwant it to start with\n%s", stdout, want)
			}
			if !strings.HasSuffix(stdout, "weft-agent --controlplane "+addr+" --join wjt_jt-1_s3cret --ca-fingerprint sha256:c0ffee\n") {
				t.Errorf("stdout does not end with the command for %s:\n%s", addr, stdout)
			}
		})
	}
}

func TestAgentTokenCreateJSON(t *testing.T) {
	e := newTestEnv(t)
	stdout, _, err := e.run("agent", "token", "create", "--labels", "site=rome", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp adminv1.CreateJoinTokenResponse
	if err := protojson.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if resp.GetSecret() != "wjt_jt-1_s3cret" || resp.GetCaFingerprint() != "sha256:c0ffee" || resp.GetJoinToken().GetLabels()["site"] != "rome" {
		t.Errorf("json = %s", stdout)
	}
}

func TestAgentTokenListAndRevoke(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv) {
		e.fleet.joinTokens = []*adminv1.JoinToken{
			{
				Id: "jt-old", Uses: 2, Used: 2, Agents: []string{"berlin-1", "paris-1"}, CreatedBy: "root",
				Labels:    map[string]string{"site": "eu"},
				CreatedAt: timestamppb.New(testNow.Add(-3 * time.Hour)), ExpiresAt: timestamppb.New(testNow.Add(-2 * time.Hour)),
			},
			{
				Id: "jt-full", Uses: 1, Used: 1, Agents: []string{"rome-1"}, CreatedBy: "ops",
				CreatedAt: timestamppb.New(testNow.Add(-time.Hour)), ExpiresAt: timestamppb.New(testNow.Add(time.Hour)),
			},
			{
				Id: "jt-new", Uses: 3, CreatedBy: "ops",
				CreatedAt: timestamppb.New(testNow), ExpiresAt: timestamppb.New(testNow.Add(time.Hour)),
			},
		}
	})
	stdout, _, err := e.run("agent", "token", "revoke", "jt-full")
	if err != nil {
		t.Fatal(err)
	}
	want := "revoked join token jt-full: no agent can enroll with it from now on (the 1 agent(s) that did keep working; revoke them with weftctl agent revoke ID)\n"
	if stdout != want {
		t.Errorf("agent token revoke = %q, want %q", stdout, want)
	}
	stdout, _, err = e.run("agent", "token", "list")
	if err != nil {
		t.Fatal(err)
	}
	ts := func(d time.Duration) string { return tableTime(timestamppb.New(testNow.Add(d))) }
	want = "ID       STATE    USED  CREATED              EXPIRES              LABELS   AGENTS            CREATED BY\n" +
		"jt-new   active   0/3   " + ts(0) + "  " + ts(time.Hour) + "  -        -                 ops\n" +
		"jt-full  revoked  1/1   " + ts(-time.Hour) + "  " + ts(time.Hour) + "  -        rome-1            ops\n" +
		"jt-old   expired  2/2   " + ts(-3*time.Hour) + "  " + ts(-2*time.Hour) + "  site=eu  berlin-1,paris-1  root\n"
	if stdout != want {
		t.Errorf("agent token list =\n%s\nwant\n%s", stdout, want)
	}
	_, _, err = e.run("agent", "token", "revoke", "jt-nope")
	if err == nil || err.Error() != `revoke join token "jt-nope": join token "jt-nope" not found` {
		t.Errorf("error = %v", err)
	}
}

func TestJoinTokenState(t *testing.T) {
	future := timestamppb.New(testNow.Add(time.Hour))
	tests := []struct {
		name string
		jt   *adminv1.JoinToken
		want string
	}{
		{name: "active", jt: &adminv1.JoinToken{Uses: 2, Used: 1, ExpiresAt: future}, want: "active"},
		{name: "used up", jt: &adminv1.JoinToken{Uses: 2, Used: 2, ExpiresAt: future}, want: "used up"},
		{name: "expired", jt: &adminv1.JoinToken{Uses: 2, ExpiresAt: timestamppb.New(testNow)}, want: "expired"},
		{name: "revoked", jt: &adminv1.JoinToken{Uses: 2, Used: 2, ExpiresAt: future, RevokedAt: future}, want: "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := joinTokenState(tt.jt, testNow); got != tt.want {
				t.Errorf("state = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"cp.example.com:7400": "cp.example.com:7400",
		"sha256:ab12":         "sha256:ab12",
		"a b":                 "'a b'",
		"it's":                `'it'\''s'`,
		"":                    "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAgentRevoke(t *testing.T) {
	e := agentsEnv(t)
	stdout, _, err := e.run("agent", "revoke", "berlin-1")
	if err != nil {
		t.Fatal(err)
	}
	want := `revoked agent "berlin-1": closed 1 stream; its certificate, renewals and enrollments under this id are refused from now on` + "\n"
	if stdout != want {
		t.Errorf("agent revoke = %q, want %q", stdout, want)
	}
	stdout, _, err = e.run("agent", "revoke", "rome-1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp adminv1.RevokeAgentResponse
	if err := protojson.Unmarshal([]byte(stdout), &resp); err != nil || resp.GetAgent().GetRevokedAt() == nil || resp.GetClosed() != 0 {
		t.Errorf("agent revoke -o json = %s (%v)", stdout, err)
	}
	_, _, err = e.run("agent", "revoke", "oslo-1")
	if err == nil || err.Error() != `revoke agent "oslo-1": agent "oslo-1" not found` {
		t.Errorf("error = %v", err)
	}
	if _, _, err := e.run("agent", "revoke"); err == nil || !strings.Contains(err.Error(), "missing ID") {
		t.Errorf("error = %v", err)
	}
	if n := len(e.fleet.requestsSeen()); n != 3 {
		t.Errorf("server saw %d revokes, want 3", n)
	}

	// Revoked agents show as such.
	stdout, _, err = e.run("agent", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "\nberlin-1  revoked  7        7        no ") || !strings.Contains(stdout, "\nrome-1    revoked  2 ") {
		t.Errorf("agent list =\n%s", stdout)
	}
	stdout, _, err = e.run("agent", "get", "berlin-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"status:            revoked\n",
		"revoked:           " + stamp(timestamppb.New(testNow)) + " (just now)\n",
		"enrolled by:       jt-1\n",
		"cert expires:      " + stamp(timestamppb.New(testNow.Add(72*time.Hour))) + " (in 3d)\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("agent get lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, err = e.run("agent", "get", "paris-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"revoked:           no\n", "enrolled by:       -\n", "cert expires:      none\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("agent get lacks %q:\n%s", want, stdout)
		}
	}
}
