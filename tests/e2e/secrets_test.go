package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/weft-dev/weft/agent/security"
	"github.com/weft-dev/weft/agent/shared/secdef"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestSecretsStayHidden sets up security definitions of every kind, with
// secrets made fresh for each run, on channels and outgoing connections
// that a real agent serves and calls; drives good calls, calls with wrong
// credentials, calls that fail (one remote fails, another quotes the
// credential it refuses) and slow calls, a tail with samples, pings and
// job runs; changes every secret so that the agent's backups hold the old
// ones; and then reads everything an operator, or anyone with the files,
// could read: every weftctl and grpcurl read, the export and what
// an import of it plans, statistics, samples, the tail, logs, /metrics,
// the agent's state directory (snapshot, backups, identity, jobs) and the
// database. None may hold a secret in clear, nor in base64, base64url, hex
// or URL-encoded.
//
// It is not vacuous: every place read is first checked for what it must
// hold (the definitions' names, the calls' CIDs, backups with the
// definitions), and the remote the agent called checks that the agent
// really sent every outbound secret, which the same matcher then finds in
// what the remote received.
func TestSecretsStayHidden(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := newSecretsEnv(t, b)
			runSteps(t, []step{
				{"definitions, channels and connections", s.configure},
				{"a tail with samples", s.startTail},
				{"traffic", s.traffic},
				{"every secret changed", s.rotate},
				{"traffic with the new secrets", s.traffic},
				{"job runs and pings", s.jobsAndPings},
				{"the agent used every secret", s.controls},
				{"weftctl reads", s.gatherReads},
				{"grpcurl reads", s.gatherGrpcurl},
				{"export, import and diff", s.gatherConfig},
				{"logs, tail and metrics", s.gatherLogs},
				{"the agent's state directory", s.gatherStateDir},
				{"the database", s.gatherDatabase},
				{"no secret anywhere", s.check},
			})
		})
	}
}

// secretDef is a security definition of the scenario: its kind, the
// field and flag of its secret, and its other flags.
type secretDef struct {
	name, kind string
	field      string   // the secret's field, as export names it
	flag       string   // the flag that sets it
	args       []string // the other create flags
}

// secretsEnv is a control plane, an agent, the remote it calls, every
// secret of the run, and the places gathered to grep.
type secretsEnv struct {
	*env
	backend    storetest.Backend
	agent      *testenv.Agent
	remote     *secretsRemote
	dir        string // the test's own files: secrets, certificates, the export
	cpMetrics  string
	agMetrics  string
	parent     *testing.T // the backend's test, which outlives the steps
	defs       []secretDef
	gen        int               // 1, then 2 after the change
	current    map[string]string // definition name -> its secret now (the key file for out-mtls)
	secrets    secretSet
	tail       *tailProc
	tailCIDs   []string
	failed     []string // CIDs of failed calls
	slow       []string // CIDs of slow calls
	relayCalls int      // successful calls of relay.call through channels
	outputs    []place  // outputs of commands run before the gathering
	places     []place
}

// place is something read, to grep.
type place struct {
	name string
	data []byte
}

// Identities and header names of the scenario.
const (
	secInUser       = "weft-in"
	secOutUser      = "weft-out"
	secInKeyHeader  = "X-Partner-Key"
	secOutKeyHeader = "X-Remote-Key"
	secClientID     = "weft-client"
)

// outgoingKinds name the connections out-{kind}, each with the definition
// out-{kind}, which relay.call calls at the remote's /check/{kind}.
var outgoingKinds = []string{"basic", "apikey", "jwt", "bearer", "oauth2", "mtls"}

// echoKinds name the connections echo-{kind}, with the definition
// out-{kind}, to a remote that echoes the credential in its refusal.
var echoKinds = []string{"basic", "apikey", "jwt", "bearer", "oauth2"}

// secretChannels are the channels of the scenario.
var secretChannels = []string{"relay-basic", "relay-apikey", "relay-jwt", "flaky-basic", "flaky-jwt"}

func newSecretsEnv(t *testing.T, b storetest.Backend) *secretsEnv {
	t.Helper()
	s := &secretsEnv{
		backend:   b,
		dir:       t.TempDir(),
		cpMetrics: testenv.FreeAddr(t),
		agMetrics: testenv.FreeAddr(t),
		parent:    t,
		current:   map[string]string{},
	}
	s.remote = newSecretsRemote(t, s.dir)
	cp := testenv.StartControlPlane(t, b.DSN, testenv.WithArgs("--metrics", s.cpMetrics))
	s.agent = testenv.StartAgent(t, cp, "secrets-1", testenv.WithArgs("--stats-interval", "500ms", "--metrics", s.agMetrics))
	s.env = &env{cp: cp, agents: []*testenv.Agent{s.agent}}
	s.defs = []secretDef{
		{"in-basic", "basic_auth", "password", "--password", []string{"--username", secInUser}},
		{"in-apikey", "api_key", "key", "--key", []string{"--header", secInKeyHeader}},
		{"in-jwt", "jwt", "secret", "--secret", []string{"--algorithms", "HS256", "--issuer", jwtIssuer, "--audience", jwtAudience}},
		{"out-basic", "basic_auth", "password", "--password", []string{"--username", secOutUser}},
		{"out-apikey", "api_key", "key", "--key", []string{"--header", secOutKeyHeader}},
		{"out-jwt", "jwt", "secret", "--secret", []string{"--algorithms", "HS256", "--issuer", "weft", "--audience", "remote"}},
		{"out-bearer", "bearer", "token", "--token", nil},
		{"out-oauth2", "oauth2_client_credentials", "client_secret", "--client-secret", []string{"--token-url", s.remote.plain.URL + "/token", "--client-id", secClientID}},
		{"out-mtls", "tls_client_cert", "key_pem", "--key-file", nil},
	}
	return s
}

// newValues makes the secrets of generation gen, writes each to a file of
// its own (so that no command line, nor the test's log, carries one),
// tells the remote, and returns the flags that set them.
func (s *secretsEnv) newValues(t *testing.T, gen int) map[string][]string {
	t.Helper()
	flags := map[string][]string{}
	for _, d := range s.defs {
		label := fmt.Sprintf("%s %s (v%d)", d.name, d.field, gen)
		if d.kind == "tls_client_cert" {
			files := s.remote.clientCA.ClientCert(t, s.dir, fmt.Sprintf("client-%d", gen), clientCN(gen))
			s.secrets.add(label, privateScalar(t, files.Key))
			s.current[d.name] = files.Key
			flags[d.name] = []string{"--cert-file", files.Cert, "--key-file", files.Key}
			continue
		}
		v := secretValue(strings.ReplaceAll(d.name, "-", ""))
		s.secrets.add(label, []byte(v))
		s.current[d.name] = v
		file := filepath.Join(s.dir, fmt.Sprintf("%s-%d.secret", d.name, gen))
		if err := os.WriteFile(file, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		flags[d.name] = []string{d.flag, "@" + file}
	}
	s.remote.expect(gen, map[string]string{
		"basic":  secOutUser + ":" + s.current["out-basic"],
		"apikey": s.current["out-apikey"],
		"jwt":    s.current["out-jwt"],
		"bearer": s.current["out-bearer"],
		"oauth2": s.current["out-oauth2"],
		"mtls":   clientCN(gen),
	})
	s.gen = gen
	return flags
}

func (s *secretsEnv) configure(t *testing.T) {
	s.ctlOK(t, "deploy", filepath.Join("testdata", "relay"), filepath.Join("testdata", "flaky"), "--wait")
	flags := s.newValues(t, 1)
	for _, d := range s.defs {
		s.ctlOK(t, slices.Concat([]string{"security", "create", d.name, "--kind", d.kind}, d.args, flags[d.name])...)
	}
	for _, kind := range outgoingKinds {
		args := []string{"outgoing", "create", "out-" + kind, "--address", s.remote.plain.URL, "--path", "/check/" + kind, "--security", "out-" + kind}
		if kind == "mtls" {
			args = []string{"outgoing", "create", "out-mtls", "--address", s.remote.mtls.URL, "--path", "/check/mtls", "--security", "out-mtls", "--ca-file", s.remote.caFile}
		}
		s.ctlOK(t, args...)
	}
	// A connection whose remote fails: the service fails with 502, and
	// its sample, log line and job run keep the error.
	s.ctlOK(t, "outgoing", "create", "out-fail", "--address", s.remote.plain.URL, "--path", "/fail", "--security", "out-bearer")
	// Connections to a remote that refuses the credential it got and
	// echoes it in its answer, as some do ("invalid API key: ..."): the
	// error the agent keeps quotes the start of that answer.
	for _, kind := range echoKinds {
		s.ctlOK(t, "outgoing", "create", "echo-"+kind, "--address", s.remote.plain.URL, "--path", "/echo", "--security", "out-"+kind)
	}
	for _, in := range []string{"basic", "apikey", "jwt"} {
		s.ctlOK(t, "channel", "create", "relay-"+in, "--path", "/api/relay/"+in, "--service", "relay.call", "--security", "in-"+in)
	}
	s.ctlOK(t, "channel", "create", "flaky-basic", "--path", "/api/flaky/basic", "--service", "flaky.run", "--security", "in-basic")
	s.ctlOK(t, "channel", "create", "flaky-jwt", "--path", "/api/flaky/jwt", "--service", "flaky.run", "--security", "in-jwt")
	s.sync(t)
}

// credentials returns good and wrong credentials for the inbound
// definition in-{in} (basic, apikey or jwt) of the current generation; the
// wrong ones and the tokens sent are secrets of the scenario too.
func (s *secretsEnv) credentials(t *testing.T, in string) (good, wrong http.Header) {
	t.Helper()
	switch in {
	case "basic":
		bad := secretValue("wrongpw")
		s.secrets.add(fmt.Sprintf("a wrong basic auth password (v%d)", s.gen), []byte(bad))
		return basicHeader(secInUser, s.current["in-basic"]), basicHeader(secInUser, bad)
	case "apikey":
		bad := secretValue("wrongkey")
		s.secrets.add(fmt.Sprintf("a wrong API key (v%d)", s.gen), []byte(bad))
		return http.Header{secInKeyHeader: {s.current["in-apikey"]}}, http.Header{secInKeyHeader: {bad}}
	}
	badSecret := secretValue("wrongjwtsecret")
	s.secrets.add(fmt.Sprintf("a wrong JWT secret (v%d)", s.gen), []byte(badSecret))
	tok := signJWT(t, []byte(s.current["in-jwt"]), "", jwtClaims("ada"))
	badTok := signJWT(t, []byte(badSecret), "", jwtClaims("ada"))
	for what, tk := range map[string]string{"a good inbound JWT": tok, "a wrong inbound JWT": badTok} {
		s.secrets.add(fmt.Sprintf("%s (v%d)", what, s.gen), []byte(tk))
		s.secrets.add(fmt.Sprintf("the signature of %s (v%d)", what, s.gen), []byte(tk[strings.LastIndexByte(tk, '.')+1:]))
	}
	return http.Header{"Authorization": {"Bearer " + tok}}, http.Header{"Authorization": {"Bearer " + badTok}}
}

func basicHeader(user, password string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}}
}

// call sends a JSON POST to the agent and returns the status, the CID and
// the body.
func (s *secretsEnv) call(t *testing.T, path, body string, h http.Header) (int, string, string) {
	t.Helper()
	status, hdr, b := do(t, "POST", s.agent.URL(path), "application/json", body, h)
	return status, hdr.Get("X-Weft-CID"), string(b)
}

func (s *secretsEnv) traffic(t *testing.T) {
	for _, in := range []string{"basic", "apikey", "jwt"} {
		good, wrong := s.credentials(t, in)
		path := "/api/relay/" + in
		for _, out := range outgoingKinds {
			status, cid, body := s.call(t, path, `{"conn":"out-`+out+`"}`, good)
			if status != http.StatusOK || !strings.Contains(body, `"ok":true`) {
				t.Errorf("%s calling out-%s with good credentials (v%d): %d %s", path, out, s.gen, status, body)
			}
			s.relayCalls++
			s.tailCIDs = append(s.tailCIDs, cid)
		}
		// Services that fail because their remote did.
		for _, conn := range slices.Concat([]string{"out-fail"}, prefixed("echo-", echoKinds)) {
			status, cid, body := s.call(t, path, `{"conn":"`+conn+`"}`, good)
			if status != http.StatusBadGateway {
				t.Errorf("%s calling %s: %d %s; want 502", path, conn, status, body)
			}
			s.failed = append(s.failed, cid)
			s.tailCIDs = append(s.tailCIDs, cid)
		}
		for what, h := range map[string]http.Header{"wrong": wrong, "missing": nil} {
			if status, _, body := s.call(t, path, `{"conn":"out-bearer"}`, h); status != http.StatusUnauthorized {
				t.Errorf("%s with %s credentials: %d %s; want 401", path, what, status, body)
			}
		}
	}
	for _, in := range []string{"basic", "jwt"} {
		good, wrong := s.credentials(t, in)
		path := "/api/flaky/" + in
		password := secretValue("bodypw")
		s.secrets.add(fmt.Sprintf("a password in a request body (v%d)", s.gen), []byte(password))
		status, cid, body := s.call(t, path, fmt.Sprintf(`{"fail":true,"password":%q}`, password), good)
		if status != http.StatusInternalServerError {
			t.Errorf("%s asked to fail: %d %s; want 500", path, status, body)
		}
		s.failed = append(s.failed, cid)
		s.tailCIDs = append(s.tailCIDs, cid)
		status, cid, body = s.call(t, path, fmt.Sprintf(`{"sleep_ms":150,"password":%q}`, password), good)
		if status != http.StatusOK {
			t.Errorf("%s asked to be slow: %d %s; want 200", path, status, body)
		}
		s.slow = append(s.slow, cid)
		s.tailCIDs = append(s.tailCIDs, cid)
		if status, _, body := s.call(t, path, `{}`, wrong); status != http.StatusUnauthorized {
			t.Errorf("%s with wrong credentials: %d %s; want 401", path, status, body)
		}
	}
}

// rotate gives every definition a new secret (a new key and certificate
// for out-mtls): the agent keeps each state with old ones as a backup.
func (s *secretsEnv) rotate(t *testing.T) {
	before := len(s.backupFiles(t))
	flags := s.newValues(t, 2)
	for _, d := range s.defs {
		s.ctlOK(t, slices.Concat([]string{"security", "update", d.name}, flags[d.name])...)
	}
	s.sync(t)
	testenv.Await(t, 10*time.Second, "a backup of each state the changes replaced", func() (bool, string) {
		n := len(s.backupFiles(t))
		return n >= before+len(s.defs), fmt.Sprintf("%d backups, %d before", n, before)
	})
}

// backupFiles lists the files of the agent's backups directory.
func (s *secretsEnv) backupFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.agent.StateDir, "backups"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// secretJobs are the jobs of the scenario: two run by hand, and one that
// fires every second (so the agent records its firings in jobs.json) and
// fails on a remote that echoes the credential, until it is paused.
var secretJobs = []struct{ name, conn, cron string }{
	{"secrets-ok", "out-oauth2", "0 3 * * *"},
	{"secrets-fail", "out-fail", "0 3 * * *"},
	{"secrets-tick", "echo-bearer", "* * * * * *"},
}

// jobsAndPings runs the jobs and pings every connection.
func (s *secretsEnv) jobsAndPings(t *testing.T) {
	for _, j := range secretJobs {
		s.ctlOK(t, "job", "create", j.name, "--service", "relay.call", "--type", "cron", "--cron", j.cron, "--payload", `{"conn":"`+j.conn+`"}`)
	}
	s.sync(t)
	if res := s.ctlOK(t, "job", "run", "secrets-ok"); !strings.Contains(res.Stdout, "ok") {
		t.Errorf("job run secrets-ok: %s", res)
	}
	res := testenv.Ctl(t, s.cp, "job", "run", "secrets-fail")
	if res.ExitCode == 0 || !strings.Contains(res.Stdout+res.Stderr, "/fail") {
		t.Errorf("job run secrets-fail: %s; want a failed run naming the URL", res)
	}
	s.outputs = append(s.outputs, place{"weftctl job run secrets-fail", []byte(res.Stdout + res.Stderr)})
	testenv.Await(t, 20*time.Second, "a scheduled run of secrets-tick, recorded in jobs.json", func() (bool, string) {
		if _, err := os.Stat(filepath.Join(s.agent.StateDir, "jobs.json")); err != nil {
			return false, err.Error()
		}
		resp := &adminv1.ListJobRunsResponse{}
		testenv.CtlJSON(t, s.cp, resp, "job", "history", "secrets-tick")
		for _, r := range resp.GetRuns() {
			if r.GetOutcome() == "error" {
				return true, ""
			}
		}
		return false, fmt.Sprint(resp.GetRuns())
	})
	s.ctlOK(t, "job", "pause", "secrets-tick")
	s.sync(t)
	for _, kind := range outgoingKinds {
		res := s.ctlOK(t, "outgoing", "ping", "out-"+kind)
		if !strings.Contains(res.Stdout, "127.0.0.1") {
			t.Errorf("outgoing ping out-%s: %s; want the URL", kind, res)
		}
		s.outputs = append(s.outputs, place{"weftctl outgoing ping out-" + kind, []byte(res.Stdout + res.Stderr)})
	}
}

// controls checks that the agent really used every secret, so that the
// greps below look for values that were there to leak: the remote took a
// good credential of every outbound kind in both generations, and the
// matcher finds the secrets sent in headers (Basic, API key, bearer token,
// the OAuth2 client's Basic) in what the remote received.
func (s *secretsEnv) controls(t *testing.T) {
	for _, kind := range outgoingKinds {
		for gen := 1; gen <= 2; gen++ {
			if s.remote.accepted(kind, gen) == 0 {
				t.Errorf("the remote accepted no %s credential of generation %d: the agent did not use it", kind, gen)
			}
		}
	}
	found := s.secrets.find(s.remote.received())
	for _, d := range []string{"out-basic password", "out-apikey key", "out-bearer token", "out-oauth2 client_secret"} {
		for gen := 1; gen <= 2; gen++ {
			want := fmt.Sprintf("%s (v%d) ", d, gen)
			if !slices.ContainsFunc(found, func(f string) bool { return strings.HasPrefix(f, want) }) {
				t.Errorf("the matcher does not find %s in what the remote received, which carries it; it found %q", want, found)
			}
		}
	}
	t.Logf("in what the remote received, the matcher found: %s", strings.Join(found, "; "))
	tokens := s.remote.issuedTokens()
	if len(tokens) < 2 {
		t.Errorf("the token endpoint gave %d access tokens; want one per client secret at least", len(tokens))
	}
	for _, tok := range tokens {
		s.secrets.add("an OAuth2 access token the agent fetched", []byte(tok))
	}
	jwts := s.remote.receivedJWTs()
	if len(jwts) == 0 {
		t.Error("the remote received no JWT from the agent")
	}
	for _, tok := range jwts {
		s.secrets.add("a JWT the agent signed", []byte(tok))
		s.secrets.add("the signature of a JWT the agent signed", []byte(tok[strings.LastIndexByte(tok, '.')+1:]))
	}
}

// add records a place to grep.
func (s *secretsEnv) add(name string, data []byte) {
	s.places = append(s.places, place{name, data})
}

// read runs weftctl, requires exit 0, records its output and returns its
// standard output.
func (s *secretsEnv) read(t *testing.T, args ...string) string {
	t.Helper()
	res := s.ctlOK(t, args...)
	s.add("weftctl "+strings.Join(args, " "), []byte(res.Stdout+res.Stderr))
	return res.Stdout
}

// mustHold fails the test when what, read from where, lacks any of subs:
// the check that what is grepped is not empty or beside the point.
func mustHold(t *testing.T, where, what string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(what, sub) {
			t.Errorf("%s lacks %q, so grepping it would prove nothing:\n%s", where, sub, clip(what))
		}
	}
}

func (s *secretsEnv) defNames() []string {
	names := make([]string, len(s.defs))
	for i, d := range s.defs {
		names[i] = d.name
	}
	return names
}

func (s *secretsEnv) connNames() []string {
	return slices.Concat([]string{"out-fail"}, prefixed("out-", outgoingKinds), prefixed("echo-", echoKinds))
}

// prefixed returns each of names after prefix.
func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

func (s *secretsEnv) gatherReads(t *testing.T) {
	// The samples and the statistics reach the control plane a little
	// after the answers.
	testenv.Await(t, 20*time.Second, "the failed and slow calls kept as samples", func() (bool, string) {
		for which, cids := range map[string][]string{"failures": s.failed, "slow": s.slow} {
			out := s.ctlOK(t, "debug", which, "--limit", "0", "-o", "json").Stdout
			for _, cid := range cids {
				if !strings.Contains(out, cid) {
					return false, which + " lack " + cid
				}
			}
		}
		return true, ""
	})
	testenv.Await(t, 20*time.Second, "the statistics count every call of relay.call", func() (bool, string) {
		resp := &adminv1.GetStatsResponse{}
		testenv.CtlJSON(t, s.cp, resp, "stats", "relay.call", "--since", "15m")
		for _, o := range resp.GetObjects() {
			if o.GetName() == "relay.call" && o.GetTotals().GetCount() >= int64(s.relayCalls) {
				return true, ""
			}
		}
		return false, fmt.Sprint(resp.GetObjects())
	})

	names := s.defNames()
	mustHold(t, "security list", s.read(t, "security", "list"), names...)
	mustHold(t, "security list -o json", s.read(t, "security", "list", "-o", "json"), names...)
	mustHold(t, "security list -o yaml", s.read(t, "security", "list", "-o", "yaml"), names...)
	for _, d := range s.defs {
		mustHold(t, "security get "+d.name, s.read(t, "security", "get", d.name, "-o", "json"), d.name, "••••••••")
		s.read(t, "security", "get", d.name, "-o", "yaml")
		s.read(t, "security", "get", d.name)
	}
	conns := s.connNames()
	mustHold(t, "outgoing list", s.read(t, "outgoing", "list", "-o", "json"), conns...)
	s.read(t, "outgoing", "list")
	for _, c := range conns {
		s.read(t, "outgoing", "get", c, "-o", "json")
	}
	mustHold(t, "channel list", s.read(t, "channel", "list", "-o", "json"), secretChannels...)
	for _, c := range secretChannels {
		s.read(t, "channel", "get", c, "-o", "json")
	}
	s.read(t, "agent", "list", "-o", "json")
	mustHold(t, "agent get", s.read(t, "agent", "get", s.agent.ID, "-o", "json"), s.agent.ID)
	s.read(t, "agent", "get", s.agent.ID)
	mustHold(t, "agent backups", s.read(t, "agent", "backups", s.agent.ID, "-o", "json"), "relay@", "flaky@")
	mustHold(t, "audit", s.read(t, "audit", "-o", "json"), names...)
	s.read(t, "audit")
	mustHold(t, "debug failures -v", s.read(t, "debug", "failures", "--limit", "0", "-v"), slices.Concat(s.failed, []string{"••••••••", "asked to fail", "/fail"})...)
	mustHold(t, "debug failures -o json", s.read(t, "debug", "failures", "--limit", "0", "-o", "json"), s.failed...)
	mustHold(t, "debug slow -v", s.read(t, "debug", "slow", "--limit", "0", "-v"), slices.Concat(s.slow, []string{"••••••••"})...)
	s.read(t, "debug", "slow", "--limit", "0", "-o", "json")
	mustHold(t, "stats", s.read(t, "stats", "--since", "15m", "-o", "json"), "relay.call", "flaky.run")
	mustHold(t, "stats of channels", s.read(t, "stats", "--kind", "channel", "--since", "15m", "-o", "json"), secretChannels...)
	mustHold(t, "stats of jobs", s.read(t, "stats", "--kind", "job", "--since", "15m", "-o", "json"), "secrets-ok", "secrets-fail", "secrets-tick")
	s.read(t, "stats", "--since", "15m")
	for _, j := range secretJobs {
		s.read(t, "job", "get", j.name, "-o", "json")
		s.read(t, "job", "history", j.name)
		mustHold(t, "job history "+j.name, s.read(t, "job", "history", j.name, "-o", "json"), `"cid"`)
	}
	mustHold(t, "job history of the failing job", s.read(t, "job", "history", "secrets-fail", "-o", "json"), "/fail")
	// The remote's echo reached the run's error, and so the database.
	mustHold(t, "job history of the job on the echoing remote", s.read(t, "job", "history", "secrets-tick", "-o", "json"), "credential rejected")
	mustHold(t, "agent logs", s.read(t, "agent", "logs", s.agent.ID), s.failed...)
	s.read(t, "agent", "logs", s.agent.ID, "--raw")
	for _, p := range s.outputs {
		s.add(p.name, p.data)
	}
}

func (s *secretsEnv) gatherGrpcurl(t *testing.T) {
	rpc := func(method, body string, subs ...string) {
		t.Helper()
		res := s.cp.Grpcurl(t, "-d", body, s.cp.Addr, method)
		if res.ExitCode != 0 {
			t.Fatalf("grpcurl %s: %s", method, res)
		}
		s.add("grpcurl "+method+" "+body, []byte(res.Stdout+res.Stderr))
		mustHold(t, "grpcurl "+method+" "+body, res.Stdout, subs...)
	}
	names := s.defNames()
	rpc("weft.admin.v1.SecurityService/ListSecurityDefinitions", "{}", names...)
	for _, n := range names {
		rpc("weft.admin.v1.SecurityService/GetSecurityDefinition", `{"name":"`+n+`"}`, n)
	}
	rpc("weft.admin.v1.OutgoingService/ListOutgoingConnections", "{}", s.connNames()...)
	rpc("weft.admin.v1.ChannelService/ListChannels", "{}", secretChannels...)
	rpc("weft.admin.v1.FleetService/ListAgents", "{}", s.agent.ID)
	rpc("weft.admin.v1.FleetService/GetAgent", `{"id":"`+s.agent.ID+`"}`, s.agent.ID)
	rpc("weft.admin.v1.FleetService/GetAgentLogs", `{"agent_id":"`+s.agent.ID+`"}`, s.failed...)
	rpc("weft.admin.v1.FleetService/ListAgentBackups", `{"agent_id":"`+s.agent.ID+`"}`, "relay@")
	rpc("weft.admin.v1.ConfigService/ExportConfig", `{"include_source":true}`, names...)
	rpc("weft.admin.v1.ConfigService/ListAudit", "{}", names...)
	rpc("weft.admin.v1.StatsService/GetStats", `{"since":"900s"}`, "relay.call")
	rpc("weft.admin.v1.StatsService/ListSamples", `{"which":"failed"}`, s.failed...)
	rpc("weft.admin.v1.StatsService/ListSamples", `{"which":"slow"}`, s.slow...)
	for _, j := range secretJobs {
		rpc("weft.admin.v1.JobService/ListJobRuns", `{"name":"`+j.name+`"}`, j.name)
	}
}

// secretVar is the variable export writes for the secret field of
// definition name.
func secretVar(name, field string) string {
	return "WEFT_SECRET_" + regexp.MustCompile(`[^A-Z0-9]`).ReplaceAllString(strings.ToUpper(name+"_"+field), "_")
}

func (s *secretsEnv) gatherConfig(t *testing.T) {
	var vars []string
	for _, d := range s.defs {
		vars = append(vars, "${"+secretVar(d.name, d.field)+"}")
	}
	want := slices.Concat(s.defNames(), vars)
	mustHold(t, "export", s.read(t, "export", "--include-source"), want...)
	mustHold(t, "export --format json", s.read(t, "export", "--include-source", "--format", "json"), want...)

	file := filepath.Join(s.dir, "weft.yaml")
	s.ctlOK(t, "export", "--include-source", "--file", file)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s.add("the exported file", data)
	mustHold(t, "the exported file", string(data), want...)

	// The variables from the environment: the secrets served now, but for
	// three definitions secrets never seen (v3), which the plan must name
	// as changed without showing them.
	changed := map[string]bool{"out-bearer": true, "in-apikey": true, "out-oauth2": true}
	var env []string
	for _, d := range s.defs {
		v := s.current[d.name]
		switch {
		case d.kind == "tls_client_cert":
			pemBytes, err := os.ReadFile(v)
			if err != nil {
				t.Fatal(err)
			}
			// As security create --key-file reads it.
			v = strings.TrimRight(string(pemBytes), "\r\n")
		case changed[d.name]:
			v = secretValue(strings.ReplaceAll(d.name, "-", "") + "v3")
			s.secrets.add(d.name+" "+d.field+" (v3, planned only)", []byte(v))
		}
		env = append(env, secretVar(d.name, d.field)+"="+v)
	}
	for _, args := range [][]string{{"import", file, "--dry-run"}, {"import", file, "--dry-run", "-o", "json"}, {"diff", file, "-v"}} {
		res := testenv.CtlEnv(t, s.cp, env, args...)
		if res.ExitCode != 0 && (args[0] != "diff" || res.ExitCode != 1) {
			t.Fatalf("weftctl %s: %s", strings.Join(args, " "), res)
		}
		what := "weftctl " + strings.Join(args, " ")
		s.add(what, []byte(res.Stdout+res.Stderr))
		mustHold(t, what, res.Stdout, "out-bearer", "in-apikey", "out-oauth2")
	}
}

func (s *secretsEnv) gatherLogs(t *testing.T) {
	testenv.Await(t, 10*time.Second, "every call in the tail", func() (bool, string) {
		out := s.tail.text()
		for _, cid := range s.tailCIDs {
			if !strings.Contains(out, cid) {
				return false, "missing " + cid
			}
		}
		return true, ""
	})
	s.add("weftctl tail --samples -o json", []byte(s.tail.text()))

	for _, l := range []struct{ who, path string }{{"the control plane's log", s.cp.LogPath()}, {"the agent's log", s.agent.LogPath()}} {
		data, err := os.ReadFile(l.path)
		if err != nil {
			t.Fatal(err)
		}
		s.add(l.who, data)
		if l.who == "the agent's log" {
			mustHold(t, l.who, string(data), s.failed...)
		} else {
			mustHold(t, l.who, string(data), s.defNames()...)
		}
	}
	for _, m := range []struct{ who, addr string }{{"the control plane's /metrics", s.cpMetrics}, {"the agent's /metrics", s.agMetrics}} {
		resp, err := http.Get("http://" + m.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		s.add(m.who, data)
		if m.who == "the agent's /metrics" {
			mustHold(t, m.who, string(data), "relay.call", "flaky.run")
		}
	}
}

func (s *secretsEnv) gatherStateDir(t *testing.T) {
	var files []string
	err := filepath.WalkDir(s.agent.StateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.agent.StateDir, path)
		files = append(files, rel)
		s.add("the agent's state directory: "+rel, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the agent's state directory holds %s", strings.Join(files, ", "))
	snap, err := os.ReadFile(filepath.Join(s.agent.StateDir, "snapshot.pb"))
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot carries the definitions, their secrets sealed ("v1:").
	mustHold(t, "snapshot.pb", string(snap), slices.Concat(s.defNames(), []string{"v1:"})...)
	withDefs := 0
	for _, name := range s.backupFiles(t) {
		b, err := os.ReadFile(filepath.Join(s.agent.StateDir, "backups", name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("out-mtls")) && bytes.Contains(b, []byte("v1:")) {
			withDefs++
		}
	}
	if withDefs < len(s.defs) {
		t.Errorf("%d backups hold the security definitions, sealed; want at least %d, one per change of a secret", withDefs, len(s.defs))
	}
	for _, f := range []string{filepath.Join("identity", "agent.key"), "jobs.json", "secrets.key"} {
		if !slices.Contains(files, f) {
			t.Errorf("the state directory lacks %s: %v", f, files)
		}
	}
}

func (s *secretsEnv) gatherDatabase(t *testing.T) {
	var all []byte
	switch s.backend.Name {
	case "sqlite":
		db, _, _ := strings.Cut(strings.TrimPrefix(s.backend.DSN, "sqlite:"), "?")
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			data, err := os.ReadFile(db + suffix)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			s.add("the SQLite file "+filepath.Base(db+suffix), data)
			all = append(all, data...)
		}
	case "mysql":
		all = mysqlRows(t, s.backend.DSN)
		s.add("the MySQL database (every row of every table)", all)
	default:
		t.Fatalf("unknown backend %s", s.backend.Name)
	}
	// The definitions are there, their secrets sealed ("v1:").
	mustHold(t, "the database", string(all), slices.Concat(s.defNames(), []string{"v1:"})...)
}

// mysqlRows returns every row of every table of the MySQL database of dsn,
// as text.
func mysqlRows(t *testing.T, dsn string) []byte {
	t.Helper()
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql:"))
	if err != nil {
		t.Fatal(err)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var out bytes.Buffer
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, "SELECT * FROM `"+table+"`")
		if err != nil {
			t.Fatalf("read table %s: %v", table, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("read table %s: %v", table, err)
			}
			fmt.Fprintf(&out, "%s:", table)
			for i, c := range cols {
				fmt.Fprintf(&out, " %s=%s", c, vals[i])
			}
			out.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("read table %s: %v", table, err)
		}
		rows.Close()
	}
	return out.Bytes()
}

// check greps every place gathered for every secret of the run.
func (s *secretsEnv) check(t *testing.T) {
	total := 0
	for _, p := range s.places {
		total += len(p.data)
		for _, f := range s.secrets.find(p.data) {
			t.Errorf("LEAK: %s holds %s", p.name, f)
		}
	}
	t.Logf("grepped %d places, %d bytes, for %d secrets in %d forms", len(s.places), total, len(s.secrets.names()), len(s.secrets.forms))
}

// startTail runs weftctl tail --samples -o json for the rest of the
// backend's test, and waits until it shows a call.
func (s *secretsEnv) startTail(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, testenv.Binary(t, testenv.CtlBinary), "--addr", s.cp.Addr, "tail", "--samples", "-o", "json")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WEFT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "WEFT_CA="+s.cp.CAFile(), "WEFT_TOKEN="+s.cp.Token(t), "WEFT_CONFIG="+filepath.Join(s.dir, "weftctl.yaml"))
	p := &tailProc{cmd: cmd}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	s.parent.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if s.parent.Failed() {
			s.parent.Logf("weftctl tail stderr:\n%s", stderr.String())
		}
	})
	s.tail = p
	good, _ := s.credentials(t, "basic")
	var probes []string
	var last time.Time
	testenv.Await(t, 15*time.Second, "the tail shows a probe call", func() (bool, string) {
		if time.Since(last) > 250*time.Millisecond {
			status, cid, body := s.call(t, "/api/flaky/basic", `{}`, good)
			if status != http.StatusOK {
				t.Fatalf("probe: %d %s", status, body)
			}
			probes, last = append(probes, cid), time.Now()
		}
		out := p.text()
		return slices.ContainsFunc(probes, func(cid string) bool { return strings.Contains(out, cid) }), out
	})
}

// secretValue makes a secret no run shares: a label, then random text
// with '+' and '/', which URL and base64url encodings change.
func secretValue(label string) string {
	return label + "+" + rand.Text() + "/" + rand.Text()[:10]
}

// clientCN is the common name of the client certificate of generation gen.
func clientCN(gen int) string { return fmt.Sprintf("weft-client-%d.test", gen) }

// privateScalar returns the private scalar of the EC key in keyFile: the
// secret of a key_pem, whatever encoding carries it.
func privateScalar(t *testing.T, keyFile string) []byte {
	t.Helper()
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM block", keyFile)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("%s: %T, want an EC key", keyFile, key)
	}
	ecdh, err := ec.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return ecdh.Bytes()
}

// secretSet is every secret of the run, each in every form it could be
// written in: in clear, URL-encoded, base64 and base64url (at each of the
// three alignments a secret can have inside a longer encoded text, so that
// a Basic header's base64("user:password") or a JSON sample's base64 is
// found too), and hex.
type secretSet struct {
	forms []secretForm
	index map[string][]int // the first indexLen bytes of a form -> the forms
}

// secretForm is one way of writing a secret.
type secretForm struct {
	secret, how string
	text        []byte
}

// indexLen is the length of the prefix forms are looked up by; a shorter
// form would match by chance.
const indexLen = 12

// add adds the secret value, named secret in reports, in all its forms.
func (ss *secretSet) add(secret string, value []byte) {
	type text struct {
		how string
		v   []byte
	}
	texts := []text{{"in clear", value}}
	q, p := url.QueryEscape(string(value)), url.PathEscape(string(value))
	if q != string(value) {
		texts = append(texts, text{"URL-encoded", []byte(q)})
	}
	if p != string(value) && p != q {
		texts = append(texts, text{"URL-path-encoded", []byte(p)})
	}
	for _, tx := range texts {
		ss.addForm(secret, tx.how, tx.v)
		of := ""
		if tx.how != "in clear" {
			of = ", " + tx.how
		}
		for skip := range 3 {
			n := (len(tx.v) - skip) / 3 * 3
			if n <= 0 {
				continue
			}
			chunk := tx.v[skip : skip+n]
			ss.addForm(secret, "base64"+of, []byte(base64.RawStdEncoding.EncodeToString(chunk)))
			ss.addForm(secret, "base64url"+of, []byte(base64.RawURLEncoding.EncodeToString(chunk)))
		}
	}
	ss.addForm(secret, "hex", []byte(hex.EncodeToString(value)))
}

func (ss *secretSet) addForm(secret, how string, text []byte) {
	if len(text) < indexLen {
		return
	}
	key := string(text[:indexLen])
	for _, i := range ss.index[key] {
		if ss.forms[i].secret == secret && bytes.Equal(ss.forms[i].text, text) {
			return
		}
	}
	if ss.index == nil {
		ss.index = map[string][]int{}
	}
	ss.index[key] = append(ss.index[key], len(ss.forms))
	ss.forms = append(ss.forms, secretForm{secret, how, text})
}

func (ss *secretSet) names() []string {
	var names []string
	for _, f := range ss.forms {
		if !slices.Contains(names, f.secret) {
			names = append(names, f.secret)
		}
	}
	return names
}

// lineBreaks are what may split a secret in a text: line breaks with the
// indentation after them, and their JSON escapes (a PEM in a JSON string).
var lineBreaks = regexp.MustCompile(`(\r?\n|\\r|\\n)[ \t]*`)

// find returns the secrets data holds, each once, with the form it was
// found in, such as "out-bearer token (v1) (base64)".
func (ss *secretSet) find(data []byte) []string {
	var found []string
	seen := map[string]bool{}
	for _, v := range [][]byte{data, lineBreaks.ReplaceAll(data, nil)} {
		for i := 0; i+indexLen <= len(v); i++ {
			for _, fi := range ss.index[string(v[i:i+indexLen])] {
				f := ss.forms[fi]
				if !seen[f.secret] && bytes.HasPrefix(v[i:], f.text) {
					seen[f.secret] = true
					found = append(found, fmt.Sprintf("%s (%s)", f.secret, f.how))
				}
			}
		}
	}
	return found
}

// secretsRemote is what the agent's outgoing connections call: a check of
// each outbound credential, an OAuth2 token endpoint and a path that
// fails, over plain HTTP, and the same over HTTPS with a client
// certificate required. It records the credential headers of every
// request.
type secretsRemote struct {
	plain, mtls *httptest.Server
	caFile      string      // the HTTPS server's certificate, for --ca-file
	clientCA    *testenv.CA // the CA of the client certificates it accepts

	mu     sync.Mutex
	gen    int
	want   map[string]string // what /check/{kind} accepts now
	issued []string          // access tokens given
	jwts   []string          // JWTs received
	oks    map[string]int    // "kind/gen" -> good credentials taken
	seen   bytes.Buffer      // the credential headers of every request
}

func newSecretsRemote(t *testing.T, dir string) *secretsRemote {
	t.Helper()
	r := &secretsRemote{oks: map[string]int{}, clientCA: testenv.NewCA(t, "secrets client CA")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /check/{kind}", r.check)
	mux.HandleFunc("POST /token", r.token)
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "remote exploded"})
	})
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, req *http.Request) {
		got := req.Header.Get("Authorization")
		if k := req.Header.Get(secOutKeyHeader); k != "" {
			got = k
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "credential rejected: %s", got)
	})
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		fmt.Fprintf(&r.seen, "%s %s\n", req.Method, req.URL.Path)
		for _, name := range []string{"Authorization", secOutKeyHeader} {
			for _, v := range req.Header.Values(name) {
				fmt.Fprintf(&r.seen, "%s: %s\n", name, v)
			}
		}
		if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && strings.Count(tok, ".") == 2 {
			r.jwts = append(r.jwts, tok)
		}
		r.mu.Unlock()
		mux.ServeHTTP(w, req)
	})
	r.plain = httptest.NewServer(h)
	r.mtls = httptest.NewUnstartedServer(h)
	r.mtls.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: r.clientCA.Pool()}
	r.mtls.StartTLS()
	t.Cleanup(r.plain.Close)
	t.Cleanup(r.mtls.Close)
	r.caFile = testenv.WritePEM(t, dir, "mtls-server.pem", "CERTIFICATE", r.mtls.Certificate().Raw)
	return r
}

// expect makes the remote take the credentials of generation gen.
func (r *secretsRemote) expect(gen int, want map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen, r.want = gen, want
}

// accepted is how many good credentials of kind and generation gen the
// remote took.
func (r *secretsRemote) accepted(kind string, gen int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.oks[fmt.Sprintf("%s/%d", kind, gen)]
}

// received returns the credential headers of every request so far.
func (r *secretsRemote) received() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.seen.Bytes())
}

func (r *secretsRemote) issuedTokens() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.issued)
}

func (r *secretsRemote) receivedJWTs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.jwts)
}

// check answers 200 when the request carries the credential of its kind
// that the remote takes now, else 401.
func (r *secretsRemote) check(w http.ResponseWriter, req *http.Request) {
	kind := req.PathValue("kind")
	r.mu.Lock()
	want, gen, issued := r.want[kind], r.gen, slices.Clone(r.issued)
	r.mu.Unlock()
	bearer := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	ok := false
	switch kind {
	case "basic":
		u, p, _ := req.BasicAuth()
		ok = u+":"+p == want
	case "apikey":
		ok = req.Header.Get(secOutKeyHeader) == want
	case "bearer":
		ok = bearer == want
	case "oauth2":
		ok = bearer != "" && slices.Contains(issued, bearer)
	case "jwt":
		v, err := security.NewVerifier(secdef.Definition{Name: "remote", Kind: secdef.KindJWT, Algorithms: []string{secdef.HS256}, Secret: want, Issuer: "weft", Audience: "remote"})
		if err == nil {
			_, err = v.Verify(req)
		}
		ok = err == nil
	case "mtls":
		ok = req.TLS != nil && len(req.TLS.PeerCertificates) > 0 && req.TLS.PeerCertificates[0].Subject.CommonName == want
	}
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "bad " + kind + " credential"})
		return
	}
	r.mu.Lock()
	r.oks[fmt.Sprintf("%s/%d", kind, gen)]++
	r.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "kind": kind})
}

// token is an OAuth2 token endpoint for the client credentials grant, the
// client authenticated with HTTP Basic (RFC 6749 2.3.1: each part
// URL-encoded first).
func (r *secretsRemote) token(w http.ResponseWriter, req *http.Request) {
	id, secret, _ := req.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	r.mu.Lock()
	want := r.want["oauth2"]
	r.mu.Unlock()
	if req.FormValue("grant_type") != "client_credentials" || id != secClientID || secret != want {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	tok := "access+" + rand.Text() + "/" + rand.Text()
	r.mu.Lock()
	r.issued = append(r.issued, tok)
	r.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}
