// Command weft-controlplane runs Weft's control plane: it holds the config
// in a database and streams it to agents over gRPC.
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

	"github.com/weft-dev/weft/agent/shared/settings"
	"github.com/weft-dev/weft/controlplane/app"
	"github.com/weft-dev/weft/controlplane/config"
	"github.com/weft-dev/weft/controlplane/validate"
)

func main() {
	// The hidden subcommand that evaluates one deployment package, in a
	// child process the control plane starts (see validate.Evaluator).
	if len(os.Args) > 1 && os.Args[1] == validate.ChildCommand {
		os.Exit(validate.ChildMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "weft-controlplane:", err)
		os.Exit(1)
	}
}

func run() error {
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
	log.Info("control plane stopped")
	return nil
}
