package sqlstore

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
	"github.com/lnmux/lnmux/domain"
)

func openPostgres(t *testing.T) (*Store, string) {
	t.Helper()
	cfg := Config{Driver: DriverPostgres, DSN: pgtest.NewDatabase(t)}
	return openMigrated(t, cfg), cfg.DSN
}

// openMigrated migrates the database of cfg and opens a store on it.
func openMigrated(t testing.TB, cfg Config) *Store {
	t.Helper()
	for _, cmd := range []string{"init", "up"} {
		if _, err := Migrate(t.Context(), cfg, cmd); err != nil {
			t.Fatalf("migrate %s: %v", cmd, err)
		}
	}
	return openStore(t, cfg)
}

// openStore opens one more store on the database of cfg, as another lnmux
// process would.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	st, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func settleRequest(t testing.TB) domain.Invoice {
	t.Helper()
	var pre domain.Preimage
	_, _ = rand.Read(pre[:])
	var node domain.NodeKey
	_, _ = rand.Read(node[:])
	node[0] = 2
	var id [8]byte
	_, _ = rand.Read(id[:])
	h := domain.SettledHTLC{Circuit: domain.CircuitKey{Node: node, Chan: uint64(id[0]) + 1, HTLC: uint64(id[1])}, Amount: 1000}
	return domain.Invoice{
		Hash: pre.Hash(), Preimage: pre, Amount: 1000, AmountPaid: 1000, Status: domain.StatusSettleRequested,
		Expiry: time.Now().Add(time.Hour), SettleRequestedAt: time.Now(),
		SetID: domain.NewSetID([]domain.CircuitKey{h.Circuit}), HTLCs: []domain.SettledHTLC{h},
	}
}

// TestPostgresListSkipsNothing: transaction A inserts its invoice (taking a
// sequence number) and stays open; B, later, inserts and commits. B comes
// from a second store, as from another process: within one store B would
// only queue for the next batch of A's committer. A client
// paging with the last number it saw plus one must still see A's invoice
// once A commits. Without ordering, the first page returns B alone and the
// next page, from B+1, never returns A.
func TestPostgresListSkipsNothing(t *testing.T) {
	ctx := t.Context()
	st, dsn := openPostgres(t)
	a, b := settleRequest(t), settleRequest(t)

	inserted := make(chan struct{})
	commitA := make(chan struct{})
	st.afterInvoiceInsert = func(h domain.PaymentHash) {
		if h == a.Hash {
			close(inserted)
			<-commitA
		}
	}
	doneA := make(chan error, 1)
	go func() { _, err := st.RequestSettle(context.Background(), a); doneA <- err }()
	<-inserted
	other := openStore(t, Config{Driver: DriverPostgres, DSN: dsn})
	doneB := make(chan error, 1)
	go func() { _, err := other.RequestSettle(context.Background(), b); doneB <- err }()

	// B either commits or waits for A (the store orders the commits of
	// sequence numbers); list once it did one of them.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	bCommitted := false
	for deadline := time.Now().Add(30 * time.Second); !bCommitted; {
		select {
		case err := <-doneB:
			if err != nil {
				t.Fatalf("request settle B: %v", err)
			}
			bCommitted = true
			continue
		default:
		}
		var waiting int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B neither committed nor waits for A")
		}
		time.Sleep(10 * time.Millisecond)
	}

	seen := map[domain.PaymentHash]int{}
	from := uint64(0)
	page := func() {
		t.Helper()
		invs, err := st.List(ctx, from, 100)
		if err != nil {
			t.Fatalf("list from %d: %v", from, err)
		}
		for _, inv := range invs {
			seen[inv.Hash]++
			from = inv.Sequence + 1
		}
	}
	page()
	close(commitA)
	if err := <-doneA; err != nil {
		t.Fatalf("request settle A: %v", err)
	}
	if !bCommitted {
		if err := <-doneB; err != nil {
			t.Fatalf("request settle B: %v", err)
		}
	}
	page()
	for name, h := range map[string]domain.PaymentHash{"A (numbered first, committed last)": a.Hash, "B": b.Hash} {
		if seen[h] != 1 {
			t.Errorf("invoice %s seen %d times by a client paging from last+1, want once", name, seen[h])
		}
	}
}

// TestPostgresTCPSettings: libpq's client-side keepalive parameters in the
// DSN are taken by lnmux (pgx would send them to the server, which refuses
// them), and the server is told to watch its end of the socket.
func TestPostgresTCPSettings(t *testing.T) {
	ctx := t.Context()
	base := pgtest.NewDatabase(t)
	dsn := base + "&keepalives=1&keepalives_idle=7&keepalives_interval=3&keepalives_count=4&tcp_user_timeout=12000"
	cfg := Config{Driver: DriverPostgres, DSN: dsn, StatementTimeout: 3 * time.Second}
	c, err := connect(ctx, cfg, 0)
	if err != nil {
		t.Fatalf("connect with libpq keepalive parameters: %v", err)
	}
	defer func() { _ = c.close() }()
	for setting, want := range map[string]string{
		"tcp_keepalives_idle": "7", "tcp_keepalives_interval": "3", "tcp_keepalives_count": "4",
		"tcp_user_timeout": "12000", "statement_timeout": "3s", "lock_timeout": "10s",
		"idle_in_transaction_session_timeout": "30s",
	} {
		var got string
		if err := c.db.WithContext(ctx).Raw("SELECT current_setting(?)", setting).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %s, want %s", setting, got, want)
		}
	}
	if _, err := connect(ctx, Config{Driver: DriverPostgres, DSN: base + "&keepalives_idle=soon"}, 0); err == nil {
		t.Error("a non-numeric keepalives_idle was accepted")
	}
}
