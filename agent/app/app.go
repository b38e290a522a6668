// Package app wires an agent together and runs it: the engine booted from
// the last good snapshot on disk, the HTTP channel server, the agent's
// identity (enrolled with a join token when it has none), and the client
// that keeps it in step with the control plane over mutual TLS, until the
// context ends.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sync/errgroup"

	"github.com/weft-dev/weft/agent/certfile"
	"github.com/weft-dev/weft/agent/config"
	"github.com/weft-dev/weft/agent/controlclient"
	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/identity"
	"github.com/weft-dev/weft/agent/metrics"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/recent"
	"github.com/weft-dev/weft/agent/scheduler"
	"github.com/weft-dev/weft/agent/state"
	"github.com/weft-dev/weft/agent/stats"
	"github.com/weft-dev/weft/agent/supervisor"
	"github.com/weft-dev/weft/agent/worker"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Version is the agent's build version, set by the linker.
var Version = "dev"

// Run starts the agent and blocks until ctx ends or a part fails.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	started := time.Now()
	logs := recent.NewLogs(log.Handler()) // the agent's recent log lines, for the control plane
	log = slog.New(logs).With("agent", cfg.ID)
	debug.SetGCPercent(cfg.GCPercent)

	// Every invocation, channel request and job run ends in one event,
	// handed to each observer in turn. The workers count their own
	// statistics and send them in buckets; of their events they send
	// those the other observers need (all of them with metrics on).
	var observers, fromWorkers observe.Observers
	var rec *stats.Recorder
	var gathered *stats.Gathered
	if cfg.Stats {
		rec = stats.NewRecorder()
		gathered = stats.Gather(rec)
		observers = append(observers, rec)
	}
	var pool *supervisor.Pool // set below; metrics read it only when scraped
	var mets *metrics.Metrics
	if cfg.MetricsAddr != "" {
		mets = metrics.New(func() int64 { return pool.Applied().GetRevision() })
		observers = append(observers, mets)
		fromWorkers = append(fromWorkers, mets)
	}
	// The failed and slow invocations, and the live tails, for debugging.
	var slowAfter func(string) time.Duration
	samples := recent.NewSamples(recent.SamplesConfig{SampleBytes: cfg.SampleBytes, SlowThreshold: cfg.SlowThreshold,
		SlowAfter: func(service string) time.Duration { return slowAfter(service) }})
	tail := recent.NewTail(cfg.SampleBytes, log)
	observers = append(observers, samples, tail)
	fromWorkers = append(fromWorkers, samples, tail)
	dir, err := state.Open(cfg.StateDir, state.WithBackups(cfg.Backups))
	if err != nil {
		return err
	}
	// Who the agent is: refused here, before it serves anything, when it
	// has no identity and no way to get one.
	ident, err := identity.Open(identity.Config{
		StateDir:      cfg.StateDir,
		ID:            cfg.ID,
		ControlPlane:  cfg.ControlPlane,
		JoinToken:     cfg.JoinToken,
		CAFingerprint: cfg.CAFingerprint,
		CAFile:        cfg.CAFile,
	}, log)
	if err != nil {
		return err
	}

	plain, secure, err := listen(cfg, log)
	if err != nil {
		return err
	}
	// Where the agent says it serves channels: host:port of plain HTTP, or
	// https://host:port when it serves HTTPS only.
	var address string
	if plain != nil {
		address = plain.Addr().String()
	} else {
		address = "https://" + secure.Addr().String()
	}
	var addStats func([]*agentv1.StatsBucket)
	if gathered != nil {
		addStats = gathered.Add
	}
	pool, err = supervisor.New(supervisor.Config{
		Workers: cfg.Workers,
		Worker: worker.Config{
			InvokeTimeout:   cfg.InvokeTimeout,
			MaxBodyBytes:    cfg.MaxBodyBytes,
			MaxPackageBytes: cfg.MaxPackageBytes,
			HTTPReadTimeout: cfg.HTTPReadTimeout,
			ShutdownTimeout: cfg.ShutdownTimeout,
			GCPercent:       cfg.GCPercent,
			MemoryLimit:     cfg.WorkerMemoryLimit,
			SlowThreshold:   cfg.SlowThreshold,
			LogLevel:        cfg.Level(),
			Stats:           cfg.Stats,
			Metrics:         mets != nil,
			TLSCert:         cfg.TLSCert,
			TLSKey:          cfg.TLSKey,
			ProfileDir:      cfg.WorkerProfileDir,
		},
		Plain:    plain,
		TLS:      secure,
		Log:      log,
		Observer: fromWorkers,
		Exits:    observers,
		Stats:    addStats,
		Stderr:   os.Stderr,
	})
	if err != nil {
		closeAll(plain, secure)
		return err
	}
	slowAfter = pool.SlowAfter
	tail.OnActive(pool.SetTailing)
	poolCtx, stopPool := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPool()
	poolDone := make(chan struct{})
	go func() {
		defer close(poolDone)
		_ = pool.Run(poolCtx)
	}()
	defer func() { stopPool(); <-poolDone }()

	booted, err := boot(ctx, pool, dir, log)
	if err != nil {
		log.Warn("not serving the snapshot on disk; waiting for the control plane", "err", err)
	}
	pool.Serve(ctx)

	client := controlclient.New(cfg.ControlPlane, controlclient.Identity{
		ID:           cfg.ID,
		Labels:       cfg.Labels,
		BuildVersion: Version,
		HTTPAddress:  address,
		StartedAt:    started,
	}, pool, dir, controlclient.NewBackoff(200*time.Millisecond, cfg.BackoffMax, nil), log,
		controlclient.WithCredentials(ident.Credentials()),
		controlclient.WithBackups(dir), controlclient.WithSamples(samples), controlclient.WithLogs(logs), controlclient.WithTails(tail))
	sched := scheduler.New(scheduler.Config{
		AgentID:     cfg.ID,
		Labels:      cfg.Labels,
		Invoker:     pool,
		Coordinator: client.Coordinator(),
		Log:         log,
		StateDir:    dir.Path(),
		NewCID:      engine.NewCID,
		Observer:    observers,
	})
	client.RunJobs(sched)
	if booted != nil {
		// Jobs keep firing from the last good snapshot while the control
		// plane is away.
		sched.Set(booted.GetJobs())
	}

	// The client outlives the other parts by their last reports (job runs,
	// statistics): it stops only once they are sent, on the shutdown below.
	clientCtx, stopClient := context.WithCancel(context.WithoutCancel(ctx))
	defer stopClient()
	reportCtx, stopReports := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReports()
	g, ctx := errgroup.WithContext(ctx)
	reported := make(chan struct{}) // the statistics' last report is done
	if rec != nil {
		reporter := stats.NewReporter(gathered, client.StatsSender(), log, stats.WithInterval(cfg.StatsInterval))
		g.Go(func() error {
			defer close(reported)
			return reporter.Run(reportCtx)
		})
	} else {
		close(reported)
	}
	if mets != nil {
		ml, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics %s: %w", cfg.MetricsAddr, err)
		}
		log.Info("serving metrics", "addr", ml.Addr().String())
		g.Go(func() error { return mets.Serve(ctx, ml) })
	}
	if cfg.PprofAddr != "" {
		pl, err := net.Listen("tcp", cfg.PprofAddr)
		if err != nil {
			return fmt.Errorf("--pprof %s: %w", cfg.PprofAddr, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ps := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		log.Info("serving the profiler", "addr", pl.Addr().String())
		g.Go(func() error {
			if err := ps.Serve(pl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve the profiler: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			return ps.Close()
		})
	}
	// The agent enrolls, if it must, while it serves what it booted: the
	// control plane may come up later than the agent. It connects once it
	// has a certificate, and renews it over that connection.
	enrolled := make(chan struct{})
	g.Go(func() error {
		if err := ident.Enroll(ctx, controlclient.NewBackoff(200*time.Millisecond, cfg.BackoffMax, nil)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		close(enrolled)
		return client.Run(clientCtx)
	})
	g.Go(func() error {
		select {
		case <-enrolled:
		case <-ctx.Done():
			return nil
		}
		return ident.KeepRenewed(ctx, client, controlclient.NewBackoff(time.Second, cfg.BackoffMax, nil))
	})
	jobsDone := make(chan struct{})
	g.Go(func() error {
		defer close(jobsDone)
		return sched.Run(ctx)
	})
	g.Go(func() error {
		<-ctx.Done()
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
		// The job runs end first, then the workers answer the requests
		// they hold and stop; the statistics of all of it go out in the
		// last report, then the client closes its connection.
		<-jobsDone
		stopPool()
		<-poolDone
		stopReports()
		<-reported
		stopClient()
		return nil
	})
	log.Info("agent ready", "http", addrOf(plain), "https", addrOf(secure), "workers", cfg.Workers, "worker_memory_limit", cfg.WorkerMemoryLimit,
		"controlplane", cfg.ControlPlane, "state_dir", dir.Path(), "backups", dir.BackupLimit(), "version", Version)
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	return g.Wait()
}

// boot serves the last good snapshot kept on disk, if there is one, and
// returns it.
func boot(ctx context.Context, eng controlclient.Engine, dir *state.Dir, log *slog.Logger) (*agentv1.Desired, error) {
	snap, err := dir.Load()
	if err != nil || snap == nil {
		return nil, err
	}
	if _, errs := eng.Apply(ctx, snap); len(errs) > 0 {
		return nil, fmt.Errorf("snapshot at revision %d: %s: %s", snap.GetRevision(), errs[0].GetName(), errs[0].GetMessage())
	}
	log.Info("serving the snapshot kept on disk", "revision", snap.GetRevision(), "jobs", len(snap.GetJobs()))
	return snap, nil
}

// listen opens the channels' listeners: plain HTTP and HTTPS, each when
// configured (nil otherwise). It loads the certificate first, so that a
// bad one stops the agent here with its reason rather than each worker.
func listen(cfg config.Config, log *slog.Logger) (plain, secure net.Listener, err error) {
	if cfg.HTTPS != "" {
		if _, err := certfile.New(cfg.TLSCert, cfg.TLSKey, log); err != nil {
			return nil, nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		if secure, err = net.Listen("tcp", cfg.HTTPS); err != nil {
			return nil, nil, fmt.Errorf("listen on %s: %w", cfg.HTTPS, err)
		}
	}
	if cfg.HTTP != "" {
		if plain, err = net.Listen("tcp", cfg.HTTP); err != nil {
			closeAll(secure)
			return nil, nil, fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
		}
	}
	return plain, secure, nil
}

// closeAll closes the listeners that are not nil.
func closeAll(ls ...net.Listener) {
	for _, l := range ls {
		if l != nil {
			l.Close()
		}
	}
}

// addrOf is l's address, "" for none.
func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}
