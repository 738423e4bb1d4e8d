// Package storetest is the contract of ports.InvoiceStore and ports.Leader:
// one suite that every implementation runs (the SQL store on SQLite and on
// Postgres, the memory store of the app's tests), so that the app's tests
// and simulation run against a store that behaves as the real ones do.
//
// What it holds a store to, beyond the interface's doc comments: times come
// back in UTC to the microsecond; HTLCs in circuit key order; ListPending,
// ListUnexpired and List in sequence order; RequestSettle refuses a request
// that is not SettleRequested, has a preimage not of its hash or no HTLCs
// (domain.ErrInvalidArgument) and one with an HTLC stored with another
// invoice (domain.ErrConflict); Update refuses changes to anything but the
// statuses and FinalizedAt (domain.ErrInvalidArgument). Every store also
// keeps the event log (ports.InvoiceEventLog, eventlog.go).
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// RunInvoiceStore runs the contract of ports.InvoiceStore. open must return
// a new, empty store each time it is called, closed when t ends.
func RunInvoiceStore(t *testing.T, open func(t *testing.T) ports.InvoiceStore) {
	s := suite{open: open}
	t.Run("RequestSettle", s.testRequestSettle)
	t.Run("RequestSettleConcurrent", s.testRequestSettleConcurrent)
	t.Run("RequestSettleInvalid", s.testRequestSettleInvalid)
	t.Run("GetNotFound", s.testGetNotFound)
	t.Run("UpdateSettled", s.testUpdateSettled)
	t.Run("UpdateFailed", s.testUpdateFailed)
	t.Run("UpdateRefused", s.testUpdateRefused)
	t.Run("UpdateConcurrent", s.testUpdateConcurrent)
	t.Run("ListPending", s.testListPending)
	t.Run("ListUnexpired", s.testListUnexpired)
	t.Run("ListPaging", s.testListPaging)
	t.Run("LargeIDs", s.testLargeIDs)
	t.Run("EventLog", s.testEventLog)
	t.Run("EventLogConcurrent", s.testEventLogConcurrent)
	t.Run("CancelList", s.testCancelList)
	t.Run("CancelIdempotent", s.testCancelIdempotent)
	t.Run("CancelRefusesStored", s.testCancelRefusesStored)
	t.Run("CancelRefusesSettle", s.testCancelRefusesSettle)
	t.Run("CancelSettleRace", s.testCancelSettleRace)
	t.Run("CancelContextDone", s.testCancelCancelled)
}

// RunLeader runs the contract of ports.Leader. newLeader must return the
// leader lock of a new database (or store) each time it is called; one
// value stands for every process competing for that lock.
func RunLeader(t *testing.T, newLeader func(t *testing.T) ports.Leader) {
	t.Run("Leader", func(t *testing.T) { testLeader(t, newLeader(t)) })
}

type suite struct {
	open func(t *testing.T) ports.InvoiceStore
}

// T0 has nanoseconds and a zone on purpose: the store keeps times in UTC to
// the microsecond.
var T0 = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("UTC+5", 5*3600))

var t0 = T0

func (s suite) testRequestSettle(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	inv := newInvoice(t, 3)

	got, err := st.RequestSettle(ctx, inv)
	if err != nil {
		t.Fatalf("request settle: %v", err)
	}
	if got.Sequence == 0 {
		t.Fatal("no sequence number assigned")
	}
	want := stored(inv, got.Sequence)
	assertInvoice(t, "request settle", got, want)

	fetched, err := st.Get(ctx, inv.Hash)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	assertInvoice(t, "get", fetched, want)

	again, err := st.RequestSettle(ctx, inv)
	if err != nil {
		t.Fatalf("repeated request settle: %v", err)
	}
	assertInvoice(t, "repeated request settle", again, want)

	other := inv
	other.HTLCs = newInvoice(t, 2).HTLCs
	other.SetID = setID(other.HTLCs)
	if _, err := st.RequestSettle(ctx, other); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("request settle of another set: got %v, want ErrConflict", err)
	}

	// An HTLC belongs to one invoice only.
	thief := newInvoice(t, 1)
	thief.HTLCs = append(thief.HTLCs, inv.HTLCs[0])
	thief.SetID = setID(thief.HTLCs)
	if _, err := st.RequestSettle(ctx, thief); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("request settle reusing an htlc: got %v, want ErrConflict", err)
	}
	if _, err := st.Get(ctx, thief.Hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
		t.Fatalf("conflicting request left a row behind: %v", err)
	}
	assertNoChange(t, st, want)
}

func (s suite) testRequestSettleConcurrent(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	inv := newInvoice(t, 2)
	const n = 8
	results := make([]domain.Invoice, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = st.RequestSettle(ctx, inv) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request settle #%d: %v", i, errs[i])
		}
		assertInvoice(t, "concurrent request settle", results[i], stored(inv, results[0].Sequence))
	}
}

func (s suite) testRequestSettleInvalid(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	for name, mutate := range map[string]func(*domain.Invoice){
		"status":   func(inv *domain.Invoice) { inv.Status = domain.StatusAccepted },
		"preimage": func(inv *domain.Invoice) { inv.Preimage[0] ^= 1 },
		"no htlcs": func(inv *domain.Invoice) { inv.HTLCs = nil },
	} {
		inv := newInvoice(t, 1)
		mutate(&inv)
		if _, err := st.RequestSettle(ctx, inv); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
}

func (s suite) testGetNotFound(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	hash := newInvoice(t, 1).Hash
	if _, err := st.Get(ctx, hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
		t.Fatalf("get: got %v, want ErrInvoiceNotFound", err)
	}
	_, err := st.Update(ctx, hash, func(*domain.Invoice) error {
		t.Error("update called fn for a missing invoice")
		return nil
	})
	if !errors.Is(err, domain.ErrInvoiceNotFound) {
		t.Fatalf("update: got %v, want ErrInvoiceNotFound", err)
	}
}

// Final returns an Update function applying lnd's final resolution of one
// HTLC, for tests of one implementation.
func Final(c domain.CircuitKey, settled bool, now time.Time) func(*domain.Invoice) error {
	return settle(c, settled, now)
}

// settle returns an Update function applying lnd's final resolution of one
// HTLC.
func settle(c domain.CircuitKey, settled bool, now time.Time) func(*domain.Invoice) error {
	return func(inv *domain.Invoice) error {
		_, err := inv.ApplyFinal(c, settled, now)
		return err
	}
}

func (s suite) testUpdateSettled(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	inv := newInvoice(t, 2)
	req, err := st.RequestSettle(ctx, inv)
	if err != nil {
		t.Fatalf("request settle: %v", err)
	}
	now := t0.Add(time.Minute)

	got, err := st.Update(ctx, inv.Hash, settle(inv.HTLCs[0].Circuit, true, now))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got.Status != domain.StatusSettleRequested || !got.FinalizedAt.IsZero() {
		t.Fatalf("after one of two htlcs: status %s, finalized %v", got.Status, got.FinalizedAt)
	}
	got, err = st.Update(ctx, inv.Hash, settle(inv.HTLCs[1].Circuit, true, now))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	want := stored(inv, req.Sequence)
	want.Status = domain.StatusSettled
	want.FinalizedAt = now.UTC().Truncate(time.Microsecond)
	for i := range want.HTLCs {
		want.HTLCs[i].Status = domain.HTLCSettled
	}
	assertInvoice(t, "update", got, want)
	assertNoChange(t, st, want)

	// lnd may report a final resolution twice.
	got, err = st.Update(ctx, inv.Hash, settle(inv.HTLCs[1].Circuit, true, now.Add(time.Hour)))
	if err != nil {
		t.Fatalf("repeated update: %v", err)
	}
	assertInvoice(t, "repeated update", got, want)
}

func (s suite) testUpdateFailed(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	inv := newInvoice(t, 2)
	if _, err := st.RequestSettle(ctx, inv); err != nil {
		t.Fatalf("request settle: %v", err)
	}
	now := t0.Add(time.Minute)
	wantFinal := now.Truncate(time.Microsecond)
	if _, err := st.Update(ctx, inv.Hash, settle(inv.HTLCs[0].Circuit, true, now)); err != nil {
		t.Fatalf("update: %v", err)
	}
	if _, err := st.Update(ctx, inv.Hash, settle(inv.HTLCs[1].Circuit, false, now)); err != nil {
		t.Fatalf("update: %v", err)
	}
	got, err := st.Get(ctx, inv.Hash)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Status != domain.StatusFailed || !got.FinalizedAt.Equal(wantFinal) || !got.PartiallySettled() {
		t.Fatalf("got status %s finalized %v partially settled %v; want a partially settled failure at %v",
			got.Status, got.FinalizedAt, got.PartiallySettled(), wantFinal)
	}
	for _, h := range got.HTLCs {
		want := domain.HTLCFailed
		if h.Circuit == inv.HTLCs[0].Circuit {
			want = domain.HTLCSettled
		}
		if h.Status != want {
			t.Errorf("htlc %s is %s, want %s", h.Circuit, h.Status, want)
		}
	}
}

func (s suite) testUpdateRefused(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	inv := newInvoice(t, 2)
	req, err := st.RequestSettle(ctx, inv)
	if err != nil {
		t.Fatalf("request settle: %v", err)
	}

	boom := errors.New("boom")
	_, err = st.Update(ctx, inv.Hash, func(inv *domain.Invoice) error {
		inv.Status = domain.StatusSettled
		inv.HTLCs[0].Status = domain.HTLCSettled
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update with failing fn: got %v, want its error", err)
	}
	assertNoChange(t, st, req)

	for name, mutate := range map[string]func(*domain.Invoice){
		"set id":      func(inv *domain.Invoice) { inv.SetID[0] ^= 1 },
		"amount":      func(inv *domain.Invoice) { inv.AmountPaid++ },
		"htlc":        func(inv *domain.Invoice) { inv.HTLCs[0].Circuit.HTLC++ },
		"htlc count":  func(inv *domain.Invoice) { inv.HTLCs = inv.HTLCs[:1] },
		"memory only": func(inv *domain.Invoice) { inv.Status = domain.StatusCancelled },
	} {
		_, err := st.Update(ctx, inv.Hash, func(inv *domain.Invoice) error {
			inv.HTLCs[1].Status = domain.HTLCSettled
			mutate(inv)
			return nil
		})
		if !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("update changing the %s: got %v, want ErrInvalidArgument", name, err)
		}
	}
	assertNoChange(t, st, req)
}

func (s suite) testUpdateConcurrent(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	const n = 8
	inv := newInvoice(t, n)
	if _, err := st.RequestSettle(ctx, inv); err != nil {
		t.Fatalf("request settle: %v", err)
	}
	// Each goroutine resolves its own HTLC. The invoice only becomes
	// Settled if the last Update sees all the others: a lost update leaves
	// it SettleRequested or an HTLC pending.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = st.Update(ctx, inv.Hash, settle(inv.HTLCs[i].Circuit, true, t0))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update #%d: %v", i, err)
		}
	}
	got, err := st.Get(ctx, inv.Hash)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	for _, h := range got.HTLCs {
		if h.Status != domain.HTLCSettled {
			t.Errorf("htlc %s is %s: an update was lost", h.Circuit, h.Status)
		}
	}
	if got.Status != domain.StatusSettled {
		t.Errorf("status %s, want settled: an update saw stale htlcs", got.Status)
	}
}

func (s suite) testListPending(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	if got, err := st.ListPending(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty store: got %d invoices, err %v", len(got), err)
	}
	var want []domain.Invoice
	for i := range 4 {
		inv := newInvoice(t, 1+i%2)
		req, err := st.RequestSettle(ctx, inv)
		if err != nil {
			t.Fatalf("request settle: %v", err)
		}
		if i == 1 {
			for _, h := range inv.HTLCs {
				if _, err := st.Update(ctx, inv.Hash, settle(h.Circuit, false, t0)); err != nil {
					t.Fatalf("update: %v", err)
				}
			}
			continue
		}
		want = append(want, req)
	}
	got, err := st.ListPending(ctx)
	if err != nil {
		t.Fatalf("list pending: %v", err)
	}
	assertInvoices(t, "list pending", got, want)
}

func (s suite) testListUnexpired(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	var hashes []domain.PaymentHash
	expiries := map[domain.PaymentHash]time.Time{}
	for _, d := range []time.Duration{time.Hour, -time.Hour, 2 * time.Hour} {
		inv := newInvoice(t, 1)
		inv.Expiry = t0.Add(d)
		expiries[inv.Hash] = inv.Expiry
		if _, err := st.RequestSettle(ctx, inv); err != nil {
			t.Fatalf("request settle: %v", err)
		}
		hashes = append(hashes, inv.Hash)
	}
	// The settled invoice stays listed: a payer may still send HTLCs to it.
	if _, err := st.Update(ctx, hashes[0], settle(mustGet(t, st, hashes[0]).HTLCs[0].Circuit, true, t0)); err != nil {
		t.Fatalf("update: %v", err)
	}
	for _, tc := range []struct {
		at   time.Time
		want []domain.PaymentHash
	}{
		{t0.Add(-2 * time.Hour), hashes},
		{t0, []domain.PaymentHash{hashes[0], hashes[2]}},
		// Another zone and the exact expiry instant: still excluded.
		{t0.Add(time.Hour).In(time.FixedZone("UTC-7", -7*3600)), []domain.PaymentHash{hashes[2]}},
		{t0.Add(90 * time.Minute).UTC(), []domain.PaymentHash{hashes[2]}},
		{t0.Add(3 * time.Hour), nil},
	} {
		got, err := st.ListUnexpired(ctx, tc.at)
		if err != nil {
			t.Fatalf("list unexpired at %v: %v", tc.at, err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("list unexpired at %v: got %d hashes, want %d", tc.at, len(got), len(tc.want))
		}
		for i := range got {
			if got[i].Hash != tc.want[i] {
				t.Fatalf("list unexpired at %v: hash #%d is %s, want %s", tc.at, i, got[i].Hash, tc.want[i])
			}
			if !got[i].Expiry.Equal(expiries[tc.want[i]].Truncate(time.Microsecond)) {
				t.Fatalf("list unexpired at %v: expiry #%d is %v, want %v", tc.at, i, got[i].Expiry, expiries[tc.want[i]])
			}
		}
	}
}

func (s suite) testListPaging(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	var all []domain.Invoice
	for i := range 5 {
		req, err := st.RequestSettle(ctx, newInvoice(t, 1+i%3))
		if err != nil {
			t.Fatalf("request settle: %v", err)
		}
		if len(all) > 0 && req.Sequence <= all[len(all)-1].Sequence {
			t.Fatalf("sequence %d after %d: not increasing", req.Sequence, all[len(all)-1].Sequence)
		}
		all = append(all, req)
	}
	var paged []domain.Invoice
	from := uint64(0)
	for range 10 {
		page, err := st.List(ctx, from, 2)
		if err != nil {
			t.Fatalf("list from %d: %v", from, err)
		}
		if len(page) > 2 {
			t.Fatalf("list from %d: %d invoices, limit 2", from, len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		from = page[len(page)-1].Sequence + 1
	}
	assertInvoices(t, "paged list", paged, all)

	page, err := st.List(ctx, all[2].Sequence, 100)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	assertInvoices(t, "list from the third", page, all[2:])
	for _, from := range []uint64{all[4].Sequence + 1, math.MaxInt64 + 1, math.MaxUint64} {
		if page, err := st.List(ctx, from, 10); err != nil || len(page) != 0 {
			t.Fatalf("list from %d: got %d invoices, err %v; want none", from, len(page), err)
		}
	}
	if page, err := st.List(ctx, 0, 0); err != nil || len(page) != 0 {
		t.Fatalf("list with limit 0: got %d invoices, err %v; want none", len(page), err)
	}
	if _, err := st.List(ctx, 0, -1); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Fatalf("list with limit -1: got %v, want ErrInvalidArgument", err)
	}
}

func (s suite) testLargeIDs(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	inv := newInvoice(t, 3)
	inv.HTLCs[0].Circuit.Chan = math.MaxUint64
	inv.HTLCs[0].Circuit.HTLC = math.MaxUint64
	inv.HTLCs[1].Circuit.Chan = 1<<63 + 42
	inv.HTLCs[1].Circuit.HTLC = 1 << 63
	inv.HTLCs[2].Circuit.Chan = math.MaxInt64
	inv.HTLCs[2].Circuit.HTLC = 0
	inv.SetID = setID(inv.HTLCs)
	req, err := st.RequestSettle(ctx, inv)
	if err != nil {
		t.Fatalf("request settle: %v", err)
	}
	assertInvoice(t, "request settle", mustGet(t, st, inv.Hash), stored(inv, req.Sequence))
	// The ids must also match in Update's WHERE clause.
	got, err := st.Update(ctx, inv.Hash, settle(inv.HTLCs[0].Circuit, true, t0))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	assertInvoice(t, "update", mustGet(t, st, inv.Hash), got)
	for _, h := range got.HTLCs {
		if want := h.Circuit == inv.HTLCs[0].Circuit; (h.Status == domain.HTLCSettled) != want {
			t.Errorf("htlc %d:%d is %s", h.Circuit.Chan, h.Circuit.HTLC, h.Status)
		}
	}
}

func testLeader(t *testing.T, leader ports.Leader) {
	ctx := t.Context()
	lost, release, err := leader.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	defer release()

	// A second lnmux waits while the first holds the lock.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, rel, err := leader.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		if rel != nil {
			rel()
		}
		t.Fatalf("second acquire while held: got %v, want context.DeadlineExceeded", err)
	}

	type result struct {
		release func()
		err     error
	}
	second := make(chan result, 1)
	go func() {
		_, rel, err := leader.Acquire(ctx)
		second <- result{rel, err}
	}()
	select {
	case r := <-second:
		if r.release != nil {
			r.release()
		}
		t.Fatalf("second acquire returned while the lock is held: %v", r.err)
	case <-lost:
		t.Fatal("lost the lock while holding it")
	case <-time.After(500 * time.Millisecond):
	}

	release()
	release() // idempotent
	select {
	case r := <-second:
		if r.err != nil {
			t.Fatalf("second acquire after release: %v", r.err)
		}
		r.release()
	case <-time.After(30 * time.Second):
		t.Fatal("second acquire still waiting after release")
	}
}

func mustGet(t *testing.T, st ports.InvoiceStore, hash domain.PaymentHash) domain.Invoice {
	t.Helper()
	inv, err := st.Get(t.Context(), hash)
	if err != nil {
		t.Fatalf("get %s: %v", hash, err)
	}
	return inv
}

// NewInvoice returns a settle request with n HTLCs on distinct nodes, for
// tests of one implementation.
func NewInvoice(t testing.TB, n int) domain.Invoice { return newInvoice(t, n) }

// newInvoice returns a settle request with n HTLCs on distinct nodes.
func newInvoice(t testing.TB, n int) domain.Invoice {
	t.Helper()
	var pre domain.Preimage
	_, _ = rand.Read(pre[:])
	inv := domain.Invoice{
		Hash:              pre.Hash(),
		Preimage:          pre,
		Amount:            domain.Msat(1000 * n),
		Status:            domain.StatusSettleRequested,
		Expiry:            t0.Add(time.Hour),
		SettleRequestedAt: t0,
	}
	for i := range n {
		var k domain.NodeKey
		_, _ = rand.Read(k[:])
		k[0] = 2
		var ids [2]uint64
		for j := range ids {
			var b [4]byte
			_, _ = rand.Read(b[:])
			ids[j] = uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24
		}
		h := domain.SettledHTLC{
			Circuit: domain.CircuitKey{Node: k, Chan: ids[0], HTLC: ids[1]},
			Amount:  domain.Msat(1000 + i),
		}
		inv.HTLCs = append(inv.HTLCs, h)
		inv.AmountPaid += h.Amount
	}
	inv.SetID = setID(inv.HTLCs)
	return inv
}

func setID(htlcs []domain.SettledHTLC) domain.SetID {
	keys := make([]domain.CircuitKey, len(htlcs))
	for i, h := range htlcs {
		keys[i] = h.Circuit
	}
	return domain.NewSetID(keys)
}

// stored is inv as the store gives it back: times in UTC to the
// microsecond, HTLCs in circuit order, the given sequence number.
func stored(inv domain.Invoice, seq uint64) domain.Invoice {
	out := inv
	out.Sequence = seq
	out.Expiry = inv.Expiry.UTC().Truncate(time.Microsecond)
	out.SettleRequestedAt = inv.SettleRequestedAt.UTC().Truncate(time.Microsecond)
	if !inv.FinalizedAt.IsZero() {
		out.FinalizedAt = inv.FinalizedAt.UTC().Truncate(time.Microsecond)
	}
	out.HTLCs = append([]domain.SettledHTLC(nil), inv.HTLCs...)
	slices.SortFunc(out.HTLCs, func(a, b domain.SettledHTLC) int { return a.Circuit.Compare(b.Circuit) })
	return out
}

func assertNoChange(t *testing.T, st ports.InvoiceStore, want domain.Invoice) {
	t.Helper()
	assertInvoice(t, "stored invoice", mustGet(t, st, want.Hash), want)
}

func assertInvoices(t *testing.T, what string, got, want []domain.Invoice) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d invoices, want %d", what, len(got), len(want))
	}
	for i := range got {
		assertInvoice(t, what, got[i], want[i])
	}
}

func assertInvoice(t *testing.T, what string, got, want domain.Invoice) {
	t.Helper()
	type cmp struct {
		field     string
		got, want any
	}
	checks := []cmp{
		{"hash", got.Hash, want.Hash},
		{"preimage", got.Preimage, want.Preimage},
		{"amount", got.Amount, want.Amount},
		{"amount paid", got.AmountPaid, want.AmountPaid},
		{"set id", got.SetID, want.SetID},
		{"status", got.Status, want.Status},
		{"sequence", got.Sequence, want.Sequence},
		{"htlc count", len(got.HTLCs), len(want.HTLCs)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Fatalf("%s: %s is %v, want %v", what, c.field, c.got, c.want)
		}
	}
	for _, c := range []struct {
		field     string
		got, want time.Time
	}{
		{"expiry", got.Expiry, want.Expiry},
		{"settle requested at", got.SettleRequestedAt, want.SettleRequestedAt},
		{"finalized at", got.FinalizedAt, want.FinalizedAt},
	} {
		if !c.got.Equal(c.want) || c.got.Location() != time.UTC && !c.got.IsZero() {
			t.Fatalf("%s: %s is %v, want %v in UTC", what, c.field, c.got, c.want)
		}
	}
	for i := range got.HTLCs {
		if got.HTLCs[i] != want.HTLCs[i] {
			t.Fatalf("%s: htlc #%d is %+v, want %+v", what, i, got.HTLCs[i], want.HTLCs[i])
		}
	}
}

// AssertFenced checks that old, a store whose leadership cur has taken
// over (a newer fencing epoch), can no longer write, and that cur can:
// old's settle request, its update of stored and its cancel are refused
// with ErrNotLeader and leave nothing behind; cur's succeed.
func AssertFenced(t *testing.T, old, cur ports.InvoiceStore, stored domain.Invoice) {
	t.Helper()
	ctx := t.Context()
	fresh := newInvoice(t, 1)
	if _, err := old.RequestSettle(ctx, fresh); !errors.Is(err, domain.ErrNotLeader) {
		t.Fatalf("request settle of the old leader: got %v, want ErrNotLeader", err)
	}
	if _, err := cur.Get(ctx, fresh.Hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
		t.Fatalf("refused request settle of the old leader left a row: got %v, want ErrInvoiceNotFound", err)
	}
	if _, err := old.Update(ctx, stored.Hash, settle(stored.HTLCs[0].Circuit, true, t0)); !errors.Is(err, domain.ErrNotLeader) {
		t.Fatalf("update of the old leader: got %v, want ErrNotLeader", err)
	}
	if got := mustGet(t, old, stored.Hash); got.HTLCs[0].Status != domain.HTLCPending && got.HTLCs[1].Status != domain.HTLCPending {
		t.Fatalf("refused update of the old leader changed the invoice: HTLC statuses %v and %v, want both pending", got.HTLCs[0].Status, got.HTLCs[1].Status)
	}
	if _, err := cur.RequestSettle(ctx, fresh); err != nil {
		t.Fatalf("request settle of the new leader: %v", err)
	}
	if _, err := cur.Update(ctx, stored.Hash, settle(stored.HTLCs[0].Circuit, true, t0)); err != nil {
		t.Fatalf("update of the new leader: %v", err)
	}
	AssertCancelFenced(t, old, cur)
}
