package cli

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestOutgoingCreate(t *testing.T) {
	files := writeTestFiles(t, map[string]string{"ca.pem": pemOf("CERTIFICATE"), "key.pem": pemOf("PRIVATE KEY")})
	base := []string{"outgoing", "create", "crm", "--address", "https://crm.example"}
	tests := []struct {
		name    string
		extra   []string
		argv    []string // replaces base and extra when set
		want    *adminv1.OutgoingConnection
		wantErr string
	}{
		{name: "address only; active and defaults left to the server", want: &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example"}},
		{
			name: "every field",
			extra: []string{"--path", "/api/customers/{id}", "--method", "post", "--format", "XML", "--timeout", "5s", "--tls-skip-verify",
				"--ca-file", files["ca.pem"], "--security", "crm-token", "--pool-size", "20", "--header", "X-Tenant=acme", "--header", "X-Region = eu", "--inactive"},
			want: &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", PathTemplate: "/api/customers/{id}", Method: "POST",
				DataFormat: "xml", TimeoutMs: 5000, TlsSkipVerify: true, CaBundlePem: strings.TrimSpace(pemOf("CERTIFICATE")), Security: "crm-token",
				PoolSize: 20, Headers: map[string]string{"X-Tenant": "acme", "X-Region": "eu"}, Active: proto.Bool(false)},
		},
		{
			name:  "SOAP",
			extra: []string{"--format", "soap12", "--soap-action", "urn:quotes#GetQuote", "--method", "POST"},
			want:  &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", Method: "POST", DataFormat: "soap12", SoapAction: "urn:quotes#GetQuote"},
		},
		{name: "unknown format", extra: []string{"--format", "protobuf"}, wantErr: `create outgoing connection "crm": --format "protobuf": want json, xml, soap11, soap12`},
		{name: "header without value", extra: []string{"--header", "X-Tenant"}, wantErr: `--header "X-Tenant": want KEY=VALUE`},
		{name: "header name with a space", extra: []string{"--header", "X Tenant=acme"}, wantErr: `--header "X Tenant": not a valid HTTP header name`},
		{name: "header twice", extra: []string{"--header", "A=1", "--header", "A=2"}, wantErr: `--header: "A" is given twice`},
		{name: "CA file missing", extra: []string{"--ca-file", files["missing"]}, wantErr: `--ca-file: open ` + files["missing"] + `: no such file or directory`},
		{name: "CA file without a certificate", extra: []string{"--ca-file", files["key.pem"]}, wantErr: `--ca-file ` + files["key.pem"] + `: holds no PEM CERTIFICATE block`},
		{name: "timeout without unit", extra: []string{"--timeout", "5"}, wantErr: `--timeout "5": want a duration`},
		{name: "negative pool", extra: []string{"--pool-size", "-1"}, wantErr: `--pool-size -1: must not be negative`},
		{name: "bad method", extra: []string{"--method", "GET /"}, wantErr: `--method "GET /": not an HTTP method`},
		{name: "no address", argv: []string{"outgoing", "create", "crm"}, wantErr: `required flag(s) "address" not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			argv := append(slices.Clone(base), tt.extra...)
			if tt.argv != nil {
				argv = tt.argv
			}
			stdout, _, err := e.run(argv...)
			seen := e.outgoing.requestsSeen()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if len(seen) != 0 {
					t.Fatalf("a refused flag reached the server: %v", seen)
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if got := seen[0].(*adminv1.CreateOutgoingConnectionRequest).GetConnection(); !proto.Equal(got, tt.want) {
				t.Errorf("connection = %v\nwant %v", got, tt.want)
			}
			if want := "created outgoing connection crm (revision 31)\n"; stdout != want {
				t.Errorf("stdout = %q, want %q", stdout, want)
			}
		})
	}
}

func TestOutgoingUpdateMask(t *testing.T) {
	tests := []struct {
		name     string
		flags    []string
		wantMask []string
		want     *adminv1.OutgoingConnection
		wantErr  string
	}{
		{name: "address", flags: []string{"--address", "https://crm-2.example"}, wantMask: []string{"address"}, want: &adminv1.OutgoingConnection{Name: "crm", Address: "https://crm-2.example"}},
		{name: "inactive", flags: []string{"--inactive"}, wantMask: []string{"active"}, want: &adminv1.OutgoingConnection{Name: "crm", Active: proto.Bool(false)}},
		{name: "active", flags: []string{"--active"}, wantMask: []string{"active"}, want: &adminv1.OutgoingConnection{Name: "crm", Active: proto.Bool(true)}},
		{name: "verification back on", flags: []string{"--tls-skip-verify=false"}, wantMask: []string{"tls_skip_verify"}, want: &adminv1.OutgoingConnection{Name: "crm"}},
		{name: "system roots again", flags: []string{"--ca-file", ""}, wantMask: []string{"ca_bundle_pem"}, want: &adminv1.OutgoingConnection{Name: "crm"}},
		{name: "headers removed", flags: []string{"--header", ""}, wantMask: []string{"headers"}, want: &adminv1.OutgoingConnection{Name: "crm", Headers: map[string]string{}}},
		{name: "method back to GET", flags: []string{"--method", ""}, wantMask: []string{"method"}, want: &adminv1.OutgoingConnection{Name: "crm"}},
		{name: "security removed", flags: []string{"--security", ""}, wantMask: []string{"security"}, want: &adminv1.OutgoingConnection{Name: "crm"}},
		{
			name:     "several",
			flags:    []string{"--pool-size", "5", "--timeout", "1m", "--security", "crm-token", "--path", "/v2/{id}", "--format", "json"},
			wantMask: []string{"path_template", "data_format", "timeout_ms", "security", "pool_size"},
			want:     &adminv1.OutgoingConnection{Name: "crm", PathTemplate: "/v2/{id}", DataFormat: "json", TimeoutMs: 60000, Security: "crm-token", PoolSize: 5},
		},
		{name: "nothing to change", wantErr: `update outgoing connection "crm": nothing to change`},
		{name: "active and inactive", flags: []string{"--active", "--inactive"}, wantErr: "[active inactive] were all set"},
		{name: "bad header", flags: []string{"--header", "=x"}, wantErr: `--header "=x": want KEY=VALUE`},
		{name: "bad format", flags: []string{"--format", "csv"}, wantErr: `--format "csv"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(e *testEnv) {
				e.outgoing.put(&adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", Active: proto.Bool(true), Revision: 3})
			})
			stdout, _, err := e.run(append([]string{"outgoing", "update", "crm"}, tt.flags...)...)
			req, sent := updateSent[*adminv1.UpdateOutgoingConnectionRequest](t, err, e.outgoing.requestsSeen(), tt.wantErr, tt.wantMask)
			if !sent {
				return
			}
			if !proto.Equal(req.GetConnection(), tt.want) {
				t.Errorf("connection = %v\nwant %v", req.GetConnection(), tt.want)
			}
			if want := "updated outgoing connection crm (revision 31)\n"; stdout != want {
				t.Errorf("stdout = %q, want %q", stdout, want)
			}
		})
	}
}

func TestOutgoingReadAndDelete(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv) {
		e.outgoing.put(&adminv1.OutgoingConnection{
			Name: "crm", Address: "https://crm.example", PathTemplate: "/api/customers/{id}", TimeoutMs: 5000, Security: "crm-token",
			CaBundlePem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", PoolSize: 20,
			Headers: map[string]string{"X-Tenant": "acme", "Accept-Language": "de"}, Active: proto.Bool(true), Revision: 4,
			CreatedAt: timestamppb.New(testNow.Add(-2 * time.Hour)), UpdatedAt: timestamppb.New(testNow.Add(-90 * time.Second)),
		})
		e.outgoing.put(&adminv1.OutgoingConnection{
			Name: "quotes", Address: "http://quotes.example", PathTemplate: "/soap", Method: "POST", DataFormat: "soap11",
			SoapAction: "urn:quotes#GetQuote", Active: proto.Bool(false), Revision: 5,
		})
	})
	t.Run("list table", func(t *testing.T) {
		stdout, _, err := e.run("outgoing", "list")
		if err != nil {
			t.Fatal(err)
		}
		want := "NAME    METHOD  URL                                     FORMAT  SECURITY   ACTIVE  REVISION\n" +
			"crm     GET     https://crm.example/api/customers/{id}  json    crm-token  yes     4\n" +
			"quotes  POST    http://quotes.example/soap              soap11  -          no      5\n"
		if stdout != want {
			t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
		}
	})
	for _, format := range []string{"json", "yaml"} {
		t.Run("list "+format, func(t *testing.T) {
			stdout, _, err := e.run("outgoing", "list", "-o", format)
			if err != nil {
				t.Fatal(err)
			}
			var resp adminv1.ListOutgoingConnectionsResponse
			if err := unmarshalOutput(format, stdout, &resp); err != nil {
				t.Fatalf("%v\n%s", err, stdout)
			}
			if len(resp.GetConnections()) != 2 || resp.GetConnections()[0].GetHeaders()["X-Tenant"] != "acme" {
				t.Errorf("connections = %v", resp.GetConnections())
			}
			if !strings.Contains(stdout, "path_template") || !strings.Contains(stdout, "ca_bundle_pem") {
				t.Errorf("want proto field names:\n%s", stdout)
			}
		})
	}
	t.Run("get table", func(t *testing.T) {
		stdout, _, err := e.run("outgoing", "get", "crm")
		if err != nil {
			t.Fatal(err)
		}
		want := "name:       crm\n" +
			"address:    https://crm.example\n" +
			"path:       /api/customers/{id}\n" +
			"method:     GET\n" +
			"format:     json\n" +
			"timeout:    5s\n" +
			"tls:        own CA bundle (-----BEGIN CERTIFICATE----- …)\n" +
			"security:   crm-token\n" +
			"pool size:  20\n" +
			"header:     Accept-Language: de\n" +
			"header:     X-Tenant: acme\n" +
			"active:     yes\n" +
			"revision:   4\n" +
			"created:    " + testNow.Add(-2*time.Hour).Local().Format(time.RFC3339) + " (2h ago)\n" +
			"updated:    " + testNow.Add(-90*time.Second).Local().Format(time.RFC3339) + " (1m ago)\n"
		if stdout != want {
			t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
		}
		stdout, _, err = e.run("outgoing", "get", "quotes")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"soap action:  urn:quotes#GetQuote\n", "timeout:      30s\n", "tls:          system roots\n", "pool size:    10\n", "active:       no\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("get yaml", func(t *testing.T) {
		stdout, _, err := e.run("outgoing", "get", "quotes", "-o", "yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"connection:\n", "  data_format: soap11\n", "  soap_action: urn:quotes#GetQuote\n", "  active: false\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("get missing", func(t *testing.T) {
		_, _, err := e.run("outgoing", "get", "nope")
		if err == nil || err.Error() != `get outgoing connection "nope": outgoing connection "nope" not found` || status.Code(err) != codes.NotFound {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		stdout, _, err := e.run("outgoing", "delete", "quotes")
		if err != nil {
			t.Fatal(err)
		}
		if want := "deleted outgoing connection quotes (revision 31)\n"; stdout != want {
			t.Errorf("stdout = %q, want %q", stdout, want)
		}
		stdout, _, err = e.run("outgoing", "delete", "crm", "-o", "json")
		var resp adminv1.DeleteOutgoingConnectionResponse
		if err != nil || unmarshalOutput("json", stdout, &resp) != nil || resp.GetRevision() != 32 {
			t.Errorf("json = %q (%v)", stdout, err)
		}
	})
}

func TestOutgoingPing(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv) {
		e.outgoing.put(&adminv1.OutgoingConnection{Name: "crm", Address: "https://crm.example", PathTemplate: "/health"})
		e.outgoing.put(&adminv1.OutgoingConnection{Name: "down", Address: "http://127.0.0.1:9"})
	})
	t.Run("answer", func(t *testing.T) {
		stdout, _, err := e.run("outgoing", "ping", "crm", "--agent", "edge-1")
		if err != nil {
			t.Fatal(err)
		}
		want := "AGENT   URL                         STATUS  LATENCY\n" +
			"edge-1  https://crm.example/health  204     12.35ms\n"
		if stdout != want {
			t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
		}
		last := e.outgoing.requestsSeen()
		if req := last[len(last)-1].(*adminv1.PingOutgoingConnectionRequest); req.GetAgentId() != "edge-1" || req.GetName() != "crm" {
			t.Errorf("request = %v", req)
		}
	})
	t.Run("answer yaml", func(t *testing.T) {
		stdout, _, err := e.run("outgoing", "ping", "crm", "-o", "yaml")
		if err != nil {
			t.Fatal(err)
		}
		var resp adminv1.PingOutgoingConnectionResponse
		if err := unmarshalOutput("yaml", stdout, &resp); err != nil || resp.GetStatus() != 204 || resp.GetAgentId() != "a1" || resp.GetLatencyUs() != 12345 {
			t.Errorf("yaml = %q (%v)", stdout, err)
		}
	})
	t.Run("no answer fails, naming why", func(t *testing.T) {
		stdout, _, err := e.run("outgoing", "ping", "down")
		want := `ping outgoing connection "down" from agent a1: no answer: dial tcp 127.0.0.1:9: connect: connection refused`
		if err == nil || err.Error() != want {
			t.Fatalf("error = %v\nwant %s", err, want)
		}
		if wantOut := "AGENT  URL                 STATUS  LATENCY\na1     http://127.0.0.1:9  -       -\n"; stdout != wantOut {
			t.Errorf("stdout =\n%s\nwant\n%s", stdout, wantOut)
		}
	})
	t.Run("no answer fails with json too", func(t *testing.T) {
		stdout, _, err := e.run("outgoing", "ping", "down", "-o", "json")
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("error = %v", err)
		}
		var resp adminv1.PingOutgoingConnectionResponse
		if err := unmarshalOutput("json", stdout, &resp); err != nil || resp.GetError() == "" {
			t.Errorf("json = %q (%v)", stdout, err)
		}
	})
	t.Run("unknown connection", func(t *testing.T) {
		_, _, err := e.run("outgoing", "ping", "nope")
		if err == nil || err.Error() != `ping outgoing connection "nope": outgoing connection "nope" not found` {
			t.Fatalf("error = %v", err)
		}
	})
}
