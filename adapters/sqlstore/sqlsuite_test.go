package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
	"github.com/lnmux/lnmux/ports/storetest"
)

// runSuite runs the contract of the ports (ports/storetest) and the
// behaviour only the SQL store has (migrations, fencing, lock timeouts) on
// one driver. newConfig must return the configuration of a new, empty
// database each time it is called.
func runSuite(t *testing.T, newConfig func(t *testing.T) sqlstore.Config) {
	s := sqlSuite{newConfig: newConfig}
	t.Run("Migrate", s.testMigrate)
	storetest.RunInvoiceStore(t, func(t *testing.T) ports.InvoiceStore {
		st, _ := s.open(t)
		return st
	})
	storetest.RunLeader(t, func(t *testing.T) ports.Leader {
		st, _ := s.open(t)
		return st.Leader()
	})
	storetest.RunMacaroonRootKeyStore(t, func(t *testing.T) ports.MacaroonRootKeyStore {
		st, _ := s.open(t)
		return st
	})
	t.Run("Fencing", s.testFencing)
	t.Run("LockedRowDeadline", s.testLockedRowDeadline)
	t.Run("LockedRowTimeout", s.testLockedRowTimeout)
}

type sqlSuite struct {
	newConfig func(t *testing.T) sqlstore.Config
}

// open returns a store on a new, migrated database.
func (s sqlSuite) open(t *testing.T) (*sqlstore.Store, sqlstore.Config) {
	t.Helper()
	ctx := t.Context()
	cfg := s.newConfig(t)
	for _, cmd := range []string{"init", "up"} {
		if _, err := sqlstore.Migrate(ctx, cfg, cmd); err != nil {
			t.Fatalf("migrate %s: %v", cmd, err)
		}
	}
	st, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st, cfg
}

func mustGet(t *testing.T, st *sqlstore.Store, hash domain.PaymentHash) domain.Invoice {
	t.Helper()
	inv, err := st.Get(t.Context(), hash)
	if err != nil {
		t.Fatalf("get %s: %v", hash, err)
	}
	return inv
}

func (s sqlSuite) testMigrate(t *testing.T) {
	ctx := t.Context()
	cfg := s.newConfig(t)

	if _, err := sqlstore.Open(ctx, cfg); !errors.Is(err, sqlstore.ErrSchemaNotInitialized) ||
		!strings.Contains(err.Error(), "lnmuxd migrate init") {
		t.Fatalf("open before init: got %v, want ErrSchemaNotInitialized naming `lnmuxd migrate init`", err)
	}
	m, err := sqlstore.OpenMigrator(ctx, cfg)
	if err != nil {
		t.Fatalf("open migrator: %v", err)
	}
	defer func() { _ = m.Close() }()
	if _, err := m.Status(ctx); !errors.Is(err, sqlstore.ErrSchemaNotInitialized) {
		t.Fatalf("status before init: got %v, want ErrSchemaNotInitialized", err)
	}
	if _, err := m.Up(ctx); !errors.Is(err, sqlstore.ErrSchemaNotInitialized) {
		t.Fatalf("up before init: got %v, want ErrSchemaNotInitialized", err)
	}
	for i := range 2 {
		if err := m.Init(ctx); err != nil {
			t.Fatalf("init #%d: %v", i+1, err)
		}
	}
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(st) == 0 {
		t.Fatal("status lists no migration")
	}
	for _, ms := range st {
		if ms.Applied || !ms.AppliedAt.IsZero() {
			t.Fatalf("after init, %v is applied", ms)
		}
	}
	if _, err := sqlstore.Open(ctx, cfg); !errors.Is(err, sqlstore.ErrSchemaOutdated) ||
		!strings.Contains(err.Error(), "lnmuxd migrate up") {
		t.Fatalf("open before up: got %v, want ErrSchemaOutdated naming `lnmuxd migrate up`", err)
	}

	applied, err := m.Up(ctx)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	if len(applied) != len(st) {
		t.Fatalf("up applied %d migrations, want %d", len(applied), len(st))
	}
	again, err := m.Up(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second up: applied %v, err %v; want nothing", again, err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatalf("init after up: %v", err)
	}
	st, err = m.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for i, ms := range st {
		if !ms.Applied || ms.AppliedAt.IsZero() || !strings.Contains(ms.String(), "applied") {
			t.Fatalf("after up, %v is not applied", ms)
		}
		if i > 0 && ms.Version <= st[i-1].Version {
			t.Fatalf("status not in version order: %v", st)
		}
	}
	if _, err := sqlstore.Migrate(ctx, cfg, "down"); err == nil {
		t.Fatal("migrate down: want an error for an unknown command")
	}

	store, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open after up: %v", err)
	}
	defer func() { _ = store.Close() }()
	if err := store.CheckSchema(ctx); err != nil {
		t.Fatalf("check schema: %v", err)
	}
}

// testFencing: once another process took the leader lock, the writes of the
// previous leader's store are refused, its reads still work, and the new
// leader's writes succeed.
func (s sqlSuite) testFencing(t *testing.T) {
	ctx := t.Context()
	old, cfg := s.open(t)
	leaseA, err := old.Leader().AcquireLease(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	old.Fence(leaseA.Epoch)
	inv := storetest.NewInvoice(t, 2)
	if _, err := old.RequestSettle(ctx, inv); err != nil {
		t.Fatalf("request settle as leader: %v", err)
	}
	leaseA.Release()

	cur := openAgain(t, cfg)
	leaseB, err := cur.Leader().AcquireLease(ctx)
	if err != nil {
		t.Fatalf("second acquire: %v", err)
	}
	defer leaseB.Release()
	if leaseB.Epoch <= leaseA.Epoch {
		t.Fatalf("epoch %d after %d: not increasing", leaseB.Epoch, leaseA.Epoch)
	}
	cur.Fence(leaseB.Epoch)
	assertFenced(t, old, cur, inv)
}

// assertFenced checks that old, the store of a leader that lost its lock,
// cannot write any more while cur, the new leader's, can. stored is an
// invoice stored already, with at least two pending HTLCs.
func assertFenced(t *testing.T, old, cur *sqlstore.Store, stored domain.Invoice) {
	t.Helper()
	ctx := t.Context()
	fresh := storetest.NewInvoice(t, 1)
	if _, err := old.RequestSettle(ctx, fresh); !errors.Is(err, domain.ErrNotLeader) {
		t.Fatalf("request settle of the old leader: got %v, want ErrNotLeader", err)
	}
	if _, err := cur.Get(ctx, fresh.Hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
		t.Fatalf("refused request settle left a row: %v", err)
	}
	if _, err := old.Update(ctx, stored.Hash, storetest.Final(stored.HTLCs[0].Circuit, true, storetest.T0)); !errors.Is(err, domain.ErrNotLeader) {
		t.Fatalf("update of the old leader: got %v, want ErrNotLeader", err)
	}
	if got := mustGet(t, old, stored.Hash); got.HTLCs[0].Status != domain.HTLCPending && got.HTLCs[1].Status != domain.HTLCPending {
		t.Fatal("refused update changed the invoice")
	}
	if _, err := cur.RequestSettle(ctx, fresh); err != nil {
		t.Fatalf("request settle of the new leader: %v", err)
	}
	if _, err := cur.Update(ctx, stored.Hash, storetest.Final(stored.HTLCs[0].Circuit, true, storetest.T0)); err != nil {
		t.Fatalf("update of the new leader: %v", err)
	}
	storetest.AssertCancelFenced(t, old, cur)
}

// openAgain opens a second store on the database of cfg, as another lnmux
// process would.
func openAgain(t *testing.T, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// holdRow runs an Update of hash on st that keeps its transaction, and so
// the invoice's row lock (Postgres) or the write lock (SQLite), until the
// returned function is called.
func holdRow(t *testing.T, st *sqlstore.Store, hash domain.PaymentHash) (release func()) {
	t.Helper()
	locked := make(chan struct{})
	unlock := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := st.Update(context.Background(), hash, func(*domain.Invoice) error {
			close(locked)
			<-unlock
			return nil
		})
		done <- err
	}()
	select {
	case <-locked:
	case err := <-done:
		t.Fatalf("update holding the lock: %v", err)
	}
	return sync.OnceFunc(func() {
		close(unlock)
		if err := <-done; err != nil {
			t.Errorf("update holding the lock: %v", err)
		}
	})
}

// testLockedRowDeadline: a call blocked behind another transaction's lock
// returns when its context ends, with the context's error.
func (s sqlSuite) testLockedRowDeadline(t *testing.T) {
	st, cfg := s.open(t)
	inv := storetest.NewInvoice(t, 1)
	if _, err := st.RequestSettle(t.Context(), inv); err != nil {
		t.Fatalf("request settle: %v", err)
	}
	other := openAgain(t, cfg)
	release := holdRow(t, other, inv.Hash)
	defer release()

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := st.Update(ctx, inv.Hash, storetest.Final(inv.HTLCs[0].Circuit, true, storetest.T0))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("update behind a lock with a deadline: got %v, want context.DeadlineExceeded", err)
	}
	if errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("update that never reached COMMIT: %v says the outcome is unknown", err)
	}
	release()
	// The store is still usable, and the refused update changed nothing.
	if got := mustGet(t, st, inv.Hash); got.HTLCs[0].Status != domain.HTLCPending {
		t.Fatalf("htlc is %s after a failed update", got.HTLCs[0].Status)
	}
}

// testLockedRowTimeout: without a context deadline, Config.LockTimeout
// still ends the wait.
func (s sqlSuite) testLockedRowTimeout(t *testing.T) {
	st, cfg := s.open(t)
	inv := storetest.NewInvoice(t, 1)
	if _, err := st.RequestSettle(t.Context(), inv); err != nil {
		t.Fatalf("request settle: %v", err)
	}
	release := holdRow(t, st, inv.Hash)
	defer release()
	cfg.LockTimeout = 200 * time.Millisecond
	short := openAgain(t, cfg)
	if _, err := short.Update(context.Background(), inv.Hash, storetest.Final(inv.HTLCs[0].Circuit, true, storetest.T0)); err == nil {
		t.Fatal("update behind a lock without a deadline succeeded")
	}
}
