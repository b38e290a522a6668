// Package sources reads what a deploy sends from the file system: .go files
// and package directories, and sources lists naming them, as Zato's
// services-sources.txt does. weftctl deploy and the control plane's
// --sources both read through it, so that a list means the same to both;
// hence its place under proto/, which both may import.
//
// A sources list names one .go file or package directory per line,
// relative to the list's own directory unless absolute. Blank lines are
// skipped, and a # at the start of a line or after a space or tab starts a
// comment that runs to the end of the line:
//
//	# the order services
//	orders/            # the orders service
//	shared/retry.go
package sources

import (
	"bytes"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Entry is one line of a sources list that names a path.
type Entry struct {
	Line int    // 1-based
	Path string // as written, without its comment and surrounding blanks
}

// ParseList returns the paths a sources list's content names, with their
// lines. It does not look at the file system.
func ParseList(content []byte) []Entry {
	content = bytes.TrimPrefix(content, []byte("\uFEFF")) // a byte order mark some editors write
	var out []Entry
	for i, line := range strings.Split(string(content), "\n") {
		if p := strings.TrimSpace(stripComment(line)); p != "" {
			out = append(out, Entry{Line: i + 1, Path: p})
		}
	}
	return out
}

// stripComment cuts line at the # that starts a comment. A # inside a
// name, as in v#2/a.go, is part of it, as in a shell.
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

// ReadList reads the sources list at list and returns the paths it names,
// joined to the list's directory unless absolute. Every line is checked
// (the path exists, and is a .go file other than a test or a directory
// holding one); the error names each bad line as list:line.
func ReadList(list string) ([]string, error) {
	b, err := os.ReadFile(list)
	if err != nil {
		return nil, fmt.Errorf("sources list: %w", err)
	}
	var (
		paths []string
		errs  []error
	)
	for _, e := range ParseList(b) {
		p := e.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(list), p)
		}
		if _, err := goFiles(p); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", list, e.Line, err))
			continue
		}
		paths = append(paths, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s names no files or directories", list)
	}
	return paths, nil
}

// goFiles returns the files path contributes to a deploy: itself when it
// is a .go file, the .go files directly in it (tests left out) when it is a
// directory. Errors name path as given.
func goFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file or directory", path)
		}
		return nil, err
	}
	if !info.IsDir() {
		switch {
		case !strings.HasSuffix(path, ".go"):
			return nil, fmt.Errorf("%s: not a .go file or a package directory", path)
		case strings.HasSuffix(path, "_test.go"):
			return nil, fmt.Errorf("%s: is a test file; tests are not deployed", path)
		}
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", path, err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		files = append(files, filepath.Join(path, name))
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .go files to deploy (other than _test.go files)", path)
	}
	return files, nil
}

// Packages reads the packages paths name: a .go file or a package
// directory each (its .go files, without tests and subdirectories),
// grouped by directory into packages in the order they are first named.
func Packages(paths []string) ([]*adminv1.PackageSource, error) {
	type pkg struct {
		files map[string]string // base name -> path
	}
	var order []*pkg
	byDir := map[string]*pkg{}
	for _, path := range paths {
		files, err := goFiles(path)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			abs, err := filepath.Abs(f)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			dir := filepath.Dir(abs)
			p := byDir[dir]
			if p == nil {
				p = &pkg{files: map[string]string{}}
				byDir[dir] = p
				order = append(order, p)
			}
			p.files[filepath.Base(abs)] = abs
		}
	}

	out := make([]*adminv1.PackageSource, 0, len(order))
	for _, p := range order {
		names := make([]string, 0, len(p.files))
		for n := range p.files {
			names = append(names, n)
		}
		sort.Strings(names)
		src := &adminv1.PackageSource{}
		var firstPkg, firstFile string
		for _, n := range names {
			path := p.files[n]
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", rel(path), err)
			}
			switch pn := packageName(path, b); {
			case pn == "":
				// Unparsable; the control plane reports it with file:line.
			case firstPkg == "":
				firstPkg, firstFile = pn, path
			case pn != firstPkg:
				return nil, fmt.Errorf("%s is package %s but %s is package %s; a directory holds one package",
					rel(path), pn, rel(firstFile), firstPkg)
			}
			src.Files = append(src.Files, &adminv1.SourceFile{Name: n, Content: b})
		}
		out = append(out, src)
	}
	return out, nil
}

// packageName returns the Go package name of a file, or "" when its package
// clause does not parse (the control plane then reports it with file:line).
func packageName(path string, src []byte) string {
	f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.PackageClauseOnly)
	if err != nil {
		return ""
	}
	return f.Name.Name
}

// rel shortens an absolute path to one relative to the working directory
// when that is shorter, for messages.
func rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && len(r) < len(path) {
		return r
	}
	return path
}
