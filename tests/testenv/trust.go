package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// The files a control plane started by StartControlPlane writes on its
// first start, in its own directory: the CA certificate clients trust and
// the first admin token's secret.
const (
	caFileName    = "weft-ca.pem"
	tokenFileName = "weft-admin.token"
)

// CAFile is the path of the CA certificate the control plane wrote.
func (cp *ControlPlane) CAFile() string { return cp.caFile }

// TokenFile is the path of the first admin token the control plane wrote.
func (cp *ControlPlane) TokenFile() string { return cp.tokenFile }

// Token is the first admin token's secret.
func (cp *ControlPlane) Token(t testing.TB) string {
	t.Helper()
	tok, err := cp.token()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (cp *ControlPlane) token() (string, error) {
	b, err := os.ReadFile(cp.tokenFile)
	if err != nil {
		return "", fmt.Errorf("the control plane's admin token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// CAPEM is the CA certificate the control plane wrote, PEM.
func (cp *ControlPlane) CAPEM(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(cp.caFile)
	if err != nil {
		t.Fatalf("the control plane's CA file: %v", err)
	}
	return b
}

// CAFingerprint is the CA's fingerprint, as weft-agent --ca-fingerprint
// takes it.
func (cp *ControlPlane) CAFingerprint(t testing.TB) string {
	t.Helper()
	block, _ := pem.Decode(cp.CAPEM(t))
	if block == nil {
		t.Fatalf("%s holds no PEM block", cp.caFile)
	}
	sum := sha256.Sum256(block.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// JoinToken makes a join token for one agent with labels (k=v each), and
// returns its secret.
func (cp *ControlPlane) JoinToken(t testing.TB, labels ...string) string {
	t.Helper()
	req := &adminv1.CreateJoinTokenRequest{Labels: map[string]string{}}
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		req.Labels[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cp.Fleet().CreateJoinToken(ctx, req)
	if err != nil {
		t.Fatalf("CreateJoinToken on %s: %v", cp.Addr, err)
	}
	return resp.GetSecret()
}

// CtlEnviron is the environment weftctl needs to reach cp, for a weftctl
// a test starts itself: its address, CA and admin token, and no config
// file of the user's. Ctl and CtlEnv set it.
func (cp *ControlPlane) CtlEnviron() []string {
	return cleanEnv(cp.ctlEnv()...)
}

// ctlEnv is what CtlEnviron adds to the environment.
func (cp *ControlPlane) ctlEnv() []string {
	env := []string{"WEFT_ADDR=" + cp.Addr, "WEFT_CA=" + cp.caFile, "WEFT_CONFIG=" + cp.ctlConfig}
	if tok, err := cp.token(); err == nil {
		env = append(env, "WEFT_TOKEN="+tok)
	}
	return env
}

// Grpcurl runs grpcurl against cp with its CA and admin token, then args,
// such as "list" or "-d", "{}", "weft.admin.v1.FleetService/ListAgents"
// (the address goes before the method: give it as an arg).
func (cp *ControlPlane) Grpcurl(t testing.TB, args ...string) Result {
	t.Helper()
	return Grpcurl(t, append([]string{"-cacert", cp.caFile, "-H", "authorization: Bearer " + cp.Token(t)}, args...)...)
}

// TLSCredentials are a client's transport credentials for the control
// plane at addr that verify its certificate against the CA file it writes
// when it starts: the file is read at each handshake, as it does not exist
// before the first start.
func TLSCredentials(addr, caFile string) credentials.TransportCredentials {
	host, _, _ := net.SplitHostPort(addr)
	return credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verified by VerifyPeerCertificate, against the CA file.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			pemBytes, err := os.ReadFile(caFile)
			if err != nil {
				return err
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pemBytes) {
				return errors.New("no certificate in " + caFile)
			}
			if len(raw) == 0 {
				return errors.New("the control plane presented no certificate")
			}
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			inter := x509.NewCertPool()
			for _, r := range raw[1:] {
				if c, err := x509.ParseCertificate(r); err == nil {
					inter.AddCert(c)
				}
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host})
			return err
		},
	})
}

// TokenFileCredentials send the token in tokenFile, read at each call
// (there is none before the control plane's first start: the call goes
// without).
func TokenFileCredentials(tokenFile string) credentials.PerRPCCredentials {
	return tokenCreds{file: tokenFile}
}

type tokenCreds struct{ file string }

func (c tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	b, err := os.ReadFile(c.file)
	if err != nil {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + strings.TrimSpace(string(b))}, nil
}

func (tokenCreds) RequireTransportSecurity() bool { return true }

// WriteFiles writes the CA's certificate and key into dir as NAME-cert.pem
// and NAME-key.pem: for a control plane started with --ca-cert and
// --ca-key.
func (c *CA) WriteFiles(t testing.TB, dir, name string) CertFiles {
	t.Helper()
	kder, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return CertFiles{
		Cert: WritePEM(t, dir, name+"-cert.pem", "CERTIFICATE", c.Cert.Raw),
		Key:  WritePEM(t, dir, name+"-key.pem", "PRIVATE KEY", kder),
	}
}

// ClientCertValid is ClientCert valid from notBefore to notAfter, such as
// one that expired.
func (c *CA) ClientCertValid(t testing.TB, dir, name, cn string, notBefore, notAfter time.Time) CertFiles {
	t.Helper()
	files := c.ClientCert(t, dir, name, cn)
	// Issue again over the files, with the validity asked for.
	key, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(key.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	leaf.NotBefore, leaf.NotAfter = notBefore, notAfter
	der, err := x509.CreateCertificate(rand.Reader, leaf, c.Cert, leaf.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	WritePEM(t, dir, name+"-cert.pem", "CERTIFICATE", der)
	return files
}
