package api

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/configplan"
	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// importAttempts bounds how often an import plans again because the
// config moved between its plan and its transaction.
const importAttempts = 5

// ImportConfig plans the config and applies the plan in one transaction.
func (s *configs) ImportConfig(ctx context.Context, req *adminv1.ImportConfigRequest) (*adminv1.ImportConfigResponse, error) {
	const what = "import config"
	cfg := req.GetConfig()
	if err := configplan.Check(cfg); err != nil {
		return nil, configError(what, err)
	}
	planner := configplan.NewPlanner(s.opts.Evaluator)
	for attempt := 1; ; attempt++ {
		d, err := s.store.Desired(ctx)
		if err != nil {
			return nil, storeError(what, err)
		}
		if base := req.GetBaseRevision(); base != 0 && base != d.Revision {
			return nil, status.Errorf(codes.Aborted, "%s: the config moved from revision %d, the plan's, to %d; nothing was changed: plan again", what, base, d.Revision)
		}
		p, err := planner.Plan(ctx, d, cfg, req.GetPrune())
		if err != nil {
			err = configError(what, err)
			s.log.Info("config import refused", "err", err, "caller", caller(ctx))
			return nil, err
		}
		resp := &adminv1.ImportConfigResponse{Items: p.Items, Changes: p.Changes(), Revision: d.Revision}
		if req.GetDryRun() || !resp.Changes {
			s.log.Info("config import planned", append(p.Counts(), "revision", d.Revision, "dry_run", req.GetDryRun(),
				"prune", req.GetPrune(), "caller", caller(ctx))...)
			return resp, nil
		}
		rev, err := s.store.ApplyConfig(ctx, caller(ctx), p.Change)
		if errors.Is(err, store.ErrStale) && req.GetBaseRevision() != 0 {
			return nil, status.Errorf(codes.Aborted, "%s: the config moved while importing, from revision %d, the plan's; nothing was changed: plan again", what, req.GetBaseRevision())
		}
		if errors.Is(err, store.ErrStale) && attempt < importAttempts {
			s.log.Info("config moved while importing; planning again", "err", err, "attempt", attempt)
			continue
		}
		if err != nil {
			return nil, importStoreError(what, err)
		}
		s.watch.Advance(rev)
		resp.Applied, resp.Revision = rev != d.Revision, rev
		s.log.Info("config imported", append(p.Counts(), "revision", rev, "prune", req.GetPrune(), "caller", caller(ctx))...)
		return resp, nil
	}
}

// importStoreError maps a store error of an import. The plan checked
// names and references against the revision the store confirmed, so
// these are rare: a conflict or a missing object is a precondition, and
// a config that kept moving is unavailable for now.
func importStoreError(what string, err error) error {
	switch {
	case errors.Is(err, store.ErrStale):
		return status.Errorf(codes.Aborted, "%s: the config kept changing while the import was planned (%d attempts); try again: %v", what, importAttempts, err)
	case errors.Is(err, store.ErrConflict):
		return status.Errorf(codes.FailedPrecondition, "%s, nothing was changed: %s", what, trimSentinel(err, store.ErrConflict))
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.FailedPrecondition, "%s, nothing was changed: %s", what, trimSentinel(err, store.ErrNotFound))
	}
	return storeError(what, err)
}
