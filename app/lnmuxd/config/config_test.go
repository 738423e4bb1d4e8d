package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ardanlabs/conf/v3"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lnmux/lnmux/adapters/redact"
	"github.com/lnmux/lnmux/app"
	"github.com/lnmux/lnmux/domain"
)

// Secrets used by the tests; each assertion that a secret is absent looks
// for these exact strings.
const (
	testKey  = "3f9d2c6b8e1a4f7d0c5b9e2a6d1f8c4b7a0e3d6c9b2f5a8e1d4c7b0a3f6e9d2c"
	otherKey = "5a1b9c3d7e2f6a0b4c8d1e5f9a3b7c2d6e0f4a8b1c5d9e3f7a2b6c0d4e8f1a5b"
	testPass = "hunter2-Sup3rSecret"
	testDSN  = "postgres://lnmux:" + testPass + "@db.internal:5432/lnmux?sslmode=disable"
	// unreachableDSN is a loopback port nothing listens on: the tests never
	// send a packet, not even a DNS query, off this machine.
	unreachableDSN = "postgres://lnmux:" + testPass + "@127.0.0.1:1/lnmux?sslmode=disable&connect_timeout=2"
	curveOrder     = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
)

// nodeKey returns a valid compressed public key derived from seed.
func nodeKey(t *testing.T, seed byte) string {
	t.Helper()
	b := bytes.Repeat([]byte{seed}, 32)
	_, pub := btcec.PrivKeyFromBytes(b)
	return hex.EncodeToString(pub.SerializeCompressed())
}

// cleanEnv unsets every LNMUX_ variable for the test and points HOME at a
// temporary directory, so defaults under ~ are predictable.
func cleanEnv(t *testing.T) string {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "LNMUX_") {
			t.Setenv(name, "") // restores the value after the test
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	return home
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, args ...string) *Config {
	t.Helper()
	cfg, _, err := Load(args, conf.Version{})
	if err != nil {
		t.Fatalf("Load(%q): %v", args, err)
	}
	return cfg
}

func loadErr(t *testing.T, args ...string) error {
	t.Helper()
	_, _, err := Load(args, conf.Version{})
	if err == nil {
		t.Fatalf("Load(%q): no error", args)
	}
	return err
}

// validConfig is a loaded default config with an identity key, for the
// validation table to break one setting at a time.
func validConfig(t *testing.T) *Config {
	t.Helper()
	cfg := load(t)
	cfg.IdentityKey = testKey
	if err := cfg.Validate(); err != nil {
		t.Fatalf("baseline config invalid: %v", err)
	}
	return cfg
}

// TestDefaultsAgreeWithTheCore: the core's defaults (app.Defaults) are the
// one source; the config library needs them again as literals in the struct
// tags, and this test keeps the two equal.
func TestDefaultsAgreeWithTheCore(t *testing.T) {
	cleanEnv(t)
	cfg := load(t)
	core := app.Defaults()
	checks := []struct {
		key       string
		got, want any
	}{
		{"invoice.finalCltvDelta", cfg.Invoice.FinalCLTVDelta, core.FinalCLTVDelta},
		{"invoice.finalCltvRejectDelta", cfg.Invoice.FinalCLTVRejectDelta, core.FinalCLTVRejectDelta},
		{"invoice.holdTimeout", cfg.Invoice.HoldTimeout, core.HoldTimeout},
		{"invoice.acceptTimeout", cfg.Invoice.AcceptTimeout, core.AcceptTimeout},
		{"invoice.autoFailMargin", cfg.Invoice.AutoFailMargin, core.AutoFailMargin},
		{"invoice.routeHintGrace", cfg.Invoice.RouteHintGrace, core.HintGrace},
		{"routingPolicy.cltvDelta", cfg.RoutingPolicy.Domain().CLTVDelta, core.Policy.CLTVDelta},
		{"routingPolicy.feeBaseMsat", cfg.RoutingPolicy.Domain().FeeBase, core.Policy.FeeBase},
		{"routingPolicy.feeRatePpm", cfg.RoutingPolicy.Domain().FeeRatePPM, core.Policy.FeeRatePPM},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: lnmuxd's default %v, the core's %v", c.key, c.got, c.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	home := cleanEnv(t)
	cfg := load(t)

	checks := []struct {
		key       string
		got, want any
	}{
		{"lnd.network", cfg.LND.Network, "regtest"},
		{"lnd.nodes", len(cfg.LND.Nodes), 0},
		{"identityKey", cfg.IdentityKey, ""},
		{"dataDir", cfg.DataDir, filepath.Join(home, ".lnmux")},
		{"persistence.postgres.dsn", cfg.Persistence.Postgres.DSN, ""},
		{"persistence.sqlite.path", cfg.SQLitePath(), filepath.Join(home, ".lnmux", "lnmux.db")},
		{"autoSettle", cfg.AutoSettle, false},
		{"listenAddress", cfg.ListenAddress, "localhost:9190"},
		{"cors.allowedOrigins", len(cfg.CORS.AllowedOrigins), 0},
		{"routingPolicy", cfg.RoutingPolicy.Domain(), domain.RoutingPolicy{CLTVDelta: 40}},
		{"invoice.finalCltvDelta", cfg.Invoice.FinalCLTVDelta, uint32(40)},
		{"invoice.holdTimeout", cfg.Invoice.HoldTimeout, 120 * time.Second},
		{"invoice.acceptTimeout", cfg.Invoice.AcceptTimeout, 60 * time.Second},
		{"invoice.finalCltvRejectDelta", cfg.Invoice.FinalCLTVRejectDelta, uint32(19)},
		{"invoice.autoFailMargin", cfg.Invoice.AutoFailMargin, uint32(10)},
		{"invoice.routeHintGrace", cfg.Invoice.RouteHintGrace, 5 * time.Minute},
		{"logging.level", cfg.Logging.Level, "info"},
		{"logging.format", cfg.Logging.Format, "text"},
		{"telemetry.otlpEndpoint", cfg.Telemetry.OTLPEndpoint, ""},
		{"telemetry.serviceName", cfg.Telemetry.ServiceName, "lnmuxd"},
		{"telemetry.sampleRatio", cfg.Telemetry.SampleRatio, 1.0},
		{"distributedLock.enabled", cfg.DistributedLock.Enabled.On(), true},
		{"api", cfg.API, APIConfig{MaxStreams: 4096, MaxStreamsPerClient: 1024, MaxAnonymousStreams: 64,
			MaxAnonymousStreamsPerClient: 16, SlowReaderTimeout: 30 * time.Second, BodyReadTimeout: 10 * time.Second,
			MaxConnections: 8192, MaxConnectionsPerClient: 2048}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
	if driver, dsn := cfg.Database(); driver != DriverSQLite || dsn != cfg.SQLitePath() {
		t.Errorf("Database() = %s %s, want sqlite in the data dir", driver, dsn)
	}
	if p, err := cfg.ChainParams(); err != nil || p != &chaincfg.RegressionNetParams {
		t.Errorf("ChainParams() = %v, %v", p, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	// Without an identity key lnmuxd can migrate but not run.
	if err := cfg.ValidateRun(); err == nil || !strings.Contains(err.Error(), "identityKey") {
		t.Errorf("ValidateRun without identity key: %v", err)
	}
	if _, err := cfg.IdentityKeyBytes(); err == nil {
		t.Error("IdentityKeyBytes without a key: no error")
	}
}

// fullYAML sets every key to a value other than its default.
func fullYAML(t *testing.T) (yml string, nodes [2]string, files []string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"a.macaroon", "a.cert", "b.macaroon", "b.cert"} {
		p := filepath.Join(dir, f)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	nodes = [2]string{nodeKey(t, 1), nodeKey(t, 2)}
	yml = fmt.Sprintf(`
lnd:
  network: signet
  nodes:
    - pubKey: %s
      macaroonPath: %s
      tlsCertPath: %s
      lndUrl: 127.0.0.1:10009
    - pubKey: %s
      macaroonPath: %s
      tlsCertPath: %s
      lndUrl: node-b.internal:10009
identityKey: %s
dataDir: %s
persistence:
  postgres:
    dsn: %s
autoSettle: true
listenAddress: 0.0.0.0:19190
cors:
  allowedOrigins: ["https://shop.example", "http://localhost:5173"]
routingPolicy:
  cltvDelta: 80
  feeBaseMsat: 1000
  feeRatePpm: 250
invoice:
  finalCltvDelta: 144
  holdTimeout: 30s
  acceptTimeout: 2m
  finalCltvRejectDelta: 24
  autoFailMargin: 6
  routeHintGrace: 90s
logging:
  level: debug
  format: json
telemetry:
  otlpEndpoint: otel-collector:4317
  serviceName: lnmuxd-test
  sampleRatio: 0.25
distributedLock:
  enabled: false
`, nodes[0], files[0], files[1], nodes[1], files[2], files[3], testKey, dir, testDSN)
	return yml, nodes, files
}

func TestYAMLFile(t *testing.T) {
	cleanEnv(t)
	yml, nodes, files := fullYAML(t)
	path := writeFile(t, "lnmux.yml", yml)
	cfg := load(t, "-c", path, "run")

	if err := errors.Join(cfg.Validate(), cfg.ValidateRun()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	want := []NodeConfig{
		{PubKey: nodes[0], MacaroonPath: files[0], TLSCertPath: files[1], URL: "127.0.0.1:10009"},
		{PubKey: nodes[1], MacaroonPath: files[2], TLSCertPath: files[3], URL: "node-b.internal:10009"},
	}
	if !reflect.DeepEqual(cfg.LND.Nodes, want) {
		t.Errorf("nodes = %+v, want %+v", cfg.LND.Nodes, want)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"command", []string(cfg.Args), []string{"run"}},
		{"lnd.network", cfg.LND.Network, "signet"},
		{"identityKey", cfg.IdentityKey, testKey},
		{"persistence.postgres.dsn", cfg.Persistence.Postgres.DSN, testDSN},
		{"autoSettle", cfg.AutoSettle, true},
		{"listenAddress", cfg.ListenAddress, "0.0.0.0:19190"},
		{"cors.allowedOrigins", cfg.CORS.AllowedOrigins, []string{"https://shop.example", "http://localhost:5173"}},
		{"routingPolicy", cfg.RoutingPolicy.Domain(), domain.RoutingPolicy{FeeBase: 1000, FeeRatePPM: 250, CLTVDelta: 80}},
		{"invoice", cfg.Invoice, InvoiceConfig{FinalCLTVDelta: 144, HoldTimeout: 30 * time.Second,
			AcceptTimeout: 2 * time.Minute, FinalCLTVRejectDelta: 24, AutoFailMargin: 6, RouteHintGrace: 90 * time.Second}},
		{"logging", cfg.Logging, LoggingConfig{Level: "debug", Format: "json"}},
		{"telemetry", cfg.Telemetry, TelemetryConfig{OTLPEndpoint: "otel-collector:4317", ServiceName: "lnmuxd-test", SampleRatio: 0.25, TrustTraceParent: Toggle{on: true, set: true}}},
		{"distributedLock.enabled", cfg.DistributedLock.Enabled.On(), false},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}

	if driver, dsn := cfg.Database(); driver != DriverPostgres || dsn != testDSN {
		t.Errorf("Database() = %s, want postgres with the DSN", driver)
	}
	if p, _ := cfg.ChainParams(); p != &chaincfg.SigNetParams {
		t.Errorf("ChainParams() = %s, want signet", p.Name)
	}
	keys, err := cfg.NodeKeys()
	if err != nil || len(keys) != 2 || keys[0].String() != nodes[0] || keys[1].String() != nodes[1] {
		t.Errorf("NodeKeys() = %v, %v", keys, err)
	}
	b, err := cfg.IdentityKeyBytes()
	if err != nil || hex.EncodeToString(b) != testKey {
		t.Errorf("IdentityKeyBytes() wrong (err %v)", err)
	}
}

func TestEnvBeatsYAML(t *testing.T) {
	cleanEnv(t)
	path := writeFile(t, "lnmux.yml", fmt.Sprintf(`
identityKey: %s
persistence:
  postgres:
    dsn: postgres://file@localhost/lnmux
lnd:
  network: testnet
`, otherKey))
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	t.Setenv("LNMUX_PERSISTENCE_POSTGRES_DSN", testDSN)
	cfg := load(t, "-c", path)

	if cfg.IdentityKey != testKey {
		t.Error("LNMUX_IDENTITY_KEY did not override the file")
	}
	if cfg.Persistence.Postgres.DSN != testDSN {
		t.Error("LNMUX_PERSISTENCE_POSTGRES_DSN did not override the file")
	}
	if cfg.LND.Network != "testnet" {
		t.Errorf("file value lost: network = %s", cfg.LND.Network)
	}
}

func TestFlagBeatsEnv(t *testing.T) {
	cleanEnv(t)
	path := writeFile(t, "lnmux.yml", "lnd:\n  network: testnet\nlogging:\n  level: warn\n")
	t.Setenv("LNMUX_LND_NETWORK", "signet")
	t.Setenv("LNMUX_LOGGING_LEVEL", "error")
	t.Setenv("LNMUX_IDENTITY_KEY", otherKey)
	cfg := load(t, "--config="+path, "--lnd-network", "mainnet", "--identity-key="+testKey, "--auto-settle", "migrate", "up")

	if cfg.LND.Network != "mainnet" {
		t.Errorf("network = %s, want the flag's mainnet", cfg.LND.Network)
	}
	if cfg.IdentityKey != testKey {
		t.Error("--identity-key did not override LNMUX_IDENTITY_KEY")
	}
	if cfg.Logging.Level != "error" {
		t.Errorf("logging.level = %s, want the env's error over the file's warn", cfg.Logging.Level)
	}
	if !cfg.AutoSettle {
		t.Error("bare --auto-settle not true")
	}
	if got := []string(cfg.Args); !reflect.DeepEqual(got, []string{"migrate", "up"}) {
		t.Errorf("command = %q", got)
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	cleanEnv(t)
	t.Setenv("LNMUX_CONFIG", writeFile(t, "lnmux.yml", "lnd:\n  network: simnet\n"))
	if cfg := load(t, "run"); cfg.LND.Network != "simnet" {
		t.Errorf("LNMUX_CONFIG not read: network = %s", cfg.LND.Network)
	}
	// -c wins over LNMUX_CONFIG.
	if cfg := load(t, "-c", writeFile(t, "other.yml", "lnd:\n  network: testnet4\n")); cfg.LND.Network != "testnet4" {
		t.Errorf("-c did not win: network = %s", cfg.LND.Network)
	}
	if err := loadErr(t, "-c", filepath.Join(t.TempDir(), "missing.yml")); !strings.Contains(err.Error(), "config file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestConfigPath(t *testing.T) {
	cleanEnv(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-c", "a.yml", "run"}, "a.yml"},
		{[]string{"--config", "a.yml", "migrate", "up"}, "a.yml"},
		{[]string{"-c=a.yml"}, "a.yml"},
		{[]string{"--auto-settle", "-c", "a.yml", "run"}, "a.yml"},
		{[]string{"--lnd-network", "regtest", "--config=a.yml"}, "a.yml"},
		{[]string{"run", "-c", "a.yml"}, ""}, // after the command: not an option
		{[]string{"--", "-c", "a.yml"}, ""},
		{nil, ""},
	}
	for _, c := range cases {
		if got := configPath(c.args); got != c.want {
			t.Errorf("configPath(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

func TestDistributedLockToggle(t *testing.T) {
	cleanEnv(t)
	off := writeFile(t, "off.yml", "distributedLock:\n  enabled: false\n")
	on := writeFile(t, "on.yml", "distributedLock:\n  enabled: true\n")

	if load(t, "-c", off).DistributedLock.Enabled.On() {
		t.Error("enabled: false in the file did not turn the lock off")
	}
	if !load(t, "-c", on).DistributedLock.Enabled.On() {
		t.Error("enabled: true in the file")
	}
	if load(t, "--distributed-lock-enabled=false").DistributedLock.Enabled.On() {
		t.Error("--distributed-lock-enabled=false")
	}
	t.Setenv("LNMUX_DISTRIBUTED_LOCK_ENABLED", "true")
	if !load(t, "-c", off).DistributedLock.Enabled.On() {
		t.Error("env true did not beat the file's false")
	}
	t.Setenv("LNMUX_DISTRIBUTED_LOCK_ENABLED", "maybe")
	if err := loadErr(t); !strings.Contains(err.Error(), "distributedLock.enabled") || strings.Contains(err.Error(), "maybe") {
		t.Errorf("bad bool (named, value not echoed): %v", err)
	}
}

func TestToggleUnmarshalText(t *testing.T) {
	for in, want := range map[string]bool{"": true, "true": true, "1": true, "false": false, "0": false, " FALSE ": false} {
		var tg Toggle
		if err := tg.UnmarshalText([]byte(in)); err != nil || tg.On() != want || !tg.set {
			t.Errorf("UnmarshalText(%q) = %v, %v", in, tg.On(), err)
		}
	}
	var tg Toggle
	if err := tg.UnmarshalText([]byte("yes please")); err == nil {
		t.Error("no error for a non-bool")
	}
}

func TestNodesFromEnvAndFlags(t *testing.T) {
	cleanEnv(t)
	a, b := nodeKey(t, 1), nodeKey(t, 2)
	path := writeFile(t, "lnmux.yml", fmt.Sprintf(
		"lnd:\n  nodes:\n    - {pubKey: %s, macaroonPath: /f.mac, tlsCertPath: /f.cert, lndUrl: file:1}\n", a))
	t.Setenv("LNMUX_LND_NODES", fmt.Sprintf("%s@h1:10009,/a.mac,/a.cert; %s@h2:10009,/b.mac,/b.cert", a, b))
	cfg := load(t, "-c", path)
	want := []NodeConfig{
		{PubKey: a, URL: "h1:10009", MacaroonPath: "/a.mac", TLSCertPath: "/a.cert"},
		{PubKey: b, URL: "h2:10009", MacaroonPath: "/b.mac", TLSCertPath: "/b.cert"},
	}
	if !reflect.DeepEqual(cfg.LND.Nodes, want) {
		t.Errorf("env nodes = %+v, want %+v (the env list replaces the file's)", cfg.LND.Nodes, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}

	cfg = load(t, "--lnd-nodes", b+"@h3:1,/c.mac,/c.cert")
	if len(cfg.LND.Nodes) != 1 || cfg.LND.Nodes[0].URL != "h3:1" {
		t.Errorf("flag nodes = %+v", cfg.LND.Nodes)
	}

	t.Setenv("LNMUX_LND_NODES", a+"@h1:10009")
	if err := loadErr(t); !strings.Contains(err.Error(), "pubKey@host:port,macaroonPath,tlsCertPath") {
		t.Errorf("bad node spec: %v", err)
	}
}

// TestEnvNames proves the documented name of every environment variable
// reaches its key.
func TestEnvNames(t *testing.T) {
	cleanEnv(t)
	for _, k := range keyTable {
		t.Run(k.yaml, func(t *testing.T) {
			t.Setenv(k.env, k.value)
			cfg := load(t)
			if got := k.get(cfg); got != k.want {
				t.Errorf("%s=%q gave %s = %q, want %q", k.env, k.value, k.yaml, got, k.want)
			}
		})
	}
}

// keyTable lists every key with its environment variable and flag, a value
// to set through the environment and how to read it back.
var keyTable = []struct {
	yaml, env, flag string
	value, want     string
	get             func(*Config) string
}{
	{"lnd.network", "LNMUX_LND_NETWORK", "--lnd-network", "mainnet", "mainnet", func(c *Config) string { return c.LND.Network }},
	{"lnd.allowUnsafeVersion", "LNMUX_LND_ALLOW_UNSAFE_VERSION", "--lnd-allow-unsafe-version", "true", "true", func(c *Config) string { return fmt.Sprint(c.LND.AllowUnsafeVersion) }},
	{"lnd.nodes", "LNMUX_LND_NODES", "--lnd-nodes", "02aa@h:1,/m,/t", "02aa@h:1,/m,/t", func(c *Config) string { return fmt.Sprint(c.LND.Nodes[0]) }},
	{"identityKey", "LNMUX_IDENTITY_KEY", "--identity-key", testKey, testKey, func(c *Config) string { return c.IdentityKey }},
	{"dataDir", "LNMUX_DATA_DIR", "--data-dir", "/var/lib/lnmux", "/var/lib/lnmux", func(c *Config) string { return c.DataDir }},
	{"persistence.postgres.dsn", "LNMUX_PERSISTENCE_POSTGRES_DSN", "--persistence-postgres-dsn", testDSN, testDSN, func(c *Config) string { return c.Persistence.Postgres.DSN }},
	{"persistence.sqlite.path", "LNMUX_PERSISTENCE_SQLITE_PATH", "--persistence-sqlite-path", "/x/l.db", "/x/l.db", func(c *Config) string { return c.SQLitePath() }},
	{"autoSettle", "LNMUX_AUTO_SETTLE", "--auto-settle", "true", "true", func(c *Config) string { return fmt.Sprint(c.AutoSettle) }},
	{"listenAddress", "LNMUX_LISTEN_ADDRESS", "--listen-address", ":1", ":1", func(c *Config) string { return c.ListenAddress }},
	{"cors.allowedOrigins", "LNMUX_CORS_ALLOWED_ORIGINS", "--cors-allowed-origins", "http://a;http://b", "[http://a http://b]", func(c *Config) string { return fmt.Sprint(c.CORS.AllowedOrigins) }},
	{"telemetry.trustTraceParent", "LNMUX_TELEMETRY_TRUST_TRACE_PARENT", "--telemetry-trust-trace-parent", "false", "false", func(c *Config) string { return c.Telemetry.TrustTraceParent.String() }},
	{"console.enabled", "LNMUX_CONSOLE_ENABLED", "--console-enabled", "false", "false", func(c *Config) string { return c.Console.Enabled }},
	{"routingPolicy.cltvDelta", "LNMUX_ROUTING_POLICY_CLTV_DELTA", "--routing-policy-cltv-delta", "77", "77", func(c *Config) string { return fmt.Sprint(c.RoutingPolicy.CLTVDelta) }},
	{"routingPolicy.feeBaseMsat", "LNMUX_ROUTING_POLICY_FEE_BASE_MSAT", "--routing-policy-fee-base-msat", "5", "5", func(c *Config) string { return fmt.Sprint(c.RoutingPolicy.FeeBaseMsat) }},
	{"routingPolicy.feeRatePpm", "LNMUX_ROUTING_POLICY_FEE_RATE_PPM", "--routing-policy-fee-rate-ppm", "6", "6", func(c *Config) string { return fmt.Sprint(c.RoutingPolicy.FeeRatePPM) }},
	{"invoice.finalCltvDelta", "LNMUX_INVOICE_FINAL_CLTV_DELTA", "--invoice-final-cltv-delta", "99", "99", func(c *Config) string { return fmt.Sprint(c.Invoice.FinalCLTVDelta) }},
	{"invoice.holdTimeout", "LNMUX_INVOICE_HOLD_TIMEOUT", "--invoice-hold-timeout", "5s", "5s", func(c *Config) string { return fmt.Sprint(c.Invoice.HoldTimeout) }},
	{"invoice.acceptTimeout", "LNMUX_INVOICE_ACCEPT_TIMEOUT", "--invoice-accept-timeout", "7s", "7s", func(c *Config) string { return fmt.Sprint(c.Invoice.AcceptTimeout) }},
	{"invoice.finalCltvRejectDelta", "LNMUX_INVOICE_FINAL_CLTV_REJECT_DELTA", "--invoice-final-cltv-reject-delta", "21", "21", func(c *Config) string { return fmt.Sprint(c.Invoice.FinalCLTVRejectDelta) }},
	{"invoice.autoFailMargin", "LNMUX_INVOICE_AUTO_FAIL_MARGIN", "--invoice-auto-fail-margin", "3", "3", func(c *Config) string { return fmt.Sprint(c.Invoice.AutoFailMargin) }},
	{"invoice.routeHintGrace", "LNMUX_INVOICE_ROUTE_HINT_GRACE", "--invoice-route-hint-grace", "45s", "45s", func(c *Config) string { return fmt.Sprint(c.Invoice.RouteHintGrace) }},
	{"logging.level", "LNMUX_LOGGING_LEVEL", "--logging-level", "DEBUG", "debug", func(c *Config) string { return c.Logging.Level }},
	{"logging.format", "LNMUX_LOGGING_FORMAT", "--logging-format", "json", "json", func(c *Config) string { return c.Logging.Format }},
	{"logging.withCaller", "LNMUX_LOGGING_WITH_CALLER", "--logging-with-caller", "true", "true", func(c *Config) string { return fmt.Sprint(c.Logging.WithCaller) }},
	{"telemetry.otlpEndpoint", "LNMUX_TELEMETRY_OTLP_ENDPOINT", "--telemetry-otlp-endpoint", "c:4317", "c:4317", func(c *Config) string { return c.Telemetry.OTLPEndpoint }},
	{"telemetry.serviceName", "LNMUX_TELEMETRY_SERVICE_NAME", "--telemetry-service-name", "svc", "svc", func(c *Config) string { return c.Telemetry.ServiceName }},
	{"telemetry.sampleRatio", "LNMUX_TELEMETRY_SAMPLE_RATIO", "--telemetry-sample-ratio", "0.5", "0.5", func(c *Config) string { return fmt.Sprint(c.Telemetry.SampleRatio) }},
	{"distributedLock.enabled", "LNMUX_DISTRIBUTED_LOCK_ENABLED", "--distributed-lock-enabled", "false", "false", func(c *Config) string { return c.DistributedLock.Enabled.String() }},
	{"distributedLock.type", "LNMUX_DISTRIBUTED_LOCK_TYPE", "--distributed-lock-type", "Kubernetes", "kubernetes", func(c *Config) string { return c.DistributedLock.Type }},
	{"distributedLock.namespace", "LNMUX_DISTRIBUTED_LOCK_NAMESPACE", "--distributed-lock-namespace", "pay", "pay", func(c *Config) string { return c.DistributedLock.Namespace }},
	{"distributedLock.name", "LNMUX_DISTRIBUTED_LOCK_NAME", "--distributed-lock-name", "lnmux", "lnmux", func(c *Config) string { return c.DistributedLock.Name }},
	{"distributedLock.id", "LNMUX_DISTRIBUTED_LOCK_ID", "--distributed-lock-id", "pod-7", "pod-7", func(c *Config) string { return c.DistributedLock.ID }},
	{"distributedLock.devKubeConfig", "LNMUX_DISTRIBUTED_LOCK_DEV_KUBE_CONFIG", "--distributed-lock-dev-kube-config", "/k/config", "/k/config", func(c *Config) string { return c.DistributedLock.DevKubeConfig }},
	{"distributedLock.leaseDuration", "LNMUX_DISTRIBUTED_LOCK_LEASE_DURATION", "--distributed-lock-lease-duration", "20s", "20s", func(c *Config) string { return fmt.Sprint(c.DistributedLock.LeaseDuration) }},
	{"distributedLock.renewDeadline", "LNMUX_DISTRIBUTED_LOCK_RENEW_DEADLINE", "--distributed-lock-renew-deadline", "9s", "9s", func(c *Config) string { return fmt.Sprint(c.DistributedLock.RenewDeadline) }},
	{"distributedLock.retryPeriod", "LNMUX_DISTRIBUTED_LOCK_RETRY_PERIOD", "--distributed-lock-retry-period", "1s", "1s", func(c *Config) string { return fmt.Sprint(c.DistributedLock.RetryPeriod) }},
	{"instrumentationAddress", "LNMUX_INSTRUMENTATION_ADDRESS", "--instrumentation-address", ":2", ":2", func(c *Config) string { return c.InstrumentationAddress }},
	{"instrumentationAllowNonLoopback", "LNMUX_INSTRUMENTATION_ALLOW_NON_LOOPBACK", "--instrumentation-allow-non-loopback", "true", "true", func(c *Config) string { return fmt.Sprint(c.InstrumentationAllowNonLoopback) }},
	{"auth.requireOnLoopback", "LNMUX_AUTH_REQUIRE_ON_LOOPBACK", "--auth-require-on-loopback", "true", "true", func(c *Config) string { return fmt.Sprint(c.Auth.RequireOnLoopback) }},
	{"tls.enabled", "LNMUX_TLS_ENABLED", "--tls-enabled", "true", "true", func(c *Config) string { return fmt.Sprint(c.TLS.Enabled) }},
	{"tls.certPath", "LNMUX_TLS_CERT_PATH", "--tls-cert-path", "/x/c.pem", "/x/c.pem", func(c *Config) string { return c.TLS.CertPath }},
	{"tls.keyPath", "LNMUX_TLS_KEY_PATH", "--tls-key-path", "/x/k.pem", "/x/k.pem", func(c *Config) string { return c.TLS.KeyPath }},
	{"tls.extraDomains", "LNMUX_TLS_EXTRA_DOMAINS", "--tls-extra-domains", "a.example;10.0.0.1", "[a.example 10.0.0.1]", func(c *Config) string { return fmt.Sprint(c.TLS.ExtraDomains) }},
	{"api.maxStreams", "LNMUX_API_MAX_STREAMS", "--api-max-streams", "9", "9", func(c *Config) string { return fmt.Sprint(c.API.MaxStreams) }},
	{"api.maxStreamsPerClient", "LNMUX_API_MAX_STREAMS_PER_CLIENT", "--api-max-streams-per-client", "8", "8", func(c *Config) string { return fmt.Sprint(c.API.MaxStreamsPerClient) }},
	{"api.slowReaderTimeout", "LNMUX_API_SLOW_READER_TIMEOUT", "--api-slow-reader-timeout", "9s", "9s", func(c *Config) string { return fmt.Sprint(c.API.SlowReaderTimeout) }},
	{"api.maxAnonymousStreams", "LNMUX_API_MAX_ANONYMOUS_STREAMS", "--api-max-anonymous-streams", "7", "7", func(c *Config) string { return fmt.Sprint(c.API.MaxAnonymousStreams) }},
	{"api.maxAnonymousStreamsPerClient", "LNMUX_API_MAX_ANONYMOUS_STREAMS_PER_CLIENT", "--api-max-anonymous-streams-per-client", "3", "3", func(c *Config) string { return fmt.Sprint(c.API.MaxAnonymousStreamsPerClient) }},
	{"api.bodyReadTimeout", "LNMUX_API_BODY_READ_TIMEOUT", "--api-body-read-timeout", "250ms", "250ms", func(c *Config) string { return fmt.Sprint(c.API.BodyReadTimeout) }},
	{"api.maxConnections", "LNMUX_API_MAX_CONNECTIONS", "--api-max-connections", "99", "99", func(c *Config) string { return fmt.Sprint(c.API.MaxConnections) }},
	{"api.maxConnectionsPerClient", "LNMUX_API_MAX_CONNECTIONS_PER_CLIENT", "--api-max-connections-per-client", "11", "11", func(c *Config) string { return fmt.Sprint(c.API.MaxConnectionsPerClient) }},
	{"api.allowedHosts", "LNMUX_API_ALLOWED_HOSTS", "--api-allowed-hosts", "lnmux.lan;10.0.0.5", "[lnmux.lan 10.0.0.5]", func(c *Config) string { return fmt.Sprint(c.API.AllowedHosts) }},
}

// leafKeys lists the yaml paths of the settings conf sees as single values,
// with their conf tags.
func leafKeys(t reflect.Type, prefix string) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	textUnmarshaler := reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()
	for name, f := range yamlFields(t) {
		if f.Tag.Get("conf") == "-" { // the original lnmux's keys (compat.go)
			continue
		}
		key := joinKey(prefix, name)
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshaler) {
			for k, v := range leafKeys(f.Type, key) {
				out[k] = v
			}
			continue
		}
		out[key] = f
	}
	return out
}

// TestKeyTableComplete keeps keyTable, the help texts and the struct in step.
func TestKeyTableComplete(t *testing.T) {
	leaves := leafKeys(reflect.TypeFor[Config](), "")
	inTable := map[string]bool{}
	for _, k := range keyTable {
		inTable[k.yaml] = true
		if _, ok := leaves[k.yaml]; !ok {
			t.Errorf("keyTable has %s, the Config has no such key", k.yaml)
		}
	}
	for key, f := range leaves {
		if !inTable[key] {
			t.Errorf("key %s missing from keyTable", key)
		}
		var help string
		for part := range strings.SplitSeq(f.Tag.Get("conf"), ",") {
			if h, ok := strings.CutPrefix(part, "help:"); ok {
				help = h
			}
		}
		if !strings.HasPrefix(help, key+": ") {
			t.Errorf("help of %s must start with %q: %q", key, key+": ", help)
		}
	}
}

// TestUsage: the usage lists every key with its environment variable,
// flag and default, and no secret of the environment or the file.
func TestUsage(t *testing.T) {
	cleanEnv(t)
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	t.Setenv("LNMUX_PERSISTENCE_POSTGRES_DSN", testDSN)
	out, err := Usage(load(t, "-c", writeFile(t, "lnmux.yml", "identityKey: "+otherKey+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keyTable {
		for _, want := range []string{k.yaml + ": ", k.env, k.flag} {
			if !strings.Contains(out, want) {
				t.Errorf("usage lacks %q", want)
			}
		}
	}
	for _, want := range []string{
		"-c, --config", "LNMUX_CONFIG",
		"(default: regtest)", "(default: localhost:9190)", "(default: 120s)", "(default: 60s)",
		"(default: 40)", "(default: 19)", "(default: 10)", "(default: true)", "(default: ~/.lnmux)",
		"(default: info)", "(default: text)", "(default: lnmuxd)", "(default: 1)", "(default: 0)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q", want)
		}
	}
	for _, secret := range []string{testKey, otherKey, testPass} {
		if strings.Contains(out, secret) {
			t.Error("usage shows a secret")
		}
	}
}

func TestString(t *testing.T) {
	cleanEnv(t)
	dsns := []string{
		testDSN,
		"postgres://db.internal/lnmux?user=lnmux&password=" + testPass,
		"postgres://lnmux@db.internal/lnmux?password=" + testPass,
		"host=db.internal user=lnmux password=" + testPass + " dbname=lnmux",
		"host=db.internal password='" + testPass + " x' dbname=lnmux",
	}
	for _, dsn := range dsns {
		cfg := load(t, "--identity-key", testKey, "--persistence-postgres-dsn", dsn)
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("config", "config", cfg, "value", *cfg)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "config", cfg, "value", *cfg)
		dumps := map[string]string{
			"String": cfg.String(),
			"%v":     fmt.Sprintf("%v", cfg),
			"%+v":    fmt.Sprintf("%+v", *cfg),
			"%#v":    fmt.Sprintf("%#v", *cfg),
			"text":   text.String(),
			"json":   js.String(),
			"pg":     fmt.Sprint(cfg.Persistence.Postgres),
		}
		for name, s := range dumps {
			if strings.Contains(s, testKey) || strings.Contains(s, testPass) {
				t.Errorf("%s dump of DSN form %q shows a secret:\n%s", name, dsn[:12], s)
			}
		}
		s := cfg.String()
		if !strings.Contains(s, "--identity-key=xxxxxx") || !strings.Contains(s, "--persistence-postgres-dsn=") {
			t.Errorf("String() lacks the masked keys:\n%s", s)
		}
		if !json.Valid(bytes.TrimSpace(js.Bytes())) {
			t.Errorf("json log invalid: %s", js.String())
		}
	}
	// The URL form keeps what helps debugging.
	cfg := load(t, "--persistence-postgres-dsn", testDSN)
	if !strings.Contains(cfg.String(), "db.internal:5432/lnmux") {
		t.Errorf("String() lost the DSN host:\n%s", cfg.String())
	}
}

func TestRedactDSN(t *testing.T) {
	cases := map[string]string{
		"":                                     "",
		testDSN:                                "postgres://xxxxxx@db.internal:5432/lnmux",
		"postgres://h/db?password=" + testPass: "postgres://xxxxxx@h/db",
		"user=a password=" + testPass:          masked,
		"postgres:opaque" + testPass:           masked,
	}
	for in, want := range cases {
		if got := redact.DSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	node := func(seed byte, url string) NodeConfig {
		return NodeConfig{PubKey: nodeKey(t, seed), URL: url,
			MacaroonPath: filepath.Join(dir, "m"), TLSCertPath: filepath.Join(dir, "t")}
	}
	identityPub := func() string {
		b, _ := hex.DecodeString(testKey)
		_, pub := btcec.PrivKeyFromBytes(b)
		return hex.EncodeToString(pub.SerializeCompressed())
	}()
	nonHexKey := "zz" + testKey[2:]
	badDSN := "mysql://root:" + testPass + "@h/db"

	cases := []struct {
		name    string
		mutate  func(*Config)
		key     string   // the key the message must name
		secrets []string // values the message must not contain
	}{
		{"network", func(c *Config) { c.LND.Network = "bitcoin" }, "lnd.network", nil},
		{"key not hex", func(c *Config) { c.IdentityKey = nonHexKey }, "identityKey", []string{nonHexKey, "'z'", "U+007A"}},
		{"key short", func(c *Config) { c.IdentityKey = testKey[:62] }, "identityKey", []string{testKey[:62]}},
		{"key long", func(c *Config) { c.IdentityKey = testKey + "00" }, "identityKey", []string{testKey}},
		{"key zero", func(c *Config) { c.IdentityKey = strings.Repeat("0", 64) }, "identityKey", []string{strings.Repeat("0", 64)}},
		{"key = n", func(c *Config) { c.IdentityKey = curveOrder }, "identityKey", []string{curveOrder}},
		{"key > n", func(c *Config) { c.IdentityKey = strings.Repeat("f", 64) }, "identityKey", []string{strings.Repeat("f", 64)}},
		{"node key missing", func(c *Config) { n := node(1, "h:1"); n.PubKey = ""; c.LND.Nodes = []NodeConfig{n} }, "lnd.nodes[0].pubKey", nil},
		{"node key not hex", func(c *Config) { n := node(1, "h:1"); n.PubKey = "not-a-key"; c.LND.Nodes = []NodeConfig{n} }, "lnd.nodes[0].pubKey", nil},
		{"node key uncompressed", func(c *Config) {
			b := bytes.Repeat([]byte{1}, 32)
			_, pub := btcec.PrivKeyFromBytes(b)
			n := node(1, "h:1")
			n.PubKey = hex.EncodeToString(pub.SerializeUncompressed())
			c.LND.Nodes = []NodeConfig{n}
		}, "lnd.nodes[0].pubKey", nil},
		{"node key off curve", func(c *Config) {
			n := node(1, "h:1")
			n.PubKey = "02" + strings.Repeat("ff", 32)
			c.LND.Nodes = []NodeConfig{n}
		}, "lnd.nodes[0].pubKey", nil},
		{"node key is identity", func(c *Config) { n := node(1, "h:1"); n.PubKey = identityPub; c.LND.Nodes = []NodeConfig{n} }, "lnd.nodes[0].pubKey", []string{testKey}},
		{"duplicate node", func(c *Config) { c.LND.Nodes = []NodeConfig{node(1, "h:1"), node(1, "h:2")} }, "lnd.nodes[1].pubKey", nil},
		{"duplicate url", func(c *Config) { c.LND.Nodes = []NodeConfig{node(1, "h:1"), node(2, "h:1")} }, "lnd.nodes[1].lndUrl", nil},
		{"bad url", func(c *Config) { c.LND.Nodes = []NodeConfig{node(1, "localhost")} }, "lnd.nodes[0].lndUrl", nil},
		{"no macaroon", func(c *Config) { n := node(1, "h:1"); n.MacaroonPath = ""; c.LND.Nodes = []NodeConfig{n} }, "lnd.nodes[0].macaroonPath", nil},
		{"no cert", func(c *Config) { n := node(1, "h:1"); n.TLSCertPath = ""; c.LND.Nodes = []NodeConfig{n} }, "lnd.nodes[0].tlsCertPath", nil},
		{"data dir", func(c *Config) { c.DataDir = "" }, "dataDir", nil},
		{"dsn", func(c *Config) { c.Persistence.Postgres.DSN = badDSN }, "persistence.postgres.dsn", []string{badDSN, testPass}},
		{"dsn and sqlite", func(c *Config) {
			c.Persistence.Postgres.DSN = testDSN
			c.Persistence.SQLite.Path = "/x.db"
		}, "persistence.sqlite.path", []string{testPass}},
		{"listen", func(c *Config) { c.ListenAddress = "localhost" }, "listenAddress", nil},
		{"cors", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://ok.example", "https://shop.example/path"} }, "cors.allowedOrigins[1]", nil},
		{"cors * without macaroons", func(c *Config) { c.CORS.AllowedOrigins = []string{"*"} }, "auth.requireOnLoopback", nil},
		{"cors without macaroons", func(c *Config) {
			c.ListenAddress = "127.0.0.1:9190"
			c.CORS.AllowedOrigins = []string{"https://shop.example"}
		}, "cors.allowedOrigins: is allowed only when macaroons are required", nil},
		{"allowed host with port", func(c *Config) { c.API.AllowedHosts = []string{"lnmux.lan", "lnmux.lan:9190"} }, "api.allowedHosts[1]", nil},
		{"allowed host url", func(c *Config) { c.API.AllowedHosts = []string{"http://lnmux.lan"} }, "api.allowedHosts[0]", nil},
		{"allowed host wildcard", func(c *Config) { c.API.AllowedHosts = []string{"*"} }, "api.allowedHosts[0]", nil},
		{"anonymous streams", func(c *Config) { c.API.MaxAnonymousStreams = 0 }, "api.maxAnonymousStreams", nil},
		{"anonymous streams per client", func(c *Config) { c.API.MaxAnonymousStreamsPerClient = 0 }, "api.maxAnonymousStreamsPerClient", nil},
		{"body read timeout", func(c *Config) { c.API.BodyReadTimeout = 0 }, "api.bodyReadTimeout", nil},
		{"connections", func(c *Config) { c.API.MaxConnections = 0 }, "api.maxConnections", nil},
		{"connections per client", func(c *Config) { c.API.MaxConnectionsPerClient = -1 }, "api.maxConnectionsPerClient", nil},
		{"policy cltv", func(c *Config) { c.RoutingPolicy.CLTVDelta = 0 }, "cltvDelta", nil},
		{"policy ppm", func(c *Config) { c.RoutingPolicy.FeeRatePPM = 1_000_001 }, "feeRatePpm", nil},
		{"final cltv", func(c *Config) { c.Invoice.FinalCLTVDelta = 19 }, "invoice.finalCltvDelta", nil},
		{"final cltv max", func(c *Config) { c.Invoice.FinalCLTVDelta = 5000 }, "invoice.finalCltvDelta", nil},
		{"auto fail margin", func(c *Config) { c.Invoice.AutoFailMargin = 40 }, "invoice.autoFailMargin", nil},
		{"hold timeout", func(c *Config) { c.Invoice.HoldTimeout = time.Millisecond }, "invoice.holdTimeout", nil},
		{"accept timeout", func(c *Config) { c.Invoice.AcceptTimeout = 0 }, "invoice.acceptTimeout", nil},
		{"route hint grace", func(c *Config) { c.Invoice.RouteHintGrace = 0 }, "invoice.routeHintGrace", nil},
		{"log level", func(c *Config) { c.Logging.Level = "verbose" }, "logging.level", nil},
		{"log format", func(c *Config) { c.Logging.Format = "console" }, "logging.format", nil},
		{"otlp", func(c *Config) { c.Telemetry.OTLPEndpoint = "ftp://x" }, "telemetry.otlpEndpoint", nil},
		{"service name", func(c *Config) { c.Telemetry.ServiceName = "" }, "telemetry.serviceName", nil},
		{"sample ratio 0", func(c *Config) { c.Telemetry.SampleRatio = 0 }, "telemetry.sampleRatio", nil},
		{"sample ratio 2", func(c *Config) { c.Telemetry.SampleRatio = 2 }, "telemetry.sampleRatio", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := validConfig(t)
			c.mutate(cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.key) {
				t.Errorf("error does not name %s: %s", c.key, msg)
			}
			for _, s := range append(c.secrets, testKey) {
				if strings.Contains(msg, s) {
					t.Errorf("error contains secret %q: %s", s, msg)
				}
			}
		})
	}
}

func TestValidateRun(t *testing.T) {
	cleanEnv(t)
	cfg := validConfig(t)
	dir := t.TempDir()
	mac := filepath.Join(dir, "admin.macaroon")
	if err := os.WriteFile(mac, []byte("m"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.LND.Nodes = []NodeConfig{{PubKey: nodeKey(t, 1), URL: "h:1", MacaroonPath: mac, TLSCertPath: filepath.Join(dir, "missing.cert")}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate checks no files, got %v", err)
	}
	err := cfg.ValidateRun()
	if err == nil || !strings.Contains(err.Error(), "lnd.nodes[0].tlsCertPath") || strings.Contains(err.Error(), "macaroonPath") {
		t.Errorf("ValidateRun: %v", err)
	}
	cfg.LND.Nodes[0].TLSCertPath = dir // a directory
	if err := cfg.ValidateRun(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ValidateRun with a directory: %v", err)
	}
}

func TestUnknownYAMLKeys(t *testing.T) {
	cleanEnv(t)
	cases := []struct {
		name, yml string
		want      []string
	}{
		{"top level case", "identitykey: abc\n", []string{"identitykey", "line 1", `did you mean "identityKey"`}},
		{"nested", "lnd:\n  network: regtest\n  netwrok: mainnet\n", []string{"lnd.netwrok", "line 3", "unknown key"}},
		{"in a node", "lnd:\n  nodes:\n    - pubKey: x\n      macaroon: y\n", []string{"lnd.nodes[0].macaroon", "line 4"}},
		{"legacy db", "db:\n  dsn: postgres://a:b@c/d\n  size: 3\n", []string{"db.size", "line 3", "unknown key"}},
		{"legacy db not a mapping", "db: postgres://a:b@c/d\n", []string{"db", "persistence.postgres.dsn"}},
		{"under a leaf", "distributedLock:\n  enabled:\n    really: true\n", []string{"distributedLock.enabled"}},
		{"type", "routingPolicy:\n  cltvDelta: lots\n", []string{"routingPolicy.cltvDelta", "line 2", "uint16"}},
		{"overflow", "routingPolicy:\n  cltvDelta: 70000\n", []string{"routingPolicy.cltvDelta", "line 2"}},
		{"duration", "invoice:\n  holdTimeout: 120\n", []string{"invoice.holdTimeout", "line 2", "Duration"}},
		{"list item", "cors:\n  allowedOrigins:\n    - https://a.example\n    - {a: b}\n", []string{"cors.allowedOrigins[1]", "line 4"}},
		{"not a mapping", "- a\n- b\n", []string{"top level"}},
		{"syntax", "lnd: [\n", []string{"config file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := loadErr(t, "-c", writeFile(t, "lnmux.yml", c.yml))
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
	// Empty files and files of comments are fine.
	for _, yml := range []string{"", "# nothing\n", "---\n"} {
		load(t, "-c", writeFile(t, "lnmux.yml", yml))
	}
}

func TestYAMLZeroForDefault(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct{ yml, key string }{
		{"routingPolicy:\n  cltvDelta: 0\n", "routingPolicy.cltvDelta"},
		{"telemetry:\n  sampleRatio: 0\n", "telemetry.sampleRatio"},
		{"invoice:\n  holdTimeout: 0s\n", "invoice.holdTimeout"},
		{"lnd:\n  network: \"\"\n", "lnd.network"},
	} {
		err := loadErr(t, "-c", writeFile(t, "lnmux.yml", c.yml))
		if !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), "default") {
			t.Errorf("%q: %v", c.yml, err)
		}
	}
	// Zero is fine where it is the default; null means absent.
	cfg := load(t, "-c", writeFile(t, "lnmux.yml",
		"routingPolicy:\n  feeBaseMsat: 0\n  cltvDelta: ~\nautoSettle: false\nidentityKey: \"\"\n"))
	if cfg.RoutingPolicy.CLTVDelta != 40 {
		t.Errorf("null cltvDelta = %d, want the default", cfg.RoutingPolicy.CLTVDelta)
	}
}

func TestExampleFile(t *testing.T) {
	cleanEnv(t)
	example := filepath.Join("..", "..", "..", "lnmux.yml.example")
	cfg := load(t, "-c", example)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("example does not validate: %v", err)
	}
	if len(cfg.LND.Nodes) != 2 || cfg.LND.Network != "regtest" {
		t.Errorf("example: %d nodes on %s", len(cfg.LND.Nodes), cfg.LND.Network)
	}

	// Point its placeholder paths at real files and supply the key as the
	// example recommends: then it is ready to run.
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := string(data)
	for _, p := range []string{
		"~/.lnd-alice/data/chain/bitcoin/regtest/admin.macaroon", "~/.lnd-alice/tls.cert",
		"~/.lnd-bob/data/chain/bitcoin/regtest/admin.macaroon", "~/.lnd-bob/tls.cert",
	} {
		if !strings.Contains(s, p) {
			t.Fatalf("example lacks %s", p)
		}
		f := filepath.Join(dir, strings.NewReplacer("/", "_", "~", "").Replace(p))
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		s = strings.ReplaceAll(s, p, f)
	}
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	cfg = load(t, "-c", writeFile(t, "lnmux.yml", s), "run")
	if err := errors.Join(cfg.Validate(), cfg.ValidateRun()); err != nil {
		t.Fatalf("adjusted example: %v", err)
	}
}

func TestUnknownEnv(t *testing.T) {
	cleanEnv(t)
	cfg := load(t)
	got := UnknownEnv(cfg, []string{
		"LNMUX_IDENTITYKEY=x", "LNMUX_IDENTITY_KEY=y", "LNMUX_TEST_POSTGRES_DSN=z", "LNMUX_CONFIG=c", "HOME=/",
	})
	if !reflect.DeepEqual(got, []string{"LNMUX_IDENTITYKEY"}) {
		t.Errorf("unknownEnv = %q", got)
	}
}

func TestStrictFlags(t *testing.T) {
	cleanEnv(t)
	if err := loadErr(t, "--lnd-netwrok=mainnet", "run"); !strings.Contains(err.Error(), "lnd-netwrok") {
		t.Errorf("unknown flag: %v", err)
	}
}
