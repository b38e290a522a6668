package svcpkg_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// header starts a file of a package that imports the SDK.
const header = "package svc\n\nimport \"github.com/weft-dev/weft/agent/sdk\"\n\n"

// source builds a Source from name, content pairs.
func source(nameContent ...string) *adminv1.PackageSource {
	src := &adminv1.PackageSource{Name: "test"}
	for i := 0; i < len(nameContent); i += 2 {
		src.Files = append(src.Files, &adminv1.SourceFile{Name: nameContent[i], Content: []byte(nameContent[i+1])})
	}
	return src
}

// dirSource reads the non-test Go files of dir, as a deploy would send them.
func dirSource(t testing.TB, dir string) *adminv1.PackageSource {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	src := &adminv1.PackageSource{Name: filepath.Base(dir)}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		src.Files = append(src.Files, &adminv1.SourceFile{Name: filepath.Base(p), Content: b})
	}
	return src
}
