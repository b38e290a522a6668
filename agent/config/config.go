// Package config holds the agent's settings and reads them from flags, with
// environment variables as defaults so that systemd units can configure an
// agent without a command line.
package config

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weft-dev/weft/agent/cpdial"
	"github.com/weft-dev/weft/agent/identity"
	"github.com/weft-dev/weft/agent/recent"
	"github.com/weft-dev/weft/agent/shared/settings"
	"github.com/weft-dev/weft/agent/state"
)

// Config is everything an agent needs to start.
type Config struct {
	// Settings are what every flag is set to, by name, from the settings
	// file, the environment and the command line: SIGHUP compares them.
	Settings map[string]string
	// ID names the agent in the fleet.
	ID string
	// ControlPlane is the control plane's gRPC address, or several
	// (package cpdial).
	ControlPlane string
	// JoinToken is the one-time token the agent enrolls with when it has
	// no certificate in StateDir; it is a secret, never logged.
	JoinToken string
	// CAFingerprint names the control plane's CA, sha256:HEX: enrolling,
	// the agent sends its token only to a control plane presenting it.
	CAFingerprint string
	// CAFile is a PEM bundle of CAs to verify the control plane with when
	// enrolling, instead of CAFingerprint.
	CAFile string
	// HTTP is where the agent serves its channels over plain HTTP; empty
	// for nowhere.
	HTTP string
	// HTTPS is where the agent serves its channels over TLS, with the
	// certificate and key in TLSCert and TLSKey; empty for nowhere.
	HTTPS           string
	TLSCert, TLSKey string
	// HTTPReadTimeout bounds reading one channel request, its headers and
	// its body, so that a client sending slowly cannot hold a connection.
	// It does not bound the service's run or the answer.
	HTTPReadTimeout time.Duration
	// StateDir keeps the last good snapshot, to boot from when the control
	// plane is unreachable, and the agent's identity (identity.Dir).
	StateDir string
	// Labels describe the agent, such as site=berlin.
	Labels map[string]string
	// LogFormat is text or json.
	LogFormat string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// InvokeTimeout is the deadline of an invocation whose channel sets none.
	InvokeTimeout time.Duration
	// MaxBodyBytes is the body limit of a channel that sets none.
	MaxBodyBytes int64
	// MaxPackageBytes bounds the source of one package the agent loads; 0
	// for no bound.
	MaxPackageBytes int64
	// GCPercent is the garbage collector's target (as GOGC); see Parse.
	GCPercent int
	// PprofAddr, when set, is where the agent serves net/http/pprof.
	PprofAddr string
	// WorkerProfileDir, when set, is where each worker process writes a
	// CPU profile of its life and, when it stops, its allocations: the
	// services run there, not in the agent process PprofAddr profiles.
	WorkerProfileDir string
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration
	// BackoffMax caps the wait between reconnects to the control plane.
	BackoffMax time.Duration
	// Backups is how many backups of replaced states the agent keeps in
	// StateDir; 0 keeps none.
	Backups int
	// Stats turns on the statistics the agent measures and reports to the
	// control plane.
	Stats bool
	// StatsInterval is how often the agent reports its statistics.
	StatsInterval time.Duration
	// MetricsAddr, when set, is where the agent serves Prometheus metrics
	// at /metrics.
	MetricsAddr string
	// SampleBytes bounds each request and response sample kept for
	// debugging.
	SampleBytes int
	// SlowThreshold is how long an invocation may take before it is kept
	// as slow, for a service that sets no sdk.SlowAfter.
	SlowThreshold time.Duration
	// Workers is how many worker processes run the services.
	Workers int
	// WorkerMemoryLimit caps the memory of each worker process, in bytes;
	// a worker that goes past it ends and is replaced.
	WorkerMemoryLimit int64
}

// DefaultHTTPReadTimeout is the default of --http-read-timeout: a client
// must send a request, the default 1 MiB body included, at about 35 KB/s.
const DefaultHTTPReadTimeout = 30 * time.Second

// DefaultGCPercent is the agent's garbage collector target: collecting at
// 400% heap growth rather than Go's 100% roughly halves the CPU a small
// request costs, since each collection scans the interpreters' whole heap.
const DefaultGCPercent = 400

// Parse reads the config from args (without the program name).
func Parse(args []string) (Config, error) {
	host, _ := os.Hostname()
	var c Config
	var labels string
	backups, err := envInt("WEFT_BACKUPS", state.DefaultBackups)
	if err != nil {
		return Config{}, err
	}
	readTimeout, err := envDuration("WEFT_HTTP_READ_TIMEOUT", DefaultHTTPReadTimeout)
	if err != nil {
		return Config{}, err
	}
	gcPercent, err := envInt("GOGC", DefaultGCPercent)
	if err != nil && os.Getenv("GOGC") != "off" {
		return Config{}, err
	}
	if os.Getenv("GOGC") == "off" {
		gcPercent = -1
	}
	workers, err := envInt("WEFT_WORKERS", DefaultWorkers())
	if err != nil {
		return Config{}, err
	}
	workerMemory := env("WEFT_WORKER_MEMORY_LIMIT", "")
	fs := flag.NewFlagSet("weft-agent", flag.ContinueOnError)
	fs.StringVar(&c.ID, "id", env("WEFT_AGENT_ID", host), "agent id, unique in the fleet (env WEFT_AGENT_ID)")
	fs.StringVar(&c.ControlPlane, "controlplane", env("WEFT_CONTROLPLANE", "127.0.0.1:7400"), "control plane gRPC address, host:port or a gRPC target such as dns:///name:port; or several replicas' host:port separated by commas, tried in turn when one is lost (env WEFT_CONTROLPLANE)")
	fs.StringVar(&c.JoinToken, "join", env("WEFT_JOIN_TOKEN", ""), "one-time join token to enroll with when the state dir holds no certificate; needs --ca-fingerprint or --ca. Prefer the environment variable: a flag shows in ps (env WEFT_JOIN_TOKEN)")
	fs.StringVar(&c.CAFingerprint, "ca-fingerprint", env("WEFT_CA_FINGERPRINT", ""), "fingerprint of the control plane's CA, sha256:HEX, as weftctl agent token create prints it; enrolling, the agent sends its token only to a control plane presenting that CA (env WEFT_CA_FINGERPRINT)")
	fs.StringVar(&c.CAFile, "ca", env("WEFT_CA", ""), "PEM file of the CA(s) to verify the control plane with when enrolling, instead of --ca-fingerprint (env WEFT_CA)")
	fs.StringVar(&c.HTTP, "http", env("WEFT_HTTP", "127.0.0.1:8080"), "address to serve channels on over plain HTTP; with --https, only when given (env WEFT_HTTP)")
	fs.StringVar(&c.HTTPS, "https", env("WEFT_HTTPS", ""), "address to serve channels on over HTTPS, with --tls-cert and --tls-key (env WEFT_HTTPS)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("WEFT_TLS_CERT", ""), "PEM certificate (chain) file of the HTTPS channels; a changed file is used for new connections without a restart (env WEFT_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("WEFT_TLS_KEY", ""), "PEM private key file of --tls-cert (env WEFT_TLS_KEY)")
	fs.DurationVar(&c.HTTPReadTimeout, "http-read-timeout", readTimeout, "bound on reading a channel request, headers and body; a slower client gets 408 and its connection is closed (env WEFT_HTTP_READ_TIMEOUT)")
	fs.StringVar(&c.StateDir, "state-dir", env("WEFT_STATE_DIR", "weft-agent-state"), "directory for the last good snapshot and the agent's identity, in identity/ (env WEFT_STATE_DIR)")
	fs.StringVar(&labels, "labels", env("WEFT_LABELS", ""), "labels, k=v,k=v (env WEFT_LABELS)")
	fs.StringVar(&c.LogFormat, "log-format", env("WEFT_LOG_FORMAT", "text"), "log format: text or json (env WEFT_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", env("WEFT_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env WEFT_LOG_LEVEL)")
	fs.DurationVar(&c.InvokeTimeout, "invoke-timeout", 30*time.Second, "deadline of an invocation whose channel sets none")
	fs.Int64Var(&c.MaxBodyBytes, "max-body", 1<<20, "request body limit in bytes of a channel that sets none")
	fs.Int64Var(&c.MaxPackageBytes, "max-package-bytes", 0, "refuse packages with more source than this many bytes; 0 for no limit")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "bound of a graceful stop")
	fs.DurationVar(&c.BackoffMax, "backoff-max", 15*time.Second, "longest wait between reconnects to the control plane")
	fs.IntVar(&c.GCPercent, "gc-percent", gcPercent, "heap growth between garbage collections, in percent (env GOGC): the interpreters' live heap is large and full of pointers, so a higher value saves much CPU per request for some memory; -1 turns the collector off")
	fs.StringVar(&c.PprofAddr, "pprof", env("WEFT_PPROF", ""), "serve Go's profiler (net/http/pprof) on this address, such as 127.0.0.1:6060; keep it private (env WEFT_PPROF)")
	fs.StringVar(&c.WorkerProfileDir, "worker-profile", env("WEFT_WORKER_PROFILE", ""), "directory where each worker process writes a CPU profile of its life and, when it stops, its allocations, as worker-SLOT-PID.cpu.pprof and .allocs.pprof; for measuring, not for production (env WEFT_WORKER_PROFILE)")
	fs.IntVar(&c.Backups, "backups", backups, "how many backups of replaced states to keep in the state dir, 0 for none (env WEFT_BACKUPS)")
	fs.BoolVar(&c.Stats, "stats", true, "measure every invocation, request and job run and report per-minute statistics to the control plane")
	fs.DurationVar(&c.StatsInterval, "stats-interval", 10*time.Second, "how often to report statistics to the control plane")
	fs.StringVar(&c.MetricsAddr, "metrics", env("WEFT_METRICS", ""), "serve Prometheus metrics at /metrics on this address, such as 127.0.0.1:9100; empty for none (env WEFT_METRICS)")
	fs.IntVar(&c.SampleBytes, "sample-bytes", recent.DefaultSampleBytes, "bytes kept of each request and response of a failed, slow or tailed invocation, secrets redacted")
	fs.DurationVar(&c.SlowThreshold, "slow-threshold", recent.DefaultSlowThreshold, "how long an invocation may take before the agent keeps it as slow, for a service that sets no sdk.SlowAfter")
	fs.IntVar(&c.Workers, "workers", workers, "how many worker processes run the services; one that crashes is replaced while the others serve (env WEFT_WORKERS; default: one per four CPUs, at least 1)")
	fs.StringVar(&workerMemory, "worker-memory-limit", workerMemory, "memory cap of each worker process, such as 512MiB or 2GiB; a worker past it ends and is replaced (env WEFT_WORKER_MEMORY_LIMIT; default: the host's memory, or the agent's cgroup limit, shared by the workers and the agent)")
	values, err := settings.Parse(fs, args, "WEFT_AGENT_CONFIG")
	if err != nil {
		return Config{}, err
	}
	c.Settings = values
	if c.Workers < 1 {
		return Config{}, fmt.Errorf("--workers %d: at least 1", c.Workers)
	}
	if workerMemory == "" {
		c.WorkerMemoryLimit = DefaultWorkerMemoryLimit(c.Workers)
	} else if c.WorkerMemoryLimit, err = ParseBytes(workerMemory); err != nil {
		return Config{}, fmt.Errorf("--worker-memory-limit: %w", err)
	} else if c.WorkerMemoryLimit < MinWorkerMemoryLimit {
		return Config{}, fmt.Errorf("--worker-memory-limit %s: at least %d MiB, what a worker needs to start", workerMemory, MinWorkerMemoryLimit>>20)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.WorkerProfileDir != "" {
		// A worker runs in /: a relative directory would land there.
		if c.WorkerProfileDir, err = filepath.Abs(c.WorkerProfileDir); err != nil {
			return Config{}, fmt.Errorf("--worker-profile: %w", err)
		}
	}
	// Plain HTTP beside HTTPS only when asked for.
	plainGiven := env("WEFT_HTTP", "") != ""
	fs.Visit(func(f *flag.Flag) { plainGiven = plainGiven || f.Name == "http" })
	if c.HTTPS != "" && !plainGiven {
		c.HTTP = ""
	}
	if c.Labels, err = ParseLabels(labels); err != nil {
		return Config{}, fmt.Errorf("--labels: %w", err)
	}
	if c.CAFingerprint != "" {
		fp, err := identity.ParseFingerprint(c.CAFingerprint)
		if err != nil {
			return Config{}, fmt.Errorf("--ca-fingerprint %q: %w", c.CAFingerprint, err)
		}
		c.CAFingerprint = fp
	}
	if _, err := cpdial.Addresses(c.ControlPlane); err != nil {
		return Config{}, err
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("--id is required (the host name was not available)")
	case c.CAFingerprint != "" && c.CAFile != "":
		return fmt.Errorf("--ca-fingerprint and --ca are both set: give one")
	case c.JoinToken != "" && c.CAFingerprint == "" && c.CAFile == "":
		return fmt.Errorf("--join needs --ca-fingerprint sha256:HEX (weftctl agent token create prints it) or --ca FILE, to know the control plane it sends the token to")
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	case c.HTTP == "" && c.HTTPS == "":
		return fmt.Errorf("--http and --https are both empty: the channels need an address")
	case c.HTTPS != "" && (c.TLSCert == "" || c.TLSKey == ""):
		return fmt.Errorf("--https %s needs --tls-cert and --tls-key", c.HTTPS)
	case c.HTTPS == "" && (c.TLSCert != "" || c.TLSKey != ""):
		return fmt.Errorf("--tls-cert and --tls-key are for --https, which is not set")
	case c.HTTPReadTimeout <= 0:
		return fmt.Errorf("--http-read-timeout %s: must be positive", c.HTTPReadTimeout)
	case c.InvokeTimeout <= 0:
		return fmt.Errorf("--invoke-timeout %s: must be positive", c.InvokeTimeout)
	case c.MaxPackageBytes < 0:
		return fmt.Errorf("--max-package-bytes %d: must not be negative", c.MaxPackageBytes)
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("--max-body %d: must be positive", c.MaxBodyBytes)
	case c.BackoffMax <= 0:
		return fmt.Errorf("--backoff-max %s: must be positive", c.BackoffMax)
	case c.Backups < 0:
		return fmt.Errorf("--backups %d: must not be negative (0 keeps none)", c.Backups)
	case c.Stats && c.StatsInterval <= 0:
		return fmt.Errorf("--stats-interval %s: must be positive", c.StatsInterval)
	case c.SampleBytes <= 0:
		return fmt.Errorf("--sample-bytes %d: must be positive", c.SampleBytes)
	case c.SlowThreshold <= 0:
		return fmt.Errorf("--slow-threshold %s: must be positive", c.SlowThreshold)
	}
	return nil
}

// ParseLabels reads k=v,k=v.
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value", kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("label %q given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// Level returns the log level the config asks for; Logger has checked it.
func (c Config) Level() slog.Level {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel))
	return level
}

// Logger returns the slog logger the config asks for, writing to stderr,
// at the level of level, which it sets: a SIGHUP may change it.
func (c Config) Logger(level *slog.LevelVar) (*slog.Logger, error) {
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}

// envInt reads a whole number from the environment variable name, def when
// it is unset or empty.
func envInt(name string, def int) (int, error) {
	v := env(name, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a whole number", name, v)
	}
	return n, nil
}

// envDuration reads a duration such as 30s from the environment variable
// name, def when it is unset or empty.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := env(name, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a duration such as 30s", name, v)
	}
	return d, nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}
