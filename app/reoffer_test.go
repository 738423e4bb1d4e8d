package app

import (
	"testing"
	"time"
)

// Found by the simulation's blinded parts, which carry lnd's real CLTV
// budget: a new incarnation judged a held part lnd offers again against the
// invoice's min_final_cltv_expiry, so a restart or failover more than 3
// blocks after a part arrived failed it (and its set), where lnd's own
// registry keeps an HTLC it accepted (invoices/update.go checks the expiry
// only for a new HTLC). lnmux now enforces the reject delta only
// (docs/design.md, "Checks"); TestSwapSetSurvivesRestartBlocksLater is the
// money case.

// TestReofferAfterRestartFewBlocksLater: a part held in a collecting set,
// lnmux restarts (or a successor takes over) four blocks later, lnd
// re-offers the part: the new incarnation judges it anew against the
// arrival rule (expiry >= height + final CLTV delta), and a blinded part
// carries only the path's 3 blocks of padding beyond that delta.
func TestReofferAfterRestartFewBlocksLater(t *testing.T) {
	h := newHarness(t, 2, nil)
	a := h.nodes[0]
	_, dec := h.blindedInvoice(10_000, time.Hour)
	s, _ := h.buildBlinded(dec, blindedPart{node: a, amount: 6_000, total: 10_000})
	h.send(s)
	a.none(t)
	h.height += 4
	h.restart()
	h.send(s)
	a.none(t)
}

// The same for a plain invoice paid by lnd's payer, whose final CLTV is
// height + min_final_cltv_expiry + 3 (routing/payment_session.go,
// BlockPadding).
func TestPlainReofferAfterRestartFewBlocksLater(t *testing.T) {
	h := newHarness(t, 2, nil)
	a := h.nodes[0]
	inv := h.invoice(10_000, time.Hour)
	s := h.build(inv, part{node: a, amount: 6_000, total: 10_000, expiry: h.height + h.mux.cfg.FinalCLTVDelta + 3})
	h.send(s)
	a.none(t)
	h.height += 4
	h.restart()
	h.send(s)
	a.none(t)
}
