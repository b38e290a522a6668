package sdktest_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/weft-dev/weft/agent/sdk"
	"github.com/weft-dev/weft/agent/sdk/sdktest"
)

type echoIn struct {
	Text string `json:"text" weft:"required"`
}

type echoOut struct {
	Text  string `json:"text"`
	Query string `json:"query"`
}

func init() {
	sdk.Register("sdktest.echo", func(c *sdk.Context, in echoIn) (echoOut, error) {
		if in.Text == "teapot" {
			return echoOut{}, sdk.Errorf(418, "short and stout")
		}
		c.SetStatus(202)
		return echoOut{Text: in.Text, Query: c.Query().Get("q")}, nil
	})
	sdk.Register("sdktest.badshape", func(s string) string { return s })
}

func TestInvoke(t *testing.T) {
	tests := []struct {
		name, input string
		wantStatus  int
		wantOutput  string
	}{
		{"ok", `{"text":"hi"}`, 202, `{"text":"hi","query":""}`},
		{"required", `{}`, 400, ""},
		{"sdk error", `{"text":"teapot"}`, 418, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sdktest.Invoke(t, "sdktest.echo", tt.input)
			if r.Status != tt.wantStatus || string(r.Output) != tt.wantOutput {
				t.Fatalf("got %d %s (%v), want %d %s", r.Status, r.Output, r.Err, tt.wantStatus, tt.wantOutput)
			}
		})
	}
}

func TestInvokeRequest(t *testing.T) {
	r := sdktest.InvokeRequest(t, "sdktest.echo", sdk.Request{Query: url.Values{"q": {"v"}}}, `{"text":"hi"}`)
	if string(r.Output) != `{"text":"hi","query":"v"}` || r.Response.Status != 202 {
		t.Fatalf("got %s %+v", r.Output, r.Response)
	}
}

func TestCall(t *testing.T) {
	out, err := sdktest.Call[echoOut](t, "sdktest.echo", echoIn{Text: "typed"})
	if err != nil || out.Text != "typed" {
		t.Fatalf("Call = %+v, %v", out, err)
	}
	if _, err := sdktest.Call[echoOut](t, "sdktest.echo", echoIn{Text: "teapot"}); err == nil {
		t.Fatal("Call of a failing handler returned no error")
	}
}

func TestServices(t *testing.T) {
	if got := sdktest.Services(); !slices.Equal(got, []string{"sdktest.badshape", "sdktest.echo"}) {
		t.Errorf("Services = %q", got)
	}
}

// fatalTB records a Fatalf and stops the calling function.
type fatalTB struct {
	testing.TB
	msg string
}

type fatalStop struct{}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalStop{})
}

func TestInvokeFails(t *testing.T) {
	tests := []struct{ service, want string }{
		{"sdktest.badshape", `service "sdktest.badshape": handler must be`},
		{"sdktest.nope", `no service "sdktest.nope" registered`},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			f := &fatalTB{TB: t}
			func() {
				defer func() {
					if r := recover(); r != nil && r != (fatalStop{}) {
						panic(r)
					}
				}()
				sdktest.Invoke(f, tt.service, `{}`)
			}()
			if !strings.Contains(f.msg, tt.want) {
				t.Errorf("Fatalf message %q, want it to contain %q", f.msg, tt.want)
			}
		})
	}
}
