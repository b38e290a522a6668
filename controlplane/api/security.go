package api

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/weft-dev/weft/controlplane/configplan"
	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// SecurityStore is what the security service needs of the store.
type SecurityStore interface {
	CreateSecurityDefinition(ctx context.Context, d *adminv1.SecurityDefinition) (*adminv1.SecurityDefinition, error)
	GetSecurityDefinition(ctx context.Context, name string) (*adminv1.SecurityDefinition, error)
	ListSecurityDefinitions(ctx context.Context) ([]*adminv1.SecurityDefinition, error)
	UpdateSecurityDefinition(ctx context.Context, d *adminv1.SecurityDefinition) (*adminv1.SecurityDefinition, error)
	DeleteSecurityDefinition(ctx context.Context, name string) (int64, error)
}

var _ SecurityStore = store.Store(nil)

type securityDefs struct {
	adminv1.UnimplementedSecurityServiceServer
	*base
	store SecurityStore
}

var _ adminv1.SecurityServiceServer = (*securityDefs)(nil)

// CreateSecurityDefinition validates and stores a new definition.
func (s *securityDefs) CreateSecurityDefinition(ctx context.Context, req *adminv1.CreateSecurityDefinitionRequest) (*adminv1.CreateSecurityDefinitionResponse, error) {
	in := req.GetDefinition()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "create security definition: definition is required")
	}
	what := fmt.Sprintf("create security definition %q", in.GetName())
	if err := configplan.CheckSecurity(in); err != nil {
		return nil, invalid(what, err)
	}
	out, err := s.store.CreateSecurityDefinition(ctx, in)
	if err != nil {
		return nil, channelStoreError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("security definition created", "definition", out.Name, "kind", out.Kind, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.CreateSecurityDefinitionResponse{Definition: configplan.SecurityOut(out)}, nil
}

// GetSecurityDefinition reads one definition, secrets redacted.
func (s *securityDefs) GetSecurityDefinition(ctx context.Context, req *adminv1.GetSecurityDefinitionRequest) (*adminv1.GetSecurityDefinitionResponse, error) {
	d, err := s.store.GetSecurityDefinition(ctx, req.GetName())
	if err != nil {
		return nil, storeError(fmt.Sprintf("get security definition %q", req.GetName()), err)
	}
	return &adminv1.GetSecurityDefinitionResponse{Definition: configplan.SecurityOut(d)}, nil
}

// ListSecurityDefinitions lists every definition, secrets redacted.
func (s *securityDefs) ListSecurityDefinitions(ctx context.Context, _ *adminv1.ListSecurityDefinitionsRequest) (*adminv1.ListSecurityDefinitionsResponse, error) {
	ds, err := s.store.ListSecurityDefinitions(ctx)
	if err != nil {
		return nil, storeError("list security definitions", err)
	}
	out := &adminv1.ListSecurityDefinitionsResponse{}
	for _, d := range ds {
		out.Definitions = append(out.Definitions, configplan.SecurityOut(d))
	}
	return out, nil
}

// UpdateSecurityDefinition changes the fields the mask names, or every
// field the request sets when it names none; secrets not given keep their
// stored values, unless the kind changes: then nothing of the old kind
// carries over.
func (s *securityDefs) UpdateSecurityDefinition(ctx context.Context, req *adminv1.UpdateSecurityDefinitionRequest) (*adminv1.UpdateSecurityDefinitionResponse, error) {
	in := req.GetDefinition()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "update security definition: definition is required")
	}
	what := fmt.Sprintf("update security definition %q", in.GetName())
	cur, err := s.store.GetSecurityDefinition(ctx, in.GetName())
	if err != nil {
		return nil, storeError(what, err)
	}
	next, err := securityUpdated(cur, in, req.GetUpdateMask())
	if err != nil {
		return nil, invalid(what, err)
	}
	if err := configplan.CheckSecurity(next); err != nil {
		return nil, invalid(what, err)
	}
	out, err := s.store.UpdateSecurityDefinition(ctx, next)
	if err != nil {
		// A conflict here is a channel or connection that could no longer
		// use the definition: a precondition, since the name exists.
		return nil, changeError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("security definition updated", "definition", out.Name, "kind", out.Kind, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.UpdateSecurityDefinitionResponse{Definition: configplan.SecurityOut(out)}, nil
}

// DeleteSecurityDefinition removes a definition nothing uses.
func (s *securityDefs) DeleteSecurityDefinition(ctx context.Context, req *adminv1.DeleteSecurityDefinitionRequest) (*adminv1.DeleteSecurityDefinitionResponse, error) {
	rev, err := s.store.DeleteSecurityDefinition(ctx, req.GetName())
	if err != nil {
		// A conflict is a channel or connection still using it.
		return nil, changeError(fmt.Sprintf("delete security definition %q", req.GetName()), err)
	}
	s.watch.Advance(rev)
	s.log.Info("security definition deleted", "definition", req.GetName(), "revision", rev, "caller", caller(ctx))
	return &adminv1.DeleteSecurityDefinitionResponse{Revision: rev}, nil
}

// securityUpdated is cur changed by the fields of in that mask names (every
// field in sets when it names none). A change of kind starts from an empty
// definition, since no field of one kind applies to another: the fields of
// the old kind, secrets included, do not carry over.
func securityUpdated(cur, in *adminv1.SecurityDefinition, mask *fieldmaskpb.FieldMask) (*adminv1.SecurityDefinition, error) {
	next := proto.CloneOf(cur)
	if err := applyMask(next, in, mask); err != nil {
		return nil, err
	}
	if next.GetKind() == cur.GetKind() {
		return next, nil
	}
	next = &adminv1.SecurityDefinition{Name: cur.GetName()}
	if err := applyMask(next, in, mask); err != nil {
		return nil, err
	}
	return next, nil
}
