// Package cli implements weftctl's commands. It talks to the control plane
// only through the generated admin API client; each subcommand lives in a
// file of its own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// ErrReported is wrapped by errors whose details a command has already
// written to stderr, such as a failed invocation; the caller exits non-zero
// without printing them again.
var ErrReported = errors.New("reported")

// ErrDiffers is what diff returns when the file and the live config differ:
// the plan it printed says how, so it wraps ErrReported, and weftctl exits
// 1 (see ExitCode).
var ErrDiffers = fmt.Errorf("the config differs from the live one: %w", ErrReported)

// Exit statuses of weftctl.
const (
	exitOK      = 0
	exitFailed  = 1 // an error; for diff, that the config differs
	exitDiffErr = 2 // diff's errors, so that 1 means only "differs"
)

// exitError is an error that asks weftctl to exit with code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExit is err asking weftctl to exit with code; nil stays nil.
func withExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// ExitCode is the status weftctl exits with after Run returned err: 0 for
// nil, the status a command asked for (diff exits 2 on errors), else 1.
func ExitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	default:
		return exitFailed
	}
}

// Defaults for the global flags.
const (
	defaultAddr           = "127.0.0.1:7400"
	defaultTimeout        = 30 * time.Second
	defaultConnectTimeout = 5 * time.Second
)

// Output formats for --output.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// app holds what every command shares: the global flags, the output streams
// and, once a command needs it, the connection to the control plane.
type app struct {
	// stdin is where a secret flag given as - reads its value.
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	// userHome finds the home directory, under which weftctl's config
	// file lives; nil for none, as in tests.
	userHome func() (string, error)

	// The connection flags, as given; resolveConn combines them with the
	// environment and the config file.
	addr        string
	caFile      string
	token       string
	contextName string
	plaintext   bool
	// changed reports whether a global flag was given.
	changed func(flag string) bool

	output         string
	timeout        time.Duration
	connectTimeout time.Duration

	cc *conn
}

// Run runs weftctl with args (without the program name), writing results to
// stdout and diagnostics to stderr. A non-nil error means the command failed;
// unless it wraps ErrReported, the caller should print it.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := &app{
		stdin:          os.Stdin,
		stdout:         stdout,
		stderr:         stderr,
		getenv:         os.Getenv,
		now:            time.Now,
		userHome:       os.UserHomeDir,
		connectTimeout: defaultConnectTimeout,
	}
	return a.execute(ctx, args)
}

// execute builds the command tree for a and runs it with args.
func (a *app) execute(ctx context.Context, args []string) error {
	defer a.close()
	root := a.newRoot()
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// newRoot builds the weftctl command tree.
func (a *app) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "weftctl",
		Short: "Drive a Weft control plane",
		Long: `weftctl deploys services, manages channels and watches agents of a Weft
control plane over its gRPC admin API, which it reaches over TLS with a
bearer token.

Each connection setting comes from its flag, else its environment
variable, else the context in use (see weftctl context --help), else the
default:

  --addr      WEFT_ADDR      control plane host:port (default ` + defaultAddr + `)
  --ca        WEFT_CA        PEM file of the CA that signed the control
                             plane's certificate, such as the weft-ca.pem
                             beside its database (default: the system's roots)
  --token     WEFT_TOKEN     secret of a token (see weftctl token --help)
  --context   WEFT_CONTEXT   the context to use instead of the current one

Environment:
  WEFT_CONFIG   weftctl's config file, which holds the contexts (default
                $XDG_CONFIG_HOME/weft/config.yaml, else ~/.config/weft/config.yaml)`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.output = strings.ToLower(a.output)
			if a.output != outputTable && a.output != outputJSON && a.output != outputYAML {
				return fmt.Errorf("--output %q: want table, json or yaml", a.output)
			}
			if a.timeout <= 0 {
				return fmt.Errorf("--rpc-timeout %s: must be positive", a.timeout)
			}
			return nil
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())
	})

	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", "", "control plane address, host:port (env WEFT_ADDR; default "+defaultAddr+")")
	pf.StringVar(&a.caFile, "ca", "", "PEM file of the control plane's CA (env WEFT_CA; default the system's roots)")
	pf.StringVar(&a.token, "token", "", "secret of the bearer token to send (env WEFT_TOKEN)")
	pf.StringVar(&a.contextName, "context", "", "context to use instead of the current one (env WEFT_CONTEXT)")
	pf.BoolVar(&a.plaintext, "plaintext", false, "dial without TLS and send no token: only for tests and local debugging against a server without TLS")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table, json or yaml")
	pf.DurationVar(&a.timeout, "rpc-timeout", defaultTimeout, "deadline of each call to the control plane")

	a.changed = pf.Changed

	root.AddCommand(
		a.newContextCmd(),
		a.newWhoAmICmd(),
		a.newTokenCmd(),
		a.newSecretsCmd(),
		a.newDeployCmd(),
		a.newRollbackCmd(),
		a.newUndeployCmd(),
		a.newPackageCmd(),
		a.newServiceCmd(),
		a.newChannelCmd(),
		a.newSecurityCmd(),
		a.newOutgoingCmd(),
		a.newJobCmd(),
		a.newExportCmd(),
		a.newDiffCmd(),
		a.newImportCmd(),
		a.newAuditCmd(),
		a.newDebugCmd(),
		a.newTailCmd(),
		a.newStatsCmd(),
		a.newAgentCmd(),
		a.newInvokeCmd(),
		a.newVersionCmd(),
	)
	return root
}

// conn returns the connection to the control plane, dialing it on first use
// so that commands which fail on their input never touch the network.
func (a *app) conn() (*conn, error) {
	if a.cc != nil {
		return a.cc, nil
	}
	s, err := a.resolveConn()
	if err != nil {
		return nil, err
	}
	c, err := dial(dialOptions{
		Addr:           s.addr,
		CA:             s.ca,
		Token:          s.token,
		Plaintext:      s.plaintext,
		ConnectTimeout: a.connectTimeout,
	})
	if err != nil {
		return nil, err
	}
	a.cc = c
	return c, nil
}

// close closes the connection if a command opened one.
func (a *app) close() {
	if a.cc != nil {
		_ = a.cc.Close()
		a.cc = nil
	}
}

// call runs one RPC under the --timeout deadline and turns its error into one
// a user can act on, prefixed with op.
func call[Resp any](ctx context.Context, a *app, op string, rpc func(context.Context, *conn) (Resp, error)) (Resp, error) {
	return callWithin(ctx, a, a.timeout, op, rpc)
}

// callWithin is call with an explicit deadline.
func callWithin[Resp any](ctx context.Context, a *app, timeout time.Duration, op string, rpc func(context.Context, *conn) (Resp, error)) (Resp, error) {
	var zero Resp
	c, err := a.conn()
	if err != nil {
		return zero, err
	}
	rctx, cancel := context.WithTimeout(withAnswerFlag(ctx), timeout)
	defer cancel()
	resp, err := rpc(rctx, c)
	if err != nil {
		return zero, c.explain(ctx, rctx, timeout, op, err)
	}
	return resp, nil
}

// args returns a cobra argument check that wants exactly the named
// positional arguments and says which are missing or extra.
func args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, got []string) error {
		switch {
		case len(got) < len(names):
			return fmt.Errorf("missing %s (usage: %s)", strings.Join(names[len(got):], " "), cmd.UseLine())
		case len(got) > len(names):
			return fmt.Errorf("unexpected argument %q (usage: %s)", got[len(names)], cmd.UseLine())
		}
		for i, v := range got {
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("%s must not be empty", names[i])
			}
		}
		return nil
	}
}
