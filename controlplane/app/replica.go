package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/weft-dev/weft/controlplane/store"
)

// replicaStore is what the replica's heartbeat needs of the store.
type replicaStore interface {
	ReplicaBeats(ctx context.Context, r store.Replica) error
	ReplicaGone(ctx context.Context, id string) error
}

// newReplica names this process among the control plane's replicas: its
// host name and a random suffix, so that a restart is a new replica.
func newReplica(address string) store.Replica {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return store.Replica{ID: host + "-" + hex.EncodeToString(b), Address: address, StartedAt: time.Now()}
}

// beat records r as alive every store.ReplicaBeat until ctx ends, then
// removes it, so that the agents it held count as disconnected at once. A
// heartbeat that fails is logged; the next one tries again.
func beat(ctx context.Context, st replicaStore, r store.Replica, log *slog.Logger) error {
	t := time.NewTicker(store.ReplicaBeat)
	defer t.Stop()
	failing := false
	for {
		err := st.ReplicaBeats(ctx, r)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			log.Warn("cannot record this replica's heartbeat; its agents count as disconnected until it can", "err", err)
			failing = true
		case err == nil && failing:
			log.Info("this replica's heartbeat is recorded again")
			failing = false
		}
		select {
		case <-ctx.Done():
			gctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := st.ReplicaGone(gctx, r.ID); err != nil {
				log.Warn("cannot remove this replica from the database; it counts as gone after its lease", "err", err)
			}
			return nil
		case <-t.C:
		}
	}
}

// advertise is the address other replicas reach this one at: --advertise,
// with the port the listener got when it asked for any (port 0).
func advertise(configured string, bound net.Addr) string {
	host, port, err := net.SplitHostPort(configured)
	if err != nil || port != "0" {
		return configured
	}
	if _, p, err := net.SplitHostPort(bound.String()); err == nil {
		port = p
	}
	return net.JoinHostPort(host, port)
}
