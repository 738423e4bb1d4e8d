package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports/storetest"
)

var dialects = []struct {
	name      string
	newConfig func(*testing.T) sqlstore.Config
}{
	{name: "sqlite", newConfig: sqliteConfig},
	{name: "postgres", newConfig: postgresConfig},
}

// TestClaimEpochFencesThePreviousClaimer: two processes elected outside
// the database claim in turn; the first one's writes are refused once the
// second claimed, and the second one's succeed.
func TestClaimEpochFencesThePreviousClaimer(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			cfg := d.newConfig(t)
			old := migrated(t, cfg)
			cur := openStore(t, cfg)
			first, err := old.ClaimEpoch(ctx)
			if err != nil {
				t.Fatalf("first claim: %v", err)
			}
			inv := storetest.NewInvoice(t, 2)
			if _, err := old.RequestSettle(ctx, inv); err != nil {
				t.Fatalf("request settle of the first claimer: %v", err)
			}
			second, err := cur.ClaimEpoch(ctx)
			if err != nil {
				t.Fatalf("second claim: %v", err)
			}
			if second <= first {
				t.Fatalf("second epoch %d after %d: want it above", second, first)
			}
			storetest.AssertFenced(t, old, cur, inv)
		})
	}
}

// TestClaimEpochTakesNoDatabaseLock: the claim neither waits for the
// database's leader lock (a holder of it is fenced all the same) nor keeps
// it (another process takes it afterwards). Elected by Kubernetes, lnmuxd
// must not depend on the database lock at all.
func TestClaimEpochTakesNoDatabaseLock(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cfg := d.newConfig(t)
			holder := migrated(t, cfg)
			lease, err := holder.Leader().AcquireLease(ctx)
			if err != nil {
				t.Fatalf("acquire the database lock: %v", err)
			}
			holder.Fence(lease.Epoch)
			inv := storetest.NewInvoice(t, 2)
			if _, err := holder.RequestSettle(ctx, inv); err != nil {
				t.Fatalf("request settle of the lock holder: %v", err)
			}

			claimer := openStore(t, cfg)
			epoch, err := claimer.ClaimEpoch(ctx)
			if err != nil {
				t.Fatalf("claim while another process holds the database lock: %v", err)
			}
			if epoch <= lease.Epoch {
				t.Fatalf("claimed epoch %d after the lock's %d: want it above", epoch, lease.Epoch)
			}
			storetest.AssertFenced(t, holder, claimer, inv)

			lease.Release()
			other := openStore(t, cfg)
			again, err := other.Leader().AcquireLease(ctx)
			if err != nil {
				t.Fatalf("acquire the database lock after a claim: %v", err)
			}
			again.Release()
		})
	}
}

// TestClaimEpochWaitsForWritesInFlight: a write of the previous leader that
// passed its fencing check when the claim starts commits before the claim
// returns, so the new leader's recovery reads it.
func TestClaimEpochWaitsForWritesInFlight(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cfg := d.newConfig(t)
			// A lock timeout far above the test's own bound: the
			// claim's SQLite busy wait must not give up first.
			cfg.LockTimeout = 2 * time.Minute
			old := migrated(t, cfg)
			if _, err := old.ClaimEpoch(ctx); err != nil {
				t.Fatalf("first claim: %v", err)
			}
			inv := storetest.NewInvoice(t, 2)
			if _, err := old.RequestSettle(ctx, inv); err != nil {
				t.Fatalf("request settle: %v", err)
			}

			inFlight := make(chan struct{})
			finish := make(chan struct{})
			updated := make(chan error, 1)
			go func() {
				_, err := old.Update(context.Background(), inv.Hash, func(i *domain.Invoice) error {
					close(inFlight)
					<-finish
					_, err := i.ApplyFinal(inv.HTLCs[1].Circuit, true, time.Now())
					return err
				})
				updated <- err
			}()
			<-inFlight

			cur := openStore(t, cfg)
			claimed := make(chan error, 1)
			go func() {
				_, err := cur.ClaimEpoch(ctx)
				claimed <- err
			}()
			if d.name == "postgres" {
				// The claim's connection waits for the update's share
				// lock on the leader row.
				adm := admin(t, cfg.DSN)
				waitFor(t, "the claim to wait for the write in flight", func() (bool, error) {
					var n int
					err := adm.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
						WHERE application_name = $1 AND datname = current_database() AND wait_event_type = 'Lock'`,
						sqlstore.LeaderApplicationName).Scan(&n)
					return n == 1, err
				})
				select {
				case err := <-claimed:
					t.Fatalf("claim returned (%v) while a write of the previous epoch was in flight", err)
				default:
				}
			}
			close(finish)
			if err := <-updated; err != nil {
				t.Fatalf("update in flight during the claim: got %v, want it committed", err)
			}
			if err := <-claimed; err != nil {
				t.Fatalf("claim: %v", err)
			}
			if got := mustGetInvoice(t, cur, inv.Hash); !slicesContainSettled(got, inv.HTLCs[1].Circuit) {
				t.Fatal("the new claimer does not see the write that was in flight during its claim")
			}
			if _, err := old.Update(ctx, inv.Hash, func(*domain.Invoice) error { return nil }); !errors.Is(err, domain.ErrNotLeader) {
				t.Fatalf("write of the previous claimer after the claim: got %v, want ErrNotLeader", err)
			}
		})
	}
}

func openStore(t *testing.T, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func mustGetInvoice(t *testing.T, st *sqlstore.Store, hash domain.PaymentHash) domain.Invoice {
	t.Helper()
	inv, err := st.Get(t.Context(), hash)
	if err != nil {
		t.Fatalf("get %s: %v", hash, err)
	}
	return inv
}
