package storetest

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// The contract of ports.InvoiceEventLog, run by RunInvoiceStore: every
// status change of a stored invoice, and nothing else, is logged once, in
// the order of the changes, with the invoice's set, amounts and sequence
// number; reading pages by cursor.

func eventLog(t *testing.T, st ports.InvoiceStore) ports.InvoiceEventLog {
	t.Helper()
	log, ok := st.(ports.InvoiceEventLog)
	if !ok {
		t.Fatalf("%T does not implement ports.InvoiceEventLog", st)
	}
	return log
}

func listEvents(t *testing.T, log ports.InvoiceEventLog, after uint64, limit int) []ports.InvoiceEvent {
	t.Helper()
	evs, err := log.ListEvents(t.Context(), after, limit)
	if err != nil {
		t.Fatalf("list events after %d: %v", after, err)
	}
	return evs
}

// wantEvent is the event of inv's current status.
func wantEvent(inv domain.Invoice) ports.InvoiceEvent {
	at := inv.SettleRequestedAt
	if inv.Status.IsFinal() {
		at = inv.FinalizedAt
	}
	return ports.InvoiceEvent{
		Hash: inv.Hash, Status: inv.Status, SetID: inv.SetID, Amount: inv.Amount,
		AmountPaid: inv.AmountPaid, Sequence: inv.Sequence, At: at.UTC().Truncate(time.Microsecond),
	}
}

func assertEvents(t *testing.T, what string, got, want []ports.InvoiceEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events %+v, want %d", what, len(got), got, len(want))
	}
	var last uint64
	for i := range got {
		if got[i].Cursor <= last {
			t.Errorf("%s: event %d has cursor %d after %d", what, i, got[i].Cursor, last)
		}
		last = got[i].Cursor
		g, w := got[i], want[i] //nolint:gosec // the lengths are equal: checked above
		g.Cursor, w.Cursor = 0, 0
		if g.At.Location() != time.UTC {
			t.Errorf("%s: event %d time %v is not UTC", what, i, g.At)
		}
		if !g.At.Equal(w.At) {
			t.Errorf("%s: event %d at %v, want %v", what, i, g.At, w.At)
		}
		g.At, w.At = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("%s: event %d is %+v, want %+v", what, i, g, w)
		}
	}
}

func (s suite) testEventLog(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	log := eventLog(t, st)
	if evs := listEvents(t, log, 0, 10); len(evs) != 0 {
		t.Fatalf("new store logs %d events", len(evs))
	}

	a, b := newInvoice(t, 2), newInvoice(t, 1)
	sa, err := st.RequestSettle(ctx, a)
	if err != nil {
		t.Fatalf("request settle a: %v", err)
	}
	sb, err := st.RequestSettle(ctx, b)
	if err != nil {
		t.Fatalf("request settle b: %v", err)
	}
	// Neither an idempotent repeat nor a refused request is a change.
	if _, err := st.RequestSettle(ctx, a); err != nil {
		t.Fatalf("repeated request settle: %v", err)
	}
	other := a
	other.HTLCs = newInvoice(t, 1).HTLCs
	other.SetID = setID(other.HTLCs)
	if _, err := st.RequestSettle(ctx, other); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("request settle of another set: got %v, want ErrConflict", err)
	}
	now := t0.Add(time.Minute)
	// An HTLC's outcome without a status change is not logged; a failing
	// fn writes nothing.
	if _, err := st.Update(ctx, a.Hash, settle(a.HTLCs[0].Circuit, true, now)); err != nil {
		t.Fatalf("update: %v", err)
	}
	boom := errors.New("boom")
	if _, err := st.Update(ctx, b.Hash, func(inv *domain.Invoice) error {
		_, _ = inv.ApplyFinal(b.HTLCs[0].Circuit, true, now)
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("update with failing fn: got %v, want its error", err)
	}
	fa, err := st.Update(ctx, a.Hash, settle(a.HTLCs[1].Circuit, true, now))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	fb, err := st.Update(ctx, b.Hash, settle(b.HTLCs[0].Circuit, false, now.Add(time.Second)))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	// lnd reporting a final twice changes nothing.
	if _, err := st.Update(ctx, a.Hash, settle(a.HTLCs[1].Circuit, true, now.Add(time.Hour))); err != nil {
		t.Fatalf("repeated update: %v", err)
	}
	want := []ports.InvoiceEvent{wantEvent(sa), wantEvent(sb), wantEvent(fa), wantEvent(fb)}
	all := listEvents(t, log, 0, 100)
	assertEvents(t, "whole log", all, want)
	if fa.Status != domain.StatusSettled || fb.Status != domain.StatusFailed {
		t.Fatalf("final statuses %s, %s", fa.Status, fb.Status)
	}

	// Paging by cursor: after the last one handled.
	assertEvents(t, "page after the first", listEvents(t, log, all[0].Cursor, 2), want[1:3])
	assertEvents(t, "page after the third", listEvents(t, log, all[2].Cursor, 10), want[3:])
	assertEvents(t, "after the last", listEvents(t, log, all[3].Cursor, 10), nil)
	assertEvents(t, "after a skipped cursor", listEvents(t, log, all[0].Cursor+(all[1].Cursor-all[0].Cursor)/2, 1), want[1:2])
	assertEvents(t, "limit 0", listEvents(t, log, 0, 0), nil)
	assertEvents(t, "after the largest cursor", listEvents(t, log, math.MaxUint64, 10), nil)
	assertEvents(t, "after MaxInt64", listEvents(t, log, math.MaxInt64, 10), nil)
	if _, err := log.ListEvents(ctx, 0, -1); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Errorf("negative limit: got %v, want ErrInvalidArgument", err)
	}
}

// testEventLogConcurrent: writers of one store settle and finalise
// invoices concurrently; the log holds each change once, in cursor order,
// and each invoice's settle request before its final status.
func (s suite) testEventLogConcurrent(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	log := eventLog(t, st)
	const n = 16
	invs := make([]domain.Invoice, n)
	for i := range invs {
		invs[i] = newInvoice(t, 2)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, inv := range invs {
		wg.Go(func() {
			if _, err := st.RequestSettle(ctx, inv); err != nil {
				errs[i] = err
				return
			}
			for j, h := range inv.HTLCs {
				if _, err := st.Update(ctx, inv.Hash, settle(h.Circuit, i%3 != 0 || j == 0, t0)); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	var evs []ports.InvoiceEvent
	for after := uint64(0); ; {
		page := listEvents(t, log, after, 5)
		if len(page) == 0 {
			break
		}
		evs = append(evs, page...)
		after = page[len(page)-1].Cursor
	}
	if len(evs) != 2*n {
		t.Fatalf("%d events, want %d", len(evs), 2*n)
	}
	seen := map[domain.PaymentHash][]domain.InvoiceStatus{}
	for i, ev := range evs {
		if i > 0 && ev.Cursor <= evs[i-1].Cursor {
			t.Errorf("cursor %d after %d", ev.Cursor, evs[i-1].Cursor)
		}
		seen[ev.Hash] = append(seen[ev.Hash], ev.Status)
	}
	for i, inv := range invs {
		final := domain.StatusSettled
		if i%3 == 0 {
			final = domain.StatusFailed
		}
		got := seen[inv.Hash]
		if len(got) != 2 || got[0] != domain.StatusSettleRequested || got[1] != final {
			t.Errorf("invoice %d: logged %v, want [settle_requested %s]", i, got, final)
		}
	}
}
