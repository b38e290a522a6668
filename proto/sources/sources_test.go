package sources

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		name, content string
		want          []Entry
	}{
		{"empty", "", nil},
		{"blank lines and comments", "\n# services\n   \n\t# indented comment\n", nil},
		{"one path per line", "a.go\nsvc/b\n", []Entry{{1, "a.go"}, {2, "svc/b"}}},
		{"comment at the end of a line", "foo/bar.go   # the orders service\nbaz\t# tab before\n",
			[]Entry{{1, "foo/bar.go"}, {2, "baz"}}},
		{"a # inside a name is part of it", "v#2/a.go\nsvc#1 # comment\n", []Entry{{1, "v#2/a.go"}, {2, "svc#1"}}},
		{"surrounding blanks and CRLF", "  a.go  \r\n\tb.go\r\n", []Entry{{1, "a.go"}, {2, "b.go"}}},
		{"inner blanks are kept", "my services/a.go\n", []Entry{{1, "my services/a.go"}}},
		{"byte order mark", "\uFEFFa.go\n", []Entry{{1, "a.go"}}},
		{"no newline at the end", "# x\na.go", []Entry{{2, "a.go"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseList([]byte(tt.content)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseList(%q) = %v, want %v", tt.content, got, tt.want)
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadList(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "svc", "a.go"), "package a\n")
	write(t, filepath.Join(dir, "svc", "a_test.go"), "package a\n")
	write(t, filepath.Join(dir, "one.go"), "package one\n")
	write(t, filepath.Join(dir, "tests", "x_test.go"), "package x\n")
	abs := filepath.Join(dir, "one.go")

	t.Run("paths relative to the list, or absolute", func(t *testing.T) {
		list := filepath.Join(dir, "list.txt")
		write(t, list, "# services\n\nsvc   # the a service\n"+abs+"\t# absolute\n")
		got, err := ReadList(list)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{filepath.Join(dir, "svc"), abs}; !reflect.DeepEqual(got, want) {
			t.Fatalf("ReadList = %v, want %v", got, want)
		}
	})
	t.Run("every bad line named with file:line", func(t *testing.T) {
		list := filepath.Join(dir, "bad.txt")
		write(t, list, "svc\nmissing.go  # not there\n\nlist.txt\nsvc/a_test.go\ntests\none.go\n")
		_, err := ReadList(list)
		if err == nil {
			t.Fatal("a list naming missing paths was accepted")
		}
		for _, want := range []string{
			list + ":2: " + filepath.Join(dir, "missing.go") + ": no such file or directory",
			list + ":4: " + filepath.Join(dir, "list.txt") + ": not a .go file or a package directory",
			list + ":5: " + filepath.Join(dir, "svc", "a_test.go") + ": is a test file",
			list + ":6: " + filepath.Join(dir, "tests") + ": no .go files to deploy",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n%v\nwant it to hold %q", err, want)
			}
		}
		if strings.Contains(err.Error(), ":1:") || strings.Contains(err.Error(), ":7:") {
			t.Errorf("error names a good line:\n%v", err)
		}
	})
	t.Run("a list naming nothing", func(t *testing.T) {
		list := filepath.Join(dir, "empty.txt")
		write(t, list, "# nothing yet\n\n")
		if _, err := ReadList(list); err == nil || !strings.Contains(err.Error(), "names no files or directories") {
			t.Fatalf("ReadList of an empty list = %v", err)
		}
	})
	t.Run("a missing list", func(t *testing.T) {
		if _, err := ReadList(filepath.Join(dir, "nope.txt")); err == nil || !strings.Contains(err.Error(), "sources list:") {
			t.Fatalf("ReadList of a missing list = %v", err)
		}
	})
}

func TestPackages(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "svc", "a.go"), "package svc\n")
	write(t, filepath.Join(dir, "svc", "b.go"), "package svc\n")
	write(t, filepath.Join(dir, "svc", "b_test.go"), "package svc\n")
	write(t, filepath.Join(dir, "one.go"), "package one\n")
	// Files of one directory named apart are one package, as the directory.
	got, err := Packages([]string{filepath.Join(dir, "svc", "b.go"), filepath.Join(dir, "one.go"), filepath.Join(dir, "svc", "a.go")})
	if err != nil {
		t.Fatal(err)
	}
	var names [][]string
	for _, p := range got {
		var files []string
		for _, f := range p.GetFiles() {
			files = append(files, f.GetName())
		}
		names = append(names, files)
	}
	if want := [][]string{{"a.go", "b.go"}, {"one.go"}}; !reflect.DeepEqual(names, want) {
		t.Fatalf("Packages = %v, want %v", names, want)
	}
}
