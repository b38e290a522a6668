package api

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

type packages struct {
	adminv1.UnimplementedPackageServiceServer
	*Server
}

var _ adminv1.PackageServiceServer = (*packages)(nil)

// Deploy compiles every package at the door and stores them all, as one
// revision, only when every one compiles. The error lists every problem of
// every package.
func (s *packages) Deploy(ctx context.Context, req *adminv1.DeployRequest) (*adminv1.DeployResponse, error) {
	if len(req.GetPackages()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "deploy: packages: at least one package is required")
	}
	var (
		pkgs []store.NewPackage
		errs []string
		seen = map[string]int{}
	)
	for i, src := range req.GetPackages() {
		files := make([]validate.File, 0, len(src.GetFiles()))
		for _, f := range src.GetFiles() {
			files = append(files, validate.File{Name: f.GetName(), Content: f.GetContent()})
		}
		p, err := validate.Package(ctx, src.GetName(), files, s.opts.DeployTimeout)
		if err != nil {
			label := packageLabel(i, src)
			errs = append(errs, fmt.Sprintf("package %s:\n%s", label, indent(err.Error())))
			continue
		}
		if j, dup := seen[p.Name]; dup {
			errs = append(errs, fmt.Sprintf("package %s: given twice (#%d and #%d)", p.Name, j+1, i+1))
			continue
		}
		seen[p.Name] = i
		pkgs = append(pkgs, p)
	}
	if len(errs) > 0 {
		s.log.Info("deploy refused", "caller", caller(ctx), "err", strings.Join(errs, "; "))
		return nil, status.Errorf(codes.InvalidArgument, "deploy refused, nothing was stored:\n%s", strings.Join(errs, "\n"))
	}
	res, err := s.store.Deploy(ctx, caller(ctx), pkgs)
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, status.Errorf(codes.FailedPrecondition, "deploy refused, nothing was stored: %s", trimSentinel(err, store.ErrConflict))
		}
		return nil, storeError("deploy", err)
	}
	s.watch.Advance(res.Revision)
	out := &adminv1.DeployResponse{Revision: res.Revision}
	for _, d := range res.Packages {
		out.Packages = append(out.Packages, &adminv1.DeployedPackage{Package: packageOut(d.Package), Unchanged: d.Unchanged})
		if d.Unchanged {
			s.log.Info("deploy unchanged", "package", d.Package.Name, "version", d.Package.Version, "caller", caller(ctx))
		} else {
			s.log.Info("deployed", "package", d.Package.Name, "version", d.Package.Version, "sha256", d.Package.Sha256, "revision", res.Revision, "caller", caller(ctx))
		}
	}
	return out, nil
}

// ListPackages lists the deployed packages.
func (s *packages) ListPackages(ctx context.Context, _ *adminv1.ListPackagesRequest) (*adminv1.ListPackagesResponse, error) {
	ps, err := s.store.ListPackages(ctx)
	if err != nil {
		return nil, storeError("list packages", err)
	}
	out := &adminv1.ListPackagesResponse{}
	for _, p := range ps {
		out.Packages = append(out.Packages, packageOut(p))
	}
	return out, nil
}

// ListServices lists the deployed services.
func (s *packages) ListServices(ctx context.Context, _ *adminv1.ListServicesRequest) (*adminv1.ListServicesResponse, error) {
	svcs, err := s.store.ListServices(ctx)
	if err != nil {
		return nil, storeError("list services", err)
	}
	out := &adminv1.ListServicesResponse{}
	for _, v := range svcs {
		out.Services = append(out.Services, &adminv1.Service{Name: v.Name, Package: v.Package, PackageVersion: v.PackageVersion})
	}
	return out, nil
}

func packageOut(p store.Package) *adminv1.Package {
	out := &adminv1.Package{
		Name:      p.Name,
		Version:   p.Version,
		Sha256:    p.Sha256,
		Author:    p.Author,
		SizeBytes: p.SizeBytes,
		Services:  p.Services,
		CreatedAt: timestamppb.New(p.CreatedAt),
		Revision:  p.Revision,
	}
	for _, f := range p.Files {
		out.Files = append(out.Files, f.Name)
	}
	return out
}

// packageLabel names a package in an error: its given name, else its Go
// package name and files.
func packageLabel(i int, src *adminv1.PackageSource) string {
	if src.GetName() != "" {
		return src.GetName()
	}
	var names []string
	goName := ""
	for _, f := range src.GetFiles() {
		names = append(names, f.GetName())
		if pf, err := parser.ParseFile(token.NewFileSet(), f.GetName(), f.GetContent(), parser.PackageClauseOnly); err == nil && goName == "" {
			goName = pf.Name.Name
		}
	}
	if goName == "" {
		goName = fmt.Sprintf("#%d", i+1)
	}
	return fmt.Sprintf("%s (%s)", goName, strings.Join(names, ", "))
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
