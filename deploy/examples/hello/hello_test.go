package hello_test

import (
	"testing"

	"github.com/weft-dev/weft/agent/sdk/sdktest"
	"github.com/weft-dev/weft/deploy/examples/hello"
)

func TestGreet(t *testing.T) {
	tests := []struct {
		name       string
		input      string
		wantStatus int
		wantOutput string
	}{
		{"default language", `{"name":"World"}`, 200, `{"greeting":"Hello, World!","language":"en"}`},
		{"french", `{"name":"World","language":"FR"}`, 200, `{"greeting":"Bonjour, World!","language":"fr"}`},
		{"name missing", `{}`, 400, ""},
		{"name blank", `{"name":"  "}`, 400, ""},
		{"name not a string", `{"name":42}`, 400, ""},
		{"unknown language", `{"name":"World","language":"xx"}`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sdktest.Invoke(t, "hello.greet", tt.input)
			if r.Status != tt.wantStatus || string(r.Output) != tt.wantOutput {
				t.Fatalf("got %d %s (err %v), want %d %s", r.Status, r.Output, r.Err, tt.wantStatus, tt.wantOutput)
			}
		})
	}
}

func TestGreetTyped(t *testing.T) {
	out, err := sdktest.Call[hello.GreetOutput](t, "hello.greet", hello.GreetInput{Name: "Gophers", Language: "de"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Greeting != "Hallo, Gophers!" {
		t.Errorf("Greeting = %q", out.Greeting)
	}
}
