// Package worker is a worker process of an agent: it loads the services of
// the snapshots its agent gives it, serves their channels on the listening
// socket it shares with its agent's other workers, runs the invocations
// its agent asks for, and streams back what ran and what it logged. A
// service that crashes the process (a stack overflow, a fatal runtime
// error, its memory cap) takes down only this worker, which its agent
// replaces (see agent/supervisor).
//
// A worker is the agent's own binary started as `weft-agent worker`, with
// one end of a socket pair to its agent as file descriptor 3, on which the
// agent speaks weft.worker.v1, and the channels' listeners from 4 on.
package worker

import (
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Command is the argument that makes the agent's binary a worker.
const Command = "worker"

// The file descriptors a worker inherits: AgentFD, this worker's end of
// the socket pair to its agent, then the channels' listening sockets,
// shared by the workers: the plain one when Config.Plain, then the TLS one
// when Config.TLSCert is set.
const (
	AgentFD     = 3
	ListenersFD = 4
)

// Config is what a worker is started with. Its agent turns it into
// arguments (Args) and the worker reads them back (Parse), so both ends
// agree on every field.
type Config struct {
	Index           int           // the worker's slot in its agent, from 1
	InvokeTimeout   time.Duration // deadline of an invocation whose channel sets none
	MaxBodyBytes    int64         // body limit of a channel that sets none
	MaxPackageBytes int64         // source bound of one package; 0 for none
	HTTPReadTimeout time.Duration // bound on reading one channel request
	ShutdownTimeout time.Duration // bound on a graceful stop
	GCPercent       int           // the collector's target, as GOGC
	MemoryLimit     int64         // bytes the worker may map beyond what it starts with; 0 for no cap
	SlowThreshold   time.Duration // how long an invocation may take before it is slow
	LogLevel        slog.Level
	Stats           bool   // count statistics, sent to the agent every second
	Metrics         bool   // the agent serves metrics: send it every event
	Plain           bool   // a plain HTTP listener is passed
	TLSCert, TLSKey string // files of the TLS listener's certificate, when one is passed
	ProfileDir      string // where the worker writes its CPU and allocation profiles; empty for none
}

// Args returns the command line that starts a worker with c.
func (c Config) Args() []string {
	return []string{
		Command,
		"--index", strconv.Itoa(c.Index),
		"--invoke-timeout", c.InvokeTimeout.String(),
		"--max-body", strconv.FormatInt(c.MaxBodyBytes, 10),
		"--max-package-bytes", strconv.FormatInt(c.MaxPackageBytes, 10),
		"--http-read-timeout", c.HTTPReadTimeout.String(),
		"--shutdown-timeout", c.ShutdownTimeout.String(),
		"--gc-percent", strconv.Itoa(c.GCPercent),
		"--memory-limit", strconv.FormatInt(c.MemoryLimit, 10),
		"--slow-threshold", c.SlowThreshold.String(),
		"--log-level", c.LogLevel.String(),
		"--stats=" + strconv.FormatBool(c.Stats),
		"--metrics=" + strconv.FormatBool(c.Metrics),
		"--plain=" + strconv.FormatBool(c.Plain),
		"--tls-cert", c.TLSCert,
		"--tls-key", c.TLSKey,
		"--profile-dir", c.ProfileDir,
	}
}

// Parse reads the arguments Args made, without the leading Command.
func Parse(args []string) (Config, error) {
	var c Config
	var level string
	fs := flag.NewFlagSet("weft-agent worker", flag.ContinueOnError)
	fs.IntVar(&c.Index, "index", 1, "the worker's slot")
	fs.DurationVar(&c.InvokeTimeout, "invoke-timeout", 30*time.Second, "deadline of an invocation whose channel sets none")
	fs.Int64Var(&c.MaxBodyBytes, "max-body", 1<<20, "body limit of a channel that sets none")
	fs.Int64Var(&c.MaxPackageBytes, "max-package-bytes", 0, "source bound of one package")
	fs.DurationVar(&c.HTTPReadTimeout, "http-read-timeout", 30*time.Second, "bound on reading one channel request")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "bound on a graceful stop")
	fs.IntVar(&c.GCPercent, "gc-percent", 100, "the collector's target")
	fs.Int64Var(&c.MemoryLimit, "memory-limit", 0, "bytes the worker may map beyond its start; 0 for no cap")
	fs.DurationVar(&c.SlowThreshold, "slow-threshold", time.Second, "how long an invocation may take before it is slow")
	fs.StringVar(&level, "log-level", "INFO", "log level")
	fs.BoolVar(&c.Stats, "stats", true, "count statistics for the agent")
	fs.BoolVar(&c.Metrics, "metrics", false, "send the agent every event, for its metrics")
	fs.BoolVar(&c.Plain, "plain", true, "a plain HTTP listener is passed")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "certificate file of the TLS listener")
	fs.StringVar(&c.TLSKey, "tls-key", "", "key file of the TLS listener")
	fs.StringVar(&c.ProfileDir, "profile-dir", "", "directory to write the worker's CPU and allocation profiles to")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return Config{}, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return c, nil
}
