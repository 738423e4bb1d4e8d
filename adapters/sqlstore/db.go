package sqlstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	pgdriver "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// conn is an open database, shared by Store and Migrator.
type conn struct {
	cfg Config
	db  *gorm.DB
	pg  pgTarget // set for DriverPostgres only
}

// connect opens the database. sqliteBusy is SQLite's busy_timeout, its wait
// for another connection's write lock, which no context can interrupt: the
// store keeps it short and retries (Store.retryBusy); zero means
// Config.LockTimeout.
func connect(ctx context.Context, cfg Config, sqliteBusy time.Duration) (*conn, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	gcfg := &gorm.Config{
		Logger: gormLogger(cfg),
		// Map unique violations of both drivers to gorm.ErrDuplicatedKey.
		TranslateError: true,
		// Every write is in an explicit transaction already.
		SkipDefaultTransaction: true,
	}
	if cfg.Driver == DriverSQLite {
		if sqliteBusy <= 0 {
			sqliteBusy = cfg.LockTimeout
		}
		return connectSQLite(ctx, cfg, gcfg, sqliteBusy)
	}
	return connectPostgres(ctx, cfg, gcfg)
}

func gormLogger(cfg Config) logger.Interface {
	if cfg.Logger == nil {
		return logger.Discard
	}
	return logger.NewSlogLogger(cfg.Logger, logger.Config{
		SlowThreshold:             200 * time.Millisecond,
		LogLevel:                  logger.Warn,
		IgnoreRecordNotFoundError: true,
		// Parameters hold preimages: never log them.
		ParameterizedQueries: true,
	})
}

func connectSQLite(ctx context.Context, cfg Config, gcfg *gorm.Config, busy time.Duration) (*conn, error) {
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create database directory: %w", err)
	}
	// The file holds preimages. SQLite gives its -wal and -shm files the
	// mode of the database file, so creating it private covers them too.
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	_ = f.Close()
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	// Other processes (lnmuxd migrate status next to a running lnmuxd) may
	// hold the write lock for a moment.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	// WAL's default NORMAL may lose the last commits on power loss; a lost
	// settle request after preimages went out breaks invariant I1.
	q.Add("_pragma", "synchronous(FULL)")
	// Write transactions take the write lock at BEGIN: a read-then-write
	// transaction (Update) can then never fail halfway with SQLITE_BUSY.
	q.Set("_txlock", "immediate")
	db, err := gorm.Open(sqliteDialector{dsn: cfg.Path + "?" + q.Encode()}, gcfg)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	// One connection is the single writer SQLite allows anyway, and it makes
	// every transaction of this process strictly serial.
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetConnMaxLifetime(0)
	sqlDB.SetConnMaxIdleTime(0)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	return &conn{cfg: cfg, db: db}, nil
}

func connectPostgres(ctx context.Context, cfg Config, gcfg *gorm.Config) (*conn, error) {
	pg, err := parsePostgresDSN(cfg.DSN)
	if err != nil {
		return nil, err
	}
	conf := pg.connConfig(map[string]string{
		"statement_timeout":                   ms(cfg.StatementTimeout),
		"lock_timeout":                        ms(cfg.LockTimeout),
		"idle_in_transaction_session_timeout": ms(idleInTransactionTimeout),
	}, nil)
	sqlDB := stdlib.OpenDB(*conf)
	sqlDB.SetMaxOpenConns(cfg.MaxOpenConns)
	sqlDB.SetMaxIdleConns(min(cfg.MaxOpenConns, 5))
	// Recycle connections so that a failover or a pgbouncer restart is
	// picked up without restarting lnmux.
	sqlDB.SetConnMaxLifetime(30 * time.Minute)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("cannot reach postgres at %s: %w", pg.where(), pg.redact(err))
	}
	db, err := gorm.Open(pgdriver.New(pgdriver.Config{Conn: sqlDB}), gcfg)
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("postgres at %s: %w", pg.where(), pg.redact(err))
	}
	return &conn{cfg: cfg, db: db, pg: pg}, nil
}

func (c *conn) dialect() string { return c.cfg.Driver }

// location names the database for messages, without credentials.
func (c *conn) location() string {
	if c.cfg.Driver == DriverPostgres {
		return "postgres at " + c.pg.where()
	}
	return "sqlite " + c.cfg.Path
}

// wrap adds where the error happened and masks the DSN password.
func (c *conn) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if c.cfg.Driver == DriverPostgres {
		err = c.pg.redact(err)
	}
	return fmt.Errorf("%s (%s): %w", op, c.location(), err)
}

func (c *conn) close() error {
	sqlDB, err := c.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}
