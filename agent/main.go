// Command weft-agent runs a Weft agent on an edge host: it hot-loads the
// services the control plane deploys and serves their HTTP channels.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/weft-dev/weft/agent/app"
	"github.com/weft-dev/weft/agent/config"
	"github.com/weft-dev/weft/agent/shared/settings"
	"github.com/weft-dev/weft/agent/worker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "weft-agent:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) > 1 && os.Args[1] == worker.Command {
		return worker.Main(os.Args[2:])
	}
	cfg, err := config.Parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	log, err := cfg.Logger(level)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reads the settings again: the log level changes at once, and
	// the log says which other changes wait for a restart.
	settings.OnHangup(ctx, func() (map[string]string, error) {
		next, err := config.Parse(os.Args[1:])
		return next.Settings, err
	}, cfg.Settings, level, log)
	if err := app.Run(ctx, cfg, log); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("agent stopped")
	return nil
}
