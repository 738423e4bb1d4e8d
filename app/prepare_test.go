package app

import (
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/ports"
)

// TestPreparedOnionIsUsedAndChecked: an onion peeled ahead by PrepareHTLC
// (as the lnd adapter does on its workers) leads to the same decision as
// one peeled on the HTLC path; a prepared value made for another HTLC is
// never trusted; an HTLC that is not for lnmux is not peeled at all.
func TestPreparedOnionIsUsedAndChecked(t *testing.T) {
	h := newHarness(t, 2, nil)
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv := h.invoice(10000, time.Hour)
	p1 := h.build(inv, part{node: a, amount: 6000, total: 10000})
	p2 := h.build(inv, part{node: b, amount: 4000, total: 10000})

	p1.htlc.Prepared = h.mux.PrepareHTLC(p1.htlc)
	if _, ok := p1.htlc.Prepared.(*peeledOnion); !ok {
		t.Fatalf("PrepareHTLC = %T, want a peeled onion", p1.htlc.Prepared)
	}
	h.send(p1)
	a.none(t)
	// p2 carries the value prepared for p1 (another onion): it must be
	// peeled again, or its amount would be read from p1's onion.
	p2.htlc.Prepared = p1.htlc.Prepared
	h.send(p2)
	ev := nextAccepted(t, acc)
	if ev.Amount != 10000 {
		t.Fatalf("accepted %s, want 10000 msat from parts of 6000 and 4000", ev.Amount)
	}

	// A garbage onion prepared ahead fails as it does on the path.
	inv2 := h.invoice(10000, time.Hour)
	bad := h.build(inv2, part{node: a, amount: 10000})
	bad.htlc.Onion[40] ^= 0xff
	bad.htlc.Prepared = h.mux.PrepareHTLC(bad.htlc)
	h.send(bad)
	if r := a.next(t); r.Action != ports.ActionFail || r.FailureCode != uint16(lnwire.CodeInvalidOnionHmac) {
		t.Fatalf("garbage onion answered %+v, want FAIL with invalid_onion_hmac", r)
	}

	notUs := h.build(inv2, part{node: a, amount: 10000, chanID: 12345})
	if p := h.mux.PrepareHTLC(notUs.htlc); p != nil {
		t.Fatalf("PrepareHTLC of an ordinary forward = %v, want nil (nothing to peel)", p)
	}
}
