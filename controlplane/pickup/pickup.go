// Package pickup holds the control plane's ways in from the file system: a
// pickup directory, where a .go file or a package directory dropped in is
// deployed with no other action, and a sources list, a text file naming
// files and directories to deploy, as Zato's services-sources.txt does.
//
// Both go through the same Deploy as weftctl, so a package is compiled at
// the door and refused with file:line exactly as a deploy from the CLI.
package pickup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/proto/sources"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Deployer deploys packages; the admin API's package service is one.
type Deployer interface {
	Deploy(ctx context.Context, req *adminv1.DeployRequest) (*adminv1.DeployResponse, error)
}

// ReadPath reads the package at path: a .go file alone, or every .go file
// directly in a directory, leaving _test.go files out.
func ReadPath(path string) (*adminv1.PackageSource, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var names []string
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			n := e.Name()
			if e.Type().IsRegular() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
				names = append(names, filepath.Join(path, n))
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: no .go files besides tests", path)
		}
	} else {
		if !strings.HasSuffix(path, ".go") {
			return nil, fmt.Errorf("%s: not a .go file or a package directory", path)
		}
		names = []string{path}
	}
	sort.Strings(names)
	src := &adminv1.PackageSource{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		src.Files = append(src.Files, &adminv1.SourceFile{Name: filepath.Base(n), Content: b})
	}
	return src, nil
}

// ReadSources reads the packages a sources list names, as weftctl deploy
// --sources does (see package proto/sources): the error names each bad line
// as list:line.
func ReadSources(list string) ([]*adminv1.PackageSource, error) {
	paths, err := sources.ReadList(list)
	if err != nil {
		return nil, err
	}
	return sources.Packages(paths)
}

// DeploySources deploys every package a sources list names, as one
// revision.
func DeploySources(ctx context.Context, d Deployer, list string) (*adminv1.DeployResponse, error) {
	srcs, err := ReadSources(list)
	if err != nil {
		return nil, err
	}
	res, err := d.Deploy(ctx, &adminv1.DeployRequest{Packages: srcs})
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %s", list, status.Convert(err).Message())
	}
	return res, nil
}

// Summary says in one line what a deploy did.
func Summary(res *adminv1.DeployResponse) string {
	var parts []string
	for _, p := range res.GetPackages() {
		verb := "deployed"
		if p.GetUnchanged() {
			verb = "unchanged"
		}
		parts = append(parts, fmt.Sprintf("%s %s v%d", verb, p.GetPackage().GetName(), p.GetPackage().GetVersion()))
	}
	return fmt.Sprintf("%s; revision %d", strings.Join(parts, ", "), res.GetRevision())
}
