package api

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/configplan"
	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// ConfigStore is what the config service needs of the store: the whole
// config at one revision, one transaction to change it, and the audit
// trail of changes.
type ConfigStore interface {
	Desired(ctx context.Context) (store.Desired, error)
	ApplyConfig(ctx context.Context, author string, c store.ConfigChange) (int64, error)
	ListAudit(ctx context.Context, q store.AuditQuery) (entries []store.AuditEntry, truncated bool, err error)
}

var _ ConfigStore = store.Store(nil)

// configs serves config as code (package configplan) over the store.
type configs struct {
	adminv1.UnimplementedConfigServiceServer
	*base
	store ConfigStore
}

var _ adminv1.ConfigServiceServer = (*configs)(nil)

// ExportConfig returns the config at one revision, secrets as placeholders.
func (s *configs) ExportConfig(ctx context.Context, req *adminv1.ExportConfigRequest) (*adminv1.ExportConfigResponse, error) {
	sel, err := configplan.Select(req.GetKinds(), req.GetNames())
	if err != nil {
		return nil, invalid("export config", err)
	}
	// One snapshot: every object at the same revision, secrets in clear
	// (they become placeholders in the export and never leave it).
	d, err := s.store.Desired(ctx)
	if err != nil {
		return nil, storeError("export config", err)
	}
	cfg, err := configplan.Export(d, sel, req.GetIncludeSource())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "export config: %v", err)
	}
	s.log.Info("config exported", "revision", d.Revision, "security", len(cfg.Security), "outgoing", len(cfg.Outgoing),
		"channels", len(cfg.Channels), "jobs", len(cfg.Jobs), "packages", len(cfg.Packages),
		"source", req.GetIncludeSource(), "caller", caller(ctx))
	return &adminv1.ExportConfigResponse{Config: cfg}, nil
}

// PlanConfig compares the config with the live one, object by object and
// field by field, and changes nothing. It checks what an import checks.
func (s *configs) PlanConfig(ctx context.Context, req *adminv1.PlanConfigRequest) (*adminv1.PlanConfigResponse, error) {
	const what = "plan config"
	cfg := req.GetConfig()
	if err := configplan.Check(cfg); err != nil {
		return nil, configError(what, err)
	}
	d, err := s.store.Desired(ctx)
	if err != nil {
		return nil, storeError(what, err)
	}
	p, err := configplan.NewPlanner(s.opts.Evaluator).Plan(ctx, d, cfg, req.GetPrune())
	if err != nil {
		return nil, configError(what, err)
	}
	s.log.Info("config planned", append(p.Counts(), "revision", d.Revision, "prune", req.GetPrune(), "caller", caller(ctx))...)
	return &adminv1.PlanConfigResponse{Items: p.Items, Changes: p.Changes(), Revision: d.Revision}, nil
}

// configError is the status of a config refused: INVALID_ARGUMENT with
// every problem in the message, one a line, and as a field violation of a
// google.rpc.BadRequest detail whose field is the path in the request
// (config.channels[3].service), for a client to point at its file.
func configError(what string, err error) error {
	var ps configplan.Problems
	if !errors.As(err, &ps) {
		return invalid(what, err)
	}
	br := &errdetails.BadRequest{}
	for _, p := range ps {
		field := "config"
		if p.Path != "" {
			field += "." + p.Path
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: field, Description: p.Err.Error()})
	}
	st := status.Newf(codes.InvalidArgument, "%s: %v", what, err)
	if withDetails, err := st.WithDetails(br); err == nil {
		st = withDetails
	}
	return st.Err()
}
