package route

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		err  string // "" for valid
	}{
		{"/api/x", ""},
		{"/api/orders/{id}", ""},
		{"/", ""},
		{"/a/{x}/b/{y}", ""},
		{"", "is required"},
		{"api", "must start with /"},
		{"/api/", "must not end with /"},
		{"/api//x", "segment 2 is empty"},
		{"/api/{id}/{id}", "appears twice"},
		{"/api/x{id}", "must be a whole segment"},
		{"/api/{1d}", "must be a whole segment"},
		{"/api/a b", "not allowed in a URL path"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			err := CheckPath(tt.path)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("CheckPath(%q) = %v, want nil", tt.path, err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("CheckPath(%q) = %v, want an error containing %q", tt.path, err, tt.err)
			}
		})
	}
}

func ch(name, path, service string, methods ...string) *adminv1.Channel {
	return &adminv1.Channel{Name: name, Path: path, Service: service, Methods: methods, Active: proto.Bool(true)}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		channels []*adminv1.Channel
		err      string
	}{
		{"distinct", []*adminv1.Channel{ch("a", "/a", "s", "POST"), ch("b", "/b", "s", "POST")}, ""},
		{"same path other method", []*adminv1.Channel{ch("a", "/a", "s", "GET"), ch("b", "/a", "s", "POST")}, ""},
		{"literal beside param", []*adminv1.Channel{ch("a", "/o/{id}", "s", "GET"), ch("b", "/o/latest", "s", "GET")}, ""},
		{"same path same method", []*adminv1.Channel{ch("a", "/a", "s", "POST"), ch("b", "/a", "s", "POST", "GET")}, `channels "a" (/a) and "b" (/a) both take POST`},
		{"params renamed", []*adminv1.Channel{ch("a", "/o/{id}", "s", "GET"), ch("b", "/o/{name}", "s", "GET")}, "both take GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.channels)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Check = %v, want nil", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("Check = %v, want an error containing %q", err, tt.err)
			}
		})
	}
}
