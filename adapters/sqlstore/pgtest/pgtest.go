// Package pgtest gives tests a throwaway Postgres server: one cluster per
// test binary, initdb'd into a temporary directory on a free loopback port,
// with a fresh database per test.
//
// With LNMUX_TEST_POSTGRES_DSN set, databases are created on that server
// instead (its role needs CREATEDB) and dropped after each test.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable that points the tests at an existing server.
const EnvDSN = "LNMUX_TEST_POSTGRES_DSN"

// Hint tells how to make Postgres available to the tests.
const Hint = "install Debian postgresql (apt-get install -y postgresql) or set " + EnvDSN

var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// Main runs the tests of a package and stops the shared cluster afterwards,
// if a test started it. Use it as os.Exit(pgtest.Main(m)) in TestMain.
func Main(m interface{ Run() int }) int {
	code := m.Run()
	if shared.cluster != nil {
		if err := shared.cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop postgres: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// NewDatabase creates an empty database on the shared server, starting the
// server on first use, and returns its DSN. Without Postgres it fails the
// test with Hint: it never skips.
func NewDatabase(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() { shared.cluster, shared.err = Start() })
	if shared.err != nil {
		t.Fatalf("postgres for tests: %v", shared.err)
	}
	dsn, err := shared.cluster.CreateDatabase(context.Background())
	if err != nil {
		t.Fatalf("postgres for tests: %v", err)
	}
	if shared.cluster.External {
		t.Cleanup(func() {
			if err := shared.cluster.dropDatabase(dsn); err != nil {
				t.Errorf("postgres for tests: %v", err)
			}
		})
	}
	return dsn
}

// Cluster is a Postgres server for tests.
type Cluster struct {
	// External is true when the server comes from EnvDSN: it is not ours to
	// stop.
	External bool
	admin    *url.URL // DSN of the maintenance database
	dir      string
	pgCtl    string
	asUser   []string // prefix that runs a command as the postgres user
}

// Start uses the server of EnvDSN, or initdb's and starts a new one.
func Start() (*Cluster, error) { return StartWith(Options{}) }

// Options shape a cluster that StartWith starts.
type Options struct {
	// Durable keeps fsync, full_page_writes and synchronous_commit on, as
	// in production: for benchmarks of commits. Tests leave it off.
	Durable bool
	// ListenAddresses are addresses to listen on besides 127.0.0.1 (the
	// partition drill's network namespaces reach the server on them);
	// clients on their subnets are trusted (pg_hba "samenet").
	ListenAddresses []string
}

// StartWith is Start with options; with EnvDSN set they are ignored.
func StartWith(o Options) (*Cluster, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("%s must be a postgres:// URL", EnvDSN)
		}
		return &Cluster{External: true, admin: u}, nil
	}
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{pgCtl: filepath.Join(bin, "pg_ctl")}
	if err := c.init(bin, o); err != nil {
		if c.dir != "" {
			_ = os.RemoveAll(c.dir)
		}
		return nil, err
	}
	return c, nil
}

// findBinDir picks the newest /usr/lib/postgresql/N/bin (Debian), else the
// directory of initdb on PATH.
func findBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) > 0 {
		major := func(d string) int {
			n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
			return n
		}
		sort.Slice(found, func(i, j int) bool { return major(found[i]) > major(found[j]) })
		return found[0], nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no initdb found under /usr/lib/postgresql/*/bin or on PATH: " + Hint)
}

func (c *Cluster) init(bin string, o Options) error {
	dir, err := os.MkdirTemp("", "lnmux-pgtest-")
	if err != nil {
		return err
	}
	c.dir = dir
	// initdb and postgres refuse to run as root.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return errors.New("running as root needs a postgres user to run the server as: " + Hint)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return errors.New("running as root needs runuser (util-linux) to start postgres as the postgres user")
		}
		c.asUser = []string{runuser, "-u", "postgres", "--"}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	if len(o.ListenAddresses) > 0 {
		hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = hba.WriteString("host all all samenet trust\n")
		if cerr := hba.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	// A port picked by the kernel can be taken again before postgres binds
	// it: retry a few times.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return err
		}
		// Durability is pointless for a throwaway cluster and slows tests.
		durability := "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		if o.Durable {
			durability = "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
		}
		listen := strings.Join(append([]string{"127.0.0.1"}, o.ListenAddresses...), ",")
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=%s %s -c max_connections=200", port, dir, listen, durability)
		out, err := c.run(c.pgCtl, "-D", data, "-l", filepath.Join(dir, "postgres.log"), "-w", "-t", "60", "-o", opts, "start")
		if err == nil {
			c.admin = &url.URL{Scheme: "postgres", User: url.User("postgres"),
				Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres",
				RawQuery: "sslmode=disable"}
			c.startWatchdog(data)
			return nil
		}
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		lastErr = fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, lastLines(string(log), 20))
	}
	return lastErr
}

// startWatchdog stops the cluster and removes its directory once this
// process is gone, for when it dies before Stop (a test timeout panics,
// skipping TestMain's cleanup). It runs in its own process group so that a
// ^C to go test does not kill it first, and without our stdout, which go
// test waits on.
func (c *Cluster) startWatchdog(data string) {
	stop := strings.Join(append(append([]string(nil), c.asUser...), c.pgCtl, "-D", data, "-m", "immediate", "stop"), " ")
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; %s >/dev/null 2>&1; rm -rf %s",
		os.Getpid(), stop, c.dir)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }()
	}
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	argv := append(append([]string(nil), c.asUser...), name)
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = os.TempDir()
	return cmd.CombinedOutput()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// CreateDatabase creates a database with a random name and returns its DSN.
func (c *Cluster) CreateDatabase(ctx context.Context) (string, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "lnmux_test_" + hex.EncodeToString(b[:])
	if err := c.admins(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	u := *c.admin
	u.Path = "/" + name
	return u.String(), nil
}

func (c *Cluster) dropDatabase(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.admins(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func (c *Cluster) admins(ctx context.Context, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.admin.String())
	if err != nil {
		// pgx's message names user, host and database, never the password.
		return fmt.Errorf("connect to %s: %w", c.admin.Redacted(), err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

// Stop stops a cluster started by Start and removes its directory. It does
// nothing for an external server.
func (c *Cluster) Stop() error {
	if c.External {
		return nil
	}
	out, err := c.run(c.pgCtl, "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	if rmErr := os.RemoveAll(c.dir); err == nil && rmErr != nil {
		return rmErr
	}
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// Restart stops the server and starts it again on the same port, as an
// operator's restart or a fail-over would: every session ends (so an
// advisory lock is released) and clients see connection errors until it is
// back. It uses pg_ctl's fast mode, which writes every committed
// transaction out first: the throwaway cluster runs with fsync and
// synchronous_commit off, so an immediate stop could lose commits that a
// real server keeps, and a test would report a loss that is not lnmux's.
// It fails for an external server, which is not ours to restart.
func (c *Cluster) Restart() error {
	if c.External {
		return errors.New("pgtest: cannot restart the external server of " + EnvDSN)
	}
	data := filepath.Join(c.dir, "data")
	// Without -o, pg_ctl restart reuses the options of the last start
	// (postmaster.opts): same port and settings.
	out, err := c.run(c.pgCtl, "-D", data, "-l", filepath.Join(c.dir, "postgres.log"), "-m", "fast", "-w", "-t", "60", "restart")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
		return fmt.Errorf("pg_ctl restart: %w: %s\n%s", err, out, lastLines(string(log), 20))
	}
	return nil
}
