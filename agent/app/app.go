// Package app wires an agent together and runs it: the engine booted from
// the last good snapshot on disk, the HTTP channel server, and the client
// that keeps it in step with the control plane, until the context ends.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sync/errgroup"

	"github.com/weft-dev/weft/agent/channel"
	"github.com/weft-dev/weft/agent/config"
	"github.com/weft-dev/weft/agent/controlclient"
	"github.com/weft-dev/weft/agent/engine"
	"github.com/weft-dev/weft/agent/metrics"
	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/recent"
	"github.com/weft-dev/weft/agent/scheduler"
	"github.com/weft-dev/weft/agent/state"
	"github.com/weft-dev/weft/agent/stats"
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
	eng := engine.New(log, cfg.InvokeTimeout)
	eng.MaxPackageBytes = cfg.MaxPackageBytes

	// Every invocation, channel request and job run ends in one event,
	// handed to each observer in turn.
	var observers observe.Observers
	var rec *stats.Recorder
	if cfg.Stats {
		rec = stats.NewRecorder()
		observers = append(observers, rec)
	}
	var mets *metrics.Metrics
	if cfg.MetricsAddr != "" {
		mets = metrics.New(func() int64 { return revisionOf(eng.Current()) })
		observers = append(observers, mets)
	}
	// The failed and slow invocations, and the live tails, for debugging.
	samples := recent.NewSamples(recent.SamplesConfig{SampleBytes: cfg.SampleBytes, SlowThreshold: cfg.SlowThreshold, SlowAfter: eng.SlowAfter})
	tail := recent.NewTail(cfg.SampleBytes, log)
	observers = append(observers, samples, tail)
	var observer observe.Observer // nil when nothing observes: then no event is built
	if len(observers) > 0 {
		observer = observers
	}
	eng.Observer = observer
	dir, err := state.Open(cfg.StateDir, state.WithBackups(cfg.Backups))
	if err != nil {
		return err
	}
	booted, err := boot(ctx, eng, dir, log)
	if err != nil {
		log.Warn("not serving the snapshot on disk; waiting for the control plane", "err", err)
	}

	lis, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
	}
	srv := &http.Server{
		Handler: &channel.Handler{
			Current:      eng.Route,
			MaxBodyBytes: cfg.MaxBodyBytes,
			NewCID:       engine.NewCID,
			Log:          log.With("component", "channel"),
			Observer:     observer,
		},
		// ReadTimeout cuts a client that sends its body slowly, holding a
		// connection and a goroutine. It bounds only the reading: net/http
		// lifts the deadline once the handler has read the body, so a long
		// service, its late 504 and the answer are not cut by it.
		ReadTimeout:       cfg.HTTPReadTimeout,
		ReadHeaderTimeout: min(10*time.Second, cfg.HTTPReadTimeout),
		IdleTimeout:       2 * time.Minute,
	}
	client := controlclient.New(cfg.ControlPlane, controlclient.Identity{
		ID:           cfg.ID,
		Labels:       cfg.Labels,
		BuildVersion: Version,
		HTTPAddress:  lis.Addr().String(),
		StartedAt:    started,
	}, eng, dir, controlclient.NewBackoff(200*time.Millisecond, cfg.BackoffMax, nil), log,
		controlclient.WithBackups(dir), controlclient.WithSamples(samples), controlclient.WithLogs(logs), controlclient.WithTails(tail))
	sched := scheduler.New(scheduler.Config{
		AgentID:     cfg.ID,
		Labels:      cfg.Labels,
		Invoker:     eng,
		Coordinator: client.Coordinator(),
		Log:         log,
		StateDir:    dir.Path(),
		NewCID:      engine.NewCID,
		Observer:    observer,
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
		reporter := stats.NewReporter(rec, client.StatsSender(), log, stats.WithInterval(cfg.StatsInterval))
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
	g.Go(func() error {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve channels: %w", err)
		}
		return nil
	})
	g.Go(func() error { return client.Run(clientCtx) })
	jobsDone := make(chan struct{})
	g.Go(func() error {
		defer close(jobsDone)
		return sched.Run(ctx)
	})
	g.Go(func() error {
		<-ctx.Done()
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("requests still running at shutdown", "err", err)
		}
		// The requests and runs have ended: their statistics go out in the
		// last report, then the client closes its connection.
		<-jobsDone
		stopReports()
		<-reported
		stopClient()
		return nil
	})
	log.Info("agent ready", "http", lis.Addr().String(), "controlplane", cfg.ControlPlane, "state_dir", dir.Path(), "backups", dir.BackupLimit(), "version", Version)
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	return g.Wait()
}

// revisionOf is the revision of st, 0 for none.
func revisionOf(st *engine.State) int64 {
	if st == nil {
		return 0
	}
	return st.Revision()
}

// boot serves the last good snapshot kept on disk, if there is one, and
// returns it.
func boot(ctx context.Context, eng *engine.Engine, dir *state.Dir, log *slog.Logger) (*agentv1.Snapshot, error) {
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
