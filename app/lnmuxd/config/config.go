package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ardanlabs/conf/v3"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/adapters/redact"
	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/domain"
)

// envPrefix prefixes every environment variable: LNMUX_IDENTITY_KEY,
// LNMUX_PERSISTENCE_POSTGRES_DSN, … conf derives the rest of each name from
// the field path, so the struct layout below is what fixes those names.
const envPrefix = "LNMUX"

// masked replaces secrets in config dumps and logs.
const masked = redact.Mask

// The configuration's schema and defaults. Reading it: load.go and
// yaml.go; checking it: validate.go; printing it with the secrets masked:
// dump.go.

// Config is lnmuxd's whole configuration: one struct parsed by conf with the
// precedence flags > environment > yaml file > defaults. Help texts start
// with the yaml key; commas are not allowed in them (conf splits tags on
// commas).
type Config struct {
	conf.Version `yaml:"-"`
	// Args is what follows the options: the command and its arguments.
	Args conf.Args `conf:"noprint" yaml:"-"`

	ConfigFile string `conf:"short:c,flag:config,env:CONFIG,help:path of the yaml config file (flag or env only)" yaml:"-"`

	LND         LNDConfig         `yaml:"lnd"`
	IdentityKey string            `conf:"mask,help:identityKey: 32-byte private key of the virtual node in hex; keep it out of files: prefer LNMUX_IDENTITY_KEY" yaml:"identityKey"`
	DataDir     string            `conf:"default:~/.lnmux,help:dataDir: directory for the files of lnmuxd (the SQLite database unless Postgres is set); ~ is the home directory" yaml:"dataDir"`
	Persistence PersistenceConfig `yaml:"persistence"`

	AutoSettle    bool          `conf:"default:false,help:autoSettle: settle every complete HTLC set at once instead of waiting for SettleInvoice" yaml:"autoSettle"`
	ListenAddress string        `conf:"default:localhost:9190,help:listenAddress: host:port of the API (Connect + gRPC + gRPC-Web on one port)" yaml:"listenAddress"`
	CORS          CORSConfig    `yaml:"cors"`
	Console       ConsoleConfig `yaml:"console"`

	// API security and instrumentation: types below, checks in validate.go.
	InstrumentationAddress string `conf:"default:localhost:2112,help:instrumentationAddress: host:port of Prometheus /metrics and /debug/pprof (and gRPC health); keep it off public networks" yaml:"instrumentationAddress"`
	// InstrumentationAllowNonLoopback: validate.go (validateSecurity).
	InstrumentationAllowNonLoopback bool       `conf:"default:false,help:instrumentationAllowNonLoopback: accept an instrumentationAddress other than localhost/127.0.0.0/8/::1 (pprof and metrics need no macaroon: put a firewall or NetworkPolicy in front)" yaml:"instrumentationAllowNonLoopback"`
	Auth                            AuthConfig `yaml:"auth"`
	TLS                             TLSConfig  `yaml:"tls"`
	API                             APIConfig  `yaml:"api"`

	RoutingPolicy   RoutingPolicyConfig   `yaml:"routingPolicy"`
	Invoice         InvoiceConfig         `yaml:"invoice"`
	Logging         LoggingConfig         `yaml:"logging"`
	Telemetry       TelemetryConfig       `yaml:"telemetry"`
	DistributedLock DistributedLockConfig `yaml:"distributedLock"`

	// DB is the original lnmux's database section (compat.go).
	DB *originalDB `conf:"-" yaml:"db"`

	// compat lists the original lnmux keys of the file read differently
	// (compat.go); logged once at start.
	compat []Warning
}

// LNDConfig describes the cluster.
type LNDConfig struct {
	Network string       `conf:"default:regtest,help:lnd.network: bitcoin network of the nodes and invoices: mainnet|testnet|testnet4|signet|regtest|simnet" yaml:"network"`
	Nodes   []NodeConfig `conf:"help:lnd.nodes: the cluster nodes; in env and flags each node is pubKey@host:port then macaroonPath and tlsCertPath separated by commas; nodes separated by semicolons" yaml:"nodes"`
	// AllowUnsafeVersion accepts nodes older than lnd v0.21.1 (from
	// v0.16.0), whose interceptor cannot settle an HTLC on chain
	// (docs/lnd-behaviour.md, "lnd versions").
	AllowUnsafeVersion bool `conf:"default:false,help:lnd.allowUnsafeVersion: accept lnd nodes older than v0.21.1 (down to v0.16.0) although their interceptor cannot settle an HTLC on chain (lnd issue 10892); an error is logged at every connect" yaml:"allowUnsafeVersion"`
	// Timeout is the original lnmux's key, ignored (compat.go).
	Timeout any `conf:"-" yaml:"timeout"`
}

// NodeConfig is one LND node of the cluster. PubKey guards against
// connecting to the wrong node.
type NodeConfig struct {
	PubKey       string `yaml:"pubKey"`
	MacaroonPath string `yaml:"macaroonPath"`
	TLSCertPath  string `yaml:"tlsCertPath"`
	URL          string `yaml:"lndUrl"`
	// Priority is the original lnmux's key, ignored (compat.go).
	Priority any `yaml:"priority"`
}

// UnmarshalText reads a node from its env/flag form
// "pubKey@host:port,macaroonPath,tlsCertPath". Without it conf would turn
// LNMUX_LND_NODES into empty nodes without a word.
func (n *NodeConfig) UnmarshalText(b []byte) error {
	parts := strings.Split(strings.TrimSpace(string(b)), ",")
	key, addr, ok := strings.Cut(parts[0], "@")
	if len(parts) != 3 || !ok {
		return errors.New("a node must be written pubKey@host:port,macaroonPath,tlsCertPath")
	}
	*n = NodeConfig{
		PubKey:       strings.TrimSpace(key),
		URL:          strings.TrimSpace(addr),
		MacaroonPath: strings.TrimSpace(parts[1]),
		TLSCertPath:  strings.TrimSpace(parts[2]),
	}
	return nil
}

// String formats the node for config dumps; none of its fields is secret
// (the macaroon is, but only its path is configured).
func (n NodeConfig) String() string {
	return fmt.Sprintf("%s@%s,%s,%s", n.PubKey, n.URL, n.MacaroonPath, n.TLSCertPath)
}

// PersistenceConfig chooses the database: Postgres when a DSN is set,
// otherwise an SQLite file.
type PersistenceConfig struct {
	Postgres PostgresConfig `yaml:"postgres"`
	SQLite   SQLiteConfig   `yaml:"sqlite"`
}

// PostgresConfig holds the Postgres connection string, a secret.
type PostgresConfig struct {
	DSN string `conf:"mask,help:persistence.postgres.dsn: Postgres connection string; when set Postgres is used instead of SQLite" yaml:"dsn"`
}

// String masks the DSN's credentials.
func (p PostgresConfig) String() string { return "{dsn:" + redact.DSN(p.DSN) + "}" }

// LogValue masks the DSN's credentials in logs.
func (p PostgresConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("dsn", redact.DSN(p.DSN)))
}

// SQLiteConfig locates the embedded database. Field and env name are set
// by hand: conf would split "SQLite" into SQL_LITE.
type SQLiteConfig struct {
	Path string `conf:"env:PERSISTENCE_SQLITE_PATH,flag:persistence-sqlite-path,help:persistence.sqlite.path: SQLite database file (default <dataDir>/lnmux.db)" yaml:"path"`
}

// CORSConfig lets browsers call the API.
type CORSConfig struct {
	AllowedOrigins []string `conf:"help:cors.allowedOrigins: browser origins allowed to call the API (scheme://host[:port] or *); semicolon-separated in env and flags" yaml:"allowedOrigins"`
}

// AuthConfig controls the macaroons of the API (docs/authentication.md).
type AuthConfig struct {
	RequireOnLoopback bool `conf:"default:false,help:auth.requireOnLoopback: require macaroons even when the API listens on loopback only (they are always required on any other address)" yaml:"requireOnLoopback"`
}

// TLSConfig controls TLS on the API port.
type TLSConfig struct {
	Enabled      bool     `conf:"default:false,help:tls.enabled: serve the API over TLS (gRPC gets HTTP/2 by ALPN)" yaml:"enabled"`
	CertPath     string   `conf:"help:tls.certPath: PEM certificate of the API (with tls.keyPath); when both are empty a self-signed one is generated as <dataDir>/tls.cert" yaml:"certPath"`
	KeyPath      string   `conf:"help:tls.keyPath: PEM private key of tls.certPath (default <dataDir>/tls.key)" yaml:"keyPath"`
	ExtraDomains []string `conf:"help:tls.extraDomains: DNS names or IP addresses the generated certificate is valid for besides localhost/127.0.0.1/::1; semicolon-separated in env and flags" yaml:"extraDomains"`
}

// APIConfig bounds the resources clients may hold, and names the hosts
// browsers may reach the listeners by (validateExposure; app/lnmuxd/exposure.go
// applies them).
type APIConfig struct {
	MaxStreams                   int           `conf:"default:4096,help:api.maxStreams: long-lived calls (subscriptions and WaitForInvoiceFinalStatus) open at once; more are refused with RESOURCE_EXHAUSTED" yaml:"maxStreams"`
	MaxStreamsPerClient          int           `conf:"default:1024,help:api.maxStreamsPerClient: long-lived calls open at once per client IP address" yaml:"maxStreamsPerClient"`
	MaxAnonymousStreams          int           `conf:"default:64,help:api.maxAnonymousStreams: gRPC health Watch and reflection streams (which need no macaroon) open at once; they never take the slots of api.maxStreams" yaml:"maxAnonymousStreams"`
	MaxAnonymousStreamsPerClient int           `conf:"default:16,help:api.maxAnonymousStreamsPerClient: health Watch and reflection streams open at once per client IP address" yaml:"maxAnonymousStreamsPerClient"`
	SlowReaderTimeout            time.Duration `conf:"default:30s,help:api.slowReaderTimeout: end a call whose client has not taken a response for this long" yaml:"slowReaderTimeout"`
	BodyReadTimeout              time.Duration `conf:"default:10s,help:api.bodyReadTimeout: time a request body may take to arrive after its headers; a slower call fails and its HTTP/1.1 connection is closed" yaml:"bodyReadTimeout"`
	MaxConnections               int           `conf:"default:8192,help:api.maxConnections: connections to the API port open at once; more are closed as soon as they are accepted" yaml:"maxConnections"`
	MaxConnectionsPerClient      int           `conf:"default:2048,help:api.maxConnectionsPerClient: connections to the API port open at once per client IP address" yaml:"maxConnectionsPerClient"`
	AllowedHosts                 []string      `conf:"help:api.allowedHosts: names (or IP addresses) besides localhost and the loopback addresses and the listen host by which browsers may reach a listener that serves without a macaroon (the API while macaroons are optional; the console; a loopback instrumentation port); semicolon-separated in env and flags" yaml:"allowedHosts"`
}

// ConsoleConfig turns the web console (adapters/web) on or off.
type ConsoleConfig struct {
	Enabled string `conf:"default:auto,help:console.enabled: serve the web console at /console/ on the API port: auto (only when listenAddress is a loopback address)|true|false" yaml:"enabled"`
}

// RoutingPolicyConfig is the policy of the virtual channels, published in
// the route hints and enforced on every HTLC.
type RoutingPolicyConfig struct {
	CLTVDelta   uint16 `conf:"default:40,help:routingPolicy.cltvDelta: CLTV delta of the virtual channels (blocks)" yaml:"cltvDelta"`
	FeeBaseMsat uint32 `conf:"default:0,help:routingPolicy.feeBaseMsat: base fee of the virtual channels in msat" yaml:"feeBaseMsat"`
	FeeRatePPM  uint32 `conf:"default:0,help:routingPolicy.feeRatePpm: proportional fee of the virtual channels in parts per million" yaml:"feeRatePpm"`
}

// Domain converts the policy to its domain value.
func (p RoutingPolicyConfig) Domain() domain.RoutingPolicy {
	return domain.RoutingPolicy{
		FeeBase:    domain.Msat(p.FeeBaseMsat),
		FeeRatePPM: p.FeeRatePPM,
		CLTVDelta:  p.CLTVDelta,
	}
}

// InvoiceConfig holds the invoice and HTLC-set timing rules.
type InvoiceConfig struct {
	FinalCLTVDelta       uint32        `conf:"default:40,help:invoice.finalCltvDelta: min_final_cltv_expiry written into invoices (blocks)" yaml:"finalCltvDelta"`
	HoldTimeout          time.Duration `conf:"default:120s,help:invoice.holdTimeout: how long a part of an incomplete HTLC set is held before it fails with mpp_timeout" yaml:"holdTimeout"`
	AcceptTimeout        time.Duration `conf:"default:60s,help:invoice.acceptTimeout: how long an accepted set waits for SettleInvoice before it is cancelled" yaml:"acceptTimeout"`
	FinalCLTVRejectDelta uint32        `conf:"default:19,help:invoice.finalCltvRejectDelta: refuse HTLCs that expire within this many blocks of the current height" yaml:"finalCltvRejectDelta"`
	AutoFailMargin       uint32        `conf:"default:10,help:invoice.autoFailMargin: cancel held sets this many blocks before the auto_fail_height of lnd" yaml:"autoFailMargin"`
	RouteHintGrace       time.Duration `conf:"default:5m,help:invoice.routeHintGrace: new invoices leave out the route hint of a node unreachable for longer than this (docs/route-hints.md)" yaml:"routeHintGrace"`
}

// LoggingConfig selects the log level and encoding.
type LoggingConfig struct {
	Level  string `conf:"default:info,help:logging.level: debug|info|warn|error" yaml:"level"`
	Format string `conf:"default:text,help:logging.format: text|json" yaml:"format"`
	// WithCaller is the original lnmux's key.
	WithCaller bool `conf:"default:false,help:logging.withCaller: add the source file and line of each log call" yaml:"withCaller"`
	// The original lnmux's keys, ignored (compat.go).
	GrpcLogging        any `conf:"-" yaml:"grpcLogging"`
	GrpcPayloadLogging any `conf:"-" yaml:"grpcPayloadLogging"`
}

// TelemetryConfig configures OpenTelemetry tracing.
type TelemetryConfig struct {
	OTLPEndpoint string  `conf:"help:telemetry.otlpEndpoint: OTLP/gRPC collector (host:port or URL) for traces; empty turns tracing off" yaml:"otlpEndpoint"`
	ServiceName  string  `conf:"default:lnmuxd,help:telemetry.serviceName: service.name of the traces" yaml:"serviceName"`
	SampleRatio  float64 `conf:"default:1,help:telemetry.sampleRatio: fraction of root traces sampled (0 < ratio <= 1)" yaml:"sampleRatio"`
	// TrustTraceParent is a Toggle: a plain bool defaulting to true could not be turned off in the file.
	TrustTraceParent Toggle `conf:"default:true,help:telemetry.trustTraceParent: continue the caller's trace (W3C traceparent) in each API call instead of starting a linked trace of its own; a 'bool'" yaml:"trustTraceParent"`
}

// DistributedLockConfig controls the leader lock (docs/design.md, I5;
// docs/high-availability.md). Either lock is combined with the database's
// fencing epoch, so that a stale leader can never write.
type DistributedLockConfig struct {
	Enabled Toggle `conf:"default:true,help:distributedLock.enabled: take the leader lock so that one lnmuxd at most leads per database (the others wait as standbys); a 'bool' (write =false to turn it off)" yaml:"enabled"`
	Type    string `conf:"default:database,help:distributedLock.type: database (the database's own lock) or kubernetes (a coordination.k8s.io Lease)" yaml:"type"`
	// The Kubernetes Lease (type kubernetes): the original lnmux's keys.
	Namespace     string        `conf:"help:distributedLock.namespace: namespace of the Lease (type kubernetes)" yaml:"namespace"`
	Name          string        `conf:"help:distributedLock.name: name of the Lease (type kubernetes)" yaml:"name"`
	ID            string        `conf:"help:distributedLock.id: this instance's identity in the lock (default: $POD_NAME or else the host name)" yaml:"id"`
	DevKubeConfig string        `conf:"help:distributedLock.devKubeConfig: kubeconfig file for a Lease outside a cluster; empty uses the in-cluster credentials" yaml:"devKubeConfig"`
	LeaseDuration time.Duration `conf:"default:15s,help:distributedLock.leaseDuration: how long a Lease stays valid without renewal (type kubernetes)" yaml:"leaseDuration"`
	RenewDeadline time.Duration `conf:"default:10s,help:distributedLock.renewDeadline: how long the leader retries renewing before it gives the Lease up (type kubernetes)" yaml:"renewDeadline"`
	RetryPeriod   time.Duration `conf:"default:2s,help:distributedLock.retryPeriod: interval between attempts to take or renew the Lease (type kubernetes)" yaml:"retryPeriod"`
}

// Lock types of distributedLock.type.
const (
	LockDatabase   = "database"
	LockKubernetes = "kubernetes"
)

// defaultInstanceID is distributedLock.id when unset: the pod's name in
// Kubernetes (the downward API's POD_NAME), else the host name.
func defaultInstanceID() string {
	if p := strings.TrimSpace(os.Getenv("POD_NAME")); p != "" {
		return p
	}
	h, _ := os.Hostname()
	return h
}

// Toggle is a bool that remembers having been set. conf applies a field's
// default whenever the field still holds its zero value after the yaml
// stage, so with a plain bool defaulting to true `enabled: false` in the
// file would silently become true again.
type Toggle struct {
	on, set bool
}

// On reports the value.
func (t Toggle) On() bool { return t.on }

// String formats the value for config dumps.
func (t Toggle) String() string { return strconv.FormatBool(t.on) }

// UnmarshalText parses a bool; an empty value (a bare flag) means true.
func (t *Toggle) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	v := true
	if s != "" {
		var err error
		if v, err = strconv.ParseBool(s); err != nil {
			return errors.New("not a bool") // the value may be a misplaced secret: not quoted
		}
	}
	t.on, t.set = v, true
	return nil
}

// IdentityKeyBytes returns the 32-byte identity private key.
func (c *Config) IdentityKeyBytes() ([]byte, error) {
	if c.IdentityKey == "" {
		return nil, &configError{Key: "identityKey", Problem: "is not set"}
	}
	priv, err := parseIdentityKey(c.IdentityKey)
	if err != nil {
		return nil, err
	}
	return priv.Serialize(), nil
}

// NodeKeys returns the public keys of the cluster nodes, in config order.
func (c *Config) NodeKeys() ([]domain.NodeKey, error) {
	keys := make([]domain.NodeKey, 0, len(c.LND.Nodes))
	for i, n := range c.LND.Nodes {
		k, err := domain.ParseNodeKey(n.PubKey)
		if err != nil {
			return nil, fmt.Errorf("lnd.nodes[%d].pubKey: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// ChainParams returns the parameters of lnd.network.
func (c *Config) ChainParams() (*chaincfg.Params, error) {
	p, ok := lnd.ChainParams(c.LND.Network)
	if !ok {
		return nil, &configError{Key: "lnd.network", Problem: unknownNetwork(c.LND.Network)}
	}
	return p, nil
}

// Database driver names returned by Config.Database: the store's.
const (
	DriverPostgres = sqlstore.DriverPostgres
	DriverSQLite   = sqlstore.DriverSQLite
)

// Database returns the driver and its DSN: Postgres when
// persistence.postgres.dsn is set, else the SQLite file.
func (c *Config) Database() (driver, dsn string) {
	if c.Persistence.Postgres.DSN != "" {
		return DriverPostgres, c.Persistence.Postgres.DSN
	}
	return DriverSQLite, c.SQLitePath()
}

// SQLitePath returns persistence.sqlite.path or its default in dataDir.
func (c *Config) SQLitePath() string {
	if c.Persistence.SQLite.Path != "" {
		return c.Persistence.SQLite.Path
	}
	return filepath.Join(c.DataDir, "lnmux.db")
}

// ConsoleOn decides whether the console is served. "auto" serves it only on
// a loopback listener: the page lets whoever reaches it create invoices and
// settle payments, which elsewhere should be a deliberate choice.
func (c *Config) ConsoleOn() (bool, error) {
	switch strings.ToLower(strings.TrimSpace(c.Console.Enabled)) {
	case "", "auto":
		return IsLoopbackHostPort(c.ListenAddress), nil
	case "true", "on", "yes", "1":
		return true, nil
	case "false", "off", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("console.enabled: %q is not auto, true or false", c.Console.Enabled)
}

// IsLoopbackHostPort reports whether host:port names only loopback addresses
// (localhost, 127.0.0.0/8, ::1). An empty host listens everywhere.
func IsLoopbackHostPort(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
