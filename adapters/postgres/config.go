package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	// LeaderPollInterval is how often a waiting Leader retries the lock and
	// a holding one checks its connection (default 1s).
	LeaderPollInterval time.Duration
	// Logger receives gorm's slow-query and error logs, without query
	// parameters. Nil discards them.
	Logger *slog.Logger
}

const (
	defaultMaxOpenConns       = 10
	defaultLeaderPollInterval = time.Second
	defaultConnectTimeout     = 10 * time.Second
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
	return c, nil
}

// pgTarget is a parsed Postgres DSN. Every error that may quote the DSN goes
// through redact, and messages name the server by where(), so that the
// password never reaches a log line.
type pgTarget struct {
	conf     *pgx.ConnConfig
	password string
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
	return pgTarget{conf: conf, password: conf.Password}, nil
}

// where names the server as host:port/db, without credentials.
func (p pgTarget) where() string {
	return net.JoinHostPort(p.conf.Host, strconv.Itoa(int(p.conf.Port))) + "/" + p.conf.Database
}

func (p pgTarget) redact(err error) error {
	if err == nil || p.password == "" || !strings.Contains(err.Error(), p.password) {
		return err
	}
	return redactedError{err: err, secret: p.password}
}

// redactedError masks a secret in the message of the error it wraps while
// keeping it available to errors.Is and errors.As.
type redactedError struct {
	err    error
	secret string
}

func (e redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.secret, "xxxxx")
}

func (e redactedError) Unwrap() error { return e.err }
