package cli

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// fakeSecrets rotates into nothing: each call makes up the next key id,
// or fails with refuse when it is set.
type fakeSecrets struct {
	adminv1.UnimplementedSecretsServiceServer

	mu     sync.Mutex
	calls  int
	refuse error
}

func (f *fakeSecrets) RotateKey(context.Context, *adminv1.RotateKeyRequest) (*adminv1.RotateKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.refuse != nil {
		return nil, f.refuse
	}
	return &adminv1.RotateKeyResponse{KeyId: int64(2 + f.calls), Resealed: 7, At: timestamppb.New(testNow)}, nil
}

func (f *fakeSecrets) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// newSecretsEnv serves f on 127.0.0.1:0 and returns the address.
func newSecretsEnv(t *testing.T, f *fakeSecrets) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	adminv1.RegisterSecretsServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestSecretsRotateKey(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		refuse     error
		wantStdout string
		wantErr    string
		wantCalls  int
	}{
		{
			name:       "table",
			args:       []string{"secrets", "rotate-key"},
			wantStdout: "data key k3 made: 7 secret values re-sealed with it; the revision did not move\n",
			wantCalls:  1,
		},
		{
			name:      "refused",
			args:      []string{"secrets", "rotate-key"},
			refuse:    status.Error(codes.PermissionDenied, `token "ci" has role deployer; this call needs admin`),
			wantErr:   `rotate the secrets key: token "ci" has role deployer; this call needs admin`,
			wantCalls: 1,
		},
		{name: "an argument", args: []string{"secrets", "rotate-key", "now"}, wantErr: `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSecrets{refuse: tt.refuse}
			stdout, _, err := runApp(map[string]string{"WEFT_ADDR": newSecretsEnv(t, f)}, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout, tt.wantStdout)
			}
			if n := f.callCount(); n != tt.wantCalls {
				t.Errorf("the server saw %d calls, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestSecretsRotateKeyJSON(t *testing.T) {
	f := &fakeSecrets{}
	stdout, _, err := runApp(map[string]string{"WEFT_ADDR": newSecretsEnv(t, f)}, "secrets", "rotate-key", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp adminv1.RotateKeyResponse
	if err := protojson.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("stdout is not a RotateKeyResponse: %v\n%s", err, stdout)
	}
	if resp.GetKeyId() != 3 || resp.GetResealed() != 7 || !resp.GetAt().AsTime().Equal(testNow) {
		t.Errorf("-o json = %v", &resp)
	}
}
