package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

// leaderLockKey is the Postgres advisory lock that elects the active lnmux.
// Advisory locks are scoped to one database, as invariant I5 is.
const leaderLockKey int64 = 0x6c6e6d7578_00 // "lnmux", 0

// LeaderApplicationName names the leader's connection in pg_stat_activity,
// so that an operator can see which host holds the lock.
const LeaderApplicationName = "lnmux-leader"

// Leader is the ports.Leader of a Store's database: a Postgres session
// advisory lock, or an flock on "<sqlite file>.lock".
type Leader struct {
	cfg Config
	pg  pgTarget
}

// Leader returns the leader lock of the store's database. Each Acquire uses
// its own connection (Postgres) or file descriptor (SQLite), independent of
// the store's pool, so it outlives Store.Close.
func (s *Store) Leader() *Leader { return &Leader{cfg: s.c.cfg, pg: s.c.pg} }

// Acquire implements ports.Leader. It retries every
// Config.LeaderPollInterval until the lock is free or ctx is done. On
// Postgres, lost closes when the connection holding the lock fails, found
// by a ping every poll interval; a file lock cannot be lost. Release does
// not close lost.
func (l *Leader) Acquire(ctx context.Context) (<-chan struct{}, func(), error) {
	if l.cfg.Driver == DriverPostgres {
		return l.acquireAdvisory(ctx)
	}
	return l.acquireFlock(ctx)
}

// wait sleeps one poll interval, or returns ctx's error.
func (l *Leader) wait(ctx context.Context) error {
	t := time.NewTimer(l.cfg.LeaderPollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("waiting for the leader lock: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

func (l *Leader) acquireAdvisory(ctx context.Context) (<-chan struct{}, func(), error) {
	conf := l.pg.conf.Copy()
	conf.RuntimeParams["application_name"] = LeaderApplicationName
	conn, err := pgx.ConnectConfig(ctx, conf)
	if err != nil {
		return nil, nil, fmt.Errorf("leader lock: cannot reach postgres at %s: %w", l.pg.where(), l.pg.redact(err))
	}
	closeConn := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}
	for {
		var ok bool
		err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", leaderLockKey).Scan(&ok)
		if err != nil {
			closeConn()
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("waiting for the leader lock: %w", ctx.Err())
			}
			return nil, nil, fmt.Errorf("leader lock (postgres at %s): %w", l.pg.where(), l.pg.redact(err))
		}
		if ok {
			break
		}
		if err := l.wait(ctx); err != nil {
			closeConn()
			return nil, nil, err
		}
	}

	lost := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	// The lock lives as long as the session: a connection that fails has
	// let it go, and another lnmux may take over.
	go func() {
		defer close(done)
		t := time.NewTicker(l.cfg.LeaderPollInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			pctx, cancel := context.WithTimeout(context.Background(), max(l.cfg.LeaderPollInterval, 5*time.Second))
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				close(lost)
				return
			}
		}
	}()
	release := sync.OnceFunc(func() {
		close(stop)
		<-done
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Closing the session releases the lock too; unlocking first
		// frees it at once even if a pooler keeps the server session.
		_, _ = conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", leaderLockKey)
		closeConn()
	})
	return lost, release, nil
}

func (l *Leader) acquireFlock(ctx context.Context) (<-chan struct{}, func(), error) {
	path := l.cfg.Path + ".lock"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("leader lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("leader lock %s: %w", path, err)
	}
	fd := int(f.Fd())
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			_ = f.Close()
			return nil, nil, fmt.Errorf("leader lock %s: %w", path, err)
		}
		if err := l.wait(ctx); err != nil {
			_ = f.Close()
			return nil, nil, err
		}
	}
	// The pid is for the operator only: the lock is the flock, which the
	// kernel drops when this process dies.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	release := sync.OnceFunc(func() {
		_ = unix.Flock(fd, unix.LOCK_UN)
		_ = f.Close()
	})
	// A lock held by this process's open file cannot be lost.
	return make(chan struct{}), release, nil
}
