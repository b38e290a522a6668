package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// auditAnswer is a trail of four changes, newest first: a deleted channel,
// a secret changed through an import, a package deployed by the pickup
// directory and a job created with a summary too long for the table.
func auditAnswer() *adminv1.ListAuditResponse {
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(testNow.Add(-d)) }
	return &adminv1.ListAuditResponse{Entries: []*adminv1.AuditEntry{
		{Revision: 42, At: at(5 * time.Minute), Who: "local", Kind: "channel", Name: "orders", Action: "deleted",
			HashBefore: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Summary: "delete channel orders"},
		{Revision: 41, At: at(3 * time.Hour), Who: "local", Kind: "security", Name: "crm-token", Action: "updated",
			HashBefore: "aaaaaaaa11111111", HashAfter: "bbbbbbbb22222222", Summary: "import: 0 created, 1 updated, 0 deleted"},
		{Revision: 40, At: at(26 * time.Hour), Who: "pickup", Kind: "package", Name: "hello", Action: "created",
			HashAfter: "cccccccc33333333", Summary: "deploy hello v1"},
		{Revision: 39, At: at(50 * time.Hour), Who: "local", Kind: "job", Name: "nightly", Action: "created",
			HashAfter: "dddddddd44444444", Summary: "create job nightly, which runs hello.greet every night at three in the morning\nand more"},
	}}
}

// newAuditEnv serves a fake config service answering ListAudit with resp.
func newAuditEnv(t *testing.T, resp *adminv1.ListAuditResponse) (*fakeConfig, map[string]string) {
	t.Helper()
	f, addr := newExportEnv(t)
	f.mu.Lock()
	f.audit = resp
	f.mu.Unlock()
	return f, map[string]string{"WEFT_ADDR": addr}
}

func TestAuditTable(t *testing.T) {
	f, env := newAuditEnv(t, auditAnswer())
	stdout, stderr, err := runApp(env, "audit")
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"REVISION  WHEN                           WHO     KIND      NAME       ACTION   BEFORE           AFTER            SUMMARY\n" +
		"42        " + localTime(5*time.Minute) + " (5m ago)   local   channel   orders     deleted  sha256:01234567  -                delete channel orders\n" +
		"41        " + localTime(3*time.Hour) + " (3h ago)   local   security  crm-token  updated  sha256:aaaaaaaa  sha256:bbbbbbbb  import: 0 created, 1 updated, 0 deleted\n" +
		"40        " + localTime(26*time.Hour) + " (26h ago)  pickup  package   hello      created  -                sha256:cccccccc  deploy hello v1\n" +
		"39        " + localTime(50*time.Hour) + " (2d ago)   local   job       nightly    created  -                sha256:dddddddd  create job nightly, which runs hello.greet every night at th...\n"
	if stdout != want {
		t.Fatalf("table\n%s\nwant\n%s", stdout, want)
	}
	if stderr != "" {
		t.Errorf("stderr %q, want nothing: the trail was not truncated", stderr)
	}
	sent := f.auditSent()
	if len(sent) != 1 || !proto.Equal(sent[0], &adminv1.ListAuditRequest{}) {
		t.Fatalf("requests %v, want one with no filter", sent)
	}
}

func TestAuditJSON(t *testing.T) {
	answer := auditAnswer()
	answer.Truncated = true
	_, env := newAuditEnv(t, answer)

	stdout, stderr, err := runApp(env, "audit", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got adminv1.ListAuditResponse
	if err := protojson.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not the answer as JSON: %v\n%s", err, stdout)
	}
	if !proto.Equal(&got, answer) {
		t.Fatalf("JSON holds %v, want %v", &got, answer)
	}
	// Field names as the API's, every field present.
	var raw struct {
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatal(err)
	}
	if e := raw.Entries[0]; e["hash_before"] == nil || e["hash_after"] != "" || e["at"] == nil {
		t.Errorf("first entry %v, want hash_before, an empty hash_after and at", e)
	}
	if stderr != "" {
		t.Errorf("stderr %q, want nothing: the JSON says it was truncated", stderr)
	}

	stdout, _, err = runApp(env, "audit", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"truncated: true\n", "- action: deleted\n", "  hash_after: bbbbbbbb22222222\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("YAML lacks %q:\n%s", want, stdout)
		}
	}
}

func TestAuditRequest(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want *adminv1.ListAuditRequest
	}{
		{"no flags", nil, &adminv1.ListAuditRequest{}},
		{"since hours", []string{"--since", "24h"}, &adminv1.ListAuditRequest{Since: durationpb.New(24 * time.Hour)}},
		{"since days", []string{"--since", "7d"}, &adminv1.ListAuditRequest{Since: durationpb.New(7 * 24 * time.Hour)}},
		{"since 0 is all", []string{"--since", "0s"}, &adminv1.ListAuditRequest{}},
		{"who", []string{"--who", "pickup"}, &adminv1.ListAuditRequest{Who: "pickup"}},
		{"kind", []string{"--kind", "security"}, &adminv1.ListAuditRequest{Kind: "security"}},
		{"limit", []string{"--limit", "20"}, &adminv1.ListAuditRequest{Limit: 20}},
		{"limit 0 is the default", []string{"--limit", "0"}, &adminv1.ListAuditRequest{}},
		{"all", []string{"--since", "90m", "--who", "local", "--kind", "job", "--limit", "5"},
			&adminv1.ListAuditRequest{Since: durationpb.New(90 * time.Minute), Who: "local", Kind: "job", Limit: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, env := newAuditEnv(t, auditAnswer())
			if _, _, err := runApp(env, append([]string{"audit"}, tt.args...)...); err != nil {
				t.Fatal(err)
			}
			sent := f.auditSent()
			if len(sent) != 1 || !proto.Equal(sent[0], tt.want) {
				t.Fatalf("requests %v, want %v", sent, tt.want)
			}
		})
	}
}

func TestAuditRefusesBadFlags(t *testing.T) {
	f, env := newAuditEnv(t, auditAnswer())
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--kind", "service"}, `--kind "service": want package, channel, security, outgoing, job, token, join-token, agent, ca or secrets-key`},
		{[]string{"--kind", "Channel"}, `--kind "Channel": want package, channel, security, outgoing, job, token, join-token, agent, ca or secrets-key`},
		{[]string{"--limit", "-1"}, "--limit -1: must not be negative (0 is the control plane's default, 1000)"},
		{[]string{"--since", "-1h"}, "--since -1h: must not be negative"},
		{[]string{"--since", "soon"}, `invalid argument "soon" for "--since" flag: "soon": want a duration such as 90m, 24h or 7d`},
		{[]string{"--limit", "many"}, `invalid argument "many" for "--limit" flag`},
		{[]string{"orders"}, `unexpected argument "orders"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := runApp(env, append([]string{"audit"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if sent := f.auditSent(); len(sent) != 0 {
		t.Fatalf("bad flags sent %d requests, want none", len(sent))
	}
}

func TestAuditTruncated(t *testing.T) {
	answer := auditAnswer()
	answer.Entries, answer.Truncated = answer.Entries[:2], true
	_, env := newAuditEnv(t, answer)
	tests := []struct {
		args []string
		want string
	}{
		{nil, "older changes were left out: these are the newest 1000; use --limit for more, or --since, --who or --kind for fewer\n"},
		{[]string{"--limit", "2"}, "older changes were left out: these are the newest 2; use --limit for more, or --since, --who or --kind for fewer\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, err := runApp(env, append([]string{"audit"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			// The note goes to stderr, so the table stays whole for a pipe.
			if stderr != tt.want {
				t.Errorf("stderr %q, want %q", stderr, tt.want)
			}
			if lines := strings.Count(stdout, "\n"); lines != 3 || strings.Contains(stdout, "left out") {
				t.Errorf("stdout has %d lines, want the header and 2 rows alone:\n%s", lines, stdout)
			}
		})
	}
}

func TestAuditEmpty(t *testing.T) {
	_, env := newAuditEnv(t, &adminv1.ListAuditResponse{})
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no change recorded\n"},
		{[]string{"--since", "24h"}, "no change recorded in the last 24h\n"},
		{[]string{"--since", "7d"}, "no change recorded in the last 7d\n"},
		{[]string{"--who", "pickup"}, "no change recorded by pickup\n"},
		{[]string{"--kind", "security", "--who", "local", "--since", "90m"}, "no change recorded to any security definition by local in the last 90m\n"},
		{[]string{"--kind", "outgoing"}, "no change recorded to any outgoing connection\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, err := runApp(env, append([]string{"audit"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if stdout != tt.want || stderr != "" {
				t.Fatalf("stdout %q, stderr %q; want %q and nothing", stdout, stderr, tt.want)
			}
		})
	}

	// Scripts get the empty answer, not the sentence.
	stdout, _, err := runApp(env, "audit", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got) != 2 || got["truncated"] != false {
		t.Fatalf("-o json wrote %q (%v), want the empty answer", stdout, err)
	}
	if entries, ok := got["entries"].([]any); !ok || len(entries) != 0 {
		t.Fatalf("-o json wrote %q, want no entries", stdout)
	}
}
