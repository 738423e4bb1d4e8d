package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
	"github.com/lnmux/lnmux/domain"
)

// Tests of the group commit (docs/store.md, "Group commit") on both drivers.

type testDriver struct {
	name   string
	config func(t *testing.T) Config
}

var testDrivers = []testDriver{
	{DriverSQLite, func(t *testing.T) Config {
		return Config{Driver: DriverSQLite, Path: filepath.Join(t.TempDir(), "lnmux.db"), LeaderPollInterval: 20 * time.Millisecond}
	}},
	{DriverPostgres, func(t *testing.T) Config {
		return Config{Driver: DriverPostgres, DSN: pgtest.NewDatabase(t), LeaderPollInterval: 20 * time.Millisecond}
	}},
}

func forEachDriver(t *testing.T, test func(t *testing.T, cfg Config)) {
	for _, d := range testDrivers {
		t.Run(d.name, func(t *testing.T) { test(t, d.config(t)) })
	}
}

// eventually polls cond until it holds; the generous bound turns a hang into
// a failure, it asserts no timing.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
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
		time.Sleep(5 * time.Millisecond)
	}
}

// holdCommitter makes st's committer leave its queue alone until the
// returned function is called: the requests queued meanwhile form one batch
// (up to MaxSettleBatch).
func holdCommitter(st *Store) (release func()) { return st.settles.hold() }

// holdInsert makes the next settle batch of st wait, its rows inserted and
// its transaction open, until proceed is called (at the latest when the
// test ends, so that closing the store does not wait for it forever).
func holdInsert(t *testing.T, st *Store) (inFlight <-chan struct{}, proceed func()) {
	in, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.afterInvoiceInsert = func(domain.PaymentHash) { once.Do(func() { close(in); <-gate }) }
	proceed = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(proceed)
	return in, proceed
}

func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("still waiting for %s", what)
	}
}

type settleResult struct {
	inv domain.Invoice
	err error
}

// settleAsync starts RequestSettle of each invoice and returns the channels
// of their results, in order.
func settleAsync(ctx context.Context, st *Store, invs ...domain.Invoice) []chan settleResult {
	out := make([]chan settleResult, len(invs))
	for i, inv := range invs {
		out[i] = make(chan settleResult, 1)
		go func() {
			got, err := st.RequestSettle(ctx, inv)
			out[i] <- settleResult{got, err}
		}()
	}
	return out
}

// settleInOneBatch stores invs in one batch of st and returns the results.
func settleInOneBatch(t *testing.T, st *Store, invs ...domain.Invoice) []settleResult {
	t.Helper()
	release := holdCommitter(st)
	defer release()
	before := st.settles.batches.Load()
	chans := settleAsync(t.Context(), st, invs...)
	eventually(t, fmt.Sprintf("%d queued settle requests", len(invs)), func() (bool, error) {
		return st.settles.queued() == len(invs), nil
	})
	release()
	out := make([]settleResult, len(invs))
	for i, c := range chans {
		out[i] = <-c
	}
	if n := st.settles.batches.Load() - before; n != 1 {
		t.Fatalf("%d requests queued together ran in %d transactions, want 1", len(invs), n)
	}
	return out
}

// TestGroupCommitOneBadRequestFailsAlone: in one batch, a request for a hash
// stored with another set (ErrConflict from the read), one reusing an HTLC
// of another invoice (ErrConflict from the insert, which the batch rolls
// back to a savepoint) and a repeat of a stored request (the stored row)
// get their own answers, and the new invoices around them are stored.
func TestGroupCommitOneBadRequestFailsAlone(t *testing.T) {
	forEachDriver(t, func(t *testing.T, cfg Config) {
		ctx := t.Context()
		st := openMigrated(t, cfg)
		paid, paid2 := settleRequest(t), settleRequest(t)
		stored, err := st.RequestSettle(ctx, paid)
		if err != nil {
			t.Fatalf("request settle of the first invoice: %v", err)
		}
		stored2, err := st.RequestSettle(ctx, paid2)
		if err != nil {
			t.Fatalf("request settle of the second invoice: %v", err)
		}
		otherSet := paid
		otherSet.HTLCs = settleRequest(t).HTLCs
		otherSet.SetID = domain.NewSetID([]domain.CircuitKey{otherSet.HTLCs[0].Circuit})
		thief := settleRequest(t)
		thief.HTLCs = append(thief.HTLCs, paid.HTLCs[0])
		thief.AmountPaid += paid.HTLCs[0].Amount
		thief.SetID = domain.NewSetID([]domain.CircuitKey{thief.HTLCs[0].Circuit, thief.HTLCs[1].Circuit})
		good1, good2 := settleRequest(t), settleRequest(t)

		res := settleInOneBatch(t, st, good1, otherSet, thief, paid2, good2)

		for _, c := range []struct {
			name string
			got  settleResult
			want domain.Invoice
		}{{"first new invoice", res[0], good1}, {"second new invoice", res[4], good2}} {
			if c.got.err != nil {
				t.Fatalf("%s in a batch with conflicting requests: %v", c.name, c.got.err)
			}
			if c.got.inv.Hash != c.want.Hash || c.got.inv.Sequence <= stored2.Sequence {
				t.Fatalf("%s: got hash %s sequence %d, want hash %s with a sequence above %d",
					c.name, c.got.inv.Hash, c.got.inv.Sequence, c.want.Hash, stored2.Sequence)
			}
			if got, err := st.Get(ctx, c.want.Hash); err != nil || got.Sequence != c.got.inv.Sequence {
				t.Fatalf("%s read back: sequence %d, err %v; want sequence %d", c.name, got.Sequence, err, c.got.inv.Sequence)
			}
		}
		if res[0].inv.Sequence == res[4].inv.Sequence {
			t.Fatalf("both new invoices got sequence %d", res[0].inv.Sequence)
		}
		if !errors.Is(res[1].err, domain.ErrConflict) {
			t.Fatalf("request for a stored hash with another set: got %v, want ErrConflict", res[1].err)
		}
		if !errors.Is(res[2].err, domain.ErrConflict) {
			t.Fatalf("request reusing a stored htlc: got %v, want ErrConflict", res[2].err)
		}
		if _, err := st.Get(ctx, thief.Hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
			t.Fatalf("the request reusing a stored htlc left a row: got %v, want ErrInvoiceNotFound", err)
		}
		if res[3].err != nil || res[3].inv.Sequence != stored2.Sequence {
			t.Fatalf("repeated request in a batch: sequence %d, err %v; want the stored invoice, sequence %d",
				res[3].inv.Sequence, res[3].err, stored2.Sequence)
		}
		if got, err := st.Get(ctx, paid.Hash); err != nil || got.SetID != paid.SetID || got.Sequence != stored.Sequence {
			t.Fatalf("invoice requested again with another set: set %s sequence %d, err %v; want it unchanged",
				got.SetID, got.Sequence, err)
		}
	})
}

// TestGroupCommitSameHashTwiceInOneQueue: requests for one hash queued
// together go to separate transactions; each later one finds the first
// one's row: the same set gets that row, another set ErrConflict.
func TestGroupCommitSameHashTwiceInOneQueue(t *testing.T) {
	forEachDriver(t, func(t *testing.T, cfg Config) {
		st := openMigrated(t, cfg)
		inv := settleRequest(t)
		other := inv
		other.SetID[0] ^= 1
		release := holdCommitter(st)
		batches := st.settles.batches.Load()
		reqs := []domain.Invoice{inv, inv, other}
		chans := settleAsync(t.Context(), st, reqs...)
		eventually(t, "3 queued settle requests", func() (bool, error) { return st.settles.queued() == 3, nil })
		release()
		res := []settleResult{<-chans[0], <-chans[1], <-chans[2]}
		if n := st.settles.batches.Load() - batches; n != 3 {
			t.Fatalf("3 requests for one hash ran in %d transactions, want 3", n)
		}
		stored, err := st.Get(t.Context(), inv.Hash)
		if err != nil {
			t.Fatal(err)
		}
		// The queue's order decides which set won.
		for i, r := range res {
			if reqs[i].SetID == stored.SetID {
				if r.err != nil || r.inv.Sequence != stored.Sequence {
					t.Fatalf("request %d, of the stored set: sequence %d, err %v; want the stored row %d", i, r.inv.Sequence, r.err, stored.Sequence)
				}
			} else if !errors.Is(r.err, domain.ErrConflict) {
				t.Fatalf("request %d, of the other set: got %v, want ErrConflict", i, r.err)
			}
		}
	})
}

// TestGroupCommitCallerDeadlines: a caller whose context ends while its
// request waits in the queue learns that nothing was written; one whose
// context ends while its batch's transaction runs learns that the outcome
// is unknown; neither fails the other requests.
func TestGroupCommitCallerDeadlines(t *testing.T) {
	forEachDriver(t, func(t *testing.T, cfg Config) {
		ctx := t.Context()
		st := openMigrated(t, cfg)

		// Queued: withdrawn before any transaction holds it.
		release := holdCommitter(st)
		queuedCtx, cancelQueued := context.WithCancel(ctx)
		gone, stays := settleRequest(t), settleRequest(t)
		goneRes := settleAsync(queuedCtx, st, gone)[0]
		staysRes := settleAsync(ctx, st, stays)[0]
		eventually(t, "2 queued settle requests", func() (bool, error) { return st.settles.queued() == 2, nil })
		cancelQueued()
		r := <-goneRes
		if !errors.Is(r.err, context.Canceled) || errors.Is(r.err, domain.ErrOutcomeUnknown) {
			t.Fatalf("request cancelled in the queue: got %v, want context.Canceled without ErrOutcomeUnknown", r.err)
		}
		release()
		if r := <-staysRes; r.err != nil {
			t.Fatalf("request queued beside a cancelled one: %v", r.err)
		}
		if _, err := st.Get(ctx, gone.Hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
			t.Fatalf("request cancelled in the queue: get says %v, want ErrInvoiceNotFound", err)
		}

		// In flight: its batch has inserted the rows and waits.
		inFlight, proceed := holdInsert(t, st)
		release = holdCommitter(st)
		flightCtx, cancelFlight := context.WithCancel(ctx)
		a, b := settleRequest(t), settleRequest(t)
		aRes := settleAsync(flightCtx, st, a)[0]
		bRes := settleAsync(ctx, st, b)[0]
		eventually(t, "2 queued settle requests", func() (bool, error) { return st.settles.queued() == 2, nil })
		release()
		waitClosed(t, "the batch's insert", inFlight)
		cancelFlight()
		r = <-aRes
		if !errors.Is(r.err, domain.ErrOutcomeUnknown) || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("request cancelled while its batch runs: got %v, want ErrOutcomeUnknown and context.Canceled", r.err)
		}
		proceed()
		if r := <-bRes; r.err != nil {
			t.Fatalf("request in a batch with a cancelled caller: %v", r.err)
		}
		// The batch committed: the cancelled caller's row is there, and
		// its retry returns it.
		got, err := st.Get(ctx, a.Hash)
		if err != nil {
			t.Fatalf("row of the request cancelled in flight: %v", err)
		}
		again, err := st.RequestSettle(ctx, a)
		if err != nil || again.Sequence != got.Sequence {
			t.Fatalf("retry after an unknown outcome: sequence %d, err %v; want the stored %d", again.Sequence, err, got.Sequence)
		}
	})
}

// TestGroupCommitFencedMidBatch: a new leader's epoch increment waits for a
// batch that passed the fencing check, so that its recovery reads every row
// of it; the old leader's next batch is refused as a whole.
func TestGroupCommitFencedMidBatch(t *testing.T) {
	forEachDriver(t, func(t *testing.T, cfg Config) {
		ctx := t.Context()
		old := openMigrated(t, cfg)
		leaseA, err := old.Leader().AcquireLease(ctx)
		if err != nil {
			t.Fatalf("acquire: %v", err)
		}
		old.Fence(leaseA.Epoch)

		inFlight, proceed := holdInsert(t, old)
		release := holdCommitter(old)
		batch := []domain.Invoice{settleRequest(t), settleRequest(t), settleRequest(t)}
		results := settleAsync(context.Background(), old, batch...)
		eventually(t, "3 queued settle requests", func() (bool, error) { return old.settles.queued() == 3, nil })
		release()
		waitClosed(t, "the batch's insert", inFlight)

		leaseA.Release()
		cur := openStore(t, cfg)
		type acquired struct {
			lease *Lease
			err   error
		}
		second := make(chan acquired, 1)
		go func() {
			l, err := cur.Leader().AcquireLease(ctx)
			second <- acquired{l, err}
		}()
		if cfg.Driver == DriverPostgres {
			// The new leader waits for the batch's share lock on the
			// leader row.
			adm, err := pgx.Connect(ctx, cfg.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer adm.Close(context.Background())
			eventually(t, "the new leader to wait for the in-flight batch", func() (bool, error) {
				var n int
				err := adm.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
					WHERE application_name = $1 AND datname = current_database()
					AND wait_event_type = 'Lock' AND wait_event <> 'advisory'`, LeaderApplicationName).Scan(&n)
				return n == 1, err
			})
			select {
			case r := <-second:
				t.Fatalf("new leader acquired while a batch of the old one was in flight: %v", r.err)
			default:
			}
		}
		proceed()
		for i, c := range results {
			if r := <-c; r.err != nil {
				t.Fatalf("request %d of the batch in flight during the takeover: %v", i, r.err)
			}
		}
		r := <-second
		if r.err != nil {
			t.Fatalf("acquire of the new leader: %v", r.err)
		}
		defer r.lease.Release()
		cur.Fence(r.lease.Epoch)
		for i, inv := range batch {
			if _, err := cur.Get(ctx, inv.Hash); err != nil {
				t.Fatalf("the new leader does not see request %d of the old leader's last batch: %v", i, err)
			}
		}

		old.afterInvoiceInsert = nil
		late := []domain.Invoice{settleRequest(t), settleRequest(t)}
		for i, r := range settleInOneBatch(t, old, late...) {
			if !errors.Is(r.err, domain.ErrNotLeader) {
				t.Fatalf("request %d of the fenced leader's batch: got %v, want ErrNotLeader", i, r.err)
			}
			if _, err := cur.Get(ctx, late[i].Hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
				t.Fatalf("refused request %d left a row: %v", i, err)
			}
		}
		if _, err := cur.RequestSettle(ctx, late[0]); err != nil {
			t.Fatalf("request settle of the new leader: %v", err)
		}
	})
}

// TestListSkipsNothingUnderBatchedSettles: two stores (two processes, two
// committers) settle concurrently while a client pages through the list
// from the last number it saw plus one; it must see every invoice once.
func TestListSkipsNothingUnderBatchedSettles(t *testing.T) {
	forEachDriver(t, func(t *testing.T, cfg Config) {
		ctx := t.Context()
		a := openMigrated(t, cfg)
		b := openStore(t, cfg)
		const callers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, callers*each)
		want := map[domain.PaymentHash]bool{}
		var invs [callers][each]domain.Invoice
		for i := range callers {
			for j := range each {
				invs[i][j] = settleRequest(t)
				want[invs[i][j].Hash] = true
			}
		}
		for i := range callers {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Go(func() {
				for j := range each {
					if _, err := st.RequestSettle(ctx, invs[i][j]); err != nil {
						errs <- err
					}
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()

		seen := map[domain.PaymentHash]int{}
		from := uint64(0)
		page := func() int {
			t.Helper()
			list, err := a.List(ctx, from, 7)
			if err != nil {
				t.Fatalf("list from %d: %v", from, err)
			}
			for _, inv := range list {
				seen[inv.Hash]++
				from = inv.Sequence + 1
			}
			return len(list)
		}
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			default:
			}
			page()
		}
		for page() > 0 {
		}
		close(errs)
		for err := range errs {
			t.Fatalf("request settle: %v", err)
		}
		for h := range want {
			if seen[h] != 1 {
				t.Errorf("invoice %s seen %d times by a client paging from last+1, want once", h, seen[h])
			}
		}
		if len(seen) != len(want) {
			t.Errorf("client saw %d invoices, want %d", len(seen), len(want))
		}
		t.Logf("%d settles in %d batches on store a, %d in %d on store b",
			a.settles.settles.Load(), a.settles.batches.Load(), b.settles.settles.Load(), b.settles.batches.Load())
	})
}
