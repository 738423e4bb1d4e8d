package kubelease_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/lnmux/lnmux/adapters/kubelease"
	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports/storetest"
)

// sqliteStores opens two stores on one migrated SQLite file, as two lnmuxd
// pods on one database.
func sqliteStores(t *testing.T) (*sqlstore.Store, *sqlstore.Store) {
	t.Helper()
	cfg := sqlstore.Config{Driver: sqlstore.DriverSQLite, Path: filepath.Join(t.TempDir(), "lnmux.db")}
	for _, cmd := range []string{"init", "up"} {
		if _, err := sqlstore.Migrate(t.Context(), cfg, cmd); err != nil {
			t.Fatalf("migrate %s: %v", cmd, err)
		}
	}
	open := func() *sqlstore.Store {
		st, err := sqlstore.Open(t.Context(), cfg)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	return open(), open()
}

// TestFencedTakeoverRefusesTheOldLeadersWrites: the leader is cut off from
// the API server but not from the database, and has not noticed yet. Once
// the standby has taken the Lease over and claimed the epoch, every write of
// the old leader is refused and the new leader's succeed: their writes never
// overlap.
func TestFencedTakeoverRefusesTheOldLeadersWrites(t *testing.T) {
	ctx := t.Context()
	storeA, storeB := sqliteStores(t)
	fakeClient := fake.NewClientset()
	clientA := newPartitionable(fakeClient)
	leaderA := kubelease.Fenced(newElector(t, shortLease("a"), clientA), storeA)
	leaderB := kubelease.Fenced(newElector(t, shortLease("b"), fakeClient), storeB)

	waitAcquired(t, "a", acquireAsync(t, leaderA))
	inv := storetest.NewInvoice(t, 2)
	if _, err := storeA.RequestSettle(ctx, inv); err != nil {
		t.Fatalf("request settle of the leader: %v", err)
	}
	second := acquireAsync(t, leaderB)

	clientA.cut.Store(true)
	waitAcquired(t, "b", second)
	// Whether or not a has noticed its loss, the database refuses it.
	storetest.AssertFenced(t, storeA, storeB, inv)
}

// TestFencedReleaseHandsOver: a planned hand-over through Fenced; the new
// leader's writes pass, the old one's are refused.
func TestFencedReleaseHandsOver(t *testing.T) {
	ctx := t.Context()
	storeA, storeB := sqliteStores(t)
	client := fake.NewClientset()
	a := waitAcquired(t, "a", acquireAsync(t, kubelease.Fenced(newElector(t, longLease("a"), client), storeA)))
	inv := storetest.NewInvoice(t, 2)
	if _, err := storeA.RequestSettle(ctx, inv); err != nil {
		t.Fatalf("request settle of the leader: %v", err)
	}
	second := acquireAsync(t, kubelease.Fenced(newElector(t, longLease("b"), client), storeB))
	a.release()
	waitAcquired(t, "b", second)
	storetest.AssertFenced(t, storeA, storeB, inv)
}

type failingClaimer struct{}

var errClaim = errors.New("test: database unreachable")

func (failingClaimer) ClaimEpoch(context.Context) (uint64, error) { return 0, errClaim }

// TestFencedReleasesTheLeaseWhenTheClaimFails: a leader that cannot fence
// the database must not keep the Lease, or no one would lead.
func TestFencedReleasesTheLeaseWhenTheClaimFails(t *testing.T) {
	client := fake.NewClientset()
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	_, _, err := kubelease.Fenced(newElector(t, longLease("a"), client), failingClaimer{}).Acquire(ctx)
	if !errors.Is(err, errClaim) || !strings.Contains(err.Error(), "fencing epoch") {
		t.Fatalf("acquire with a failing claim: got %v, want the claim's error", err)
	}
	// The Lease lasts an hour: b leads only because a released it.
	waitAcquired(t, "b", acquireAsync(t, newElector(t, longLease("b"), client)))
}

// TestFencedStoreIsFencedWhenAcquireReturns: Acquire has claimed the
// epoch and fenced the store before it returns, so lnmuxd can write nothing
// unfenced between winning the Lease and fencing; a store fenced by an
// earlier claim is refused from then on.
func TestFencedStoreIsFencedWhenAcquireReturns(t *testing.T) {
	storeA, storeB := sqliteStores(t)
	if _, err := storeB.ClaimEpoch(t.Context()); err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	waitAcquired(t, "a", acquireAsync(t, kubelease.Fenced(newElector(t, longLease("a"), client), storeA)))
	// a claimed after b: b's store is refused, a's accepted.
	inv := storetest.NewInvoice(t, 1)
	if _, err := storeB.RequestSettle(t.Context(), inv); !errors.Is(err, domain.ErrNotLeader) {
		t.Fatalf("write of the earlier claimer: got %v, want ErrNotLeader", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := storeA.RequestSettle(ctx, inv); err != nil {
		t.Fatalf("write of the leader: %v", err)
	}
}
