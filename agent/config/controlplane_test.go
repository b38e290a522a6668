package config

import (
	"strings"
	"testing"
)

// TestControlPlane: --controlplane takes one address or several; a list
// with an empty or a non host:port entry is refused at start, naming it.
func TestControlPlane(t *testing.T) {
	for _, tt := range []struct{ value, wantErr string }{
		{value: "cp.example:7400"},
		{value: "dns:///cp.example:7400"},
		{value: "cp-a.example:7400,cp-b.example:7400"},
		{value: "cp-a.example:7400,,cp-b.example:7400", wantErr: `--controlplane "cp-a.example:7400,,cp-b.example:7400": an empty address`},
		{value: "cp-a.example:7400,cp-b.example", wantErr: `"cp-b.example": in a list each address is host:port`},
	} {
		c, err := Parse([]string{"--id", "edge-1", "--controlplane", tt.value})
		switch {
		case tt.wantErr == "" && (err != nil || c.ControlPlane != tt.value):
			t.Errorf("--controlplane %q: %v, %q", tt.value, err, c.ControlPlane)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("--controlplane %q: %v; want an error with %q", tt.value, err, tt.wantErr)
		}
	}
}
