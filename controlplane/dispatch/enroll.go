package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/pki"
	"github.com/weft-dev/weft/controlplane/store"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// DefaultAgentCertTTL is how long an agent's certificate is valid unless
// SetCA says otherwise; agents renew it once two thirds have passed.
const DefaultAgentCertTTL = 30 * 24 * time.Hour

// SetCA makes the server enroll agents: it signs their certificates with
// ca, each valid for ttl. Call it before serving.
func (s *Server) SetCA(ca *pki.CA, ttl time.Duration) {
	s.ca = ca
	s.certTTL = ttl
}

// csrError is a certificate request that cannot be signed.
type csrError struct{ err error }

func (e csrError) Error() string { return e.err.Error() }

// Enroll trades a join token for a certificate bound to the agent's id.
func (s *Server) Enroll(ctx context.Context, req *agentv1.EnrollRequest) (*agentv1.EnrollResponse, error) {
	id := req.GetAgentId()
	if !agentIDPattern.MatchString(id) {
		return nil, status.Errorf(codes.InvalidArgument, "enroll: agent_id %q: want 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	if s.ca == nil {
		return nil, status.Error(codes.FailedPrecondition, "enroll: this control plane has no CA")
	}
	if req.GetJoinToken() == "" {
		return nil, status.Error(codes.InvalidArgument, "enroll: join_token is empty")
	}
	var certPEM []byte
	ctx = store.WithAuthor(ctx, "agent:"+id)
	jt, err := s.store.Enroll(ctx, auth.HashSecret(req.GetJoinToken()), id, s.now(), func() (store.Certificate, error) {
		cert, p, err := s.ca.AgentCertificate(id, req.GetCsrDer(), s.certTTL)
		if err != nil {
			return store.Certificate{}, csrError{err}
		}
		certPEM = p
		return store.Certificate{Serial: pki.Serial(cert), NotAfter: cert.NotAfter}, nil
	})
	if err != nil {
		return nil, s.enrollError("enroll", id, err)
	}
	s.log.Info("agent enrolled", "agent", id, "join_token", jt.ID, "uses_left", jt.Uses-jt.Used)
	return &agentv1.EnrollResponse{CertificatePem: string(certPEM), CaPem: string(s.ca.CertPEM())}, nil
}

// Renew issues the calling agent a new certificate for its id.
func (s *Server) Renew(ctx context.Context, req *agentv1.RenewRequest) (*agentv1.RenewResponse, error) {
	id, ok := auth.AgentFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "renew: the call carries no agent certificate")
	}
	if s.ca == nil {
		return nil, status.Error(codes.FailedPrecondition, "renew: this control plane has no CA")
	}
	cert, certPEM, err := s.ca.AgentCertificate(id, req.GetCsrDer(), s.certTTL)
	if err != nil {
		return nil, s.enrollError("renew", id, csrError{err})
	}
	ctx = store.WithAuthor(ctx, "agent:"+id)
	if err := s.store.AgentCertified(ctx, id, store.Certificate{Serial: pki.Serial(cert), NotAfter: cert.NotAfter}); err != nil {
		return nil, s.enrollError("renew", id, err)
	}
	s.log.Info("agent certificate renewed", "agent", id, "not_after", cert.NotAfter)
	return &agentv1.RenewResponse{CertificatePem: string(certPEM), CaPem: string(s.ca.CertPEM())}, nil
}

// enrollError is the status of a failed enrollment or renewal.
func (s *Server) enrollError(op, id string, err error) error {
	var ce csrError
	switch {
	case errors.As(err, &ce):
		return status.Errorf(codes.InvalidArgument, "%s: %v", op, ce.err)
	case errors.Is(err, store.ErrNotFound) && op == "enroll":
		return status.Errorf(codes.Unauthenticated, "%s: unknown join token: no join token of this control plane has that secret", op)
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.PermissionDenied, "%s: agent %q never enrolled here", op, id)
	case errors.Is(err, store.ErrRefused):
		return status.Errorf(codes.PermissionDenied, "%s: %v", op, err)
	}
	s.log.Error("cannot "+op+" an agent", "agent", id, "err", err)
	return storeFailed(fmt.Sprintf("%s agent %q", op, id), err)
}

// Disconnect closes the streams agent id holds on this replica, and says
// how many it closed.
func (s *Server) Disconnect(id string) int {
	s.mu.Lock()
	c := s.agents[id]
	n := 0
	if c != nil {
		n = 1
		if c.cmd != nil {
			n++
		}
	}
	s.mu.Unlock()
	if c != nil {
		c.cancel()
	}
	return n
}
