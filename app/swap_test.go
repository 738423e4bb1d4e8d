package app

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// A swap's invoice: the application chose the payment hash and alone knows
// the preimage (docs/api.md, "Swap invoices").
func swapInvoice(t *testing.T, h *harness, amt domain.Msat, acceptTimeout time.Duration) (ports.AddInvoiceResult, domain.Preimage) {
	t.Helper()
	preimage := domain.Preimage(sha256.Sum256([]byte(t.Name())))
	hash := preimage.Hash()
	inv, err := h.mux.AddInvoice(ctx, ports.AddInvoiceRequest{Amount: amt, Expiry: time.Hour, PaymentHash: &hash, AcceptTimeout: acceptTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Hash != hash || inv.Preimage != (domain.Preimage{}) {
		t.Fatalf("invoice hash %s preimage %x, want the caller's hash and no preimage", inv.Hash, inv.Preimage)
	}
	return inv, preimage
}

func notStored(t *testing.T, h *harness, hash domain.PaymentHash) {
	t.Helper()
	if inv, err := h.store.Get(ctx, hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
		t.Fatalf("stored %+v (err %v), want nothing stored", inv.Status, err)
	}
}

func TestSwapInvoiceSettlesWithTheApplicationsPreimage(t *testing.T) {
	h := newHarness(t, 2, nil)
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv, preimage := swapInvoice(t, h, 10000, 10*time.Minute)
	sa := h.build(inv, part{node: a, amount: 6000, total: 10000, htlcID: 1})
	sb := h.build(inv, part{node: b, amount: 4000, total: 10000, htlcID: 1})
	h.send(sa)
	h.send(sb)
	ev := nextAccepted(t, acc)
	if ev.Hash != inv.Hash || ev.Amount != 10000 {
		t.Fatalf("accepted %+v", ev)
	}

	// Without the preimage, or with a wrong one: refused, nothing stored,
	// nothing answered, the set still accepted and settleable.
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Fatalf("settle without preimage: %v, want ErrInvalidArgument", err)
	}
	wrong := domain.Preimage{1}
	if err := h.mux.SettleInvoiceWithPreimage(ctx, inv.Hash, ev.SetID, wrong); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Fatalf("settle with a wrong preimage: %v, want ErrInvalidArgument", err)
	}
	notStored(t, h, inv.Hash)
	a.none(t)
	b.none(t)
	if l, err := h.mux.LookupInvoice(ctx, inv.Hash); err != nil || l.SetID != ev.SetID || l.Parts != 2 {
		t.Fatalf("lookup after refusals: %+v %v", l, err)
	}

	// The default accept timeout (60 s) does not apply: the invoice asked
	// for ten minutes.
	h.clock.Advance(5 * time.Minute)
	a.none(t)
	b.none(t)

	// The preimage became known (the swap's on-chain side): settle.
	if err := h.mux.SettleInvoiceWithPreimage(ctx, inv.Hash, ev.SetID, preimage); err != nil {
		t.Fatal(err)
	}
	ra, rb := a.next(t), b.next(t)
	for _, r := range []ports.Resolution{ra, rb} {
		if r.Action != ports.ActionSettle || r.Preimage != preimage {
			t.Fatalf("resolution %+v, want settle with the application's preimage", r)
		}
	}
	stored, err := h.store.Get(ctx, inv.Hash)
	if err != nil || stored.Preimage != preimage || stored.Status != domain.StatusSettleRequested {
		t.Fatalf("stored %+v %v", stored.Status, err)
	}
	// Idempotent, with or without the preimage once committed; a wrong one
	// is still refused.
	if err := h.mux.SettleInvoiceWithPreimage(ctx, inv.Hash, ev.SetID, preimage); err != nil {
		t.Fatal(err)
	}
	if err := h.mux.SettleInvoiceWithPreimage(ctx, inv.Hash, ev.SetID, wrong); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Fatalf("wrong preimage after commit: %v", err)
	}

	// A crash: lnd re-offers both, and they are settled with the stored
	// preimage.
	h.restart()
	h.send(sa)
	h.send(sb)
	for _, n := range []*fakeNode{a, b} {
		if r := n.next(t); r.Action != ports.ActionSettle || r.Preimage != preimage {
			t.Fatalf("after restart: %+v", r)
		}
	}
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: ra.Circuit, Settled: true})
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: rb.Circuit, Settled: true})
	if st, err := h.mux.WaitForFinalStatus(ctx, inv.Hash); err != nil || st != domain.StatusSettled {
		t.Fatalf("final %v %v", st, err)
	}
}

func TestSwapInvoiceAcceptTimeout(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, preimage := swapInvoice(t, h, 10000, 5*time.Minute)
	s := h.build(inv, part{node: n, amount: 10000})
	h.send(s)
	ev := nextAccepted(t, acc)
	if l, err := h.mux.LookupInvoice(ctx, inv.Hash); err != nil || !l.AcceptDeadline.Equal(h.clock.Now().Add(5*time.Minute)) {
		t.Fatalf("deadline %v (err %v), want now + 5 min", l.AcceptDeadline, err)
	}
	h.clock.Advance(5*time.Minute - time.Second)
	n.none(t)
	h.clock.Advance(2 * time.Second)
	if !isIncorrectDetails(h.failure(s, n.next(t))) {
		t.Fatal("want incorrect_or_unknown_payment_details at the invoice's accept timeout")
	}
	if err := h.mux.SettleInvoiceWithPreimage(ctx, inv.Hash, ev.SetID, preimage); !errors.Is(err, domain.ErrSetNotFound) {
		t.Fatalf("settle after timeout: %v", err)
	}
	notStored(t, h, inv.Hash)
}

// lnd's auto-fail height minus the margin still ends the set, however long
// the invoice's accept timeout (I4).
func TestSwapInvoiceAutoFailMarginBoundsTheTimeout(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, _ := swapInvoice(t, h, 10000, domain.MaxAcceptTimeout)
	s := h.build(inv, part{node: n, amount: 10000, autoFail: h.height + 50})
	h.send(s)
	nextAccepted(t, acc)
	h.mux.BlockHeight(ctx, n.key, h.height+39)
	n.none(t)
	h.mux.BlockHeight(ctx, n.key, h.height+40)
	if !isIncorrectDetails(h.failure(s, n.next(t))) {
		t.Fatal("set near auto-fail height not cancelled")
	}
	notStored(t, h, inv.Hash)
}

// The address binds the hash: an HTLC for another hash naming a swap
// invoice's payment address is refused as unknown; so is one naming
// another address of the same hash while a set collects.
func TestSwapInvoiceAddressBindsTheHash(t *testing.T) {
	h := newHarness(t, 1, nil)
	h.subscribe()
	n := h.nodes[0]
	inv, _ := swapInvoice(t, h, 10000, time.Hour)
	other := inv
	other.Hash = domain.Preimage{7}.Hash()
	s := h.build(other, part{node: n, amount: 10000})
	h.send(s)
	if !isIncorrectDetails(h.failure(s, n.next(t))) {
		t.Fatal("htlc for another hash accepted")
	}

	// Same hash, other terms: a second address. A set started with one
	// does not take parts naming the other.
	inv2, err := h.mux.AddInvoice(ctx, ports.AddInvoiceRequest{Amount: 10000, Expiry: 2 * time.Hour, PaymentHash: &inv.Hash})
	if err != nil {
		t.Fatal(err)
	}
	if inv2.PaymentAddr == inv.PaymentAddr {
		t.Fatal("other terms, same address")
	}
	first := h.build(inv, part{node: n, amount: 4000, total: 10000})
	h.send(first)
	n.none(t)
	mixed := h.build(inv2, part{node: n, amount: 6000, total: 10000})
	h.send(mixed)
	if !isIncorrectDetails(h.failure(mixed, n.next(t))) {
		t.Fatal("part naming another address joined the set")
	}
}

// Auto-settle cannot settle a hash whose preimage lnmux does not know: the
// set waits for the application.
func TestSwapInvoiceNotAutoSettled(t *testing.T) {
	h := newHarness(t, 1, func(c *Config) { c.AutoSettle = true })
	acc := h.subscribe()
	n := h.nodes[0]
	inv, preimage := swapInvoice(t, h, 10000, time.Hour)
	h.send(h.build(inv, part{node: n, amount: 10000}))
	ev := nextAccepted(t, acc)
	n.none(t)
	notStored(t, h, inv.Hash)
	if err := h.mux.SettleInvoiceWithPreimage(ctx, inv.Hash, ev.SetID, preimage); err != nil {
		t.Fatal(err)
	}
	if r := n.next(t); r.Action != ports.ActionSettle || r.Preimage != preimage {
		t.Fatalf("resolution %+v", r)
	}
}

// lnmux's own invoices settle as before; their preimage may be given, a
// wrong one is refused before anything happens.
func TestOwnInvoiceSettleWithPreimage(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, _, ev := h.acceptedPayment(t, acc, n)
	if err := h.mux.SettleInvoiceWithPreimage(ctx, inv.Hash, ev.SetID, domain.Preimage{9}); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Fatalf("wrong preimage: %v", err)
	}
	notStored(t, h, inv.Hash)
	n.none(t)
	if err := h.mux.SettleInvoiceWithPreimage(ctx, inv.Hash, ev.SetID, inv.Preimage); err != nil {
		t.Fatal(err)
	}
	if r := n.next(t); r.Action != ports.ActionSettle || r.Preimage != inv.Preimage {
		t.Fatalf("resolution %+v", r)
	}
}

// An own invoice may ask for its own accept timeout too.
func TestOwnInvoiceAcceptTimeout(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, err := h.mux.AddInvoice(ctx, ports.AddInvoiceRequest{Amount: 10000, Expiry: time.Hour, AcceptTimeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s := h.build(inv, part{node: n, amount: 10000})
	h.send(s)
	nextAccepted(t, acc)
	h.clock.Advance(3*time.Minute - time.Second)
	n.none(t)
	h.clock.Advance(2 * time.Second)
	if !isIncorrectDetails(h.failure(s, n.next(t))) {
		t.Fatal("want the set cancelled at the invoice's accept timeout")
	}
}

// TestSwapSetSurvivesRestartBlocksLater: a swap's set waits hours for the
// preimage (a long accept timeout); lnmux restarts, or a successor takes
// over, some blocks later; lnd offers the held parts again. They carry the
// CLTV lnd's payer gave them at the time (height + min_final_cltv + 3,
// routing/payment_session.go), so the invoice's full final delta is no
// longer left. They must be taken again and the set settled with the
// preimage: the swap's other side may already have revealed it, and a
// failed set would leave the service without the payment it paid for.
func TestSwapSetSurvivesRestartBlocksLater(t *testing.T) {
	h := newHarness(t, 2, nil)
	a, b := h.nodes[0], h.nodes[1]
	inv, preimage := swapInvoice(t, h, 10000, 3*time.Hour)
	expiry := h.height + h.mux.cfg.FinalCLTVDelta + 3
	sa := h.build(inv, part{node: a, amount: 6000, total: 10000, htlcID: 1, expiry: expiry})
	sb := h.build(inv, part{node: b, amount: 4000, total: 10000, htlcID: 1, expiry: expiry})
	acc := h.subscribe()
	h.send(sa)
	h.send(sb)
	nextAccepted(t, acc)

	h.height += 10
	h.restart()
	acc = h.subscribe()
	h.send(sa)
	h.send(sb)
	a.none(t)
	b.none(t)
	ev := nextAccepted(t, acc)
	if err := h.mux.SettleInvoiceWithPreimage(ctx, inv.Hash, ev.SetID, preimage); err != nil {
		t.Fatal(err)
	}
	if ra, rb := a.next(t), b.next(t); ra.Action != ports.ActionSettle || rb.Action != ports.ActionSettle {
		t.Fatalf("resolutions %s %s", ra.Action, rb.Action)
	}
}
