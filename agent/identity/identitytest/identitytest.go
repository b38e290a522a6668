// Package identitytest runs the control plane's side of the agents'
// identities for tests: the agent API over TLS, with a CA of its own, that
// enrolls agents with a join token, renews their certificates, and serves
// the Sync and Commands streams of agents that present one.
package identitytest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/shared/snapshot"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// Token is the join token a ControlPlane takes.
const Token = "join-token-for-tests"

// ControlPlane is a control plane's agent API over TLS. Its certificate,
// for 127.0.0.1 and localhost, is its CA's; it verifies the client
// certificates given, against that CA, and refuses every call but Enroll
// without one.
type ControlPlane struct {
	agentv1.UnimplementedAgentServiceServer
	// CA issues the control plane's certificate and the agents'.
	CA *testenv.CA
	// Hosts are the names of the control plane's certificate, IP
	// addresses or DNS names; change them before Serve.
	Hosts []string
	// Addr is where it serves, once Serve has started.
	Addr string

	mu            sync.Mutex
	before, after time.Duration // issued certificates are valid from now-before to now+after
	enrolls       int
	renews        int
	syncs         int
	revoked       map[string]bool
	acked         map[string]int64 // the last revision each agent ACKed
	lastClient    *x509.Certificate
}

// New returns a control plane with a new CA, not serving yet.
func New(t testing.TB) *ControlPlane {
	return &ControlPlane{
		CA: testenv.NewCA(t, "weft test control plane CA"), Hosts: []string{"127.0.0.1", "localhost"},
		before: time.Minute, after: 24 * time.Hour,
		revoked: map[string]bool{}, acked: map[string]int64{},
	}
}

// Start returns a control plane serving on a free port of 127.0.0.1.
func Start(t testing.TB) *ControlPlane {
	t.Helper()
	cp := New(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp.Serve(t, lis)
	return cp
}

// Serve serves the agent API on lis until the test ends.
func (cp *ControlPlane) Serve(t testing.TB, lis net.Listener) {
	t.Helper()
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cp.CA.ServerTLS(t, cp.Hosts...)},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    cp.CA.Pool(),
		})),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := cp.authenticate(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := cp.authenticate(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	)
	agentv1.RegisterAgentServiceServer(srv, cp)
	cp.Addr = lis.Addr().String()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
}

// Fingerprint is the fingerprint of the control plane's CA.
func (cp *ControlPlane) Fingerprint() string { return cp.CA.Fingerprint() }

// SetValidity makes the certificates issued from now on valid from before
// ago until after from now.
func (cp *ControlPlane) SetValidity(before, after time.Duration) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.before, cp.after = before, after
}

// Revoke makes the control plane refuse agent id.
func (cp *ControlPlane) Revoke(id string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.revoked[id] = true
}

// Enrolls is how many Enroll calls reached the control plane.
func (cp *ControlPlane) Enrolls() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.enrolls
}

// Renews is how many Renew calls reached the control plane.
func (cp *ControlPlane) Renews() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.renews
}

// Syncs is how many Sync streams agents opened.
func (cp *ControlPlane) Syncs() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.syncs
}

// Acked returns the last revision agent id ACKed on Sync, 0 for none.
func (cp *ControlPlane) Acked(id string) int64 {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.acked[id]
}

// LastClient returns the client certificate of the last call that gave one.
func (cp *ControlPlane) LastClient() *x509.Certificate {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.lastClient
}

// Issue issues a client certificate for agent id and pub, valid from
// notBefore to notAfter, PEM.
func (cp *ControlPlane) Issue(id string, pub any, notBefore, notAfter time.Time) ([]byte, error) {
	cert, err := cp.CA.Sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: id},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
	}, pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), nil
}

// authenticate refuses a call but Enroll without a client certificate, or
// from a revoked agent.
func (cp *ControlPlane) authenticate(ctx context.Context, method string) error {
	if method == agentv1.AgentService_Enroll_FullMethodName {
		return nil
	}
	cert := clientCert(ctx)
	if cert == nil {
		return status.Error(codes.Unauthenticated, "no client certificate: enroll the agent first")
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.lastClient = cert
	if cp.revoked[cert.Subject.CommonName] {
		return status.Errorf(codes.PermissionDenied, "agent %s is revoked", cert.Subject.CommonName)
	}
	return nil
}

// clientCert is the verified client certificate of the call, nil for none.
func clientCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return nil
	}
	return info.State.VerifiedChains[0][0]
}

// Enroll issues a certificate for the request's key and agent id, when its
// token is Token.
func (cp *ControlPlane) Enroll(_ context.Context, req *agentv1.EnrollRequest) (*agentv1.EnrollResponse, error) {
	cp.mu.Lock()
	cp.enrolls++
	cp.mu.Unlock()
	if req.GetJoinToken() != Token {
		return nil, status.Error(codes.Unauthenticated, "the join token is not valid")
	}
	certPEM, err := cp.issueFor(req.GetAgentId(), req.GetCsrDer())
	if err != nil {
		return nil, err
	}
	return &agentv1.EnrollResponse{CertificatePem: string(certPEM), CaPem: string(cp.CA.PEM())}, nil
}

// Renew issues a new certificate for the caller's id.
func (cp *ControlPlane) Renew(ctx context.Context, req *agentv1.RenewRequest) (*agentv1.RenewResponse, error) {
	cp.mu.Lock()
	cp.renews++
	cp.mu.Unlock()
	certPEM, err := cp.issueFor(clientCert(ctx).Subject.CommonName, req.GetCsrDer())
	if err != nil {
		return nil, err
	}
	return &agentv1.RenewResponse{CertificatePem: string(certPEM), CaPem: string(cp.CA.PEM())}, nil
}

// issueFor issues a certificate for id and the key of csrDER.
func (cp *ControlPlane) issueFor(id string, csrDER []byte) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err == nil {
		err = csr.CheckSignature()
	}
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "csr_der: %v", err)
	}
	cp.mu.Lock()
	before, after := cp.before, cp.after
	cp.mu.Unlock()
	now := time.Now()
	certPEM, err := cp.Issue(id, csr.PublicKey, now.Add(-before), now.Add(after))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return certPEM, nil
}

// Sync takes the hello of the agent the certificate names, sends it an
// empty snapshot at revision 1, and records its ACKs.
func (cp *ControlPlane) Sync(stream agentv1.AgentService_SyncServer) error {
	id := clientCert(stream.Context()).Subject.CommonName
	cp.mu.Lock()
	cp.syncs++
	cp.mu.Unlock()
	hello, err := stream.Recv()
	if err != nil {
		return err
	}
	if got := hello.GetHello().GetAgentId(); got != id {
		return status.Errorf(codes.PermissionDenied, "the certificate is for agent %s, not %s", id, got)
	}
	snap := &agentv1.Desired{Revision: 1, Nonce: "n1"}
	snap.Hash = snapshot.Hash(snap)
	if err := stream.Send(&agentv1.SyncResponse{Kind: &agentv1.SyncResponse_Desired{Desired: snap}}); err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		if ack := m.GetAck(); ack != nil {
			cp.mu.Lock()
			cp.acked[id] = ack.GetRevision()
			cp.mu.Unlock()
		}
	}
}

// Commands holds the stream open until the agent or the test ends it.
func (cp *ControlPlane) Commands(stream agentv1.AgentService_CommandsServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}

// ReportStats takes the statistics and drops them: a unary call for tests
// to make over an agent's connection.
func (cp *ControlPlane) ReportStats(context.Context, *agentv1.ReportStatsRequest) (*agentv1.ReportStatsResponse, error) {
	return &agentv1.ReportStatsResponse{}, nil
}
