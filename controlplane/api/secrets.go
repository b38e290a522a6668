package api

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// secretsKeys implements SecretsService: the keys that seal secrets at
// rest.
type secretsKeys struct {
	adminv1.UnimplementedSecretsServiceServer
	*base
	store SecretsStore
}

// SecretsStore is what the secrets service needs of the store.
type SecretsStore interface {
	RotateKey(ctx context.Context) (store.KeyRotation, error)
}

var _ SecretsStore = store.Store(nil)

// RotateKey re-seals every stored secret with a new data key. Agents hear
// nothing of it: the clear values, and so the revision, do not change.
func (s *secretsKeys) RotateKey(ctx context.Context, _ *adminv1.RotateKeyRequest) (*adminv1.RotateKeyResponse, error) {
	r, err := s.store.RotateKey(ctx)
	if err != nil {
		return nil, storeError("rotate the secrets key", err)
	}
	s.log.Info("secrets key rotated", "data_key", r.KeyID, "resealed", r.Resealed,
		"retired", r.Retired, "deleted", r.Deleted, "caller", caller(ctx))
	return &adminv1.RotateKeyResponse{KeyId: r.KeyID, Resealed: r.Resealed, At: timestamppb.New(r.At)}, nil
}
