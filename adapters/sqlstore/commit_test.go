package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports/storetest"
)

// blockCommits makes every COMMIT that waits for synchronous replication
// (synchronous_commit = on in its session) hang, by naming a standby that
// does not exist, until the returned function resets it. Other sessions of
// the test cluster run with synchronous_commit = off and do not wait.
func blockCommits(t *testing.T, adm *pgx.Conn) (unblock func()) {
	t.Helper()
	var super bool
	if err := adm.QueryRow(t.Context(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		t.Fatal(err)
	}
	if !super {
		t.Skip("setting synchronous_standby_names needs a superuser; the throwaway cluster of pgtest has one")
	}
	exec := func(ctx context.Context, sql string) {
		if _, err := adm.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(t.Context(), "ALTER SYSTEM SET synchronous_standby_names = 'nonexistent'")
	exec(t.Context(), "SELECT pg_reload_conf()")
	done := false
	unblock = func() {
		if done {
			return
		}
		done = true
		exec(context.Background(), "ALTER SYSTEM RESET synchronous_standby_names")
		exec(context.Background(), "SELECT pg_reload_conf()")
	}
	t.Cleanup(unblock)
	return unblock
}

// settleUntilCommitHangs runs RequestSettle of new invoices until one hangs
// in its COMMIT (the reload may take effect after the first tries), and
// returns that invoice, the pid of its session and the channel of its result.
func settleUntilCommitHangs(t *testing.T, ctx context.Context, st *sqlstore.Store, adm *pgx.Conn) (domain.Invoice, int, <-chan error) {
	t.Helper()
	for {
		inv := storetest.NewInvoice(t, 2)
		errc := make(chan error, 1)
		go func() { _, err := st.RequestSettle(ctx, inv); errc <- err }()
		var pid int
		waitFor(t, "a COMMIT waiting for the missing standby", func() (bool, error) {
			select {
			case err := <-errc:
				if err != nil {
					return false, err
				}
				errc = nil // committed before the reload took effect: try again
				return true, nil
			default:
			}
			err := adm.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event = 'SyncRep'`).Scan(&pid)
			if errors.Is(err, pgx.ErrNoRows) {
				return false, nil
			}
			return err == nil, err
		})
		if errc != nil {
			return inv, pid, errc
		}
	}
}

// TestPostgresAmbiguousCommit: the COMMIT of a settle request is sent, then
// the connection dies while the server waits for a synchronous standby. The
// call must say the outcome is unknown, not that nothing was written: the
// row is there afterwards, and repeating the request returns it.
func TestPostgresAmbiguousCommit(t *testing.T) {
	ctx := t.Context()
	cfg := postgresConfig(t)
	cfg.DSN += "&synchronous_commit=on"
	st := migrated(t, cfg)
	adm := admin(t, cfg.DSN)
	unblock := blockCommits(t, adm)

	inv, pid, errc := settleUntilCommitHangs(t, context.Background(), st, adm)
	if _, err := adm.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("request settle whose connection died in COMMIT: got %v, want ErrOutcomeUnknown", err)
	}

	// A context that ends while COMMIT waits: either the server answered
	// the cancel (the commit is local, and the call may succeed) or the
	// call fails with an unknown outcome; never "certainly not written".
	cctx, cancel := context.WithCancel(context.Background())
	inv2, _, errc2 := settleUntilCommitHangs(t, cctx, st, adm)
	cancel()
	err = <-errc2
	t.Logf("request settle cancelled in COMMIT: %v", err)
	if err != nil && !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("request settle cancelled in COMMIT: got %v, want success or ErrOutcomeUnknown", err)
	}

	unblock()
	for _, want := range []domain.Invoice{inv, inv2} {
		other, err := sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := other.Get(ctx, want.Hash)
		_ = other.Close()
		if err != nil {
			t.Fatalf("invoice whose commit was ambiguous: %v", err)
		}
		if got.SetID != want.SetID || got.Status != domain.StatusSettleRequested {
			t.Fatalf("stored invoice %+v does not match the request", got)
		}
		again, err := st.RequestSettle(ctx, want)
		if err != nil || again.Sequence != got.Sequence {
			t.Fatalf("repeated request settle: sequence %d, err %v; want the stored invoice %d", again.Sequence, err, got.Sequence)
		}
	}
}

// TestPostgresAmbiguousCommitOfABatch: a batch of settle requests is in
// COMMIT when its connection dies. Every caller of the batch must learn
// that the outcome is unknown; every row is there afterwards, and repeating
// each request returns it.
func TestPostgresAmbiguousCommitOfABatch(t *testing.T) {
	ctx := t.Context()
	cfg := postgresConfig(t)
	cfg.DSN += "&synchronous_commit=on"
	st := migrated(t, cfg)
	adm := admin(t, cfg.DSN)
	unblock := blockCommits(t, adm)

	// A first request hangs in COMMIT; the batch behind it gathers.
	_, plugPID, plugErr := settleUntilCommitHangs(t, context.Background(), st, adm)
	const n = 6
	invs := make([]domain.Invoice, n)
	errs := make([]chan error, n)
	for i := range invs {
		invs[i] = storetest.NewInvoice(t, 1+i%3)
		errs[i] = make(chan error, 1)
		go func() { _, err := st.RequestSettle(context.Background(), invs[i]); errs[i] <- err }()
	}
	waitFor(t, "the batch to queue", func() (bool, error) { return sqlstore.QueuedSettles(st) == n, nil })
	batches := sqlstore.SettleBatches(st)
	if _, err := adm.Exec(ctx, "SELECT pg_terminate_backend($1)", plugPID); err != nil {
		t.Fatal(err)
	}
	if err := <-plugErr; !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("request settle whose connection died in COMMIT: got %v, want ErrOutcomeUnknown", err)
	}
	var pid int
	waitFor(t, "the batch's COMMIT to wait for the missing standby", func() (bool, error) {
		err := adm.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event = 'SyncRep'`).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	})
	if got := sqlstore.SettleBatches(st) - batches; got != 1 || sqlstore.QueuedSettles(st) != 0 {
		t.Fatalf("%d requests queued together: %d transactions, %d still queued; want 1 transaction holding all",
			n, got, sqlstore.QueuedSettles(st))
	}
	if _, err := adm.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	for i := range invs {
		if err := <-errs[i]; !errors.Is(err, domain.ErrOutcomeUnknown) {
			t.Fatalf("request %d of a batch whose connection died in COMMIT: got %v, want ErrOutcomeUnknown", i, err)
		}
	}

	unblock()
	for i, want := range invs {
		got, err := st.Get(ctx, want.Hash)
		if err != nil {
			t.Fatalf("invoice %d of the batch whose commit was ambiguous: %v", i, err)
		}
		again, err := st.RequestSettle(ctx, want)
		if err != nil || again.Sequence != got.Sequence || again.SetID != want.SetID {
			t.Fatalf("repeated request settle %d: sequence %d, err %v; want the stored invoice %d", i, again.Sequence, err, got.Sequence)
		}
	}
}
