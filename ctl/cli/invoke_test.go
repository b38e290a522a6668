package cli

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestInvoke(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantReq    *adminv1.InvokeRequest // nil: nothing reaches the server
		wantStdout string
		wantStderr string
		wantErr    string
		reported   bool
	}{
		{
			name:       "output pretty-printed",
			args:       []string{"hello.greet", "--data", `{"name":"Ada"}`},
			wantReq:    &adminv1.InvokeRequest{Service: "hello.greet", Input: []byte(`{"name":"Ada"}`)},
			wantStdout: "{\n  \"service\": \"hello.greet\",\n  \"input\": {\n    \"name\": \"Ada\"\n  }\n}\n",
		},
		{
			name:    "no data, agent and timeout",
			args:    []string{"hello.greet", "--agent", "berlin-1", "--timeout-ms", "1500"},
			wantReq: &adminv1.InvokeRequest{Service: "hello.greet", AgentId: "berlin-1", TimeoutMs: 1500},
		},
		{
			name:       "failure goes to stderr",
			args:       []string{"fail"},
			wantReq:    &adminv1.InvokeRequest{Service: "fail"},
			wantStderr: "error (status 500, cid cid-42): boom: nil map\n",
			wantErr:    "invoke fail: status 500",
			reported:   true,
		},
		{
			name:    "gRPC error rendered with its message",
			args:    []string{"missing"},
			wantReq: &adminv1.InvokeRequest{Service: "missing"},
			wantErr: `invoke missing: service "missing" is not deployed`,
		},
		{
			name:    "Unavailable from the control plane itself keeps its message",
			args:    []string{"busy"},
			wantReq: &adminv1.InvokeRequest{Service: "busy"},
			wantErr: "invoke busy: no agent is connected and in sync",
		},
		{name: "invalid JSON refused locally", args: []string{"hello.greet", "--data", `{"name":}`}, wantErr: "invoke hello.greet: --data is not valid JSON: line 1, column 9: invalid character '}'"},
		{name: "JSON position on a later line", args: []string{"hello.greet", "--data", "{\n  \"a\": 1,\n  \"b\" 2\n}"}, wantErr: "line 3, column 7: invalid character '2' after object key"},
		{name: "truncated JSON", args: []string{"hello.greet", "--data", `{"a": [1, 2`}, wantErr: "--data is not valid JSON: line 1, column 11: unexpected end of JSON input"},
		{name: "two values", args: []string{"hello.greet", "--data", `{} {}`}, wantErr: "line 1, column 4: invalid character '{' after top-level value"},
		{name: "empty data", args: []string{"hello.greet", "--data", ""}, wantErr: "--data is not valid JSON"},
		{name: "negative timeout", args: []string{"hello.greet", "--timeout-ms", "-5"}, wantErr: "--timeout-ms -5: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, stderr, err := e.run(append([]string{"invoke"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("invoke: %v", err)
			}
			if got := errors.Is(err, ErrReported); got != tt.reported {
				t.Errorf("errors.Is(err, ErrReported) = %v, want %v", got, tt.reported)
			}
			seen := e.fleet.invokesSeen()
			switch {
			case tt.wantReq == nil && len(seen) != 0:
				t.Fatalf("server saw %v, want nothing", seen)
			case tt.wantReq != nil && (len(seen) != 1 || !proto.Equal(seen[0], tt.wantReq)):
				t.Fatalf("server saw %v, want %v", seen, tt.wantReq)
			}
			if tt.wantStdout != "" && stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout, tt.wantStdout)
			}
			if stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantStderr)
			}
		})
	}
}

// TestInvokeStructured checks that -o json and -o yaml print the whole
// answer with the service's output as a value, not as base64.
func TestInvokeStructured(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStdout string
		reported   bool
	}{
		{
			name: "json output as a JSON value",
			args: []string{"hello.greet", "--data", `{"name":"Ada","n":[1,2.5,null]}`, "-o", "json"},
			wantStdout: `{
  "agent_id": "a1",
  "cid": "cid-1",
  "output": {
    "service": "hello.greet",
    "input": {
      "name": "Ada",
      "n": [
        1,
        2.5,
        null
      ]
    }
  },
  "status": 200,
  "error": "",
  "duration_us": "1500"
}
`,
		},
		{
			name: "yaml output as a YAML value",
			args: []string{"hello.greet", "--data", `{"name":"Ada"}`, "-o", "yaml"},
			wantStdout: `agent_id: a1
cid: cid-1
duration_us: "1500"
error: ""
output:
  input:
    name: Ada
  service: hello.greet
status: 200
`,
		},
		{
			name: "output that is not JSON kept as a string",
			args: []string{"text", "-o", "json"},
			wantStdout: `{
  "agent_id": "a1",
  "cid": "cid-7",
  "output": "plain \u003ctext\u003e\n",
  "status": 200,
  "error": "",
  "duration_us": "12"
}
`,
		},
		{
			name:       "yaml string output",
			args:       []string{"text", "-o", "yaml"},
			wantStdout: "agent_id: a1\ncid: cid-7\nduration_us: \"12\"\nerror: \"\"\noutput: |\n  plain <text>\nstatus: 200\n",
		},
		{
			name: "failure has a null output",
			args: []string{"fail", "-o", "json"},
			wantStdout: `{
  "agent_id": "a1",
  "cid": "cid-42",
  "output": null,
  "status": 500,
  "error": "boom: nil map",
  "duration_us": "0"
}
`,
			reported: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, stderr, err := e.run(append([]string{"invoke"}, tt.args...)...)
			if got := errors.Is(err, ErrReported); got != tt.reported || (err != nil && !tt.reported) {
				t.Fatalf("invoke: %v (reported %v, want %v); stderr %q", err, got, tt.reported, stderr)
			}
			if stdout != tt.wantStdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.wantStdout)
			}
			if tt.reported && !strings.Contains(stderr, "status 500") {
				t.Errorf("stderr = %q, want the failure", stderr)
			}
		})
	}
}
