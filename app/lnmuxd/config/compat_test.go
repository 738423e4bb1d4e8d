package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ardanlabs/conf/v3"
	"gopkg.in/yaml.v3"

	"github.com/lnmux/lnmux/internal/original"
)

func warnedKeys(cfg *Config) []string {
	var keys []string
	for _, w := range cfg.compat {
		keys = append(keys, w.Key)
	}
	slices.Sort(keys)
	return keys
}

// TestOriginalExampleConfig loads a file in the shape of the original
// lnmux's published example (internal/original) as an operator who
// replaces the binary would, and the published example itself when a copy
// of the original's files is at hand.
func TestOriginalExampleConfig(t *testing.T) {
	if originalDefaultListen != original.DefaultListenAddress {
		t.Fatalf("originalDefaultListen %s, the original's default is %s", originalDefaultListen, original.DefaultListenAddress)
	}
	check := func(t *testing.T, data []byte) {
		cleanEnv(t)
		var want struct {
			LND struct {
				Nodes   []NodeConfig `yaml:"nodes"`
				Network string       `yaml:"network"`
			} `yaml:"lnd"`
			IdentityKey string `yaml:"identityKey"`
			DB          struct {
				DSN string `yaml:"dsn"`
			} `yaml:"db"`
		}
		if err := yaml.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if len(want.LND.Nodes) < 2 || want.DB.DSN == "" || !strings.Contains(want.LND.Nodes[0].TLSCertPath, " ") {
			t.Fatalf("not a file of the example's shape: %+v", want)
		}
		cfg := load(t, "-c", writeFile(t, "lnmux.yml", string(data)))
		if err := cfg.Validate(); err != nil {
			t.Fatalf("example does not validate: %v", err)
		}
		if driver, dsn := cfg.Database(); driver != DriverPostgres || dsn != want.DB.DSN {
			t.Errorf("db.dsn not honoured: %s", driver)
		}
		if !slices.Equal(cfg.LND.Nodes, want.LND.Nodes) || cfg.LND.Network != want.LND.Network || cfg.IdentityKey != want.IdentityKey {
			t.Errorf("lnd or identity not read as written: %+v", cfg.LND)
		}
		if cfg.ListenAddress != originalDefaultListen {
			t.Errorf("listenAddress = %s, want the original's default %s", cfg.ListenAddress, originalDefaultListen)
		}
		if got, want := warnedKeys(cfg), []string{"listenAddress", "lnd.timeout"}; !slices.Equal(got, want) {
			t.Errorf("warnings for %v, want %v", got, want)
		}
	}
	t.Run("repository's example", func(t *testing.T) { check(t, original.ExampleConfig) })
	t.Run("original's published example", func(t *testing.T) {
		data, err := os.ReadFile(original.ReferenceFile(t, "lnmux-original.yml.example"))
		if err != nil {
			t.Fatal(err)
		}
		check(t, data)
	})
}

// originalFull sets every key the original lnmux knew.
const originalFull = `
lnd:
  nodes:
    - tlsCertPath: /t
      macaroonPath: /m
      lndUrl: 127.0.0.1:10009
      pubKey: PUB
      priority: 2
  network: regtest
  timeout: 10s
identityKey: KEY
autoSettle: true
listenAddress: 127.0.0.1:19191
instrumentationAddress: localhost:2113
db:
  dsn: DSN
  poolSize: 5
  minIdleConns: 1
  maxConnAge: "15s"
  poolTimeout: "15s"
  idleTimeout: "15s"
logging:
  level: fatal
  format: console
  withCaller: true
  grpcLogging: true
  grpcPayloadLogging: true
distributedLock:
  namespace: lnmux
  name: lnmux-leader
  id: pod-1
  devKubeConfig: ~/.kube/config
`

func originalFile(t *testing.T, extra string) string {
	t.Helper()
	s := strings.NewReplacer("PUB", nodeKey(t, 7), "KEY", testKey, "DSN", testDSN).Replace(originalFull)
	return writeFile(t, "lnmux.yml", s+extra)
}

// yamlKeys lists the keys a yaml document sets, dotted, with [] for the
// elements of a list.
func yamlKeys(t *testing.T, data string) []string {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal([]byte(data), &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if prefix != "" {
					k = prefix + "." + k
				}
				walk(k, x)
			}
		case []any:
			for _, x := range v {
				walk(prefix+"[]", x)
			}
		default:
			keys = append(keys, prefix)
		}
	}
	walk("", doc)
	slices.Sort(keys)
	return slices.Compact(keys)
}

func TestOriginalConfigEveryKey(t *testing.T) {
	cleanEnv(t)
	var every []string
	for _, k := range original.ConfigKeys {
		every = append(every, k.Path)
	}
	slices.Sort(every)
	if got := yamlKeys(t, originalFull); !slices.Equal(got, every) {
		t.Fatalf("originalFull sets\n %v\nthe original's keys (internal/original) are\n %v", got, every)
	}
	cfg := load(t, "-c", originalFile(t, ""))
	if err := cfg.Validate(); err != nil {
		t.Fatalf("does not validate: %v", err)
	}
	// Honoured.
	if cfg.Persistence.Postgres.DSN != testDSN || cfg.IdentityKey != testKey || !cfg.AutoSettle ||
		cfg.ListenAddress != "127.0.0.1:19191" || cfg.Logging.Format != "text" || cfg.Logging.Level != "error" ||
		!cfg.Logging.WithCaller || !cfg.DistributedLock.Enabled.On() || len(cfg.LND.Nodes) != 1 {
		t.Errorf("not honoured: %v", cfg)
	}
	// The original's Lease keys are read under their names.
	if d := cfg.DistributedLock; d.Namespace != "lnmux" || d.Name != "lnmux-leader" || d.ID != "pod-1" ||
		!strings.HasSuffix(d.DevKubeConfig, "/.kube/config") || strings.HasPrefix(d.DevKubeConfig, "~") {
		t.Errorf("distributedLock keys: got %+v, want namespace lnmux, name lnmux-leader, id pod-1 and the kubeconfig under the home directory", d)
	}
	// Every other key: one warning each, naming what replaces it.
	want := []string{
		"db.idleTimeout", "db.maxConnAge", "db.minIdleConns", "db.poolSize", "db.poolTimeout",
		"lnd.nodes[0].priority", "lnd.timeout", "logging.grpcLogging", "logging.grpcPayloadLogging", "logging.level",
	}
	slices.Sort(want)
	if got := warnedKeys(cfg); !slices.Equal(got, want) {
		t.Errorf("warnings for\n %v\nwant\n %v", got, want)
	}
	for _, w := range cfg.compat {
		if w.Message == "" || strings.Contains(w.Message, testPass) || w.Line == 0 {
			t.Errorf("warning %+v", w)
		}
	}

	// The original's environment variables still win over the file, as for
	// lnmuxd's own keys.
	if len(original.EnvVars) != 2 {
		t.Fatalf("the original read %d variables; check each here", len(original.EnvVars))
	}
	t.Setenv("LNMUX_PERSISTENCE_POSTGRES_DSN", unreachableDSN)
	t.Setenv("LNMUX_IDENTITY_KEY", otherKey)
	cfg = load(t, "-c", originalFile(t, ""))
	if cfg.Persistence.Postgres.DSN != unreachableDSN {
		t.Error("LNMUX_PERSISTENCE_POSTGRES_DSN does not override db.dsn")
	}
	if cfg.IdentityKey != otherKey {
		t.Error("LNMUX_IDENTITY_KEY does not override identityKey")
	}
}

func TestOriginalConfigErrors(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct{ name, extra, want string }{
		{"unknown db key", "", ""},
		{"typo in the original's keys", "grpcLoging: true\n", "grpcLoging"},
		{"unknown distributedLock key", "", ""},
		{"both dsn keys", "persistence:\n  postgres:\n    dsn: postgres://x@y/z\n", "db.dsn"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := originalFile(t, c.extra)
			switch c.name {
			case "unknown db key":
				file = writeFile(t, "lnmux.yml", "db:\n  dsn: postgres://a@b/c\n  poolSise: 5\n")
				c.want = "db.poolSise"
			case "unknown distributedLock key":
				file = writeFile(t, "lnmux.yml", "db:\n  dsn: postgres://a@b/c\ndistributedLock:\n  namespace: x\n  leaseName: y\n")
				c.want = "distributedLock.leaseName"
			}
			err := loadErr(t, "-c", file)
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), testPass) {
				t.Errorf("error %v, want it to name %s", err, c.want)
			}
		})
	}
}

// TestNativeConfigUntouched: a file of lnmuxd's own keys is not translated,
// so its defaults (listenAddress) stay lnmuxd's and nothing is warned.
func TestNativeConfigUntouched(t *testing.T) {
	cleanEnv(t)
	cfg := load(t, "-c", filepath.Join("..", "..", "..", "lnmux.yml.example"))
	if len(cfg.compat) != 0 || cfg.ListenAddress != "localhost:9190" {
		t.Errorf("native file translated: %v, %s", cfg.compat, cfg.ListenAddress)
	}
	if _, _, err := Load([]string{"-c", writeFile(t, "lnmux.yml", "logging:\n  format: console\n")}, conf.Version{}); err != nil {
		t.Fatal(err)
	} else if err := load(t, "-c", writeFile(t, "lnmux.yml", "logging:\n  format: console\n")).Validate(); err == nil {
		t.Error("console accepted in a native file")
	}
}

// TestOriginalConfigLines: errors and warnings about an original file name
// the lines of the file as written (it used to be rewritten first, which
// moved them).
func TestOriginalConfigLines(t *testing.T) {
	cleanEnv(t)
	orig := "db:\n  dsn: postgres://a@b/c\n  poolSize: 5\nlogging:\n  grpcLogging: true\n"
	cfg := load(t, "-c", writeFile(t, "lnmux.yml", orig))
	lines := map[string]int{}
	for _, w := range cfg.compat {
		lines[w.Key] = w.Line
	}
	if lines["db.poolSize"] != 3 || lines["logging.grpcLogging"] != 5 {
		t.Errorf("warning lines %v, want db.poolSize 3 and logging.grpcLogging 5", lines)
	}
	err := loadErr(t, "-c", writeFile(t, "lnmux.yml", orig+"  grpcLoging: true\n"))
	if !strings.Contains(err.Error(), "logging.grpcLoging (config file line 6): unknown key") {
		t.Errorf("typo in an original file: %v", err)
	}
}
