package config

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// The original lnmux (bottlepay/lnmux) reads an lnmux.yml of its own shape.
// An operator switches by replacing the binary, so lnmuxd reads that file
// too. Most of its keys are lnmuxd's under the same name; db.dsn is honoured
// as persistence.postgres.dsn; the keys with no effect here are fields
// tagged conf:"-" (the strict decode accepts them, conf ignores them) and
// each is warned once at start, saying what replaces it. Anything else
// unknown stays an error, as for every file. docs/compatibility.md lists
// the keys.

// originalDefaultListen is where the original lnmux listened without
// listenAddress; its clients are configured for it.
const originalDefaultListen = "localhost:19090"

// originalDB is the original's db section: dsn is honoured, the pool
// settings are ignored.
type originalDB struct {
	DSN          string `yaml:"dsn"`
	PoolSize     any    `yaml:"poolSize"`
	MinIdleConns any    `yaml:"minIdleConns"`
	MaxConnAge   any    `yaml:"maxConnAge"`
	PoolTimeout  any    `yaml:"poolTimeout"`
	IdleTimeout  any    `yaml:"idleTimeout"`
}

// originalIgnored are the original's keys that have no effect here, with
// what replaces each. "[]" stands for every element of a list.
var originalIgnored = map[string]string{
	"db.poolSize":                "lnmuxd sizes its Postgres pool itself (at most 10 connections: only settlements write)",
	"db.minIdleConns":            "lnmuxd sizes its Postgres pool itself",
	"db.maxConnAge":              "lnmuxd manages its Postgres connections itself",
	"db.poolTimeout":             "every database call is bounded by lnmuxd's own timeouts",
	"db.idleTimeout":             "lnmuxd manages its Postgres connections itself",
	"lnd.timeout":                "lnmuxd bounds each lnd call itself and reconnects with backoff",
	"lnd.nodes[].priority":       "every node is in each invoice's route hints and the payer picks; there is no preference",
	"logging.grpcLogging":        "every API call is an OpenTelemetry span (telemetry.otlpEndpoint) and failures are logged",
	"logging.grpcPayloadLogging": "payloads are never logged: they carry preimages",
}

// Warning is one original key lnmuxd reads differently, logged once at
// start (Config.Warnings).
type Warning struct {
	Key     string
	Line    int
	Message string
}

func (w Warning) order() int {
	if w.Line == 0 {
		return math.MaxInt
	}
	return w.Line
}

// String is "key (config file line N): message", as errors are written.
func (w Warning) String() string {
	return (&configError{Key: w.Key, Line: w.Line, Problem: w.Message}).Error()
}

// Warnings lists the original lnmux's keys of the file read differently
// here, in file order.
func (c *Config) Warnings() []Warning { return c.compat }

var listIndex = regexp.MustCompile(`\[\d+\]`)

// readOriginal applies the original's keys of a file just decoded into c
// (keys: every key of the file with its line). A file is the original's
// when it has a db section or a key only the original knows; only then are
// the original's values and defaults translated.
func (c *Config) readOriginal(keys map[string]int) error {
	_, original := keys["db"]
	for key, line := range keys {
		if why, ok := originalIgnored[listIndex.ReplaceAllString(key, "[]")]; ok {
			original = true
			c.compat = append(c.compat, Warning{Key: key, Line: line, Message: "ignored: " + why})
		}
	}
	// The ignored values are dropped: nothing reads them.
	c.LND.Timeout, c.Logging.GrpcLogging, c.Logging.GrpcPayloadLogging = nil, nil, nil
	for i := range c.LND.Nodes {
		c.LND.Nodes[i].Priority = nil
	}
	db := c.DB
	c.DB = nil
	if !original {
		return nil
	}
	if db != nil && db.DSN != "" {
		if c.Persistence.Postgres.DSN != "" {
			return configErrors{&configError{Key: "db.dsn", Line: keys["db.dsn"],
				Problem: "is the original lnmux's name of persistence.postgres.dsn, which is set too: keep one"}}
		}
		c.Persistence.Postgres.DSN = db.DSN
	}
	// zap's encodings and levels: "console" is the human-readable one;
	// slog has nothing above error.
	if strings.EqualFold(strings.TrimSpace(c.Logging.Format), "console") {
		c.Logging.Format = "text"
	}
	switch l := strings.ToLower(strings.TrimSpace(c.Logging.Level)); l {
	case "dpanic", "panic", "fatal":
		c.Logging.Level = "error"
		c.compat = append(c.compat, Warning{Key: "logging.level", Line: keys["logging.level"], Message: fmt.Sprintf("level %q is logged as error", l)})
	}
	// The original listened on another port by default: keep its clients
	// working unless the file says where to listen.
	if _, set := keys["listenAddress"]; !set {
		c.ListenAddress = originalDefaultListen
		c.compat = append(c.compat, Warning{Key: "listenAddress", Message: "not set in an original lnmux config: listening on the original's default " +
			originalDefaultListen + " instead of lnmuxd's localhost:9190; set listenAddress to choose"})
	}
	// In file order; listenAddress, absent from the file, last.
	slices.SortFunc(c.compat, func(a, b Warning) int { return cmp.Compare(a.order(), b.order()) })
	return nil
}
