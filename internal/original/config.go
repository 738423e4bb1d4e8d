package original

import _ "embed" // ExampleConfig

// ConfigKey is a key of the original lnmux's lnmux.yml. Paths are dotted;
// "[]" stands for every element of a list (lnd.nodes[].pubKey).
type ConfigKey struct {
	Path string
	// Kind is the value's shape: string, bool, int, duration (Go syntax,
	// "15s") or hex.
	Kind string
	// Doc says what the original did with it.
	Doc string
}

// DefaultListenAddress is where the original served its API when
// listenAddress was not set; its clients are configured for it.
const DefaultListenAddress = "localhost:19090"

// EnvVars are the environment variables the original read; each overrides
// its key of the file.
var EnvVars = map[string]string{
	"LNMUX_PERSISTENCE_POSTGRES_DSN": "db.dsn",
	"LNMUX_IDENTITY_KEY":             "identityKey",
}

// ConfigKeys are every key the original's configuration knew, in the order
// of its sections.
var ConfigKeys = []ConfigKey{
	{"lnd.nodes[].tlsCertPath", "string", "file of the node's TLS certificate"},
	{"lnd.nodes[].macaroonPath", "string", "file of the macaroon used with the node"},
	{"lnd.nodes[].lndUrl", "string", "host:port of the node's gRPC"},
	{"lnd.nodes[].pubKey", "hex", "the node's identity key (33 bytes, compressed)"},
	{"lnd.nodes[].priority", "int", "preference for the node, higher first"},
	{"lnd.network", "string", "bitcoin network (mainnet, testnet, regtest, simnet)"},
	{"lnd.timeout", "duration", "bound of each call to a node"},
	{"identityKey", "hex", "private key of the virtual node (32 bytes)"},
	{"autoSettle", "bool", "settle every accepted set without asking the application"},
	{"listenAddress", "string", "host:port of the API; " + DefaultListenAddress + " when unset"},
	{"instrumentationAddress", "string", "host:port of the Prometheus metrics listener; localhost:2112 when unset"},
	{"db.dsn", "string", "Postgres connection URL"},
	{"db.poolSize", "int", "connections in the pool"},
	{"db.minIdleConns", "int", "idle connections kept open"},
	{"db.maxConnAge", "duration", "age at which a connection is replaced"},
	{"db.poolTimeout", "duration", "wait for a free connection"},
	{"db.idleTimeout", "duration", "idle time after which a connection is closed"},
	{"logging.level", "string", "zap level: debug, info, warn, error, dpanic, panic, fatal"},
	{"logging.format", "string", "zap encoding: json or console"},
	{"logging.withCaller", "bool", "source file and line in each log line"},
	{"logging.grpcLogging", "bool", "log each API call"},
	{"logging.grpcPayloadLogging", "bool", "log each API call's messages"},
	{"distributedLock.namespace", "string", "Kubernetes namespace of the leader Lease"},
	{"distributedLock.name", "string", "name of the leader Lease"},
	{"distributedLock.id", "string", "this instance's identity in the Lease"},
	{"distributedLock.devKubeConfig", "string", "kubeconfig file for running outside the cluster"},
}

// ExampleConfig is a file in the shape of the original's published example
// (example.yml): the keys and layout its operators started from, with
// values of this repository.
//
//go:embed example.yml
var ExampleConfig []byte
