package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClaimEpoch takes the next fencing epoch for a leader elected outside the
// database (a Kubernetes Lease: adapters/kubelease) and fences this store
// with it (Fence). It does not take the database's leader lock (the
// advisory lock or the flock): the caller's election already decided who
// leads; the epoch is what keeps a leader that lost that election without
// noticing from writing (docs/store.md, "Leader fencing";
// docs/kubernetes.md).
//
// The increment is a write of the leader row, so it waits until every
// write transaction that read the previous epoch (FOR SHARE on Postgres,
// the write lock on SQLite) has committed or rolled back: once it returns,
// those writes are visible to this process's recovery and every later write
// of the previous leader is refused with domain.ErrNotLeader. The wait is
// bounded by ctx only, not by Config.LockTimeout: the previous leader's
// writes are bounded by their own timeouts.
//
// Calling it again (a re-election) fences this store with a newer epoch.
func (s *Store) ClaimEpoch(ctx context.Context) (uint64, error) {
	var epoch uint64
	var err error
	if s.c.dialect() == DriverPostgres {
		epoch, err = s.claimPostgres(ctx)
	} else {
		// The same increment the flock's holder makes, on a connection
		// of its own; its errors name the epoch already.
		epoch, err = s.Leader().bumpSQLiteEpoch(ctx)
	}
	if err != nil {
		return 0, err
	}
	s.Fence(epoch)
	return epoch, nil
}

// claimPostgres increments the epoch on a connection of its own, without
// the pool's statement and lock timeouts (see ClaimEpoch), in one
// autocommitted statement: its row lock waits for the FOR SHARE locks of
// the writes in flight.
func (s *Store) claimPostgres(ctx context.Context) (uint64, error) {
	conf := s.c.pg.connConfig(nil, map[string]string{"statement_timeout": "0", "lock_timeout": "0"})
	conf.RuntimeParams["application_name"] = LeaderApplicationName
	conn, err := pgx.ConnectConfig(ctx, conf)
	if err != nil {
		return 0, fmt.Errorf("take the fencing epoch: cannot reach postgres at %s: %w", s.c.pg.where(), s.c.pg.redact(err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	var epoch int64
	err = conn.QueryRow(ctx,
		"UPDATE leader SET epoch = epoch + 1, holder = $1, acquired_at = now() WHERE id = 1 RETURNING epoch",
		s.Leader().holder()).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		err = errors.New("no leader row")
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", err, cerr)
		}
		return 0, fmt.Errorf("take the fencing epoch (postgres at %s): %w", s.c.pg.where(), s.c.pg.redact(err))
	}
	return uint64(epoch), nil //nolint:gosec // epochs are positive bigints
}
