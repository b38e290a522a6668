package engine

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/shared/snapshot"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// relaySrc is a service that calls the outgoing connection "backend" with
// its input's id, and answers with what the backend said and who called.
const relaySrc = `package relay

import "github.com/weft-dev/weft/agent/sdk"

type In struct {
	ID string ` + "`json:\"id\"`" + `
}

type Out struct {
	Server string ` + "`json:\"server\"`" + `
	ID     string ` + "`json:\"id\"`" + `
	Key    string ` + "`json:\"key\"`" + `
	Caller string ` + "`json:\"caller\"`" + `
}

func init() { sdk.Register("relay.get", Get) }

func Get(ctx *sdk.Context, in In) (Out, error) {
	var out Out
	if err := ctx.Outgoing("backend").JSON(map[string]string{"id": in.ID}, map[string]string{"caller": ctx.Principal().Subject}, &out); err != nil {
		return Out{}, err
	}
	out.Caller = ctx.Principal().Subject
	return out, nil
}
`

func relayPackage() *adminv1.Package {
	files := []*adminv1.SourceFile{{Name: "relay.go", Content: []byte(relaySrc)}}
	return &adminv1.Package{Name: "relay", Version: 1, Sha256: snapshot.PackageHash(files), Services: []string{"relay.get"}, Sources: files}
}

// backend is a remote the relay calls: it answers with its name, the id
// in its path and the API key it was sent. Id "missing" gets a 404.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := strings.TrimPrefix(r.URL.Path, "/items/")
		if id == "missing" {
			http.Error(w, "no item missing", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"server": name, "id": id, "key": r.Header.Get("X-Backend-Key")})
	}))
	t.Cleanup(srv.Close)
	return srv
}

const partnerSecret = "0123456789abcdef0123456789abcdef-partner"

// relayObjects are the channel, security definitions and outgoing
// connections of a snapshot serving the relay: the channel takes partner
// JWTs, the connection sends the backend key.
type relayObjects struct {
	channels []*adminv1.Channel
	security []*adminv1.SecurityDefinition
	outgoing []*adminv1.OutgoingConnection
}

func newRelayObjects(address string) relayObjects {
	return relayObjects{
		channels: []*adminv1.Channel{{Name: "relay", Path: "/relay/{id}", Methods: []string{"POST"}, Service: "relay.get", Active: proto.Bool(true), Security: "partner"}},
		security: []*adminv1.SecurityDefinition{
			{Name: "partner", Kind: "jwt", Algorithms: []string{"HS256"}, Secret: partnerSecret, Issuer: "https://issuer.test"},
			{Name: "backend-key", Kind: "api_key", Header: "X-Backend-Key", Key: "bk-1"},
		},
		outgoing: []*adminv1.OutgoingConnection{
			{Name: "backend", Address: address, PathTemplate: "/items/{id}", Method: "POST", Security: "backend-key", TimeoutMs: 5000, Active: proto.Bool(true)},
			{Name: "off", Address: address},
		},
	}
}

// clone returns a deep copy, to edit for the next snapshot.
func (o relayObjects) clone() relayObjects {
	var c relayObjects
	for _, x := range o.channels {
		c.channels = append(c.channels, proto.Clone(x).(*adminv1.Channel))
	}
	for _, x := range o.security {
		c.security = append(c.security, proto.Clone(x).(*adminv1.SecurityDefinition))
	}
	for _, x := range o.outgoing {
		c.outgoing = append(c.outgoing, proto.Clone(x).(*adminv1.OutgoingConnection))
	}
	return c
}

func (o relayObjects) snapshot(rev int64) *agentv1.Desired {
	s := &agentv1.Desired{Revision: rev, Packages: []*adminv1.Package{relayPackage()}, Channels: o.channels, Security: o.security, Outgoing: o.outgoing}
	s.Hash = snapshot.Hash(s)
	return s
}

// apply applies o at rev and fails the test on errors.
func (o relayObjects) apply(t *testing.T, e *Engine, rev int64) {
	t.Helper()
	if _, errs := e.Apply(context.Background(), o.snapshot(rev)); len(errs) > 0 {
		t.Fatalf("apply revision %d: %v", rev, errs)
	}
}

// relay invokes relay.get with id and returns its output.
func relay(t *testing.T, e *Engine, id string) map[string]string {
	t.Helper()
	out := e.Invoke(context.Background(), "relay.get", sdk.Request{}, []byte(`{"id":"`+id+`"}`), 0)
	if out.Status != http.StatusOK {
		t.Fatalf("relay.get %s = %d %s", id, out.Status, out.Error)
	}
	var m map[string]string
	if err := json.Unmarshal(out.Output, &m); err != nil {
		t.Fatalf("relay.get output %s: %v", out.Output, err)
	}
	return m
}

// partnerToken is an HS256 JWT for subject, signed with partnerSecret.
func partnerToken(t *testing.T, subject string) string {
	t.Helper()
	now := time.Now()
	payload, err := json.Marshal(map[string]any{"iss": "https://issuer.test", "sub": subject, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte(partnerSecret))
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}

func TestApplyOutgoingConnections(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)

	objs := newRelayObjects(a.URL)
	objs.apply(t, e, 1)
	if got := relay(t, e, "7"); got["server"] != "A" || got["id"] != "7" || got["key"] != "bk-1" {
		t.Fatalf("relay = %v, want server A, id 7 and the backend key", got)
	}
	conn := e.Current().conns.conns["backend"]
	verifier := e.Current().conns.verifiers["partner"]
	pkg := e.Current().packages[relayPackage().GetSha256()]
	if conn == nil || verifier == nil || pkg == nil {
		t.Fatalf("state lacks the connection (%v), the verifier (%v) or the package (%v)", conn, verifier, pkg)
	}

	// The channel checks the partner's JWT and hands the subject on.
	h := &channel.Handler{Current: e.Route, MaxBodyBytes: 1 << 20, NewCID: NewCID, Log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(auth string) (int, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/relay/9", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if status, got := call("Bearer " + partnerToken(t, "partner-1")); status != http.StatusOK || got["caller"] != "partner-1" || got["id"] != "9" || got["server"] != "A" {
		t.Fatalf("channel with a good token = %d %v", status, got)
	}
	if status, _ := call(""); status != http.StatusUnauthorized {
		t.Fatalf("channel without a token = %d, want 401", status)
	}

	// An unrelated change reuses the connection and the verifier.
	objs.channels = append(objs.channels, &adminv1.Channel{Name: "open", Path: "/open/{id}", Methods: []string{"POST"}, Service: "relay.get", Active: proto.Bool(true)})
	objs.apply(t, e, 2)
	if got := e.Current().conns.conns["backend"]; got != conn {
		t.Fatal("an unrelated deploy replaced the unchanged connection")
	}
	if got := e.Current().conns.verifiers["partner"]; got != verifier {
		t.Fatal("an unrelated deploy replaced the unchanged verifier")
	}

	// A new address applies to the next call, with no restart.
	next := objs.clone()
	next.outgoing[0].Address = b.URL
	next.apply(t, e, 3)
	if got := relay(t, e, "8"); got["server"] != "B" || got["key"] != "bk-1" {
		t.Fatalf("relay after the address changed = %v, want server B", got)
	}
	if e.Current().conns.conns["backend"] == conn {
		t.Fatal("the changed connection was not rebuilt")
	}
	if e.Current().packages[relayPackage().GetSha256()] != pkg {
		t.Fatal("the package was reloaded; only the connection changed")
	}
	objs = next

	// A changed security definition rebuilds the connection that uses it.
	conn = e.Current().conns.conns["backend"]
	next = objs.clone()
	next.security[1].Key = "bk-2"
	next.apply(t, e, 4)
	if got := relay(t, e, "8"); got["key"] != "bk-2" {
		t.Fatalf("relay after the key changed = %v, want key bk-2", got)
	}
	if e.Current().conns.conns["backend"] == conn {
		t.Fatal("the connection kept the old credentials")
	}
	if e.Current().conns.verifiers["partner"] != verifier {
		t.Fatal("the unchanged partner verifier was rebuilt")
	}
	objs = next

	// A remote's error reaches a channel's caller as a 502 naming the
	// connection, without the remote's answer (that goes to the agent's
	// log); an operator's weftctl invoke reads it whole.
	out := e.Invoke(context.Background(), "relay.get", sdk.Request{Channel: "relay"}, []byte(`{"id":"missing"}`), 0)
	if out.Status != http.StatusBadGateway || !strings.Contains(out.Error, "outgoing connection backend failed") || strings.Contains(out.Error, "no item missing") {
		t.Fatalf("relay of a missing item = %d %q, want 502 naming the connection and not the remote's answer", out.Status, out.Error)
	}
	out = e.Invoke(context.Background(), "relay.get", sdk.Request{}, []byte(`{"id":"missing"}`), 0)
	if out.Status != http.StatusBadGateway || !strings.Contains(out.Error, "404 Not Found: no item missing") {
		t.Fatalf("weftctl invoke's relay of a missing item = %d %q, want 502 with the remote's answer", out.Status, out.Error)
	}

	// A deactivated connection refuses calls with a 503.
	off := objs.clone()
	off.outgoing[0].Active = proto.Bool(false)
	off.apply(t, e, 5)
	out = e.Invoke(context.Background(), "relay.get", sdk.Request{}, []byte(`{"id":"1"}`), 0)
	if out.Status != http.StatusServiceUnavailable || !strings.Contains(out.Error, `outgoing connection "backend" is inactive`) {
		t.Fatalf("relay over an inactive connection = %d %q", out.Status, out.Error)
	}
	objs.apply(t, e, 6)
	if got := relay(t, e, "1"); got["server"] != "B" {
		t.Fatalf("relay after reactivation = %v", got)
	}
}

func TestApplyRefusesBadConnections(t *testing.T) {
	srv := backend(t, "A")
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	good := newRelayObjects(srv.URL)
	good.apply(t, e, 1)
	conn := e.Current().conns.conns["backend"]

	tests := []struct {
		name       string
		edit       func(o *relayObjects)
		kind, obj  string // the object an error names
		wantInMsg  string
		allowOther bool // other objects may be named too
	}{
		{
			name:      "jwt with a short secret",
			edit:      func(o *relayObjects) { o.security[0].Secret = "short" },
			kind:      "security",
			obj:       "partner",
			wantInMsg: "secret is 5 bytes, HS256 needs at least 32",
			// The channel that uses it cannot be served either.
			allowOther: true,
		},
		{
			name:      "channel naming a missing definition",
			edit:      func(o *relayObjects) { o.channels[0].Security = "nobody" },
			kind:      "channel",
			obj:       "relay",
			wantInMsg: `security definition "nobody" is not in the snapshot`,
		},
		{
			name:      "channel naming an outbound-only definition",
			edit:      func(o *relayObjects) { o.channels[0].Security = "bearer" },
			kind:      "channel",
			obj:       "relay",
			wantInMsg: `security definition "bearer" is not in the snapshot, or cannot verify inbound requests`,
		},
		{
			name:      "connection naming a missing definition",
			edit:      func(o *relayObjects) { o.outgoing[0].Security = "nobody" },
			kind:      "outgoing",
			obj:       "backend",
			wantInMsg: `security definition "nobody" is not in the snapshot`,
		},
		{
			name:      "connection naming an inbound-only definition",
			edit:      func(o *relayObjects) { o.outgoing[0].Security = "inbound-only" },
			kind:      "outgoing",
			obj:       "backend",
			wantInMsg: `security definition "inbound-only" is not in the snapshot, or cannot supply outbound credentials`,
		},
		{
			name:      "connection with a bad address",
			edit:      func(o *relayObjects) { o.outgoing[0].Address = "ftp://files.example" },
			kind:      "outgoing",
			obj:       "backend",
			wantInMsg: `scheme "ftp" is not http or https`,
		},
		{
			name: "two definitions of one name",
			edit: func(o *relayObjects) {
				o.security = append(o.security, &adminv1.SecurityDefinition{Name: "partner", Kind: "basic_auth", Username: "u", Password: "p"})
			},
			kind:      "security",
			obj:       "partner",
			wantInMsg: "two definitions of this name",
		},
		{
			name: "two connections of one name",
			edit: func(o *relayObjects) {
				o.outgoing = append(o.outgoing, &adminv1.OutgoingConnection{Name: "backend", Address: "http://other.example", Active: proto.Bool(true)})
			},
			kind:      "outgoing",
			obj:       "backend",
			wantInMsg: "two connections of this name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := good.clone()
			bad.security = append(bad.security,
				&adminv1.SecurityDefinition{Name: "bearer", Kind: "bearer", Token: "t-1"},
				&adminv1.SecurityDefinition{Name: "inbound-only", Kind: "jwt", Algorithms: []string{"ES256"}, JwksUrl: "https://issuer.test/jwks", Issuer: "https://issuer.test"})
			tt.edit(&bad)
			_, errs := e.Apply(context.Background(), bad.snapshot(2))
			var found bool
			var all []string
			for _, err := range errs {
				all = append(all, err.GetKind()+" "+err.GetName()+": "+err.GetMessage())
				// A router error names its channel in the message only.
				named := err.GetName() == tt.obj || tt.kind == "channel" && err.GetName() == ""
				if err.GetKind() == tt.kind && named && strings.Contains(err.GetMessage(), tt.wantInMsg) {
					found = true
				}
			}
			if !found {
				t.Fatalf("errors:\n%s\nwant a %s %q error containing %q", strings.Join(all, "\n"), tt.kind, tt.obj, tt.wantInMsg)
			}
			if len(errs) > 1 && !tt.allowOther {
				t.Fatalf("errors:\n%s\nwant only the one", strings.Join(all, "\n"))
			}
			if e.Current().Revision() != 1 || e.Current().conns.conns["backend"] != conn {
				t.Fatalf("a refused snapshot changed the state: revision %d", e.Current().Revision())
			}
			if got := relay(t, e, "5"); got["server"] != "A" || got["key"] != "bk-1" {
				t.Fatalf("relay after a refused snapshot = %v", got)
			}
		})
	}
}

func TestPing(t *testing.T) {
	var heads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	if _, _, _, err := e.Ping(context.Background(), "backend"); err == nil || !strings.Contains(err.Error(), "no config yet") {
		t.Fatalf("Ping before any snapshot = %v", err)
	}
	newRelayObjects(srv.URL).apply(t, e, 1)

	tests := []struct {
		name   string
		conn   string
		status int
		err    string
	}{
		{"existing", "backend", http.StatusNoContent, ""},
		{"inactive", "off", 0, `outgoing connection "off" is inactive`},
		{"unknown", "nope", 0, `outgoing connection "nope" does not exist on this agent`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			address, status, latency, err := e.Ping(context.Background(), tt.conn)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || address != "" {
					t.Fatalf("Ping = %q, %v; want the error %q", address, err, tt.err)
				}
				return
			}
			if err != nil || address != srv.URL || status != tt.status || latency <= 0 {
				t.Fatalf("Ping = %q %d %s %v; want %s answering %d", address, status, latency, err, srv.URL, tt.status)
			}
		})
	}
	if n := heads.Load(); n != 1 {
		t.Fatalf("the server got %d HEAD requests, want 1", n)
	}

	srv.Close()
	if _, _, _, err := e.Ping(context.Background(), "backend"); err == nil {
		t.Fatal("Ping of a closed server succeeded")
	}
}

// The control plane sends only the security definitions that active
// channels and connections name, so an inactive one may name a definition
// the snapshot leaves out; the snapshot that activates it carries it.
func TestApplyInactiveObjectsNeedNoDefinition(t *testing.T) {
	srv := backend(t, "A")
	e := New(slog.New(slog.DiscardHandler), 5*time.Second)
	o := newRelayObjects(srv.URL)
	o.channels = append(o.channels, &adminv1.Channel{Name: "paused", Path: "/paused", Methods: []string{"POST"}, Service: "relay.get", Security: "left-out"})
	o.outgoing = append(o.outgoing, &adminv1.OutgoingConnection{Name: "dormant", Address: srv.URL, Security: "left-out"})
	o.apply(t, e, 1)
	if got := relay(t, e, "5"); got["server"] != "A" || got["key"] != "bk-1" {
		t.Fatalf("relay = %v", got)
	}

	on := o.clone()
	on.channels[1].Active = proto.Bool(true)
	on.outgoing[2].Active = proto.Bool(true)
	on.security = append(on.security, &adminv1.SecurityDefinition{Name: "left-out", Kind: "basic_auth", Username: "u", Password: "p"})
	on.apply(t, e, 2)
	if e.Current().conns.conns["dormant"] == nil {
		t.Fatal("the activated connection was not built")
	}
}
