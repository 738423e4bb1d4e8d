package sqlstore_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func sqliteConfig(t *testing.T) sqlstore.Config {
	return sqlstore.Config{
		Driver:             sqlstore.DriverSQLite,
		Path:               filepath.Join(t.TempDir(), "sub", "lnmux.db"),
		LeaderPollInterval: 20 * time.Millisecond,
	}
}

func postgresConfig(t *testing.T) sqlstore.Config {
	return sqlstore.Config{
		Driver:             sqlstore.DriverPostgres,
		DSN:                pgtest.NewDatabase(t),
		LeaderPollInterval: 20 * time.Millisecond,
	}
}

func TestSQLite(t *testing.T) { runSuite(t, sqliteConfig) }

func TestPostgres(t *testing.T) { runSuite(t, postgresConfig) }

func migrated(t *testing.T, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	for _, cmd := range []string{"init", "up"} {
		if _, err := sqlstore.Migrate(t.Context(), cfg, cmd); err != nil {
			t.Fatalf("migrate %s: %v", cmd, err)
		}
	}
	st, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestPostgresUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close() // nothing listens there now

	const password = "s3cret-Pa55word"
	for _, dsn := range []string{
		"postgres://lnmux:" + password + "@127.0.0.1:" + strconv.Itoa(port) + "/lnmuxdb?sslmode=disable&connect_timeout=5",
		"host=127.0.0.1 port=" + strconv.Itoa(port) + " user=lnmux password=" + password + " dbname=lnmuxdb sslmode=disable connect_timeout=5",
	} {
		cfg := sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn}
		_, err := sqlstore.Open(t.Context(), cfg)
		if err == nil {
			t.Fatal("open of an unreachable server succeeded")
		}
		want := "cannot reach postgres at 127.0.0.1:" + strconv.Itoa(port) + "/lnmuxdb"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		if strings.Contains(err.Error(), password) {
			t.Error("error message contains the password")
		}
		if _, err := sqlstore.Migrate(t.Context(), cfg, "status"); err == nil || strings.Contains(err.Error(), password) {
			t.Errorf("migrate status: want an error without the password")
		}
	}

	_, err = sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: "postgres://u:" + password + "@[bad"})
	if err == nil || strings.Contains(err.Error(), password) {
		t.Error("bad DSN: want an error without the password")
	}
}

func TestPostgresErrorHidesPassword(t *testing.T) {
	cfg, err := pgx.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	// The server rejects this login (no such role, or a wrong password on a
	// server that checks them); the error must name where, never the secret.
	const password = "Secr3t-of-the-role"
	bad := "postgres://lnmux_nobody:" + password + "@" + net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) +
		"/no_such_db?sslmode=disable"
	_, err = sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: bad})
	if err == nil {
		t.Fatal("open with an unknown role succeeded")
	}
	if strings.Contains(err.Error(), password) {
		t.Error("error message contains the password")
	}
	if !strings.Contains(err.Error(), "/no_such_db") {
		t.Errorf("error %q does not name the database", err)
	}
}

func TestPostgresLeaderLost(t *testing.T) {
	cfg := postgresConfig(t)
	st := migrated(t, cfg)
	lost, release, err := st.Leader().Acquire(t.Context())
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	defer release()

	conn, err := pgx.Connect(t.Context(), cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(t.Context(),
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
		sqlstore.LeaderApplicationName).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminate the leader's session: %d sessions, %v", n, err)
	}
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("lost not closed after the leader's connection died")
	}
	// Another lnmux can take over.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, rel, err := st.Leader().Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire after loss: %v", err)
	}
	rel()
}

func TestSQLiteLeaderSeparateStores(t *testing.T) {
	// Two processes open the same file: each has its own Store.
	cfg := sqliteConfig(t)
	a := migrated(t, cfg)
	b, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, release, err := a.Leader().Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := b.Leader().Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second store acquired the lock: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []sqlstore.Config{
		{Driver: "mysql"},
		{Driver: sqlstore.DriverSQLite},
		{Driver: sqlstore.DriverPostgres},
	} {
		if _, err := sqlstore.Open(t.Context(), cfg); err == nil {
			t.Errorf("open %+v: want an error", cfg)
		}
	}
}
