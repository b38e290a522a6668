// Package app wires the control plane together and runs it: the store, the
// gRPC server with the admin and agent APIs, health and reflection, the
// revision watch, the pruning of old statistics and, when asked, the
// Prometheus metrics, until the context ends.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/weft-dev/weft/agent/shared/secrets"
	"github.com/weft-dev/weft/controlplane/api"
	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/config"
	"github.com/weft-dev/weft/controlplane/dispatch"
	"github.com/weft-dev/weft/controlplane/pickup"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/validate"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Version is the control plane's build version, set by the linker.
var Version = "dev"

// Run starts the control plane and blocks until ctx ends or a part fails.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	keyPath, err := cfg.SecretsKeyPath()
	if err != nil {
		return err
	}
	key, err := secrets.LoadOrCreateKey(keyPath)
	if err != nil {
		return fmt.Errorf("secrets key: %w", err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		return fmt.Errorf("secrets key %s: %w", keyPath, err)
	}
	st, err := store.Open(ctx, cfg.DB, log, store.WithSecrets(box), store.WithStatsRetention(store.StatsRetention(cfg.StatsRetention)))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // stopped while opening: a clean exit, whatever the driver made of it
		}
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()
	rev, err := st.Revision(ctx)
	if err != nil {
		return fmt.Errorf("read revision: %w", err)
	}

	ca, err := loadCA(ctx, cfg, st, log)
	if err != nil {
		return stoppedOr(ctx, err)
	}
	if err := writeCAFile(cfg.CAFilePath(), ca); err != nil {
		return err
	}
	if err := firstAdminToken(ctx, st, cfg.AdminTokenPath(), log); err != nil {
		return stoppedOr(ctx, err)
	}
	tlsConf, err := serverTLS(ca, cfg.TLSHosts)
	if err != nil {
		return err
	}
	revoked := auth.NewRevocations()
	if _, err := revoked.Load(ctx, st); err != nil {
		return stoppedOr(ctx, fmt.Errorf("read the revoked agents: %w", err))
	}

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}

	watch := dispatch.NewWatch(rev)
	disp := dispatch.New(st, watch, log)
	replica := newReplica(advertise(cfg.Advertise, lis.Addr()))
	if err := st.ReplicaBeats(ctx, replica); err != nil {
		return fmt.Errorf("register this replica: %w", err)
	}
	disp.SetReplica(replica.ID)
	disp.SetLeaseTTL(cfg.JobLease)
	disp.SetCA(ca, cfg.AgentCertTTL)
	self, err := validate.SelfCommand()
	if err != nil {
		return err
	}
	eval := validate.NewEvaluator(self, validate.EvalLimits{
		CPU: cfg.EvalCPULimit, Memory: int64(cfg.EvalMemoryLimit) << 20, Timeout: cfg.DeployTimeout,
	}, log)
	fwd := api.NewForwarder(replica.ID, ca.Pool())
	defer fwd.Close()
	admin := api.New(st, watch, disp, api.Options{Evaluator: eval, InvokeTimeout: cfg.InvokeTimeout, CA: ca, Revocations: revoked, Peers: fwd}, log)

	var (
		met    *metrics
		metSrv *metricsServer
	)
	if cfg.Metrics != "" {
		met = newMetrics(st, disp.StatsBuckets, eval.Evaluations, log.With("component", "metrics"))
		if metSrv, err = listenMetrics(cfg.Metrics, met); err != nil {
			lis.Close()
			return err
		}
	}

	authz := auth.New(st, revoked, log)
	srv := grpc.NewServer(append(interceptors(met, authz, fwd, log),
		grpc.Creds(credentials.NewTLS(tlsConf)),
		grpc.MaxRecvMsgSize(api.MaxMessageBytes),
		grpc.MaxSendMsgSize(api.MaxMessageBytes),
		// Agents ping every 30 s so that a dead edge link is noticed.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
	)...)
	admin.Register(srv)
	agentv1.RegisterAgentServiceServer(srv, disp)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)

	if cfg.Sources != "" {
		res, err := pickup.DeploySources(api.WithCaller(ctx, "sources:"+filepath.Base(cfg.Sources)), admin.Packages(), cfg.Sources)
		if err != nil {
			// What is stored keeps serving; the operator sees why.
			log.Error("sources list refused; serving what was deployed before", "sources", cfg.Sources, "err", err)
		} else {
			log.Info("deployed the sources list", "sources", cfg.Sources, "result", pickup.Summary(res))
		}
	}

	if cfg.ConfigDir != "" {
		res, err := pickup.ImportDir(api.WithCaller(ctx, "config-dir:"+filepath.Base(cfg.ConfigDir)), admin.Configs(), cfg.ConfigDir, pickup.Getenv)
		if err != nil {
			// What is stored keeps serving; the operator sees why.
			log.Error("config directory refused, nothing of it was imported; serving the config stored before", "dir", cfg.ConfigDir, "err", err)
		} else {
			log.Info("imported the config directory", "dir", cfg.ConfigDir, "result", pickup.ImportSummary(res))
		}
	}

	g, ctx := errgroup.WithContext(ctx)
	if cfg.PickupDir != "" {
		w, err := pickup.NewWatcher(cfg.PickupDir, admin.Packages(), admin.Configs(), cfg.PickupInterval, log)
		if err != nil {
			return err
		}
		g.Go(func() error { return w.Run(ctx) })
	}
	g.Go(func() error { return watch.Poll(ctx, st, cfg.PollInterval, log) })
	g.Go(func() error {
		// Another replica's revocation closes the agent's streams here too.
		return revoked.Run(ctx, st, cfg.PollInterval, func(id string) { disp.Disconnect(id) }, log.With("component", "auth"))
	})
	g.Go(func() error { return pruneStats(ctx, st, statsPruneEvery, log.With("component", "stats")) })
	g.Go(func() error { return beat(ctx, st, replica, log.With("component", "replica", "replica", replica.ID)) })
	if metSrv != nil {
		g.Go(metSrv.serve)
	}
	g.Go(func() error {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve gRPC: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
		disp.Close() // agent streams never end by themselves
		hs.Shutdown()
		if metSrv != nil {
			metSrv.shutdown(cfg.ShutdownTimeout)
		}
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(cfg.ShutdownTimeout):
			log.Warn("graceful stop timed out; closing connections", "timeout", cfg.ShutdownTimeout)
			srv.Stop()
		}
		return nil
	})
	log.Info("control plane ready", "replica", replica.ID, "listen", lis.Addr().String(), "db", dbKind(cfg.DB), "revision", rev, "version", Version, "metrics", metSrv.addr(),
		"ca_file", cfg.CAFilePath(), "ca_fingerprint", ca.Fingerprint(), "tls_hosts", strings.Join(cfg.TLSHosts, ","))
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	return g.Wait()
}

// stoppedOr is err, or ctx's error when ctx ended: stopped while
// starting is a clean exit, whatever the driver made of it.
func stoppedOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// dbKind names the database of a DSN without its credentials.
func dbKind(dsn string) string {
	kind, rest, _ := strings.Cut(dsn, ":")
	if kind == "sqlite" {
		return dsn
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	return kind + ":" + rest
}
