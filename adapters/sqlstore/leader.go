package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"
)

// leaderLockKey is the Postgres advisory lock that elects the active lnmux.
// Advisory locks are scoped to one database, as invariant I5 is.
const leaderLockKey int64 = 0x6c6e6d7578_00 // "lnmux", 0

// LeaderApplicationName names the leader's connection in pg_stat_activity,
// so that an operator can see which host holds the lock.
const LeaderApplicationName = "lnmux-leader"

// Leader is the ports.Leader of a Store's database: a Postgres session
// advisory lock, or an flock on "<sqlite file>.lock", plus the fencing
// epoch of the leader table (docs/store.md, "Leader fencing").
type Leader struct {
	cfg Config
	pg  pgTarget
	// id names this instance in the leader row (As); host and pid follow.
	id string
}

// Leader returns the leader lock of the store's database. Each Acquire uses
// its own connection (Postgres) or file descriptor (SQLite), independent of
// the store's pool, so it outlives Store.Close.
func (s *Store) Leader() *Leader { return &Leader{cfg: s.c.cfg, pg: s.c.pg} }

// As returns a copy of l that names itself id in the leader row, so that a
// standby can tell which instance leads (Holder).
func (l *Leader) As(id string) *Leader {
	c := *l
	c.id = id
	return &c
}

// Lease is leadership held by this process.
type Lease struct {
	// Epoch is the fencing token of this leadership: hand it to
	// Store.Fence before the store writes anything.
	Epoch   uint64
	lost    <-chan struct{}
	release func()
	// SessionBound is the shortest time the Postgres server can take to
	// end this lease's session after the last packet it received from
	// this process (sessionBound); zero when the session cannot be cut off
	// silently (a Unix socket, SQLite) or the bound is unknown.
	SessionBound time.Duration
	// OverTCP is true when the lock's Postgres session runs over TCP:
	// with a zero SessionBound the server then applies no keepalive or
	// user timeout lnmux can see, and may keep a cut-off leader's lock for
	// a long time.
	OverTCP bool
	// freedBy, set once lost is closed, is when the server has most likely
	// ended the session and a standby got the lock (FreedBy).
	freedBy atomic.Int64
}

// Lost closes when the lock is lost or may soon be: the Postgres session
// holding it ended (a ping failed), or no ping has succeeded for two thirds
// of SessionBound, so that the holder stops acting as leader before the
// server can end a session it no longer hears from (docs/store.md, "The
// leader's own deadline"). A file lock cannot be lost. Release does not
// close it.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// FreedBy is, once Lost has closed, the time by which the server has most
// likely ended the session and granted the lock to a waiting standby: the
// last successful ping's start plus SessionBound plus one ping interval.
// A deposed leader keeps its interceptor streams open (silent, so that lnd
// holds new HTLCs) until then, instead of closing them while no standby
// can register yet. It is the zero time when the session is known to be
// gone already or the bound is unknown.
func (l *Lease) FreedBy() time.Time {
	if us := l.freedBy.Load(); us != 0 {
		return time.UnixMicro(us)
	}
	return time.Time{}
}

// Release gives the lock up. It is idempotent.
func (l *Lease) Release() { l.release() }

// Acquire implements ports.Leader with AcquireLease, dropping the epoch.
func (l *Leader) Acquire(ctx context.Context) (<-chan struct{}, func(), error) {
	lease, err := l.AcquireLease(ctx)
	if err != nil {
		return nil, nil, err
	}
	return lease.Lost(), lease.Release, nil
}

// AcquireLease blocks until this process holds the lock or ctx is done,
// then increments the fencing epoch while holding it. The increment waits
// for every write of the previous leader still in flight, and any write of
// it that comes later is refused with domain.ErrNotLeader by a fenced
// store.
//
// On Postgres the wait is a blocking pg_advisory_lock on a dedicated
// connection, so it ends as soon as the holder's session does; the lock is
// lost when that connection fails, found by a ping every
// Config.LeaderPollInterval (at most a sixth of Lease.SessionBound) and by
// TCP keepalives, and given up on this process's own timer when no ping
// has succeeded for two thirds of Lease.SessionBound, before the server
// can end a session cut off from it (session.go). On SQLite it is a
// blocking flock, which the kernel grants the moment the holder lets go.
func (l *Leader) AcquireLease(ctx context.Context) (*Lease, error) {
	if l.cfg.Driver == DriverPostgres {
		return l.acquireAdvisory(ctx)
	}
	return l.acquireFlock(ctx)
}

// holder names this process in the leader row, for the operator and the
// standbys: "<id> (<host> pid <pid>)", or "<host> pid <pid>" without an id.
func (l *Leader) holder() string {
	host, _ := os.Hostname()
	h := host + " pid " + strconv.Itoa(os.Getpid())
	if l.id != "" {
		h = l.id + " (" + h + ")"
	}
	return h
}

// clientCheckInterval has the server look, while this session waits for
// the lock, whether its client is still there (Postgres ≥ 14): a standby
// that vanished while waiting must not be granted the lock and hold it.
const clientCheckInterval = "5s"

func (l *Leader) acquireAdvisory(ctx context.Context) (*Lease, error) {
	// This session waits for the lock as long as it takes; the epoch
	// increment waits for the old leader's writes, which their own
	// timeouts bound. A DSN's statement_timeout must not cut either short.
	conf := l.pg.connConfig(nil, map[string]string{"statement_timeout": "0", "lock_timeout": "0"})
	conf.RuntimeParams["application_name"] = LeaderApplicationName
	conn, err := pgx.ConnectConfig(ctx, conf)
	if err != nil {
		return nil, fmt.Errorf("leader lock: cannot reach postgres at %s: %w", l.pg.where(), l.pg.redact(err))
	}
	closeConn := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}
	fail := func(err error) (*Lease, error) {
		// Closing the session frees the lock if it was granted.
		closeConn()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for the leader lock: %w", ctx.Err())
		}
		return nil, fmt.Errorf("leader lock (postgres at %s): %w", l.pg.where(), l.pg.redact(err))
	}
	if _, err := conn.Exec(ctx, "SET client_connection_check_interval = '"+clientCheckInterval+"'"); err != nil {
		var pgErr *pgconn.PgError
		// 42704: an older server without the setting.
		if !errors.As(err, &pgErr) || pgErr.Code != "42704" {
			return fail(err)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", leaderLockKey); err != nil {
		return fail(err)
	}
	var epoch int64
	err = conn.QueryRow(ctx,
		"UPDATE leader SET epoch = epoch + 1, holder = $1, acquired_at = now() WHERE id = 1 RETURNING epoch",
		l.holder()).Scan(&epoch)
	if err != nil {
		return fail(fmt.Errorf("take the fencing epoch: %w", err))
	}

	since := time.Now()
	bound, overTCP, err := sessionBound(ctx, conn)
	if err != nil {
		return fail(fmt.Errorf("read the session's TCP settings: %w", err))
	}
	lease := &Lease{Epoch: uint64(epoch), SessionBound: bound, OverTCP: overTCP} //nolint:gosec // sequence numbers and epochs are positive bigints
	lost := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	watch := newSessionWatch(bound, l.cfg.LeaderPollInterval)
	// The lock lives as long as the session: a connection that fails has
	// let it go, and another lnmux may take over. A session the server no
	// longer hears from ends after SessionBound at the earliest: stop
	// leading before that.
	go func() { //nolint:gosec // the lease outlives the acquiring call's context: it ends on release or loss
		defer close(done)
		watch.run(since, stop, lost, &lease.freedBy, func(timeout time.Duration) error {
			pctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return conn.Ping(pctx)
		})
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
	lease.lost, lease.release = lost, release
	return lease, nil
}

func (l *Leader) acquireFlock(ctx context.Context) (*Lease, error) {
	path := l.cfg.Path + ".lock"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("leader lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // the operator configures the lock file
	if err != nil {
		return nil, fmt.Errorf("leader lock %s: %w", path, err)
	}
	fd := int(f.Fd())
	if err := waitFlock(ctx, f); err != nil {
		return nil, err
	}
	release := sync.OnceFunc(func() {
		_ = unix.Flock(fd, unix.LOCK_UN)
		_ = f.Close()
	})
	epoch, err := l.bumpSQLiteEpoch(ctx)
	if err != nil {
		release()
		return nil, err
	}
	// The pid is for the operator only: the lock is the flock, which the
	// kernel drops when this process dies.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	// A lock held by this process's open file cannot be lost.
	return &Lease{Epoch: epoch, lost: make(chan struct{}), release: release}, nil
}

// waitFlock blocks until this process holds the exclusive flock of f, or
// ctx is done. The kernel wakes the waiter the moment the holder unlocks or
// dies, so there is no polling. A blocking flock cannot be interrupted: on
// ctx's end it is left to finish on its own goroutine, which then unlocks
// and closes f. Otherwise the caller owns f, locked.
func waitFlock(ctx context.Context, f *os.File) error {
	fd := int(f.Fd())
	got := make(chan error, 1)
	go func() {
		for {
			err := unix.Flock(fd, unix.LOCK_EX)
			if !errors.Is(err, unix.EINTR) {
				got <- err
				return
			}
		}
	}()
	select {
	case err := <-got:
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("leader lock %s: %w", f.Name(), err)
		}
		return nil
	case <-ctx.Done():
		go func() {
			if err := <-got; err == nil {
				_ = unix.Flock(fd, unix.LOCK_UN)
			}
			_ = f.Close()
		}()
		return fmt.Errorf("waiting for the leader lock: %w", ctx.Err())
	}
}

// LeaderRow is the leader table's one row: the fencing epoch of the latest
// leadership, who took it (Leader.As names the instance) and whether that
// leader has started intercepting (MarkIntercepting).
type LeaderRow struct {
	Epoch        uint64
	Holder       string
	Intercepting bool
}

// interceptingMark ends the holder of a leader that intercepts.
const interceptingMark = " [intercepting]"

// LeaderRow reads the leader row, for a standby to say who leads and for a
// leader handing over to see its successor take over.
func (s *Store) LeaderRow(ctx context.Context) (LeaderRow, error) {
	var row struct {
		Epoch  int64
		Holder string
	}
	err := s.c.db.WithContext(ctx).Raw("SELECT epoch, holder FROM leader WHERE id = 1").Scan(&row).Error
	if err != nil {
		return LeaderRow{}, s.c.wrap("read the leader row", err)
	}
	holder, marked := strings.CutSuffix(row.Holder, interceptingMark)
	epoch := uint64(row.Epoch) //nolint:gosec // epochs are positive bigints
	return LeaderRow{Epoch: epoch, Holder: holder, Intercepting: marked}, nil
}

// MarkIntercepting records in the leader row of epoch that its leader
// starts its interceptors: a leader handing over closes its own streams
// only then, since lnd allows one interceptor per node and refuses new
// HTLCs while none is registered (docs/high-availability.md).
func (s *Store) MarkIntercepting(ctx context.Context, epoch uint64) error {
	err := s.c.db.WithContext(ctx).Exec(
		"UPDATE leader SET holder = holder || ? WHERE id = 1 AND epoch = ? AND holder NOT LIKE ?",
		interceptingMark, int64(epoch), "%"+interceptingMark).Error //nolint:gosec // epochs are positive bigints
	return s.c.wrap("mark the leader intercepting", err)
}

// StandbyWaiting reports whether another session waits for the Postgres
// leader lock: a standby that is ready to take over the moment the lock is
// released. On SQLite it cannot tell and reports false.
func (s *Store) StandbyWaiting(ctx context.Context) (bool, error) {
	if s.c.cfg.Driver != DriverPostgres {
		return false, nil
	}
	var waiting bool
	// pg_advisory_lock(bigint) files the key's high half in classid, the
	// low half in objid, with objsubid 1.
	err := s.c.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND ((classid::bigint << 32) | objid::bigint) = ?)`, leaderLockKey).Scan(&waiting).Error
	if err != nil {
		return false, s.c.wrap("look for a standby", err)
	}
	return waiting, nil
}

// bumpSQLiteEpoch increments the epoch on a connection of its own. Its
// write transaction waits for any other writer of the file to finish.
func (l *Leader) bumpSQLiteEpoch(ctx context.Context) (uint64, error) {
	c, err := connect(ctx, l.cfg, 0)
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.close() }()
	var epoch int64
	err = c.db.WithContext(ctx).Raw(
		"UPDATE leader SET epoch = epoch + 1, holder = ?, acquired_at = ? WHERE id = 1 RETURNING epoch",
		l.holder(), dbTime(time.Now())).Scan(&epoch).Error
	if err == nil && epoch == 0 {
		err = errors.New("no leader row")
	}
	if err != nil {
		return 0, c.wrap("take the fencing epoch", err)
	}
	return uint64(epoch), nil //nolint:gosec // sequence numbers and epochs are positive bigints
}
