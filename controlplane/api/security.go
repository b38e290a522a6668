package api

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/agent/secrets"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

type securityDefs struct {
	adminv1.UnimplementedSecurityServiceServer
	*Server
}

var _ adminv1.SecurityServiceServer = (*securityDefs)(nil)

// CreateSecurityDefinition validates and stores a new definition.
func (s *securityDefs) CreateSecurityDefinition(ctx context.Context, req *adminv1.CreateSecurityDefinitionRequest) (*adminv1.CreateSecurityDefinitionResponse, error) {
	in := req.GetDefinition()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "create security definition: definition is required")
	}
	what := fmt.Sprintf("create security definition %q", in.GetName())
	d := securityIn(in)
	if err := checkSecurity(d); err != nil {
		return nil, invalid(what, err)
	}
	out, err := s.store.CreateSecurityDefinition(ctx, d)
	if err != nil {
		return nil, channelStoreError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("security definition created", "definition", out.Name, "kind", out.Kind, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.CreateSecurityDefinitionResponse{Definition: securityOut(out)}, nil
}

// GetSecurityDefinition reads one definition, secrets redacted.
func (s *securityDefs) GetSecurityDefinition(ctx context.Context, req *adminv1.GetSecurityDefinitionRequest) (*adminv1.GetSecurityDefinitionResponse, error) {
	d, err := s.store.GetSecurityDefinition(ctx, req.GetName())
	if err != nil {
		return nil, storeError(fmt.Sprintf("get security definition %q", req.GetName()), err)
	}
	return &adminv1.GetSecurityDefinitionResponse{Definition: securityOut(d)}, nil
}

// ListSecurityDefinitions lists every definition, secrets redacted.
func (s *securityDefs) ListSecurityDefinitions(ctx context.Context, _ *adminv1.ListSecurityDefinitionsRequest) (*adminv1.ListSecurityDefinitionsResponse, error) {
	ds, err := s.store.ListSecurityDefinitions(ctx)
	if err != nil {
		return nil, storeError("list security definitions", err)
	}
	out := &adminv1.ListSecurityDefinitionsResponse{}
	for _, d := range ds {
		out.Definitions = append(out.Definitions, securityOut(d))
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
	d := securityIn(next)
	if err := checkSecurity(d); err != nil {
		return nil, invalid(what, err)
	}
	out, err := s.store.UpdateSecurityDefinition(ctx, d)
	if err != nil {
		// A conflict here is a channel or connection that could no longer
		// use the definition: a precondition, since the name exists.
		return nil, changeError(what, err)
	}
	s.watch.Advance(out.Revision)
	s.log.Info("security definition updated", "definition", out.Name, "kind", out.Kind, "revision", out.Revision, "caller", caller(ctx))
	return &adminv1.UpdateSecurityDefinitionResponse{Definition: securityOut(out)}, nil
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
func securityUpdated(cur store.SecurityDefinition, in *adminv1.SecurityDefinition, mask *fieldmaskpb.FieldMask) (*adminv1.SecurityDefinition, error) {
	next := securityClear(cur)
	if err := applyMask(next, in, mask); err != nil {
		return nil, err
	}
	if next.GetKind() == cur.Kind {
		return next, nil
	}
	next = &adminv1.SecurityDefinition{Name: cur.Name}
	if err := applyMask(next, in, mask); err != nil {
		return nil, err
	}
	return next, nil
}

// checkSecurity refuses the redaction placeholder as a secret (a read sent
// back as a write), then validates d as agents would.
func checkSecurity(d store.SecurityDefinition) error {
	for _, f := range secretFields(d) {
		if f.value == secrets.Redacted {
			return fmt.Errorf("%s: is the redaction placeholder that reads show; give the real value", f.name)
		}
	}
	return validate.SecurityDefinition(d)
}

// secretField is a secret field by its API name.
type secretField struct{ name, value string }

// secretFields are d's secret fields in the order of the API.
func secretFields(d store.SecurityDefinition) []secretField {
	return []secretField{
		{"password", d.Password}, {"key", d.Key}, {"secret", d.Secret},
		{"token", d.Token}, {"client_secret", d.ClientSecret}, {"key_pem", d.KeyPEM},
	}
}

func securityIn(p *adminv1.SecurityDefinition) store.SecurityDefinition {
	return store.SecurityDefinition{
		Name: p.GetName(), Kind: p.GetKind(),
		Username: p.GetUsername(), Password: p.GetPassword(),
		Header: p.GetHeader(), Key: p.GetKey(),
		Algorithms: p.GetAlgorithms(), Secret: p.GetSecret(), PublicKeyPEM: p.GetPublicKeyPem(), JWKSURL: p.GetJwksUrl(),
		Issuer: p.GetIssuer(), Audience: p.GetAudience(), LeewayMs: p.GetLeewayMs(),
		Token:    p.GetToken(),
		TokenURL: p.GetTokenUrl(), ClientID: p.GetClientId(), ClientSecret: p.GetClientSecret(), Scopes: p.GetScopes(),
		IntrospectionURL: p.GetIntrospectionUrl(), CacheSeconds: p.GetCacheSeconds(),
		CertPEM: p.GetCertPem(), KeyPEM: p.GetKeyPem(),
		CAPEM: p.GetCaPem(), AllowedSubjects: p.GetAllowedSubjects(), AllowedSANs: p.GetAllowedSans(),
	}
}

// securityClear is d with its secrets in clear, for an update to change.
// It never leaves the control plane.
func securityClear(d store.SecurityDefinition) *adminv1.SecurityDefinition {
	return &adminv1.SecurityDefinition{
		Name: d.Name, Kind: d.Kind,
		Username: d.Username, Password: d.Password,
		Header: d.Header, Key: d.Key,
		Algorithms: d.Algorithms, Secret: d.Secret, PublicKeyPem: d.PublicKeyPEM, JwksUrl: d.JWKSURL,
		Issuer: d.Issuer, Audience: d.Audience, LeewayMs: d.LeewayMs,
		Token:    d.Token,
		TokenUrl: d.TokenURL, ClientId: d.ClientID, ClientSecret: d.ClientSecret, Scopes: d.Scopes,
		IntrospectionUrl: d.IntrospectionURL, CacheSeconds: d.CacheSeconds,
		CertPem: d.CertPEM, KeyPem: d.KeyPEM,
		CaPem: d.CAPEM, AllowedSubjects: d.AllowedSubjects, AllowedSans: d.AllowedSANs,
		CreatedAt: timestamppb.New(d.CreatedAt), UpdatedAt: timestamppb.New(d.UpdatedAt), Revision: d.Revision,
	}
}

// securityOut is d as reads show it: every secret redacted.
func securityOut(d store.SecurityDefinition) *adminv1.SecurityDefinition {
	p := securityClear(d)
	p.Password = secrets.Redact(p.Password)
	p.Key = secrets.Redact(p.Key)
	p.Secret = secrets.Redact(p.Secret)
	p.Token = secrets.Redact(p.Token)
	p.ClientSecret = secrets.Redact(p.ClientSecret)
	p.KeyPem = secrets.Redact(p.KeyPem)
	return p
}
