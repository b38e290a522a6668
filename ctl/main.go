// Command weftctl drives a Weft control plane over its gRPC admin API.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/weft-dev/weft/ctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err == nil {
		return
	}
	if !errors.Is(err, cli.ErrReported) {
		fmt.Fprintf(os.Stderr, "weftctl: %v\n", err)
	}
	os.Exit(cli.ExitCode(err))
}
