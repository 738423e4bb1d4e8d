package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/sqlstore"
)

// TestSQLiteStandbyGetsTheLockOnRelease: a second leader blocks on the
// flock (no polling) and is granted it as soon as the first releases; a
// cancelled wait returns context.Canceled and takes nothing.
func TestSQLiteStandbyGetsTheLockOnRelease(t *testing.T) {
	cfg := sqliteConfig(t)
	st := migrated(t, cfg)
	first, err := st.Leader().AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancelled := make(chan error, 1)
	go func() {
		_, err := st.Leader().AcquireLease(ctx)
		cancelled <- err
	}()
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: got %v, want context.Canceled", err)
	}

	got := make(chan *sqlstore.Lease, 1)
	go func() {
		l, err := st.Leader().AcquireLease(t.Context())
		if err != nil {
			t.Errorf("standby: %v", err)
		}
		got <- l
	}()
	first.Release()
	second := <-got
	if second == nil {
		t.Fatal("the standby got no lease")
	}
	defer second.Release()
	if second.Epoch <= first.Epoch {
		t.Errorf("standby epoch %d, want above the first leader's %d", second.Epoch, first.Epoch)
	}
}

// TestPostgresStandbyWaitingAndMark: the leader sees a standby waiting on
// the lock; after the hand-over the leader row names the new holder, with
// its epoch, and shows the intercepting mark once set.
func TestPostgresStandbyWaitingAndMark(t *testing.T) {
	cfg := postgresConfig(t)
	st := migrated(t, cfg)
	lease, err := st.Leader().As("pod-a").AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if waiting, err := st.StandbyWaiting(t.Context()); err != nil || waiting {
		t.Fatalf("StandbyWaiting with no standby: %v, %v; want false", waiting, err)
	}
	got := make(chan *sqlstore.Lease, 1)
	go func() {
		l, err := st.Leader().As("pod-b").AcquireLease(t.Context())
		if err != nil {
			t.Errorf("standby: %v", err)
		}
		got <- l
	}()
	waitFor(t, "the leader to see the standby waiting", func() (bool, error) { return st.StandbyWaiting(t.Context()) })
	lease.Release()
	next := <-got
	if next == nil {
		t.Fatal("the standby got no lease")
	}
	defer next.Release()
	row, err := st.LeaderRow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if row.Epoch != next.Epoch || row.Intercepting || len(row.Holder) < 5 || row.Holder[:5] != "pod-b" {
		t.Errorf("leader row after the hand-over: %+v, want epoch %d, holder pod-b…, not intercepting", row, next.Epoch)
	}
	if err := st.MarkIntercepting(t.Context(), next.Epoch); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkIntercepting(t.Context(), next.Epoch); err != nil {
		t.Fatal(err)
	}
	again, err := st.LeaderRow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !again.Intercepting || again.Holder != row.Holder {
		t.Errorf("leader row after MarkIntercepting twice: %+v, want intercepting with holder %q", again, row.Holder)
	}
}

// TestPostgresLeaseKnowsItsSessionBound: the lease reads back the TCP
// settings the server applies to the lock's session: the defaults lnmuxd
// sends (3 s), or the DSN's.
func TestPostgresLeaseKnowsItsSessionBound(t *testing.T) {
	cfg := postgresConfig(t)
	st := migrated(t, cfg)
	lease, err := st.Leader().AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !lease.OverTCP {
		lease.Release()
		t.Skip("the test server is reached over a Unix socket: no TCP settings to read back")
	}
	if lease.SessionBound != 3*time.Second {
		t.Errorf("session bound with the defaults: %s, want 3s", lease.SessionBound)
	}
	lease.Release()

	sep := "?"
	if strings.Contains(cfg.DSN, "?") {
		sep = "&"
	}
	cfg.DSN += sep + "tcp_user_timeout=0&keepalives_idle=4&keepalives_interval=2&keepalives_count=3"
	st2, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	lease, err = st2.Leader().AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if lease.SessionBound != 10*time.Second {
		t.Errorf("session bound with keepalives 4+3×2 s and no user timeout: %s, want 10s", lease.SessionBound)
	}
}
