package sqlstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// finalize is an Update function that settles every HTLC.
func finalize(inv *domain.Invoice) error {
	for _, h := range inv.HTLCs {
		if _, err := inv.ApplyFinal(h.Circuit, true, time.Now()); err != nil {
			return err
		}
	}
	return nil
}

// TestPostgresEventLogSkipsNothing: transaction A appends to the event log
// (drawing a cursor) and stays open; B, from another store (another
// process), appends later. A reader that tails the log from the last cursor
// it saw must still see A's entry once A commits. Without the sequence
// lock in the sweep of staged changes, B commits the higher cursor first,
// the reader's next read starts above A's and never returns it. Both
// roles: A a sweep (of a staged final) and B a settle batch; A a settle
// batch and B a final staged and swept.
func TestPostgresEventLogSkipsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		// aStatus is the entry A holds open.
		aStatus domain.InvoiceStatus
	}{
		{"sweep held open, settle request after", domain.StatusSettled},
		{"settle request held open, sweep after", domain.StatusSettleRequested},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			st, dsn := openPostgres(t)
			other := openStore(t, Config{Driver: DriverPostgres, DSN: dsn})
			x, y := settleRequest(t), settleRequest(t)
			// x is A's invoice, y B's.
			var runA, runB func() error
			if tc.aStatus == domain.StatusSettled {
				if _, err := st.RequestSettle(ctx, x); err != nil {
					t.Fatal(err)
				}
				if _, err := st.Update(ctx, x.Hash, finalize); err != nil {
					t.Fatal(err)
				}
				runA = func() error { return st.sweep(context.Background()) }
				runB = func() error { _, err := other.RequestSettle(context.Background(), y); return err }
			} else {
				if _, err := other.RequestSettle(ctx, y); err != nil {
					t.Fatal(err)
				}
				runA = func() error { _, err := st.RequestSettle(context.Background(), x); return err }
				runB = func() error {
					if _, err := other.Update(context.Background(), y.Hash, finalize); err != nil {
						return err
					}
					return other.sweep(context.Background())
				}
			}
			start, err := st.readEvents(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var cursor uint64
			if len(start) > 0 {
				cursor = start[len(start)-1].Cursor
			}

			appended := make(chan struct{})
			commitA := make(chan struct{})
			var once sync.Once
			st.afterEventAppend = func(h domain.PaymentHash, s domain.InvoiceStatus) {
				if h == x.Hash && s == tc.aStatus {
					once.Do(func() { close(appended) })
					<-commitA
				}
			}
			doneA := make(chan error, 1)
			go func() { doneA <- runA() }()
			<-appended
			doneB := make(chan error, 1)
			go func() { doneB <- runB() }()
			bCommitted := waitCommittedOrBlocked(t, dsn, doneB)

			seen := map[domain.PaymentHash][]domain.InvoiceStatus{}
			// The reader does not sweep: a sweep would wait for A's lock.
			tail := func() {
				t.Helper()
				evs, err := st.readEvents(ctx, cursor, 100)
				if err != nil {
					t.Fatalf("list events after %d: %v", cursor, err)
				}
				for _, ev := range evs {
					seen[ev.Hash] = append(seen[ev.Hash], ev.Status)
					cursor = ev.Cursor
				}
			}
			tail()
			close(commitA)
			if err := <-doneA; err != nil {
				t.Fatalf("A: %v", err)
			}
			if !bCommitted {
				if err := <-doneB; err != nil {
					t.Fatalf("B: %v", err)
				}
			}
			tail()
			if got := seen[x.Hash]; len(got) != 1 || got[0] != tc.aStatus {
				t.Errorf("A's entry (cursor drawn first, committed last) read as %v, want [%s]", got, tc.aStatus)
			}
			if got := seen[y.Hash]; len(got) != 1 {
				t.Errorf("B's entry read as %v, want once", got)
			}
		})
	}
}

// TestEventLogSweepsInChunks: more staged changes than one sweep
// transaction moves all enter the log, in the order they were staged, and
// the staging table is left empty.
func TestEventLogSweepsInChunks(t *testing.T) {
	forEachDriver(t, func(t *testing.T, cfg Config) {
		ctx := t.Context()
		st := openMigrated(t, cfg)
		st.sweepChunk = 3
		var hashes []domain.PaymentHash
		for range 8 {
			inv := settleRequest(t)
			if _, err := st.RequestSettle(ctx, inv); err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, inv.Hash)
		}
		for _, h := range hashes {
			if _, err := st.Update(ctx, h, finalize); err != nil {
				t.Fatal(err)
			}
		}
		if staged, err := st.hasStaged(ctx); err != nil || !staged {
			t.Fatalf("nothing staged after 8 finals (%v)", err)
		}
		evs, err := st.ListEvents(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 16 {
			t.Fatalf("%d events, want 16", len(evs))
		}
		for i, h := range hashes {
			if evs[i].Hash != h || evs[i].Status != domain.StatusSettleRequested ||
				evs[8+i].Hash != h || evs[8+i].Status != domain.StatusSettled {
				t.Fatalf("event %d or %d out of order: %+v, %+v", i, 8+i, evs[i], evs[8+i])
			}
		}
		if staged, err := st.hasStaged(ctx); err != nil || staged {
			t.Fatalf("staged changes left after the sweep (%v)", err)
		}
	})
}

// waitCommittedOrBlocked waits until B committed (its error arrives on
// done) or some session waits for a lock, and reports whether B committed.
func waitCommittedOrBlocked(t *testing.T, dsn string, done chan error) bool {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("B: %v", err)
			}
			return true
		default:
		}
		var waiting int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return false
		}
		if time.Now().After(deadline) {
			t.Fatal("B neither committed nor waits for A")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventLogTailedUnderConcurrentWriters: two stores (two processes)
// settle and finalise invoices concurrently while a reader tails the log
// from the last cursor it saw; it must read every change exactly once,
// and each invoice's settle request before its final status.
func TestEventLogTailedUnderConcurrentWriters(t *testing.T) {
	forEachDriver(t, func(t *testing.T, cfg Config) {
		ctx := t.Context()
		a := openMigrated(t, cfg)
		b := openStore(t, cfg)
		const writers, each = 6, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		var hashes []domain.PaymentHash
		invs := make([][]domain.Invoice, writers)
		for i := range writers {
			for range each {
				inv := settleRequest(t)
				invs[i] = append(invs[i], inv)
				hashes = append(hashes, inv.Hash)
			}
		}
		for i := range writers {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Go(func() {
				for _, inv := range invs[i] {
					if _, err := st.RequestSettle(ctx, inv); err != nil {
						errs <- err
						return
					}
					if _, err := st.Update(ctx, inv.Hash, finalize); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()

		seen := map[domain.PaymentHash][]domain.InvoiceStatus{}
		var cursor uint64
		tail := func() int {
			t.Helper()
			evs, err := a.ListEvents(ctx, cursor, 7)
			if err != nil {
				t.Fatalf("list events after %d: %v", cursor, err)
			}
			for _, ev := range evs {
				seen[ev.Hash] = append(seen[ev.Hash], ev.Status)
				cursor = ev.Cursor
			}
			return len(evs)
		}
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			default:
			}
			tail()
		}
		for tail() > 0 {
		}
		close(errs)
		for err := range errs {
			t.Fatalf("writer: %v", err)
		}
		want := []domain.InvoiceStatus{domain.StatusSettleRequested, domain.StatusSettled}
		for _, h := range hashes {
			if got := seen[h]; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
				t.Errorf("invoice %s read as %v by a reader tailing from its cursor, want %v", h, got, want)
			}
		}
		if len(seen) != len(hashes) {
			t.Errorf("reader saw %d invoices, want %d", len(seen), len(hashes))
		}
	})
}

var _ ports.InvoiceEventLog = (*Store)(nil)

// TestEventLogMigrationBackfills: invoices stored before migration 0005
// enter the log when it runs: every settle request in sequence order, then
// the final statuses in the order they became final.
func TestEventLogMigrationBackfills(t *testing.T) {
	forEachDriver(t, func(t *testing.T, cfg Config) {
		ctx := t.Context()
		m, err := OpenMigrator(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = m.Close() }()
		all := m.migrations
		var before []migration
		for _, mg := range all {
			if mg.version < 5 {
				before = append(before, mg)
			}
		}
		m.migrations = before
		if err := m.Init(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Up(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		// Stored in the order a, b, c; c became final before a; b is
		// still pending.
		a, b, c := settleRequest(t), settleRequest(t), settleRequest(t)
		a.Status, a.FinalizedAt = domain.StatusSettled, t0.Add(2*time.Minute)
		c.Status, c.FinalizedAt = domain.StatusFailed, t0.Add(time.Minute)
		var seqs []uint64
		for _, inv := range []domain.Invoice{a, b, c} {
			inv.SettleRequestedAt = t0
			row, _ := fromDomain(inv)
			if err := m.c.db.WithContext(ctx).Omit("sequence_number").Create(&row).Error; err != nil {
				t.Fatal(err)
			}
			var seq int64
			if err := m.c.db.WithContext(ctx).Model(&invoiceRow{}).Select("sequence_number").Where("hash = ?", row.Hash).Scan(&seq).Error; err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, uint64(seq)) //nolint:gosec // positive
		}
		m.migrations = all
		if _, err := m.Up(ctx); err != nil {
			t.Fatal(err)
		}
		st := openStore(t, cfg)
		evs, err := st.ListEvents(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		type want struct {
			hash domain.PaymentHash
			st   domain.InvoiceStatus
			seq  uint64
			at   time.Time
		}
		wants := []want{
			{a.Hash, domain.StatusSettleRequested, seqs[0], t0},
			{b.Hash, domain.StatusSettleRequested, seqs[1], t0},
			{c.Hash, domain.StatusSettleRequested, seqs[2], t0},
			{c.Hash, domain.StatusFailed, seqs[2], c.FinalizedAt},
			{a.Hash, domain.StatusSettled, seqs[0], a.FinalizedAt},
		}
		if len(evs) != len(wants) {
			t.Fatalf("backfilled %d events, want %d: %+v", len(evs), len(wants), evs)
		}
		for i, w := range wants {
			ev := evs[i]
			if ev.Hash != w.hash || ev.Status != w.st || ev.Sequence != w.seq || !ev.At.Equal(w.at) || ev.AmountPaid != 1000 {
				t.Errorf("event %d: %+v, want %+v", i, ev, w)
			}
		}
	})
}
