// Package config holds the control plane's settings and reads them from
// flags, with environment variables as defaults so that systemd units and
// containers can configure it without a command line.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/weft-dev/weft/agent/shared/settings"
)

// Config is everything the control plane needs to start.
type Config struct {
	// Settings are what every flag is set to, by name, from the settings
	// file, the environment and the command line: SIGHUP compares them.
	Settings map[string]string
	// Listen is the gRPC address for weftctl, grpcurl and agents.
	Listen string
	// Advertise is where other replicas reach this one, host:port: they
	// forward to it the commands for the agents it holds.
	Advertise string
	// DB names the database: sqlite:PATH or mysql:DSN.
	DB string
	// LogFormat is text or json.
	LogFormat string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// PollInterval is how often the control plane reads the revision from the
	// database, to see changes made by other replicas.
	PollInterval time.Duration
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration
	// DeployTimeout bounds, in wall-clock time, the evaluation of one
	// package in its child process at the door (most packages need none).
	DeployTimeout time.Duration
	// EvalCPULimit is the CPU time the evaluation of one package may use.
	EvalCPULimit time.Duration
	// EvalMemoryLimit is the memory, in MiB, the evaluation of one
	// package may use.
	EvalMemoryLimit int
	// InvokeTimeout is the default bound of weftctl invoke.
	InvokeTimeout time.Duration
	// JobLease is how long the lease on a job placed on one agent lasts
	// unless its holder renews it: the longest such a job goes without a
	// firing when its holder disappears.
	JobLease time.Duration
	// PickupDir is a directory whose new .go files and package directories
	// are deployed with no other action; empty for none.
	PickupDir string
	// PickupInterval is how often the pickup directory is read.
	PickupInterval time.Duration
	// Sources is a sources list deployed at start; empty for none.
	Sources string
	// ConfigDir is a directory of config files (.yaml, .yml, .json)
	// imported at start, together as one config; empty for none.
	ConfigDir string
	// SecretsKey is the file holding the key that seals secrets at rest;
	// see SecretsKeyPath for its default.
	SecretsKey string
	// Metrics is the HTTP address serving Prometheus metrics at /metrics;
	// empty for none.
	Metrics string
	// StatsRetention is how long the agents' statistics are kept, per
	// resolution.
	StatsRetention Retention
	// CACert and CAKey are the PEM files of a CA the operator brings; both
	// empty for the control plane's own, made on first start and kept in
	// the database with its key sealed.
	CACert, CAKey string
	// CAFile is where the CA certificate is written for clients to trust;
	// see StatePath for its default.
	CAFile string
	// TLSHosts are the host names and IP addresses the control plane's
	// server certificate names: those clients and agents dial.
	TLSHosts []string
	// AgentCertTTL is how long an agent's certificate is valid; agents
	// renew it once two thirds have passed.
	AgentCertTTL time.Duration
	// AdminTokenFile is where the first admin token's secret is written,
	// mode 0600, on the first start; see StatePath for its default.
	AdminTokenFile string
}

// The default names of the files the control plane writes beside its
// secrets key.
const (
	caFile         = "weft-ca.pem"
	adminTokenFile = "weft-admin.token"
)

// StatePath is the path of a file the control plane writes: given, when
// not empty, else name beside the secrets key file.
func (c Config) StatePath(given, name string) string {
	if given != "" {
		return given
	}
	key, err := c.SecretsKeyPath()
	if err != nil {
		return name
	}
	return filepath.Join(filepath.Dir(key), name)
}

// CAFilePath is where the CA certificate is written.
func (c Config) CAFilePath() string { return c.StatePath(c.CAFile, caFile) }

// AdminTokenPath is where the first admin token is written.
func (c Config) AdminTokenPath() string { return c.StatePath(c.AdminTokenFile, adminTokenFile) }

// SecretsKeyPath is the secrets key file: --secrets-key, else, for a
// SQLite database, weft-secrets.key beside the database file. A MySQL
// database needs --secrets-key: every replica must share one key.
func (c Config) SecretsKeyPath() (string, error) {
	if c.SecretsKey != "" {
		return c.SecretsKey, nil
	}
	kind, rest, _ := strings.Cut(c.DB, ":")
	switch kind {
	case "sqlite":
		file, _, _ := strings.Cut(rest, "?")
		return filepath.Join(filepath.Dir(file), secretsKeyFile), nil
	case "mysql":
		return "", errors.New("--secrets-key (env WEFT_SECRETS_KEY) is required with a MySQL database: every control plane replica must seal secrets with the same key file")
	default:
		return "", fmt.Errorf("--db: unknown kind %q; want sqlite:PATH or mysql:DSN", kind)
	}
}

// secretsKeyFile is the default secrets key file's name, beside a SQLite
// database.
const secretsKeyFile = "weft-secrets.key"

// Parse reads the config from args (without the program name).
func Parse(args []string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("weft-controlplane", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", env("WEFT_LISTEN", "127.0.0.1:7400"), "gRPC listen address (env WEFT_LISTEN)")
	fs.StringVar(&c.Advertise, "advertise", env("WEFT_ADVERTISE", ""), "address other replicas reach this one at, host:port, a name its certificate carries (--tls-hosts); default --listen, or this host's name and --listen's port when --listen is on every interface (env WEFT_ADVERTISE)")
	fs.StringVar(&c.DB, "db", env("WEFT_DB", "sqlite:weft.db"), "database: sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB (env WEFT_DB)")
	fs.StringVar(&c.LogFormat, "log-format", env("WEFT_LOG_FORMAT", "text"), "log format: text or json (env WEFT_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", env("WEFT_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env WEFT_LOG_LEVEL)")
	fs.DurationVar(&c.PollInterval, "poll-interval", 500*time.Millisecond, "how often to read the revision from the database, to see other replicas' changes")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "bound of a graceful stop")
	fs.DurationVar(&c.DeployTimeout, "deploy-timeout", 20*time.Second, "wall-clock bound of evaluating one package in its child process at the door")
	fs.DurationVar(&c.EvalCPULimit, "eval-cpu-limit", 10*time.Second, "CPU time the evaluation of one package in its child process may use (whole seconds)")
	fs.IntVar(&c.EvalMemoryLimit, "eval-memory-limit", 512, "memory (MiB) the evaluation of one package in its child process may use")
	fs.DurationVar(&c.InvokeTimeout, "invoke-timeout", 30*time.Second, "default bound of an invoke from weftctl")
	fs.DurationVar(&c.JobLease, "job-lease", 15*time.Second, "how long an agent's lease on a job placed on one agent lasts unless renewed; a takeover follows within it")
	fs.StringVar(&c.PickupDir, "pickup-dir", env("WEFT_PICKUP_DIR", ""), "deploy .go files and package directories dropped here (env WEFT_PICKUP_DIR)")
	fs.DurationVar(&c.PickupInterval, "pickup-interval", time.Second, "how often to read the pickup directory")
	fs.StringVar(&c.Sources, "sources", env("WEFT_SOURCES", ""), "sources list to deploy at start: one file or package directory per line (env WEFT_SOURCES)")
	fs.StringVar(&c.ConfigDir, "config-dir", env("WEFT_CONFIG_DIR", ""), "import the config files (.yaml, .yml, .json) in this directory at start, as one config; their ${VAR}s come from the environment (env WEFT_CONFIG_DIR)")
	fs.StringVar(&c.SecretsKey, "secrets-key", env("WEFT_SECRETS_KEY", ""), "file of the key that seals secrets at rest, created (mode 0600) when missing; default weft-secrets.key beside a SQLite database, required with MySQL (env WEFT_SECRETS_KEY)")
	fs.StringVar(&c.Metrics, "metrics", env("WEFT_METRICS", ""), "serve Prometheus metrics at http://ADDR/metrics; empty for none (env WEFT_METRICS)")
	fs.StringVar(&c.CACert, "ca-cert", env("WEFT_CA_CERT", ""), "PEM certificate of a CA of your own that signs the agents' and the control plane's certificates, with --ca-key; default: the control plane's own CA, made on first start and kept in the database (env WEFT_CA_CERT)")
	fs.StringVar(&c.CAKey, "ca-key", env("WEFT_CA_KEY", ""), "PEM private key of --ca-cert (env WEFT_CA_KEY)")
	fs.StringVar(&c.CAFile, "ca-file", env("WEFT_CA_FILE", ""), "write the CA certificate here for weftctl, grpcurl and agents to trust; default weft-ca.pem beside the secrets key (env WEFT_CA_FILE)")
	hosts := env("WEFT_TLS_HOSTS", "")
	fs.StringVar(&hosts, "tls-hosts", hosts, "comma-separated host names and IP addresses the server certificate names, those clients dial; default localhost, 127.0.0.1, ::1, this host's name and --listen's host (env WEFT_TLS_HOSTS)")
	fs.DurationVar(&c.AgentCertTTL, "agent-cert-ttl", 30*24*time.Hour, "how long an agent's certificate is valid; agents renew it once two thirds have passed")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", env("WEFT_ADMIN_TOKEN_FILE", ""), "on the first start, write the first admin token here (mode 0600); default weft-admin.token beside the secrets key (env WEFT_ADMIN_TOKEN_FILE)")
	c.StatsRetention = DefaultRetention()
	if v := env("WEFT_STATS_RETENTION", ""); v != "" {
		if err := c.StatsRetention.Set(v); err != nil {
			return Config{}, fmt.Errorf("WEFT_STATS_RETENTION: %w", err)
		}
	}
	fs.Var(&c.StatsRetention, "stats-retention", "how long statistics are kept per resolution, such as 1m=48h,1h=35d,1d=400d; those left out keep the default (env WEFT_STATS_RETENTION)")
	values, err := settings.Parse(fs, args, "WEFT_CONTROLPLANE_CONFIG")
	if err != nil {
		return Config{}, err
	}
	c.Settings = values
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if _, err := c.SecretsKeyPath(); err != nil {
		return Config{}, err
	}
	c.TLSHosts = tlsHosts(hosts, c.Listen)
	if c.Advertise == "" {
		c.Advertise = advertised(c.Listen)
	}
	if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
		return Config{}, fmt.Errorf("--advertise %q: want host:port", c.Advertise)
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	if c.PickupInterval <= 0 {
		return fmt.Errorf("--pickup-interval %s: must be positive", c.PickupInterval)
	}
	if c.PollInterval <= 0 {
		return fmt.Errorf("--poll-interval %s: must be positive", c.PollInterval)
	}
	if c.DeployTimeout <= 0 {
		return fmt.Errorf("--deploy-timeout %s: must be positive", c.DeployTimeout)
	}
	if c.EvalCPULimit < time.Second {
		return fmt.Errorf("--eval-cpu-limit %s: want 1s or more (the kernel counts whole seconds)", c.EvalCPULimit)
	}
	// Below this the control plane's own program, which the child runs,
	// has too little room to start the interpreter.
	if c.EvalMemoryLimit < 128 {
		return fmt.Errorf("--eval-memory-limit %d: want 128 (MiB) or more", c.EvalMemoryLimit)
	}
	if c.JobLease < 500*time.Millisecond || c.JobLease > time.Hour {
		return fmt.Errorf("--job-lease %s: want 500ms to 1h", c.JobLease)
	}
	if (c.CACert == "") != (c.CAKey == "") {
		return errors.New("--ca-cert and --ca-key go together: give both, or neither for the control plane's own CA")
	}
	if c.AgentCertTTL < time.Minute || c.AgentCertTTL > 5*365*24*time.Hour {
		return fmt.Errorf("--agent-cert-ttl %s: want 1m to 5 years", c.AgentCertTTL)
	}
	return nil
}

// advertised is the address other replicas reach a replica listening on
// listen at: listen, or this host's name and listen's port when listen is
// on every interface.
func advertised(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			return net.JoinHostPort(name, port)
		}
	}
	return listen
}

// tlsHosts is the list --tls-hosts gives, or the default: the local names,
// this host's name and the listen address's host when it names one.
func tlsHosts(given, listen string) []string {
	var hosts []string
	add := func(h string) {
		h = strings.TrimSpace(h)
		if h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	if strings.TrimSpace(given) != "" {
		for _, h := range strings.Split(given, ",") {
			add(h)
		}
		return hosts
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		add(h)
	}
	if name, err := os.Hostname(); err == nil {
		add(name)
	}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "0.0.0.0" && h != "::" {
		add(h)
	}
	return hosts
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
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
