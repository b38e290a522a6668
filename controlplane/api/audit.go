package api

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// maxAuditLimit bounds one answer of ListAudit.
const maxAuditLimit = 10000

// ListAudit returns the audit trail of config changes, newest first.
func (s *configs) ListAudit(ctx context.Context, req *adminv1.ListAuditRequest) (*adminv1.ListAuditResponse, error) {
	q := store.AuditQuery{Author: req.GetWho(), Kind: req.GetKind(), Limit: int(req.GetLimit())}
	if q.Kind != "" && !slices.Contains(store.AuditKinds, q.Kind) {
		return nil, status.Errorf(codes.InvalidArgument, "kind %q: want %s", q.Kind, strings.Join(store.AuditKinds, ", "))
	}
	if q.Limit < 0 || q.Limit > maxAuditLimit {
		return nil, status.Errorf(codes.InvalidArgument, "limit %d: want 0 (%d) to %d", q.Limit, store.DefaultAuditLimit, maxAuditLimit)
	}
	if req.GetSince() != nil {
		if err := req.GetSince().CheckValid(); err != nil || req.GetSince().AsDuration() <= 0 {
			return nil, status.Errorf(codes.InvalidArgument, "since %s: want a positive duration", req.GetSince().AsDuration())
		}
		q.Since = time.Now().Add(-req.GetSince().AsDuration())
	}
	entries, truncated, err := s.store.ListAudit(ctx, q)
	if err != nil {
		return nil, storeError("read the audit trail", err)
	}
	out := &adminv1.ListAuditResponse{Truncated: truncated}
	for _, e := range entries {
		out.Entries = append(out.Entries, &adminv1.AuditEntry{
			Revision: e.Revision, At: timestamppb.New(e.At), Who: e.Author, Kind: e.Kind, Name: e.Name,
			Action: e.Action, HashBefore: e.HashBefore, HashAfter: e.HashAfter, Summary: e.Summary,
		})
	}
	return out, nil
}

// Authors is a unary interceptor that names every request's caller as the
// author of the changes it makes (see store.WithAuthor), so that the
// audit trail says who changed what.
func Authors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	return next(store.WithAuthor(ctx, caller(ctx)), req)
}
