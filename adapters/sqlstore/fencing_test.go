package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports/storetest"
)

// admin connects to the test database as a separate session.
func admin(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// waitFor polls cond until it holds; a generous bound turns a hang into a
// failure, it asserts no timing.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func terminateLeader(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	var n int
	err := conn.QueryRow(t.Context(),
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
		sqlstore.LeaderApplicationName).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminate the leader's session: %d sessions, %v", n, err)
	}
}

// TestPostgresFencingAfterTerminate: the leader's session is killed while
// one of its writes is in flight. The standby's epoch increment waits for
// that write (so its recovery sees it), then every later write of the old
// leader is refused while the new leader's succeed.
func TestPostgresFencingAfterTerminate(t *testing.T) {
	ctx := t.Context()
	cfg := postgresConfig(t)
	old := migrated(t, cfg)
	leaseA, err := old.Leader().AcquireLease(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	defer leaseA.Release()
	old.Fence(leaseA.Epoch)
	inv := storetest.NewInvoice(t, 3)
	if _, err := old.RequestSettle(ctx, inv); err != nil {
		t.Fatalf("request settle: %v", err)
	}

	// An update of the old leader that has passed its fencing check and
	// not committed yet.
	inFlight := make(chan struct{})
	finish := make(chan struct{})
	updated := make(chan error, 1)
	go func() {
		_, err := old.Update(context.Background(), inv.Hash, func(i *domain.Invoice) error {
			close(inFlight)
			<-finish
			_, err := i.ApplyFinal(inv.HTLCs[2].Circuit, true, time.Now())
			return err
		})
		updated <- err
	}()
	<-inFlight

	adm := admin(t, cfg.DSN)
	terminateLeader(t, adm)
	select {
	case <-leaseA.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("lost not closed after the leader's session was terminated")
	}

	cur, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	type acquired struct {
		lease *sqlstore.Lease
		err   error
	}
	second := make(chan acquired, 1)
	go func() {
		l, err := cur.Leader().AcquireLease(ctx)
		second <- acquired{l, err}
	}()
	// The new leader holds the lock and waits for the in-flight write's
	// share lock on the leader row.
	waitFor(t, "the new leader to wait for the old leader's write", func() (bool, error) {
		var n int
		err := adm.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database()
			AND wait_event_type = 'Lock' AND wait_event <> 'advisory'`,
			sqlstore.LeaderApplicationName).Scan(&n)
		return n == 1, err
	})
	select {
	case r := <-second:
		t.Fatalf("new leader acquired while the old leader's write was in flight: %v", r.err)
	default:
	}
	close(finish)
	if err := <-updated; err != nil {
		t.Fatalf("in-flight update of the old leader: %v", err)
	}
	r := <-second
	if r.err != nil {
		t.Fatalf("acquire of the new leader: %v", r.err)
	}
	defer r.lease.Release()
	if r.lease.Epoch != leaseA.Epoch+1 {
		t.Fatalf("new epoch %d, want %d", r.lease.Epoch, leaseA.Epoch+1)
	}
	cur.Fence(r.lease.Epoch)
	// The new leader's recovery sees the write that was in flight.
	got, err := cur.Get(ctx, inv.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesContainSettled(got, inv.HTLCs[2].Circuit) {
		t.Fatal("the new leader does not see the old leader's last committed write")
	}
	assertFenced(t, old, cur, inv)
}

func slicesContainSettled(inv domain.Invoice, c domain.CircuitKey) bool {
	for _, h := range inv.HTLCs {
		if h.Circuit == c {
			return h.Status == domain.HTLCSettled
		}
	}
	return false
}

// TestPostgresLeaderWaitCancelled: a standby's blocking wait ends with its
// context and leaves no session behind holding or queueing for the lock.
func TestPostgresLeaderWaitCancelled(t *testing.T) {
	cfg := postgresConfig(t)
	st := migrated(t, cfg)
	lease, err := st.Leader().AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := st.Leader().AcquireLease(ctx)
		errc <- err
	}()
	adm := admin(t, cfg.DSN)
	waitFor(t, "the standby to wait on the lock", func() (bool, error) {
		var n int
		err := adm.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database() AND wait_event = 'advisory'`,
			sqlstore.LeaderApplicationName).Scan(&n)
		return n == 1, err
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: got %v, want context.Canceled", err)
	}
	waitFor(t, "the standby's session to end", func() (bool, error) {
		var n int
		err := adm.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database()`,
			sqlstore.LeaderApplicationName).Scan(&n)
		return n == 1, err
	})
	lease.Release()
	again, err := st.Leader().AcquireLease(t.Context())
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	again.Release()
}
