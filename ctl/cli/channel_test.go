package cli

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestChannelCreate(t *testing.T) {
	base := []string{"channel", "create", "orders", "--path", "/api/orders/{id}", "--service", "orders.get"}
	tests := []struct {
		name    string
		extra   []string
		want    *adminv1.Channel
		wantErr string
		// refusedByServer says the server, not weftctl, refuses the request.
		refusedByServer bool
	}{
		{
			name: "defaults leave active and methods to the server",
			want: &adminv1.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "orders.get"},
		},
		{
			name:  "methods repeated and comma-separated, upper-cased",
			extra: []string{"--method", "get", "--method", "PUT,delete"},
			want:  &adminv1.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "orders.get", Methods: []string{"GET", "PUT", "DELETE"}},
		},
		{
			name:  "timeout and max body",
			extra: []string{"--timeout", "5s", "--max-body", "1MiB"},
			want:  &adminv1.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "orders.get", TimeoutMs: 5000, MaxBodyBytes: 1 << 20},
		},
		{
			name:  "milliseconds and plain bytes",
			extra: []string{"--timeout", "250ms", "--max-body", "65536"},
			want:  &adminv1.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "orders.get", TimeoutMs: 250, MaxBodyBytes: 65536},
		},
		{
			name:  "KiB, any case",
			extra: []string{"--max-body", "512kib"},
			want:  &adminv1.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "orders.get", MaxBodyBytes: 512 << 10},
		},
		{
			name:  "inactive",
			extra: []string{"--inactive"},
			want:  &adminv1.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "orders.get", Active: proto.Bool(false)},
		},
		{
			name:  "security, rate limit and burst",
			extra: []string{"--security", "partner-jwt", "--rate-limit", "2.5", "--rate-burst", "5"},
			want:  &adminv1.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "orders.get", Security: "partner-jwt", RateLimit: 2.5, RateBurst: 5},
		},
		{
			name:  "SOAP format and actions",
			extra: []string{"--format", "SOAP11", "--soap-action", "GetOrder=orders.get", "--soap-action", "PutOrder = orders.put"},
			want: &adminv1.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "orders.get", DataFormat: "soap11",
				SoapActions: map[string]string{"GetOrder": "orders.get", "PutOrder": "orders.put"}},
		},
		{
			name:  "description",
			extra: []string{"--description", "Orders by id.\nOwned by the shop team."},
			want:  &adminv1.Channel{Name: "orders", Path: "/api/orders/{id}", Service: "orders.get", Description: "Orders by id.\nOwned by the shop team."},
		},
		{name: "unknown format", extra: []string{"--format", "yaml"}, wantErr: `create channel "orders": --format "yaml": want json, xml, soap11, soap12`},
		{name: "soap action without service", extra: []string{"--soap-action", "GetOrder"}, wantErr: `--soap-action "GetOrder": want KEY=VALUE`},
		{name: "soap action twice", extra: []string{"--soap-action", "A=x", "--soap-action", "A=y"}, wantErr: `--soap-action: "A" is given twice`},
		{name: "negative rate limit", extra: []string{"--rate-limit", "-1"}, wantErr: `--rate-limit -1: want 0 (no limit) or more`},
		{name: "rate limit not a number", extra: []string{"--rate-limit", "fast"}, wantErr: `invalid argument "fast" for "--rate-limit"`},
		{name: "negative burst", extra: []string{"--rate-burst", "-2"}, wantErr: `--rate-burst -2: must not be negative`},
		{name: "decimal megabytes", extra: []string{"--max-body", "1MB"}, wantErr: `create channel "orders": --max-body "1MB": want a whole number of bytes`},
		{name: "fractional size", extra: []string{"--max-body", "1.5MiB"}, wantErr: `--max-body "1.5MiB": want a whole number`},
		{name: "negative size", extra: []string{"--max-body", "-1"}, wantErr: `--max-body "-1": must not be negative`},
		{name: "overflowing size", extra: []string{"--max-body", "9999999999GiB"}, wantErr: `--max-body "9999999999GiB": too large`},
		{name: "timeout without unit", extra: []string{"--timeout", "5"}, wantErr: `--timeout "5": want a duration such as 5s or 250ms`},
		{name: "negative timeout", extra: []string{"--timeout", "-1s"}, wantErr: `--timeout "-1s": must not be negative`},
		{name: "sub-millisecond timeout", extra: []string{"--timeout", "1500us"}, wantErr: `--timeout "1500us": must be whole milliseconds`},
		{name: "bad method", extra: []string{"--method", "GE T"}, wantErr: `--method "GE T": not an HTTP method`},
		{name: "path without slash", extra: []string{"--path", "api"}, wantErr: `--path "api": must start with /`},
		{name: "server refuses", extra: []string{"--service", "nope"}, wantErr: `create channel "orders": service "nope" is not deployed`, refusedByServer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, _, err := e.run(append(slices.Clone(base), tt.extra...)...)
			seen := e.channels.requestsSeen()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if !tt.refusedByServer && len(seen) != 0 {
					t.Fatalf("a refused flag reached the server: %v", seen)
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if len(seen) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(seen))
			}
			if got := seen[0].(*adminv1.CreateChannelRequest).GetChannel(); !proto.Equal(got, tt.want) {
				t.Errorf("channel = %v\nwant %v", got, tt.want)
			}
			if want := "created channel orders (revision 11)\n"; stdout != want {
				t.Errorf("stdout = %q, want %q", stdout, want)
			}
		})
	}
}

func TestChannelCreateRequiresPath(t *testing.T) {
	e := newTestEnv(t)
	_, _, err := e.run("channel", "create", "orders")
	if err == nil || !strings.Contains(err.Error(), `required flag(s) "path" not set`) {
		t.Fatalf("error = %v", err)
	}
}

func TestChannelUpdateMask(t *testing.T) {
	tests := []struct {
		name     string
		flags    []string
		wantMask []string
		want     *adminv1.Channel
		wantErr  string
	}{
		{name: "path", flags: []string{"--path", "/v2"}, wantMask: []string{"path"}, want: &adminv1.Channel{Name: "orders", Path: "/v2"}},
		{name: "methods", flags: []string{"--method", "get,head"}, wantMask: []string{"methods"}, want: &adminv1.Channel{Name: "orders", Methods: []string{"GET", "HEAD"}}},
		{name: "methods reset", flags: []string{"--method", ""}, wantMask: []string{"methods"}, want: &adminv1.Channel{Name: "orders", Methods: []string{}}},
		{name: "active", flags: []string{"--active"}, wantMask: []string{"active"}, want: &adminv1.Channel{Name: "orders", Active: proto.Bool(true)}},
		{name: "inactive", flags: []string{"--inactive"}, wantMask: []string{"active"}, want: &adminv1.Channel{Name: "orders", Active: proto.Bool(false)}},
		{name: "timeout back to default", flags: []string{"--timeout", "0"}, wantMask: []string{"timeout_ms"}, want: &adminv1.Channel{Name: "orders"}},
		{
			name:     "several",
			flags:    []string{"--max-body", "2MiB", "--service", "orders.v2", "--timeout", "1m"},
			wantMask: []string{"service", "timeout_ms", "max_body_bytes"},
			want:     &adminv1.Channel{Name: "orders", Service: "orders.v2", TimeoutMs: 60000, MaxBodyBytes: 2 << 20},
		},
		{
			name:     "all",
			flags:    []string{"--path", "/p", "--method", "GET", "--service", "s", "--inactive", "--timeout", "2s", "--max-body", "10"},
			wantMask: []string{"path", "methods", "service", "active", "timeout_ms", "max_body_bytes"},
			want:     &adminv1.Channel{Name: "orders", Path: "/p", Methods: []string{"GET"}, Service: "s", Active: proto.Bool(false), TimeoutMs: 2000, MaxBodyBytes: 10},
		},
		{name: "security", flags: []string{"--security", "partner"}, wantMask: []string{"security"}, want: &adminv1.Channel{Name: "orders", Security: "partner"}},
		{name: "security removed", flags: []string{"--security", ""}, wantMask: []string{"security"}, want: &adminv1.Channel{Name: "orders"}},
		{
			name:     "rate limit and burst",
			flags:    []string{"--rate-burst", "20", "--rate-limit", "10"},
			wantMask: []string{"rate_limit", "rate_burst"},
			want:     &adminv1.Channel{Name: "orders", RateLimit: 10, RateBurst: 20},
		},
		{name: "rate limit off", flags: []string{"--rate-limit", "0"}, wantMask: []string{"rate_limit"}, want: &adminv1.Channel{Name: "orders"}},
		{
			name:     "soap actions",
			flags:    []string{"--soap-action", "Get=orders.get"},
			wantMask: []string{"soap_actions"},
			want:     &adminv1.Channel{Name: "orders", SoapActions: map[string]string{"Get": "orders.get"}},
		},
		{name: "soap actions removed", flags: []string{"--soap-action", ""}, wantMask: []string{"soap_actions"}, want: &adminv1.Channel{Name: "orders", SoapActions: map[string]string{}}},
		{name: "format", flags: []string{"--format", "xml"}, wantMask: []string{"data_format"}, want: &adminv1.Channel{Name: "orders", DataFormat: "xml"}},
		{name: "nothing to change", flags: nil, wantErr: `update channel "orders": nothing to change`},
		{name: "bad format", flags: []string{"--format", "soap13"}, wantErr: `--format "soap13": want json, xml, soap11, soap12`},
		{name: "bad soap action", flags: []string{"--soap-action", "=orders.get"}, wantErr: `--soap-action "=orders.get": want KEY=VALUE`},
		{name: "active and inactive", flags: []string{"--active", "--inactive"}, wantErr: "[active inactive] were all set"},
		{name: "empty service", flags: []string{"--service", ""}, wantErr: "--service must not be empty"},
		{name: "bad size", flags: []string{"--max-body", "lots"}, wantErr: `--max-body "lots"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(e *testEnv) {
				e.channels.put(&adminv1.Channel{Name: "orders", Path: "/api/orders", Service: "orders.get", Revision: 3})
			})
			stdout, _, err := e.run(append([]string{"channel", "update", "orders"}, tt.flags...)...)
			req, sent := updateSent[*adminv1.UpdateChannelRequest](t, err, e.channels.requestsSeen(), tt.wantErr, tt.wantMask)
			if !sent {
				return
			}
			if !proto.Equal(req.GetChannel(), tt.want) {
				t.Errorf("channel = %v\nwant %v", req.GetChannel(), tt.want)
			}
			if want := "updated channel orders (revision 11)\n"; stdout != want {
				t.Errorf("stdout = %q, want %q", stdout, want)
			}
		})
	}
}

func TestChannelReadAndDelete(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv) {
		e.channels.put(&adminv1.Channel{
			Name: "hello", Path: "/api/hello", Methods: []string{"GET", "POST"}, Service: "hello.greet",
			Active: proto.Bool(true), TimeoutMs: 5000, MaxBodyBytes: 1 << 20, Revision: 4,
			CreatedAt: timestamppb.New(testNow.Add(-2 * time.Hour)), UpdatedAt: timestamppb.New(testNow.Add(-90 * time.Second)),
		})
		e.channels.put(&adminv1.Channel{
			Name: "orders", Path: "/api/orders/{id}", Service: "orders.get", Active: proto.Bool(false), Revision: 5,
			Security: "partner-jwt", RateLimit: 2.5, DataFormat: "soap11",
			SoapActions: map[string]string{"PutOrder": "orders.put", "GetOrder": "orders.get"},
		})
	})

	t.Run("list table", func(t *testing.T) {
		stdout, _, err := e.run("channel", "list")
		if err != nil {
			t.Fatal(err)
		}
		want := "NAME    PATH              METHODS   FORMAT  SERVICE      SECURITY     RATE LIMIT      ACTIVE  REVISION\n" +
			"hello   /api/hello        GET,POST  json    hello.greet  -            none            yes     4\n" +
			"orders  /api/orders/{id}  POST      soap11  orders.get   partner-jwt  2.5/s, burst 3  no      5\n"
		if stdout != want {
			t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
		}
	})
	t.Run("list json", func(t *testing.T) {
		stdout, _, err := e.run("channel", "list", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var resp adminv1.ListChannelsResponse
		if err := protojson.Unmarshal([]byte(stdout), &resp); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		if len(resp.GetChannels()) != 2 || resp.GetChannels()[1].GetActive() {
			t.Errorf("channels = %v", resp.GetChannels())
		}
		if !strings.Contains(stdout, `"max_body_bytes"`) {
			t.Errorf("want proto field names:\n%s", stdout)
		}
	})
	t.Run("get", func(t *testing.T) {
		stdout, _, err := e.run("channel", "get", "hello")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"name:        hello\n", "methods:     GET,POST\n", "timeout:     5s\n", "max body:    1MiB\n", "active:      yes\n", "revision:    4\n", "rate limit:  none\n", "(1m ago)"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("get security, rate limit and SOAP actions", func(t *testing.T) {
		stdout, _, err := e.run("channel", "get", "orders")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"security:     partner-jwt\n", "rate limit:   2.5/s, burst 3\n", "format:       soap11\n",
			"soap action:  GetOrder -> orders.get\nsoap action:  PutOrder -> orders.put\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("get yaml", func(t *testing.T) {
		stdout, _, err := e.run("channel", "get", "orders", "-o", "yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"channel:\n", "  security: partner-jwt\n", "  rate_limit: 2.5\n", "  soap_actions:\n    GetOrder: orders.get\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("get missing renders the status message", func(t *testing.T) {
		_, _, err := e.run("channel", "get", "nope")
		if err == nil || err.Error() != `get channel "nope": channel "nope" not found` {
			t.Fatalf("error = %v", err)
		}
		if status.Code(err) != codes.NotFound {
			t.Errorf("code = %v, want NotFound kept for callers", status.Code(err))
		}
	})
	t.Run("delete", func(t *testing.T) {
		stdout, _, err := e.run("channel", "delete", "orders")
		if err != nil {
			t.Fatal(err)
		}
		if want := "deleted channel orders (revision 11)\n"; stdout != want {
			t.Errorf("stdout = %q, want %q", stdout, want)
		}
		stdout, _, err = e.run("channel", "delete", "hello", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var resp adminv1.DeleteChannelResponse
		if err := protojson.Unmarshal([]byte(stdout), &resp); err != nil || resp.GetRevision() != 12 {
			t.Errorf("json = %q (%v)", stdout, err)
		}
	})
	t.Run("missing name", func(t *testing.T) {
		_, _, err := e.run("channel", "delete")
		if err == nil || !strings.Contains(err.Error(), "missing NAME") {
			t.Fatalf("error = %v", err)
		}
	})
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1024", 1024, true}, {"10B", 10, true}, {"1KiB", 1024, true},
		{"1MiB", 1 << 20, true}, {"3GiB", 3 << 30, true}, {"2 MiB", 2 << 20, true},
		{"", 0, false}, {"MiB", 0, false}, {"1MB", 0, false}, {"1e3", 0, false}, {"-5", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseBytes(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseBytes(%q) = %d, %v", tt.in, got, err)
			}
			if err == nil && got > 0 {
				back, err := parseBytes(formatBytes(got))
				if err != nil || back != got {
					t.Errorf("formatBytes(%d) = %q does not parse back", got, formatBytes(got))
				}
			}
		})
	}
}

func TestErrorsKeepStatus(t *testing.T) {
	e := newTestEnv(t)
	_, _, err := e.run("channel", "create", "x", "--path", "/x", "--service", "nope")
	var re *rpcError
	if !errors.As(err, &re) || status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("error = %#v, want an rpcError with FailedPrecondition", err)
	}
}
