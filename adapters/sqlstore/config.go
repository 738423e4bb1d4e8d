package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/lnmux/lnmux/adapters/redact"
)

// Drivers Config.Driver accepts.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config selects and tunes the database.
type Config struct {
	// Driver is DriverSQLite (the default when empty) or DriverPostgres.
	Driver string
	// DSN is the Postgres connection string (URL or key=value form).
	DSN string
	// Path is the SQLite database file; its directory is created if missing.
	Path string
	// MaxOpenConns caps the Postgres pool (default 10). SQLite always uses
	// one connection.
	MaxOpenConns int
	// LeaderPollInterval is how often a holding Leader checks its Postgres
	// connection (default 1s). A waiting one never polls: it blocks on the
	// lock itself (pg_advisory_lock, or flock on SQLite).
	LeaderPollInterval time.Duration
	// StatementTimeout bounds every statement of the store on Postgres
	// (statement_timeout; default 20s) and LockTimeout every wait for a row
	// lock (lock_timeout on Postgres, busy_timeout on SQLite; default 10s),
	// so that no call hangs even when its context has no deadline. A DSN
	// that sets statement_timeout or lock_timeout itself wins.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
	// MaxSettleBatch caps the settle requests stored in one transaction
	// (docs/store.md, "Group commit"; default 128). 1 commits each on its
	// own.
	MaxSettleBatch int
	// Logger receives gorm's slow-query and error logs, without query
	// parameters. Nil discards them.
	Logger *slog.Logger
}

const (
	defaultMaxOpenConns       = 10
	defaultLeaderPollInterval = time.Second
	defaultConnectTimeout     = 10 * time.Second
	defaultStatementTimeout   = 20 * time.Second
	defaultLockTimeout        = 10 * time.Second
	// A transaction left open by a client that vanished would hold its row
	// locks (and the sequence lock, docs/store.md) until the server notices.
	idleInTransactionTimeout = 30 * time.Second
	// cancelDeadlineDelay is how long a query whose context is done may take
	// to answer the cancel request before its connection is closed.
	cancelDeadlineDelay = time.Second
)

func (c Config) withDefaults() (Config, error) {
	if c.Driver == "" {
		c.Driver = DriverSQLite
	}
	switch c.Driver {
	case DriverSQLite:
		if c.Path == "" {
			return c, errors.New("sqlite: database path is empty")
		}
	case DriverPostgres:
		if c.DSN == "" {
			return c, errors.New("postgres: DSN is empty")
		}
	default:
		return c, fmt.Errorf("unknown database driver %q (want %q or %q)", c.Driver, DriverSQLite, DriverPostgres)
	}
	if c.MaxOpenConns <= 0 {
		c.MaxOpenConns = defaultMaxOpenConns
	}
	if c.LeaderPollInterval <= 0 {
		c.LeaderPollInterval = defaultLeaderPollInterval
	}
	if c.StatementTimeout <= 0 {
		c.StatementTimeout = defaultStatementTimeout
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = defaultLockTimeout
	}
	if c.MaxSettleBatch <= 0 {
		c.MaxSettleBatch = defaultMaxSettleBatch
	}
	return c, nil
}

// ValidDSN reports whether dsn has one of the two forms pgx takes: a
// postgres:// (or postgresql://) URL or key=value pairs. It says no more:
// the parsers' errors quote the DSN, password included.
func ValidDSN(dsn string) bool {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
	}
	return strings.Contains(dsn, "=")
}

// pgTarget is a parsed Postgres DSN. Every error that may quote the DSN goes
// through redact, and messages name the server by where(), so that the
// password never reaches a log line.
type pgTarget struct {
	conf     *pgx.ConnConfig
	password string
	// settings are the session settings lnmux adds to those of the DSN
	// (sessionSettings).
	settings map[string]string
}

func parsePostgresDSN(dsn string) (pgTarget, error) {
	conf, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parser's message quotes the DSN; pgx masks the password in
		// URLs but a key=value DSN with odd quoting may slip through, so
		// drop the message rather than trust it.
		return pgTarget{}, errors.New("postgres: cannot parse DSN (expected postgres://user:password@host:port/dbname?... or key=value pairs)")
	}
	if conf.ConnectTimeout == 0 {
		conf.ConnectTimeout = defaultConnectTimeout
	}
	tcp, err := takeTCPSettings(conf.RuntimeParams)
	if err != nil {
		return pgTarget{}, err
	}
	settings := map[string]string{}
	tcp.serverSettings(conf.RuntimeParams, settings)
	conf.DialFunc = tcp.dialFunc()
	// A context that ends while a query runs sends the server a cancel
	// request, so that the server stops waiting for a lock too, rather than
	// only closing our end of the socket (pgx's default).
	conf.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelDeadlineDelay}
	}
	return pgTarget{conf: conf, password: conf.Password, settings: settings}, nil
}

// connConfig returns the connection configuration with lnmux's session
// settings: those of the DSN target, then defaults (set unless the DSN
// gives them), then forced ones. They are sent as SET statements once
// connected rather than as startup parameters, which PgBouncer refuses
// unless told to ignore them.
func (p pgTarget) connConfig(defaults, forced map[string]string) *pgx.ConnConfig {
	conf := p.conf.Copy()
	settings := maps.Clone(p.settings)
	for k, v := range defaults {
		if _, ok := conf.RuntimeParams[k]; !ok {
			settings[k] = v
		}
	}
	maps.Copy(settings, forced)
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		// Names and values are lnmux's own: integers and identifiers.
		fmt.Fprintf(&b, "SET %s = '%s';", k, settings[k])
	}
	stmt := b.String()
	if stmt == "" {
		return conf
	}
	conf.AfterConnect = func(ctx context.Context, c *pgconn.PgConn) error {
		_, err := c.Exec(ctx, stmt).ReadAll()
		return err
	}
	return conf
}

// ms formats a duration as a Postgres setting in milliseconds.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// where names the server as host:port/db, without credentials.
func (p pgTarget) where() string {
	return net.JoinHostPort(p.conf.Host, strconv.Itoa(int(p.conf.Port))) + "/" + p.conf.Database
}

// redact masks the DSN's password in err's message, keeping err's chain.
func (p pgTarget) redact(err error) error {
	if err == nil || p.password == "" {
		return err
	}
	return redact.Error(err, redact.New(p.password))
}
