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

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// PackageStore is what the package service needs of the store.
type PackageStore interface {
	Deploy(ctx context.Context, author string, pkgs []*adminv1.Package) (store.DeployResult, error)
	ListPackages(ctx context.Context) ([]*adminv1.Package, error)
	ListServices(ctx context.Context) ([]*adminv1.Service, error)
	ListPackageVersions(ctx context.Context, name string, limit int) ([]*adminv1.Package, error)
	GetPackage(ctx context.Context, name string, version int64) (pkg *adminv1.Package, current bool, err error)
	GetDeployStatus(ctx context.Context, name string, version int64) (store.DeployStatus, error)
	Rollback(ctx context.Context, author, name string, toVersion int64) (pkg *adminv1.Package, restored int64, revision int64, err error)
	Undeploy(ctx context.Context, author, name string, force bool) (store.UndeployResult, error)
}

var _ PackageStore = store.Store(nil)

type packages struct {
	adminv1.UnimplementedPackageServiceServer
	*base
	store PackageStore
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
		pkgs []*adminv1.Package
		errs []string
		seen = map[string]int{}
	)
	for i, src := range req.GetPackages() {
		p, err := validate.Package(ctx, src.GetName(), src.GetFiles(), s.opts.Evaluator)
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
	out := &adminv1.DeployResponse{Revision: res.Revision, Packages: res.Packages}
	for _, d := range res.Packages {
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
	return &adminv1.ListPackagesResponse{Packages: ps}, nil
}

// ListServices lists the deployed services.
func (s *packages) ListServices(ctx context.Context, _ *adminv1.ListServicesRequest) (*adminv1.ListServicesResponse, error) {
	svcs, err := s.store.ListServices(ctx)
	if err != nil {
		return nil, storeError("list services", err)
	}
	return &adminv1.ListServicesResponse{Services: svcs}, nil
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

// Bounds of a deploy history listing.
const (
	defaultHistoryLimit = 100
	maxHistoryLimit     = 1000
)

// ListPackageVersions lists the deploy history, newest first.
func (s *packages) ListPackageVersions(ctx context.Context, req *adminv1.ListPackageVersionsRequest) (*adminv1.ListPackageVersionsResponse, error) {
	what := "deploy history"
	if req.GetName() != "" {
		what = fmt.Sprintf("deploy history of %q", req.GetName())
	}
	limit := req.GetLimit()
	switch {
	case limit < 0:
		return nil, status.Errorf(codes.InvalidArgument, "%s: limit %d must not be negative", what, limit)
	case limit > maxHistoryLimit:
		return nil, status.Errorf(codes.InvalidArgument, "%s: limit %d is over %d", what, limit, maxHistoryLimit)
	case limit == 0:
		limit = defaultHistoryLimit
	}
	ps, err := s.store.ListPackageVersions(ctx, req.GetName(), int(limit))
	if err != nil {
		return nil, storeError(what, err)
	}
	return &adminv1.ListPackageVersionsResponse{Versions: ps}, nil
}

// GetPackage reads a package version with its source.
func (s *packages) GetPackage(ctx context.Context, req *adminv1.GetPackageRequest) (*adminv1.GetPackageResponse, error) {
	what := versionLabel("get package", req.GetName(), req.GetVersion())
	if err := checkVersionRef(req.GetName(), req.GetVersion()); err != nil {
		return nil, invalid(what, err)
	}
	p, current, err := s.store.GetPackage(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, storeError(what, err)
	}
	sources := p.Sources
	p.Sources = nil
	return &adminv1.GetPackageResponse{Package: p, Sources: sources, Current: current}, nil
}

// GetDeployStatus says, per agent, where a package version stands.
func (s *packages) GetDeployStatus(ctx context.Context, req *adminv1.GetDeployStatusRequest) (*adminv1.GetDeployStatusResponse, error) {
	what := "deploy status"
	if req.GetName() != "" {
		what = versionLabel("deploy status of", req.GetName(), req.GetVersion())
		if err := checkVersionRef(req.GetName(), req.GetVersion()); err != nil {
			return nil, invalid(what, err)
		}
	} else if req.GetVersion() != 0 {
		return nil, status.Errorf(codes.InvalidArgument, "%s: version %d needs a package name", what, req.GetVersion())
	}
	st, err := s.store.GetDeployStatus(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, storeError(what, err)
	}
	out := &adminv1.GetDeployStatusResponse{Package: st.Package}
	for _, a := range st.Agents {
		out.Agents = append(out.Agents, &adminv1.AgentDeployStatus{
			AgentId:         a.AgentID,
			State:           deployStateOut(a.State),
			Error:           a.Error,
			Connected:       a.Connected,
			AppliedRevision: a.AppliedRevision,
			NotPersisted:    a.NotPersisted,
		})
	}
	return out, nil
}

// Rollback stores the content of an older version as a new version.
func (s *packages) Rollback(ctx context.Context, req *adminv1.RollbackRequest) (*adminv1.RollbackResponse, error) {
	what := fmt.Sprintf("rollback %q", req.GetName())
	if err := validate.Name("package", req.GetName()); err != nil {
		return nil, invalid(what, err)
	}
	if req.GetToVersion() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "%s: to_version %d must not be negative (0 means the version before the current one)", what, req.GetToVersion())
	}
	p, restored, rev, err := s.store.Rollback(ctx, caller(ctx), req.GetName(), req.GetToVersion())
	if err != nil {
		s.log.Info("rollback refused", "package", req.GetName(), "to_version", req.GetToVersion(), "caller", caller(ctx), "err", err)
		return nil, changeError(what, err)
	}
	s.watch.Advance(rev)
	s.log.Info("rolled back", "package", p.Name, "version", p.Version, "restored_version", restored,
		"sha256", p.Sha256, "revision", rev, "caller", caller(ctx))
	return &adminv1.RollbackResponse{Revision: rev, Package: p, RestoredVersion: restored}, nil
}

// Undeploy removes a package, refusing while active channels use it unless
// forced.
func (s *packages) Undeploy(ctx context.Context, req *adminv1.UndeployRequest) (*adminv1.UndeployResponse, error) {
	what := fmt.Sprintf("undeploy %q", req.GetName())
	if err := validate.Name("package", req.GetName()); err != nil {
		return nil, invalid(what, err)
	}
	res, err := s.store.Undeploy(ctx, caller(ctx), req.GetName(), req.GetForce())
	if err != nil {
		s.log.Info("undeploy refused", "package", req.GetName(), "force", req.GetForce(), "caller", caller(ctx), "err", err)
		return nil, changeError(what, err)
	}
	s.watch.Advance(res.Revision)
	s.log.Info("undeployed", "package", req.GetName(), "services", res.Services,
		"deactivated_channels", res.DeactivatedChannels, "paused_jobs", res.PausedJobs, "revision", res.Revision, "caller", caller(ctx))
	return &adminv1.UndeployResponse{
		Revision:            res.Revision,
		Services:            res.Services,
		DeactivatedChannels: res.DeactivatedChannels,
		PausedJobs:          res.PausedJobs,
	}, nil
}

// changeError maps a store error of a rollback or an undeploy: a conflict
// with stored state is a precondition the caller can fix.
func changeError(what string, err error) error {
	if errors.Is(err, store.ErrConflict) {
		return status.Errorf(codes.FailedPrecondition, "%s: %s", what, trimSentinel(err, store.ErrConflict))
	}
	return storeError(what, err)
}

// checkVersionRef checks a package name and a version number (0: current).
func checkVersionRef(name string, version int64) error {
	if err := validate.Name("package", name); err != nil {
		return err
	}
	if version < 0 {
		return fmt.Errorf("version %d must not be negative (0 means the current one)", version)
	}
	return nil
}

// versionLabel names an operation on a package version for messages:
// `get package "hello" v3`, or without the version when it is 0.
func versionLabel(op, name string, version int64) string {
	if version == 0 {
		return fmt.Sprintf("%s %q", op, name)
	}
	return fmt.Sprintf("%s %q v%d", op, name, version)
}

func deployStateOut(st store.DeployState) adminv1.DeployState {
	switch st {
	case store.DeployPending:
		return adminv1.DeployState_DEPLOY_STATE_PENDING
	case store.DeployDeployed:
		return adminv1.DeployState_DEPLOY_STATE_DEPLOYED
	case store.DeployFailed:
		return adminv1.DeployState_DEPLOY_STATE_FAILED
	default:
		return adminv1.DeployState_DEPLOY_STATE_UNSPECIFIED
	}
}
