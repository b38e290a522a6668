package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// writeFiles creates files (path relative to dir -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeploy(t *testing.T) {
	const hello = "package hello\n\nfunc Greet() string { return \"hi\" }\n"
	const util = "package hello\n\nfunc util() {}\n"
	tmp := t.TempDir()
	writeFiles(t, tmp, map[string]string{
		"hello/hello.go":      hello,
		"hello/util.go":       util,
		"hello/hello_test.go": "package hello\n",
		"hello/sub/deep.go":   "package sub\n",
		"hello/README.md":     "not go",
		"orders/orders.go":    "package orders\n",
		"empty/.keep":         "",
		"onlytests/a_test.go": "package a\n",
		"mixed/a.go":          "package a\n",
		"mixed/b.go":          "package b\n",
		"broken/broken.go":    "package broken\n\nvar x = BROKEN\n",
		"same/same.go":        "package same\n",
		"notes.txt":           "hello",
		"list.txt":            "# services\n\nhello   # the hello service\n\torders/orders.go\t# and orders\n   # the end\n",
		"badlist.txt":         "hello\nmissing  # not there\n",
	})
	in := func(p string) string { return filepath.Join(tmp, p) }
	file := func(name, content string) *adminv1.SourceFile {
		return &adminv1.SourceFile{Name: name, Content: []byte(content)}
	}

	tests := []struct {
		name    string
		args    []string
		want    *adminv1.DeployRequest // nil: nothing reaches the server
		stdout  []string
		wantErr string
	}{
		{
			name: "one file",
			args: []string{in("hello/hello.go")},
			want: &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{
				{Files: []*adminv1.SourceFile{file("hello.go", hello)}},
			}},
			stdout: []string{"deployed hello v2 sha256:1a2b3c4d services: hello.greet\nrevision 7\n"},
		},
		{
			name: "sources list",
			args: []string{"--sources", in("list.txt")},
			want: &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{
				{Files: []*adminv1.SourceFile{file("hello.go", hello), file("util.go", util)}},
				{Files: []*adminv1.SourceFile{file("orders.go", "package orders\n")}},
			}},
		},
		{
			name:    "sources list naming a missing path",
			args:    []string{"--sources", in("badlist.txt")},
			wantErr: "badlist.txt:2: " + in("missing") + ": no such file or directory",
		},
		{
			name: "directory without tests, subdirectories or other files",
			args: []string{in("hello")},
			want: &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{
				{Files: []*adminv1.SourceFile{file("hello.go", hello), file("util.go", util)}},
			}},
		},
		{
			name: "files of one directory are one package",
			args: []string{in("hello/util.go"), in("hello/hello.go")},
			want: &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{
				{Files: []*adminv1.SourceFile{file("hello.go", hello), file("util.go", util)}},
			}},
		},
		{
			name: "name flag after the path",
			args: []string{in("hello/hello.go"), "--name", "greeter"},
			want: &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{
				{Name: "greeter", Files: []*adminv1.SourceFile{file("hello.go", hello)}},
			}},
			stdout: []string{"deployed greeter v2 sha256:1a2b3c4d services: greeter.greet\n"},
		},
		{
			name: "two packages in one revision",
			args: []string{in("hello/hello.go"), in("orders")},
			want: &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{
				{Files: []*adminv1.SourceFile{file("hello.go", hello)}},
				{Files: []*adminv1.SourceFile{file("orders.go", "package orders\n")}},
			}},
		},
		{
			name:   "unchanged",
			args:   []string{in("same"), "--name", "same"},
			want:   &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{{Name: "same", Files: []*adminv1.SourceFile{file("same.go", "package same\n")}}}},
			stdout: []string{"unchanged same v2 sha256:1a2b3c4d (identical source, nothing deployed)\nrevision 7\n"},
		},
		{name: "name with two packages", args: []string{in("hello"), in("orders"), "--name", "x"}, wantErr: "deploy: --name names one package, but the paths hold 2"},
		{name: "empty directory", args: []string{in("empty")}, wantErr: "deploy: " + in("empty") + ": no .go files to deploy"},
		{name: "only tests", args: []string{in("onlytests")}, wantErr: "no .go files to deploy (other than _test.go files)"},
		{name: "not a go file", args: []string{in("notes.txt")}, wantErr: "deploy: " + in("notes.txt") + ": not a .go file or a package directory"},
		{name: "test file", args: []string{in("hello/hello_test.go")}, wantErr: "is a test file"},
		{name: "missing path", args: []string{in("nothing")}, wantErr: "deploy: " + in("nothing") + ": no such file or directory"},
		{name: "two packages in one directory", args: []string{in("mixed")}, wantErr: "is package b but"},
		{name: "no paths", args: nil, wantErr: "missing PATH or --sources FILE (usage: weftctl deploy PATH... | --sources FILE [flags])"},
		{
			name:    "refused by the server, message verbatim",
			args:    []string{in("broken")},
			want:    &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{{Files: []*adminv1.SourceFile{file("broken.go", "package broken\n\nvar x = BROKEN\n")}}}},
			wantErr: "deploy: package refused:\nbroken.go:3:2: undefined: BROKEN\nbroken.go:5:1: missing return",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			stdout, _, err := e.run(append([]string{"deploy"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("deploy: %v", err)
			}
			if tt.want == nil {
				if n := e.packages.deployCount(); n != 0 {
					t.Fatalf("%d deploys reached the server, want none", n)
				}
				return
			}
			if got := e.packages.lastDeploy(t); !proto.Equal(got, tt.want) {
				t.Errorf("request = %v\nwant %v", got, tt.want)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout = %q, want it to contain %q", stdout, s)
				}
			}
		})
	}
}

func TestDeployJSON(t *testing.T) {
	tmp := t.TempDir()
	writeFiles(t, tmp, map[string]string{"hello.go": "package hello\n"})
	e := newTestEnv(t)
	stdout, _, err := e.run("deploy", filepath.Join(tmp, "hello.go"), "-o", "json")
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	var got adminv1.DeployResponse
	if err := protojson.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not a DeployResponse: %v\n%s", err, stdout)
	}
	if got.GetRevision() != 7 || got.GetPackages()[0].GetPackage().GetName() != "hello" {
		t.Errorf("response = %v", &got)
	}
	// Proto names and zero values are there for scripts.
	for _, key := range []string{`"revision"`, `"unchanged"`, `"size_bytes"`, `"created_at"`} {
		if !strings.Contains(stdout, key) {
			t.Errorf("stdout lacks %s:\n%s", key, stdout)
		}
	}
}
