package app

import (
	"errors"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// A cancel reported OK is never undone by the next leader: the HTLC whose
// FAIL was lost (the stream broke) is offered again to a new lnmux over
// the same store, which fails it again instead of accepting the set anew
// (issue 17, review scenario 5; docs/design.md, "Cancels").
func TestCancelSurvivesRestart(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, p, ev := h.acceptedPayment(t, acc, n)
	n.down.Store(true) // the FAIL is lost
	if err := h.mux.CancelInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	n.down.Store(false)
	h.restart()
	acc = h.subscribe()
	h.send(p) // lnd re-offers it to the new leader
	r := n.next(t)
	if r.Action != ports.ActionFail {
		t.Fatalf("re-offered htlc of a cancelled set: %s, want fail", r.Action)
	}
	select {
	case ev := <-acc:
		t.Fatalf("the cancelled set was accepted again: %+v", ev)
	default:
	}
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); !errors.Is(err, domain.ErrSetNotFound) {
		t.Fatalf("settle of the cancelled set after a restart: %v, want set not found", err)
	}
}

// A cancel is reported done only once recorded: with the store down the
// caller learns that the outcome is not known yet, and a repeat succeeds
// once the store is back.
func TestCancelReportedOnlyWhenRecorded(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, _, ev := h.acceptedPayment(t, acc, n)
	h.store.mu.Lock()
	h.store.unavailable = errors.New("connection refused")
	h.store.mu.Unlock()
	if err := h.mux.CancelInvoice(cancelled(), inv.Hash, ev.SetID); !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("cancel with the store down: %v, want outcome unknown", err)
	}
	// The HTLCs are failed at once all the same: nobody was told the set
	// is cancelled, so a crash now undoes nothing reported.
	if r := n.next(t); r.Action != ports.ActionFail {
		t.Fatalf("%+v, want fail", r)
	}
	h.quiet()
	h.store.mu.Lock()
	h.store.unavailable = nil
	h.store.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- h.mux.CancelInvoice(ctx, inv.Hash, ev.SetID) }()
	h.clock.Advance(time.Minute) // the write's retry
	if err := <-errc; err != nil {
		t.Fatalf("repeated cancel once the store is back: %v", err)
	}
}

// A permanent cancel makes the hash unpayable, in this process and the
// next: every later HTLC is failed as unknown, and no set of it is
// accepted or settled.
func TestPermanentCancel(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	if err := h.mux.CancelInvoicePermanently(ctx, inv.Hash); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		s := h.build(inv, part{node: n, amount: 10000})
		h.send(s)
		r := n.next(t)
		if _, ok := h.failure(s, r).(*lnwire.FailIncorrectDetails); !ok {
			t.Fatalf("payment %d of a permanently cancelled invoice: %v, want incorrect details", i, h.failure(s, r))
		}
		select {
		case ev := <-acc:
			t.Fatalf("accepted: %+v", ev)
		default:
		}
		h.restart()
		acc = h.subscribe()
	}
	// Idempotent.
	if err := h.mux.CancelInvoicePermanently(ctx, inv.Hash); err != nil {
		t.Fatal(err)
	}
	// A paid invoice cannot be cancelled permanently.
	inv2, _, ev2 := h.acceptedPayment(t, acc, n)
	if err := h.mux.SettleInvoice(ctx, inv2.Hash, ev2.SetID); err != nil {
		t.Fatal(err)
	}
	n.next(t)
	if err := h.mux.CancelInvoicePermanently(ctx, inv2.Hash); !errors.Is(err, domain.ErrSettleRequested) {
		t.Fatalf("permanent cancel of a paid invoice: %v, want settle requested", err)
	}
}
