package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ardanlabs/conf/v3"
	confyaml "github.com/ardanlabs/conf/v3/yaml"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	"gopkg.in/yaml.v3"

	"github.com/lnmux/lnmux/domain"
)

// envPrefix prefixes every environment variable: LNMUX_IDENTITY_KEY,
// LNMUX_PERSISTENCE_POSTGRES_DSN, … conf derives the rest of each name from
// the field path, so the struct layout below is what fixes those names.
const envPrefix = "LNMUX"

// masked replaces secrets in config dumps and logs (the same mask conf uses).
const masked = "xxxxxx"

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

	// API security and instrumentation: types and checks in security.go.
	InstrumentationAddress string     `conf:"default:localhost:2112,help:instrumentationAddress: host:port of Prometheus /metrics and /debug/pprof (and gRPC health); keep it off public networks" yaml:"instrumentationAddress"`
	Auth                   AuthConfig `yaml:"auth"`
	TLS                    TLSConfig  `yaml:"tls"`
	API                    APIConfig  `yaml:"api"`

	RoutingPolicy   RoutingPolicyConfig   `yaml:"routingPolicy"`
	Invoice         InvoiceConfig         `yaml:"invoice"`
	Logging         LoggingConfig         `yaml:"logging"`
	Telemetry       TelemetryConfig       `yaml:"telemetry"`
	DistributedLock DistributedLockConfig `yaml:"distributedLock"`

	// compat lists the original lnmux keys of the file read differently
	// (config_compat.go); logged once at start.
	compat []compatWarning
}

// LNDConfig describes the cluster.
type LNDConfig struct {
	Network string       `conf:"default:regtest,help:lnd.network: bitcoin network of the nodes and invoices: mainnet|testnet|testnet4|signet|regtest|simnet" yaml:"network"`
	Nodes   []NodeConfig `conf:"help:lnd.nodes: the cluster nodes; in env and flags each node is pubKey@host:port then macaroonPath and tlsCertPath separated by commas; nodes separated by semicolons" yaml:"nodes"`
}

// NodeConfig is one LND node of the cluster. PubKey guards against
// connecting to the wrong node.
type NodeConfig struct {
	PubKey       string `yaml:"pubKey"`
	MacaroonPath string `yaml:"macaroonPath"`
	TLSCertPath  string `yaml:"tlsCertPath"`
	URL          string `yaml:"lndUrl"`
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
func (p PostgresConfig) String() string { return "{dsn:" + redactDSN(p.DSN) + "}" }

// LogValue masks the DSN's credentials in logs.
func (p PostgresConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("dsn", redactDSN(p.DSN)))
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
}

// LoggingConfig selects the log level and encoding.
type LoggingConfig struct {
	Level  string `conf:"default:info,help:logging.level: debug|info|warn|error" yaml:"level"`
	Format string `conf:"default:text,help:logging.format: text|json" yaml:"format"`
	// WithCaller is the original lnmux's key.
	WithCaller bool `conf:"default:false,help:logging.withCaller: add the source file and line of each log call" yaml:"withCaller"`
}

// TelemetryConfig configures OpenTelemetry tracing.
type TelemetryConfig struct {
	OTLPEndpoint string  `conf:"help:telemetry.otlpEndpoint: OTLP/gRPC collector (host:port or URL) for traces; empty turns tracing off" yaml:"otlpEndpoint"`
	ServiceName  string  `conf:"default:lnmuxd,help:telemetry.serviceName: service.name of the traces" yaml:"serviceName"`
	SampleRatio  float64 `conf:"default:1,help:telemetry.sampleRatio: fraction of root traces sampled (0 < ratio <= 1)" yaml:"sampleRatio"`
	// TrustTraceParent is a Toggle: a plain bool defaulting to true could not be turned off in the file.
	TrustTraceParent Toggle `conf:"default:true,help:telemetry.trustTraceParent: continue the caller's trace (W3C traceparent) in each API call instead of starting a linked trace of its own; a 'bool'" yaml:"trustTraceParent"`
}

// DistributedLockConfig controls the leader lock (docs/design.md, I5).
type DistributedLockConfig struct {
	Enabled Toggle `conf:"default:true,help:distributedLock.enabled: take the database leader lock so that one lnmuxd at most runs per database; a 'bool' (write =false to turn it off)" yaml:"enabled"`
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
			return fmt.Errorf("%q is not a bool", s)
		}
	}
	t.on, t.set = v, true
	return nil
}

// networks maps lnd.network to the chain parameters of the invoices.
var networks = map[string]*chaincfg.Params{
	"mainnet":  &chaincfg.MainNetParams,
	"testnet":  &chaincfg.TestNet3Params,
	"testnet4": &chaincfg.TestNet4Params,
	"signet":   &chaincfg.SigNetParams,
	"regtest":  &chaincfg.RegressionNetParams,
	"simnet":   &chaincfg.SimNetParams,
}

var networkNames = []string{"mainnet", "testnet", "testnet4", "signet", "regtest", "simnet"}

// osArgsMu serialises parses: conf v3 reads its flags from os.Args and
// offers no way to pass them, so loadConfig swaps os.Args for the duration
// of a parse to keep run(ctx, args, …) testable.
var osArgsMu sync.Mutex

func withOSArgs[T any](args []string, f func() (T, error)) (T, error) {
	osArgsMu.Lock()
	defer osArgsMu.Unlock()
	saved := os.Args
	os.Args = append([]string{progName}, args...)
	defer func() { os.Args = saved }()
	return f()
}

// loadConfig reads the configuration from the yaml file named by -c/--config
// (or LNMUX_CONFIG), the environment and args (the command line without the
// program name). On --help or --version it returns conf.ErrHelpWanted or
// conf.ErrVersionWanted together with the text to print. The result is
// normalised but not validated: each command validates what it needs.
func loadConfig(args []string) (*Config, string, error) {
	cfg := Config{Version: conf.Version{Build: buildVersion(), Desc: description}}
	opts := []conf.ParseOption{conf.WithStrictFlags()}

	if path := configPath(args); path != "" {
		data, err := os.ReadFile(expandHome(path)) //nolint:gosec // the operator names the config file
		if err != nil {
			return nil, "", fmt.Errorf("config file: %w", err)
		}
		data, cfg.compat, err = translateOriginal(data)
		if err != nil {
			return nil, "", err
		}
		if err := checkYAML(data); err != nil {
			return nil, "", err
		}
		opts = append(opts, conf.WithParser(confyaml.WithReader(bytes.NewReader(data))))
	}

	text, err := withOSArgs(args, func() (string, error) {
		return conf.ParseWithOptions(envPrefix, &cfg, opts...)
	})
	switch {
	case errors.Is(err, conf.ErrHelpWanted):
		return nil, withUsageHeader(text), err
	case errors.Is(err, conf.ErrVersionWanted):
		return nil, text, err
	case err != nil:
		return nil, "", err
	}
	cfg.normalize()
	return &cfg, "", nil
}

// configPath finds -c/--config in args the way conf tokenises flags (it
// stops at the first argument that is not a flag; a flag without "=" takes
// the next argument unless that looks like a flag), then falls back to
// LNMUX_CONFIG. conf needs the file before it parses, so this runs first.
func configPath(args []string) string {
	for len(args) > 0 {
		s := args[0]
		if len(s) < 2 || s[0] != '-' || s == "--" {
			break
		}
		args = args[1:]
		name, value, hasValue := strings.Cut(strings.TrimLeft(s, "-"), "=")
		if !hasValue && len(args) > 0 && args[0] != "" && args[0][0] != '-' {
			value, args = args[0], args[1:]
		}
		if name == "c" || name == "config" {
			return value
		}
	}
	return os.Getenv(envPrefix + "_CONFIG")
}

func (c *Config) normalize() {
	c.IdentityKey = strings.TrimSpace(c.IdentityKey)
	c.LND.Network = strings.ToLower(strings.TrimSpace(c.LND.Network))
	c.Logging.Level = strings.ToLower(strings.TrimSpace(c.Logging.Level))
	c.Logging.Format = strings.ToLower(strings.TrimSpace(c.Logging.Format))
	c.DataDir = expandHome(c.DataDir)
	c.Persistence.SQLite.Path = expandHome(c.Persistence.SQLite.Path)
	c.TLS.CertPath = expandHome(c.TLS.CertPath)
	c.TLS.KeyPath = expandHome(c.TLS.KeyPath)
	for i := range c.LND.Nodes {
		n := &c.LND.Nodes[i]
		n.MacaroonPath = expandHome(n.MacaroonPath)
		n.TLSCertPath = expandHome(n.TLSCertPath)
	}
}

// expandHome replaces a leading ~ with the user's home directory.
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~"))
}

// ---------------------------------------------------------------------------
// The yaml file

// legacyKeys points users of the original lnmux config at the new keys
// (most are translated before: config_compat.go).
var legacyKeys = map[string]string{
	"db": "the database settings moved to persistence.postgres.dsn and persistence.sqlite.path",
}

// checkYAML reports what conf's yaml stage would get wrong without a word:
// keys that match no field (a typo would be ignored) and keys set to the
// zero value of a field that has a default (conf cannot tell them from
// absent keys and would apply the default). It then decodes strictly to
// report type errors with their line.
func checkYAML(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode && root.ShortTag() != "!!null" {
		return fmt.Errorf("config file line %d: the top level must be a mapping of keys", root.Line)
	}
	w := yamlWalker{lines: map[int]string{}}
	w.walk(root, reflect.TypeFor[Config](), "")
	if len(w.errs) > 0 {
		return w.errs
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	err := dec.Decode(&c)
	var te *yaml.TypeError
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &te):
		// Name the key of each "line N: cannot unmarshal …".
		var errs configErrors
		for _, msg := range te.Errors {
			var line int
			if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil && w.lines[line] != "" {
				_, problem, _ := strings.Cut(msg, ": ")
				errs = append(errs, &configError{Key: w.lines[line], Line: line, Problem: problem})
			} else {
				errs = append(errs, errors.New("config file: "+msg))
			}
		}
		return errs
	}
	return fmt.Errorf("config file: %w", err)
}

// yamlWalker checks a yaml tree against the Config type.
type yamlWalker struct {
	errs  configErrors
	lines map[int]string // line → key path, to name the keys of decode errors
}

func (w *yamlWalker) walk(n *yaml.Node, t reflect.Type, path string) {
	errs := &w.errs
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // merge key: its keys are checked by the strict decode
				continue
			}
			key := joinKey(path, k.Value)
			w.lines[k.Line], w.lines[v.Line] = key, key
			f, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, unknownKey(key, k, fields))
				continue
			}
			if def, ok := confDefault(f); ok && !isZeroAs(f.Type, def) && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
				if isZeroAs(f.Type, v.Value) {
					*errs = append(*errs, &configError{Key: key, Line: k.Line, Problem: fmt.Sprintf(
						"a zero value cannot be told from an absent key and would become the default %s; remove the key or set another value", def)})
				}
			}
			w.walk(v, f.Type, key)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			key := fmt.Sprintf("%s[%d]", path, i)
			w.lines[item.Line] = key
			w.walk(item, t.Elem(), key)
		}
	}
}

func unknownKey(key string, k *yaml.Node, fields map[string]reflect.StructField) error {
	problem := "unknown key"
	if hint, ok := legacyKeys[key]; ok {
		problem += ": " + hint
	} else {
		for name := range fields {
			if strings.EqualFold(name, k.Value) {
				problem += fmt.Sprintf(" (keys are case-sensitive: did you mean %q?)", name)
			}
		}
	}
	return &configError{Key: key, Line: k.Line, Problem: problem}
}

// yamlFields maps the yaml names of t's fields (as yaml.v3 derives them) to
// the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}

// isZeroAs reports whether the scalar s decodes to the zero value of t.
func isZeroAs(t reflect.Type, s string) bool {
	ptr := reflect.New(t)
	return yaml.Unmarshal([]byte(s), ptr.Interface()) == nil && ptr.Elem().IsZero()
}

// confDefault returns the default of a conf-tagged field.
func confDefault(f reflect.StructField) (string, bool) {
	for part := range strings.SplitSeq(f.Tag.Get("conf"), ",") {
		if v, ok := strings.CutPrefix(part, "default:"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// ---------------------------------------------------------------------------
// Validation

// configError is a problem with one key. It never carries a secret value.
type configError struct {
	Key     string
	Line    int // line in the yaml file, 0 if not from the file
	Problem string
}

func (e *configError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (config file line %d): %s", e.Key, e.Line, e.Problem)
	}
	return e.Key + ": " + e.Problem
}

// configErrors lists every problem found, so that one run shows them all.
type configErrors []error

func (e configErrors) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, err := range e {
		b.WriteString("\n  - ")
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e configErrors) Unwrap() []error { return e }

func (e *configErrors) add(key, format string, a ...any) {
	*e = append(*e, &configError{Key: key, Problem: fmt.Sprintf(format, a...)})
}

func (e configErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// Validate checks every setting without touching the file system or the
// network. An identity key is checked if set; run also requires one (see
// ValidateRun).
func (c *Config) Validate() error {
	var errs configErrors

	if _, ok := networks[c.LND.Network]; !ok {
		errs.add("lnd.network", "%q is not one of %s", c.LND.Network, strings.Join(networkNames, ", "))
	}

	var identity *btcec.PublicKey
	if c.IdentityKey != "" {
		if priv, err := parseIdentityKey(c.IdentityKey); err != nil {
			errs = append(errs, err)
		} else {
			identity = priv.PubKey()
		}
	}

	c.validateNodes(&errs, identity)

	if c.DataDir == "" {
		errs.add("dataDir", "must not be empty")
	}
	if dsn := c.Persistence.Postgres.DSN; dsn != "" {
		if !validDSN(dsn) {
			errs.add("persistence.postgres.dsn", "is neither a postgres:// URL nor a key=value connection string")
		}
		if c.Persistence.SQLite.Path != "" {
			errs.add("persistence", "set either persistence.postgres.dsn or persistence.sqlite.path, not both")
		}
	}

	if err := checkHostPort(c.ListenAddress, true); err != nil {
		errs.add("listenAddress", "%v", err)
	}
	for i, o := range c.CORS.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			errs.add(fmt.Sprintf("cors.allowedOrigins[%d]", i), "%v", err)
		}
	}

	c.validateSecurity(&errs)

	if err := c.RoutingPolicy.Domain().Validate(); err != nil {
		errs.add("routingPolicy", "%v", err)
	}

	inv := c.Invoice
	if inv.FinalCLTVDelta <= inv.FinalCLTVRejectDelta {
		errs.add("invoice.finalCltvDelta", "must be above invoice.finalCltvRejectDelta (%d), or payments made with the minimum expiry are refused", inv.FinalCLTVRejectDelta)
	}
	if inv.FinalCLTVDelta > maxCLTVDelta {
		errs.add("invoice.finalCltvDelta", "must be at most %d blocks", maxCLTVDelta)
	}
	if inv.AutoFailMargin >= inv.FinalCLTVDelta {
		errs.add("invoice.autoFailMargin", "must be below invoice.finalCltvDelta (%d), or sets are cancelled as soon as they complete", inv.FinalCLTVDelta)
	}
	if inv.HoldTimeout < time.Second {
		errs.add("invoice.holdTimeout", "must be at least 1s")
	}
	if inv.AcceptTimeout < time.Second {
		errs.add("invoice.acceptTimeout", "must be at least 1s")
	}

	if _, err := parseLevel(c.Logging.Level); err != nil {
		errs.add("logging.level", "%v", err)
	}
	if c.Logging.Format != "text" && c.Logging.Format != "json" {
		errs.add("logging.format", "%q is not one of text, json", c.Logging.Format)
	}

	if e := c.Telemetry.OTLPEndpoint; e != "" {
		if err := checkEndpoint(e); err != nil {
			errs.add("telemetry.otlpEndpoint", "%v", err)
		}
	}
	if c.Telemetry.ServiceName == "" {
		errs.add("telemetry.serviceName", "must not be empty")
	}
	if r := c.Telemetry.SampleRatio; !(r > 0 && r <= 1) {
		errs.add("telemetry.sampleRatio", "must be above 0 and at most 1 (to turn tracing off leave telemetry.otlpEndpoint empty)")
	}
	return errs.err()
}

// maxCLTVDelta is lnd's limit on a route's total CLTV (2016 blocks).
const maxCLTVDelta = 2016

// ValidateRun adds what the run command needs: an identity key, and
// macaroon and certificate files it can open.
func (c *Config) ValidateRun() error {
	var errs configErrors
	if c.IdentityKey == "" {
		errs.add("identityKey", "is required to run: set it in the config file or in %s_IDENTITY_KEY", envPrefix)
	}
	for i, n := range c.LND.Nodes {
		for _, f := range []struct{ key, path string }{
			{"macaroonPath", n.MacaroonPath}, {"tlsCertPath", n.TLSCertPath},
		} {
			if f.path == "" {
				continue // reported by Validate
			}
			if err := checkReadableFile(f.path); err != nil {
				errs.add(fmt.Sprintf("lnd.nodes[%d].%s", i, f.key), "%v", err)
			}
		}
	}
	return errs.err()
}

func (c *Config) validateNodes(errs *configErrors, identity *btcec.PublicKey) {
	keys := map[string]int{}
	urls := map[string]int{}
	for i, n := range c.LND.Nodes {
		key := func(field string) string { return fmt.Sprintf("lnd.nodes[%d].%s", i, field) }
		switch pub, err := parseNodeKey(n.PubKey); {
		case err != nil:
			errs.add(key("pubKey"), "%v", err)
		case identity != nil && pub.IsEqual(identity):
			errs.add(key("pubKey"), "is the public key of identityKey: lnmux needs a key of its own")
		default:
			if j, dup := keys[strings.ToLower(n.PubKey)]; dup {
				errs.add(key("pubKey"), "duplicates lnd.nodes[%d]", j)
			} else {
				keys[strings.ToLower(n.PubKey)] = i
			}
		}
		if err := checkHostPort(n.URL, false); err != nil {
			errs.add(key("lndUrl"), "%v", err)
		} else if j, dup := urls[n.URL]; dup {
			errs.add(key("lndUrl"), "duplicates lnd.nodes[%d]", j)
		} else {
			urls[n.URL] = i
		}
		if n.MacaroonPath == "" {
			errs.add(key("macaroonPath"), "is required")
		}
		if n.TLSCertPath == "" {
			errs.add(key("tlsCertPath"), "is required")
		}
	}
}

// parseIdentityKey checks the identity key. Its errors never contain the
// key or any part of it (hex.DecodeString's would quote the bad character).
func parseIdentityKey(s string) (*btcec.PrivateKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, &configError{Key: "identityKey", Problem: "must be 64 hex characters (a 32-byte private key)"}
	}
	// PrivKeyFromBytes reduces modulo the curve order without a word, so
	// check the range first: a key ≥ n would silently be another key.
	var k btcec.ModNScalar
	if overflow := k.SetByteSlice(b); overflow || k.IsZero() {
		return nil, &configError{Key: "identityKey", Problem: "is not a valid secp256k1 private key (it must be above 0 and below the curve order)"}
	}
	k.Zero()
	priv, _ := btcec.PrivKeyFromBytes(b)
	clear(b)
	return priv, nil
}

func parseNodeKey(s string) (*btcec.PublicKey, error) {
	if s == "" {
		return nil, errors.New("is required")
	}
	k, err := domain.ParseNodeKey(s)
	if err != nil {
		return nil, errors.New("must be a 33-byte compressed public key in hex (66 characters starting with 02 or 03)")
	}
	pub, err := btcec.ParsePubKey(k[:])
	if err != nil {
		return nil, errors.New("is not a point on the secp256k1 curve")
	}
	return pub, nil
}

func checkHostPort(s string, emptyHostOK bool) error {
	if s == "" {
		return errors.New("is required (host:port)")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" && !emptyHostOK {
		return fmt.Errorf("%q has no host", s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%q has no valid port", s)
	}
	return nil
}

func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin: write scheme://host[:port] without a path, or *", o)
	}
	return nil
}

func checkEndpoint(e string) error {
	if !strings.Contains(e, "://") {
		return checkHostPort(e, false)
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be host:port or an http(s) URL")
	}
	return nil
}

// validDSN accepts the two forms pgx takes. It reports no detail: the
// parsers' errors quote the DSN.
func validDSN(dsn string) bool {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
	}
	return strings.Contains(dsn, "=")
}

func checkReadableFile(path string) error {
	st, err := os.Stat(path) //nolint:gosec // the operator configures the path
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path) //nolint:gosec // the operator configures the path
	if err != nil {
		return err
	}
	return f.Close()
}

// ---------------------------------------------------------------------------
// Domain values

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
	p, ok := networks[c.LND.Network]
	if !ok {
		return nil, &configError{Key: "lnd.network", Problem: fmt.Sprintf("%q is not one of %s", c.LND.Network, strings.Join(networkNames, ", "))}
	}
	return p, nil
}

// Database driver names returned by Config.Database.
const (
	DriverPostgres = "postgres"
	DriverSQLite   = "sqlite"
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

// ---------------------------------------------------------------------------
// Dumps

// String lists every setting, one "--flag=value" per line, secrets masked:
// the startup log line. fmt's %v and %+v use it too.
func (c Config) String() string {
	if c.IdentityKey != "" {
		c.IdentityKey = masked
	}
	// conf masks only a URL's user:password; a password in the query or a
	// key=value DSN would be shown, so redact before conf sees it.
	c.Persistence.Postgres.DSN = redactDSN(c.Persistence.Postgres.DSN)
	s, err := conf.String(&c)
	if err != nil {
		return "config: " + err.Error()
	}
	return s
}

// GoString keeps %#v from printing the secrets.
func (c Config) GoString() string { return c.String() }

// LogValue logs the configuration as a group of its flags, secrets masked.
// The JSON handler would marshal the struct, secrets included, without it.
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	for line := range strings.SplitSeq(c.String(), "\n") {
		k, v, ok := strings.Cut(strings.TrimLeft(strings.TrimSpace(line), "-"), "=")
		if ok && k != "build" && k != "desc" { // conf.Version: logged apart
			attrs = append(attrs, slog.String(k, v))
		}
	}
	return slog.GroupValue(attrs...)
}

// redactDSN keeps what helps to debug a connection (scheme, host, port,
// database) and drops credentials and parameters. A key=value DSN is masked
// whole: its quoting rules make partial redaction unsafe.
func redactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if !strings.Contains(dsn, "://") {
		return masked
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Opaque != "" {
		return masked
	}
	r := url.URL{Scheme: u.Scheme, User: url.User(masked), Host: u.Host, Path: u.Path}
	return r.String()
}

// knownEnv lists the environment variables conf reads, taken from its usage.
func knownEnv(cfg *Config) ([]string, error) {
	u, err := withOSArgs(nil, func() (string, error) { return conf.UsageInfo(envPrefix, cfg) })
	if err != nil {
		return nil, err
	}
	_, envSection, _ := strings.Cut(u, "ENVIRONMENT\n")
	var names []string
	for line := range strings.SplitSeq(envSection, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// unknownEnv returns the LNMUX_ variables in environ that no setting reads
// (typically a typo: LNMUX_IDENTITYKEY would leave the file's key in use).
// LNMUX_TEST_ variables belong to the test suites.
func unknownEnv(cfg *Config, environ []string) []string {
	known, err := knownEnv(cfg)
	if err != nil {
		return nil
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix+"_") && !strings.HasPrefix(name, envPrefix+"_TEST_") &&
			!slices.Contains(known, name) {
			unknown = append(unknown, name)
		}
	}
	return unknown
}
