package handler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/sdk"
)

type greetIn struct {
	Name  string `json:"name" weft:"required"`
	Times int    `json:"times"`
}

type greetOut struct {
	Greeting string `json:"greeting"`
}

func greet(_ *sdk.Context, in greetIn) (greetOut, error) {
	return greetOut{Greeting: "Hello, " + in.Name + "!"}, nil
}

func TestNewShapes(t *testing.T) {
	tests := []struct {
		name    string
		fn      any
		wantErr string // "" means the shape is accepted
	}{
		{"struct in and out", greet, ""},
		{"pointers", func(*sdk.Context, *greetIn) (*greetOut, error) { return nil, nil }, ""},
		{"maps", func(*sdk.Context, map[string]any) (map[string]any, error) { return nil, nil }, ""},
		{"nil", nil, "handler must be a func"},
		{"nil func", (func(*sdk.Context, greetIn) (greetOut, error))(nil), "handler must be a func"},
		{"not a func", 42, "got int"},
		{"no context", func(greetIn) (greetOut, error) { return greetOut{}, nil }, "handler must be a func"},
		{"context.Context first", func(context.Context, greetIn) (greetOut, error) { return greetOut{}, nil }, "handler must be a func"},
		{"no error", func(*sdk.Context, greetIn) greetOut { return greetOut{} }, "handler must be a func"},
		{"error not last", func(*sdk.Context, greetIn) (error, greetOut) { return nil, greetOut{} }, "handler must be a func"},
		{"variadic", func(*sdk.Context, ...greetIn) (greetOut, error) { return greetOut{}, nil }, "handler must be a func"},
		{"string input", func(*sdk.Context, string) (greetOut, error) { return greetOut{}, nil }, "input type string must be"},
		{"int-keyed map input", func(*sdk.Context, map[int]string) (greetOut, error) { return greetOut{}, nil }, "input type map[int]string must be"},
		{"slice output", func(*sdk.Context, greetIn) ([]string, error) { return nil, nil }, "output type []string must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := handler.New("svc.x", tt.fn)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if s.Name() != "svc.x" {
					t.Errorf("Name = %q", s.Name())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `"svc.x"`) {
				t.Fatalf("New error = %v, want one naming the service and containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := handler.New("", greet); err == nil {
		t.Error("New with empty name: no error")
	}
}

func TestTypes(t *testing.T) {
	s, err := handler.New("hello.greet", greet)
	if err != nil {
		t.Fatal(err)
	}
	if s.InputType().Name() != "greetIn" || s.OutputType().Name() != "greetOut" {
		t.Errorf("types = %v, %v", s.InputType(), s.OutputType())
	}
}

type address struct {
	City   string `json:"city" weft:"required"`
	Street string `json:"street"`
}

type line struct {
	SKU string `json:"sku" weft:"required"`
	Qty int    `json:"qty"`
}

type Embedded struct {
	Tenant string `json:"tenant" weft:"required"`
}

type order struct {
	Embedded
	ID       string             `json:"id" weft:"required"`
	Paid     bool               `json:"paid" weft:"required"`
	Note     *string            `json:"note"`
	Address  *address           `json:"address"`
	Billing  address            `json:"billing" weft:"required"`
	Lines    []line             `json:"lines"`
	ByWH     map[string]address `json:"byWarehouse"`
	Untagged string             `weft:"required"`
	Ignored  string             `json:"-" weft:"required"`
}

func TestInvokeInput(t *testing.T) {
	s, err := handler.New("shop.order", func(_ *sdk.Context, in order) (map[string]any, error) {
		return map[string]any{"id": in.ID, "city": in.Billing.City}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const base = `"tenant":"t","id":"o1","paid":false,"billing":{"city":"Oslo"},"Untagged":"u"`
	tests := []struct {
		name    string
		input   string
		want    string // output on success
		wantErr string // substring of the *InputError
	}{
		{"all required present", `{` + base + `}`, `{"city":"Oslo","id":"o1"}`, ""},
		{"unknown fields ignored", `{"extra":[1,2],` + base + `}`, `{"city":"Oslo","id":"o1"}`, ""},
		{"case-insensitive keys", `{"TENANT":"t","Id":"o1","paid":true,"billing":{"CITY":"Oslo"},"untagged":"u"}`, `{"city":"Oslo","id":"o1"}`, ""},
		{"false and zero count as present", `{` + base + `,"lines":[{"sku":"a","qty":0}]}`, `{"city":"Oslo","id":"o1"}`, ""},
		{"optional nested absent", `{` + base + `,"address":null,"lines":[null]}`, `{"city":"Oslo","id":"o1"}`, ""},
		{"empty input", ``, "", `field "tenant" is required`},
		{"whitespace input", " \n", "", `field "tenant" is required`},
		{"null input", `null`, "", `field "tenant" is required`},
		{"missing top-level", `{"tenant":"t","paid":true,"billing":{"city":"x"},"Untagged":"u"}`, "", `field "id" is required`},
		{"null counts as missing", `{"tenant":"t","id":null}`, "", `field "id" is required`},
		{"missing bool", `{"tenant":"t","id":"x"}`, "", `field "paid" is required`},
		{"missing untagged", `{"tenant":"t","id":"x","paid":true,"billing":{"city":"x"}}`, "", `field "Untagged" is required`},
		{"missing in nested struct", `{` + strings.Replace(base, `"city":"Oslo"`, `"street":"s"`, 1) + `}`, "", `field "billing.city" is required`},
		{"missing in optional pointer", `{` + base + `,"address":{}}`, "", `field "address.city" is required`},
		{"missing in list", `{` + base + `,"lines":[{"sku":"a"},{"qty":2}]}`, "", `field "lines[1].sku" is required`},
		{"missing in map", `{` + base + `,"byWarehouse":{"b":{"city":"x"},"a":{}}}`, "", `field "byWarehouse.a.city" is required`},
		{"wrong type", `{` + base + `,"lines":[{"sku":"a","qty":"2"}]}`, "", `field "lines.qty": cannot use a JSON string as integer`},
		{"wrong type top", `{"id":7}`, "", `field "id": cannot use a JSON number as string`},
		{"not an object", `[1]`, "", `input must be a JSON object, not array`},
		{"syntax error", `{"id":`, "", `malformed JSON at byte 6`},
		{"syntax error after spaces", "\n\n  {\"id\":", "", `malformed JSON at byte 10`},
		{"trailing garbage", `{` + base + `} x`, "", `malformed JSON at byte`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := s.Invoke(nil, []byte(tt.input))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Invoke: %v", err)
				}
				if string(out) != tt.want {
					t.Fatalf("output = %s, want %s", out, tt.want)
				}
				return
			}
			var ie *handler.InputError
			if !errors.As(err, &ie) || !strings.Contains(ie.Err.Error(), tt.wantErr) {
				t.Fatalf("Invoke error = %v, want an *InputError containing %q", err, tt.wantErr)
			}
			if handler.Status(err) != 400 {
				t.Errorf("Status = %d, want 400", handler.Status(err))
			}
		})
	}
}

func TestInvokeErrors(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name       string
		fn         func(*sdk.Context, greetIn) (greetOut, error)
		wantStatus int
		check      func(t *testing.T, err error)
	}{
		{
			name:       "sdk error",
			fn:         func(*sdk.Context, greetIn) (greetOut, error) { return greetOut{}, sdk.Errorf(404, "no %s", "world") },
			wantStatus: 404,
			check: func(t *testing.T, err error) {
				var he *handler.HandlerError
				if !errors.As(err, &he) || he.Err.Error() != "no world" {
					t.Errorf("err = %v, want a *HandlerError with message %q", err, "no world")
				}
			},
		},
		{
			name:       "sdk error with bad status",
			fn:         func(*sdk.Context, greetIn) (greetOut, error) { return greetOut{}, sdk.Errorf(200, "ok?") },
			wantStatus: 500,
		},
		{
			name:       "plain error",
			fn:         func(*sdk.Context, greetIn) (greetOut, error) { return greetOut{}, errBoom },
			wantStatus: 500,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errBoom) {
					t.Errorf("err = %v, want it to wrap errBoom", err)
				}
			},
		},
		{
			name: "deadline",
			fn: func(c *sdk.Context, _ greetIn) (greetOut, error) {
				return greetOut{}, context.DeadlineExceeded
			},
			wantStatus: 504,
		},
		{
			name:       "panic with string",
			fn:         func(*sdk.Context, greetIn) (greetOut, error) { panic("oops") },
			wantStatus: 500,
			check: func(t *testing.T, err error) {
				var pe *handler.PanicError
				if !errors.As(err, &pe) || pe.Value != "oops" || len(pe.Stack) == 0 {
					t.Errorf("err = %v, want a *PanicError with value oops and a stack", err)
				}
			},
		},
		{
			name:       "panic with error",
			fn:         func(*sdk.Context, greetIn) (greetOut, error) { panic(errBoom) },
			wantStatus: 500,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errBoom) {
					t.Errorf("err = %v, want it to wrap errBoom", err)
				}
			},
		},
		{
			name:       "own error type with a status",
			fn:         func(*sdk.Context, greetIn) (greetOut, error) { return greetOut{}, statusErr(409) },
			wantStatus: 409,
		},
		{
			name:       "own error type claiming success",
			fn:         func(*sdk.Context, greetIn) (greetOut, error) { return greetOut{}, statusErr(200) },
			wantStatus: 500,
		},
		{
			name:       "own error type with a status HTTP cannot send",
			fn:         func(*sdk.Context, greetIn) (greetOut, error) { return greetOut{}, statusErr(1000) },
			wantStatus: 500,
		},
		{
			name: "nil dereference",
			fn: func(*sdk.Context, greetIn) (greetOut, error) {
				var p *greetOut
				return *p, nil
			},
			wantStatus: 500,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := handler.New("hello.greet", tt.fn)
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.Invoke(nil, []byte(`{"name":"World"}`))
			if err == nil {
				t.Fatalf("Invoke = %s, want an error", out)
			}
			if !strings.HasPrefix(err.Error(), "hello.greet: ") {
				t.Errorf("error %q does not start with the service name", err)
			}
			if got := handler.Status(err); got != tt.wantStatus {
				t.Errorf("Status(%v) = %d, want %d", err, got, tt.wantStatus)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

func TestInvokeOutputError(t *testing.T) {
	s, err := handler.New("x.y", func(*sdk.Context, greetIn) (map[string]any, error) {
		return map[string]any{"ch": make(chan int)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Invoke(nil, []byte(`{"name":"a"}`))
	var oe *handler.OutputError
	if !errors.As(err, &oe) || handler.Status(err) != 500 {
		t.Fatalf("err = %v, want an *OutputError (500)", err)
	}
}

func TestInvokeContext(t *testing.T) {
	s, err := handler.New("hello.greet", func(c *sdk.Context, in greetIn) (greetOut, error) {
		c.SetStatus(201)
		c.SetHeader("X-Who", in.Name)
		return greetOut{Greeting: c.CID() + " " + c.PathParam("id") + " " + c.Query().Get("q")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := sdk.NewContext(context.Background(), sdk.Request{
		CID:        "c1",
		PathParams: map[string]string{"id": "7"},
		Query:      map[string][]string{"q": {"v"}},
	})
	out, err := s.Invoke(c, []byte(`{"name":"World"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"greeting":"c1 7 v"}` {
		t.Errorf("output = %s", out)
	}
	if r := c.Response(); r.Status != 201 || r.Header.Get("X-Who") != "World" {
		t.Errorf("response = %+v", r)
	}
}

// statusErr is a service's own error type that names its HTTP status.
type statusErr int

func (e statusErr) Error() string   { return "status error" }
func (e statusErr) HTTPStatus() int { return int(e) }

// TestInvokeOutgoingErrorStatus checks that an *sdk.OutgoingError, even
// wrapped, maps to 502 (504 when the remote did not answer in time), and
// that the HandlerError keeps the handler's error whole: what a caller may
// read of it is the agent's to decide (see the engine's callerMessage).
func TestInvokeOutgoingErrorStatus(t *testing.T) {
	refused := &sdk.OutgoingError{Connection: "crm", Method: "GET", URL: "http://10.1.2.3:8080/customers/7", Status: 401, Excerpt: `{"error":"bad key for tenant acme"}`}
	timedOut := &sdk.OutgoingError{Connection: "crm", Method: "GET", URL: "http://10.1.2.3:8080/customers/7", Excerpt: "context deadline exceeded", Timeout: true}
	tests := []struct {
		name       string
		err        error
		wantStatus int
	}{
		{"refused", refused, 502},
		{"wrapped", fmt.Errorf("load customer 7: %w", refused), 502},
		{"timed out", timedOut, 504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := handler.New("relay.call", func(*sdk.Context, greetIn) (greetOut, error) { return greetOut{}, tt.err })
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Invoke(sdk.NewContext(context.Background(), sdk.Request{CID: "c1"}), []byte(`{"name":"World"}`))
			var he *handler.HandlerError
			if !errors.As(err, &he) || he.Err != tt.err {
				t.Fatalf("err = %v, want a *HandlerError holding the handler's error", err)
			}
			if got := handler.Status(err); got != tt.wantStatus {
				t.Errorf("Status = %d, want %d", got, tt.wantStatus)
			}
			if full := err.Error(); full != "relay.call: "+tt.err.Error() {
				t.Errorf("Error() = %q, want the full text %q", full, "relay.call: "+tt.err.Error())
			}
		})
	}
}
