package app

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/app/core"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

var ctx = context.Background()

func TestInvoiceDecodesWithHints(t *testing.T) {
	h := newHarness(t, 2, nil)
	inv := h.invoice(20000, 10*time.Minute)
	dec, err := zpay32.Decode(inv.PaymentRequest, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	if got := dec.Destination.SerializeCompressed(); string(got) != string(h.mux.pubKey[:]) {
		t.Fatalf("destination %x", got)
	}
	if *dec.PaymentHash != inv.Hash || *dec.MilliSat != 20000 || dec.PaymentAddr.UnwrapOr([32]byte{}) != inv.PaymentAddr {
		t.Fatalf("decoded invoice fields differ")
	}
	if len(dec.RouteHints) != 2 {
		t.Fatalf("%d route hints", len(dec.RouteHints))
	}
	for i, hint := range dec.RouteHints {
		hh := hint[0]
		if hh.ChannelID != domain.VirtualChannelID(h.nodes[i].key) || hh.FeeBaseMSat != 1000 ||
			hh.FeeProportionalMillionths != 100 || hh.CLTVExpiryDelta != 40 {
			t.Fatalf("hint %d: %+v", i, hh)
		}
	}
	if !dec.Features.HasFeature(lnwire.PaymentAddrRequired) || !dec.Features.HasFeature(lnwire.MPPOptional) {
		t.Fatal("features missing")
	}
	if dec.Expiry() != 10*time.Minute || !dec.Timestamp.Add(dec.Expiry()).Equal(inv.ExpiresAt) {
		t.Fatalf("expiry %v / %v", dec.Expiry(), inv.ExpiresAt)
	}
}

func TestSinglePartSettle(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	h.send(h.build(inv, part{node: n, amount: 10000}))

	ev := nextAccepted(t, acc)
	if ev.Hash != inv.Hash || ev.Amount != 10000 {
		t.Fatalf("accepted %+v", ev)
	}
	n.none(t)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	r := n.next(t)
	if r.Action != ports.ActionSettle || r.Preimage.Hash() != inv.Hash {
		t.Fatalf("resolution %+v, want settle with the invoice's preimage", r)
	}
	stored, err := h.store.Get(ctx, inv.Hash)
	if err != nil || stored.Status != domain.StatusSettleRequested || stored.SetID != ev.SetID {
		t.Fatalf("stored invoice %s of set %s (err %v), want %s of set %s", stored.Status, stored.SetID, err, domain.StatusSettleRequested, ev.SetID)
	}
	// Settle is idempotent.
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	if got := h.mux.PendingCircuits(ctx, n.key); len(got) != 1 {
		t.Fatalf("pending circuits %v, want the one settled", got)
	}
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: r.Circuit, Settled: true})
	st, err := h.mux.WaitForFinalStatus(ctx, inv.Hash)
	if err != nil || st != domain.StatusSettled {
		t.Fatalf("final %v %v", st, err)
	}
	// The store can be ahead of memory: the write committed, its outcome
	// not yet an input of the machine.
	h.quiet()
	if got := h.mux.PendingCircuits(ctx, n.key); len(got) != 0 {
		t.Fatalf("pending after final %v", got)
	}
	// Cancel after settle request is refused.
	if err := h.mux.CancelInvoice(ctx, inv.Hash, ev.SetID); !errors.Is(err, domain.ErrSettleRequested) {
		t.Fatalf("cancel after settle: %v", err)
	}
	// A new HTLC paying the same invoice again is refused.
	again := h.build(inv, part{node: n, amount: 10000})
	h.send(again)
	if _, ok := h.failure(again, n.next(t)).(*lnwire.FailIncorrectDetails); !ok {
		t.Fatal("second payment not refused")
	}
}

func TestMultiPartAcrossNodes(t *testing.T) {
	h := newHarness(t, 2, nil)
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv := h.invoice(10000, time.Hour)
	// Same channel and HTLC ids on both nodes: circuit keys must not collide.
	h.send(h.build(inv, part{node: a, amount: 6000, total: 10000, htlcID: 1}))
	a.none(t)
	h.send(h.build(inv, part{node: b, amount: 4000, total: 10000, htlcID: 1}))
	ev := nextAccepted(t, acc)
	if ev.Amount != 10000 {
		t.Fatalf("accepted %+v", ev)
	}
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	ra, rb := a.next(t), b.next(t)
	if ra.Action != ports.ActionSettle || rb.Action != ports.ActionSettle {
		t.Fatalf("resolutions %s %s", ra.Action, rb.Action)
	}
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: ra.Circuit, Settled: true})
	stored, _ := h.store.Get(ctx, inv.Hash)
	if stored.Status != domain.StatusSettleRequested {
		t.Fatalf("status after one final: %s", stored.Status)
	}
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: rb.Circuit, Settled: false})
	h.quiet()
	st, err := h.mux.WaitForFinalStatus(ctx, inv.Hash)
	if err != nil || st != domain.StatusFailed {
		t.Fatalf("final %v %v", st, err)
	}
}

func TestHoldTimeoutMPP(t *testing.T) {
	h := newHarness(t, 1, nil)
	h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	s := h.build(inv, part{node: n, amount: 4000, total: 10000})
	h.send(s)
	h.clock.Advance(119 * time.Second)
	n.none(t)
	h.clock.Advance(2 * time.Second)
	if _, ok := h.failure(s, n.next(t)).(*lnwire.FailMPPTimeout); !ok {
		t.Fatal("want mpp_timeout")
	}
	// The invoice remains payable.
	acc := h.subscribe()
	h.send(h.build(inv, part{node: n, amount: 10000}))
	nextAccepted(t, acc)
}

func TestHoldTimeoutCappedAtExpiry(t *testing.T) {
	h := newHarness(t, 1, nil)
	h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, 30*time.Second)
	s := h.build(inv, part{node: n, amount: 4000, total: 10000})
	h.send(s)
	h.clock.Advance(31 * time.Second)
	if _, ok := h.failure(s, n.next(t)).(*lnwire.FailMPPTimeout); !ok {
		t.Fatal("want mpp_timeout at invoice expiry")
	}
}

func TestAcceptTimeoutCancels(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, s, ev := h.acceptedPayment(t, acc, n)
	h.clock.Advance(61 * time.Second)
	if _, ok := h.failure(s, n.next(t)).(*lnwire.FailIncorrectDetails); !ok {
		t.Fatal("want incorrect_or_unknown_payment_details")
	}
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); !errors.Is(err, domain.ErrSetNotFound) {
		t.Fatalf("settle after timeout: %v", err)
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, s, ev := h.acceptedPayment(t, acc, n)
	if err := h.mux.CancelInvoice(ctx, inv.Hash, domain.SetID{1}); !errors.Is(err, domain.ErrSetNotFound) {
		t.Fatalf("cancel wrong set: %v", err)
	}
	if err := h.mux.CancelInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.failure(s, n.next(t)).(*lnwire.FailIncorrectDetails); !ok {
		t.Fatal("want incorrect_or_unknown_payment_details")
	}
	if err := h.mux.CancelInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatalf("second cancel: %v", err)
	}
	if err := h.mux.CancelInvoice(ctx, domain.PaymentHash{9}, ev.SetID); !errors.Is(err, domain.ErrInvoiceNotFound) {
		t.Fatalf("cancel unknown: %v", err)
	}
}

func TestReplays(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	s := h.build(inv, part{node: n, amount: 5000, total: 10000})
	h.send(s)
	h.send(s) // re-offered after a reconnect: must not count twice
	n.none(t)
	select {
	case ev := <-acc:
		t.Fatalf("replay completed the set: %+v", ev)
	default:
	}
	h.send(h.build(inv, part{node: n, amount: 5000, total: 10000}))
	ev := nextAccepted(t, acc)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	n.next(t)
	n.next(t)
	// Re-offered after the settle request: settled again.
	h.send(s)
	if r := n.next(t); r.Action != ports.ActionSettle || r.Preimage.Hash() != inv.Hash {
		t.Fatalf("replay after settle: %+v", r)
	}
}

func TestRestartResettles(t *testing.T) {
	h := newHarness(t, 2, nil)
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv := h.invoice(10000, time.Hour)
	sa := h.build(inv, part{node: a, amount: 3000, total: 10000})
	sb := h.build(inv, part{node: b, amount: 7000, total: 10000})
	h.send(sa)
	h.send(sb)
	ev := nextAccepted(t, acc)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	a.next(t)
	b.next(t)

	// Crash: a new instance over the same store; lnd re-offers both HTLCs.
	h.restart()
	h.send(sa)
	h.send(sb)
	for _, n := range []*fakeNode{a, b} {
		if r := n.next(t); r.Action != ports.ActionSettle || r.Preimage.Hash() != inv.Hash {
			t.Fatalf("after restart: %+v", r)
		}
	}
	if got := h.mux.PendingCircuits(ctx, a.key); len(got) != 1 {
		t.Fatalf("pending after restart: %v", got)
	}
}

func TestRestartReassemblesAcceptedSet(t *testing.T) {
	h := newHarness(t, 2, nil)
	acc := h.subscribe()
	inv := h.invoice(10000, time.Hour)
	sa := h.build(inv, part{node: h.nodes[0], amount: 3000, total: 10000})
	sb := h.build(inv, part{node: h.nodes[1], amount: 7000, total: 10000})
	h.send(sa)
	h.send(sb)
	before := nextAccepted(t, acc)

	h.restart()
	acc = h.subscribe()
	h.send(sb)
	h.send(sa)
	after := nextAccepted(t, acc)
	if after.SetID != before.SetID {
		t.Fatal("set id changed across restart")
	}
	if err := h.mux.SettleInvoice(ctx, inv.Hash, after.SetID); err != nil {
		t.Fatal(err)
	}
}

func TestSettleStoreFailureKeepsSet(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, _, ev := h.acceptedPayment(t, acc, n)
	h.store.failNext = errors.New("disk full")
	if err := h.mux.SettleInvoice(cancelled(), inv.Hash, ev.SetID); !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("settle with a failing store: %v, want outcome unknown", err)
	}
	h.quiet()
	n.none(t) // I1: no preimage left
	// The write is retried until the store answers.
	h.clock.Advance(core.Backoff(1))
	h.quiet()
	if r := n.next(t); r.Action != ports.ActionSettle {
		t.Fatalf("resolution %+v, want settle", r)
	}
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	n.none(t)
}

// cancelled is a context that is already done: SettleInvoice then reports
// the state of the write instead of waiting for it.
func cancelled() context.Context {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	return c
}

func TestRejections(t *testing.T) {
	lowFee := domain.Msat(0)
	cases := []struct {
		name   string
		amount domain.Msat
		expiry time.Duration
		mod    func(*harness, *part)
		want   func(lnwire.FailureMessage) bool
	}{
		{"amount too low", 10000, time.Hour, func(_ *harness, p *part) { p.amount, p.total = 9000, 9000 },
			isIncorrectDetails},
		{"amount above twice", 10000, time.Hour, func(_ *harness, p *part) { p.amount, p.total = 20001, 20001 },
			isIncorrectDetails},
		{"no mpp record", 10000, time.Hour, func(_ *harness, p *part) { p.noMPP = true }, isIncorrectDetails},
		{"fee not paid", 10000, time.Hour, func(_ *harness, p *part) { p.feePaid = &lowFee }, isTemporaryChannel},
		{"onion amount above htlc", 10000, time.Hour, func(_ *harness, p *part) { p.onionAmt = 10001 },
			func(m lnwire.FailureMessage) bool { _, ok := m.(*lnwire.FailFinalIncorrectHtlcAmount); return ok }},
		{"onion cltv above htlc", 10000, time.Hour, func(h *harness, p *part) { p.onionCLTV = h.height + 101 },
			func(m lnwire.FailureMessage) bool { _, ok := m.(*lnwire.FailFinalIncorrectCltvExpiry); return ok }},
		{"expiry too soon", 10000, time.Hour, func(h *harness, p *part) { p.expiry = h.height + 5 }, isIncorrectDetails},
		{"near auto-fail height", 10000, time.Hour, func(h *harness, p *part) { p.autoFail = h.height + 3 }, isIncorrectDetails},
		{"expired", 10000, time.Second, func(h *harness, _ *part) { h.clock.Advance(2 * time.Second) }, isIncorrectDetails},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 1, nil)
			h.subscribe()
			n := h.nodes[0]
			inv := h.invoice(tc.amount, tc.expiry)
			p := part{node: n, amount: tc.amount}
			tc.mod(h, &p)
			s := h.build(inv, p)
			h.send(s)
			if msg := h.failure(s, n.next(t)); !tc.want(msg) {
				t.Fatalf("got %T %v", msg, msg)
			}
		})
	}
}

func isIncorrectDetails(m lnwire.FailureMessage) bool {
	_, ok := m.(*lnwire.FailIncorrectDetails)
	return ok
}

func isTemporaryChannel(m lnwire.FailureMessage) bool {
	_, ok := m.(*lnwire.FailTemporaryChannelFailure)
	return ok
}

func TestTamperedPaymentAddr(t *testing.T) {
	h := newHarness(t, 1, nil)
	h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	inv.PaymentAddr[20] ^= 1
	s := h.build(inv, part{node: n, amount: 10000})
	h.send(s)
	if !isIncorrectDetails(h.failure(s, n.next(t))) {
		t.Fatal("tampered address not refused")
	}
}

func TestGarbageOnionIsMalformed(t *testing.T) {
	h := newHarness(t, 1, nil)
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	s := h.build(inv, part{node: n, amount: 10000})
	s.htlc.Onion[40] ^= 0xff
	h.send(s)
	r := n.next(t)
	if r.Action != ports.ActionFail || r.FailureCode != uint16(lnwire.CodeInvalidOnionHmac) {
		t.Fatalf("resolution %+v, want fail with invalid_onion_hmac", r)
	}
}

func TestNotForUsResumes(t *testing.T) {
	h := newHarness(t, 1, nil)
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	h.send(h.build(inv, part{node: n, amount: 10000, chanID: 12345}))
	if r := n.next(t); r.Action != ports.ActionResume {
		t.Fatalf("resolution %+v, want resume", r)
	}
}

// TestOutgoingNodeIDIsForUs: lnd >= 0.21.2 reports a forward addressed to
// lnmux's node id (all-ones channel id): lnmux takes it, and it can only
// have come through one of lnmux's blinded paths (docs/blinded.md; a plain
// onion there is refused: TestBlindedPlainOnionRefused).
func TestOutgoingNodeIDIsForUs(t *testing.T) {
	h := newHarness(t, 1, func(c *Config) { c.AutoSettle = true })
	n := h.nodes[0]
	_, dec := h.blindedInvoice(10000, time.Hour)
	s, _ := h.buildBlinded(dec, blindedPart{node: n, amount: 10000})
	if s.htlc.OutgoingChanID != ^uint64(0) || s.htlc.OutgoingNodeID == nil || *s.htlc.OutgoingNodeID != h.mux.pubKey {
		t.Fatal("not a node-addressed forward to lnmux")
	}
	h.send(s)
	if r := n.next(t); r.Action != ports.ActionSettle {
		t.Fatalf("resolution %+v, want settle", r)
	}
}

func TestNoSubscriberRefusesNewSets(t *testing.T) {
	h := newHarness(t, 1, nil)
	n := h.nodes[0]
	// Within the grace period after start a set is held for the
	// application to come back; its accept timer still bounds it.
	inv := h.invoice(10000, time.Hour)
	held := h.build(inv, part{node: n, amount: 10000})
	h.send(held)
	n.none(t)
	h.clock.Advance(61 * time.Second)
	if !isIncorrectDetails(h.failure(held, n.next(t))) {
		t.Fatal("set held in the grace period not cancelled by its accept timer")
	}
	// After it, nobody can decide: refused at once.
	inv = h.invoice(10000, time.Hour)
	s := h.build(inv, part{node: n, amount: 10000})
	h.send(s)
	if !isTemporaryChannel(h.failure(s, n.next(t))) {
		t.Fatal("want temporary_channel_failure")
	}
	// A subscriber that leaves opens a new grace period.
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.mux.SubscribeAccepted(ctx, func(ports.AcceptedEvent) error { return nil })
	}()
	waitFor(t, "the accepted subscriber to be registered", h.mux.hub.hasAcceptedSubscribers)
	cancel()
	<-done
	inv = h.invoice(10000, time.Hour)
	h.send(h.build(inv, part{node: n, amount: 10000}))
	n.none(t)
}

func TestRestartHoldsReplaysUntilTheApplicationIsBack(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	s := h.build(inv, part{node: n, amount: 10000})
	h.send(s)
	before := nextAccepted(t, acc)

	// lnd re-offers the HTLC as soon as the new instance intercepts, before
	// the application has subscribed again.
	h.restart()
	h.send(s)
	n.none(t)
	after := nextAccepted(t, h.subscribe())
	if after.SetID != before.SetID {
		t.Fatal("set id changed")
	}
}

func TestAutoSettle(t *testing.T) {
	h := newHarness(t, 1, func(c *Config) { c.AutoSettle = true })
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	h.send(h.build(inv, part{node: n, amount: 10000}))
	if r := n.next(t); r.Action != ports.ActionSettle || r.Preimage.Hash() != inv.Hash {
		t.Fatalf("resolution %+v, want settle with the invoice's preimage", r)
	}
}

func TestOverpaymentFailsExcess(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	h.send(h.build(inv, part{node: n, amount: 6000, total: 10000}))
	over := h.build(inv, part{node: n, amount: 6000, total: 10000})
	h.send(over)
	if !isIncorrectDetails(h.failure(over, n.next(t))) {
		t.Fatal("excess not failed")
	}
	h.send(h.build(inv, part{node: n, amount: 4000, total: 10000}))
	nextAccepted(t, acc)
}

func TestAutoFailHeightCancelsHeldSet(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	s := h.build(inv, part{node: n, amount: 10000, autoFail: h.height + 50})
	h.send(s)
	nextAccepted(t, acc)
	h.mux.BlockHeight(ctx, n.key, h.height+39)
	n.none(t)
	h.mux.BlockHeight(ctx, n.key, h.height+40)
	if !isIncorrectDetails(h.failure(s, n.next(t))) {
		t.Fatal("set near auto-fail height not cancelled")
	}
}

func TestSubscribeSingleInvoice(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)

	updates := make(chan ports.InvoiceUpdate, 10)
	done := make(chan error, 1)
	go func() {
		done <- h.mux.SubscribeInvoice(ctx, inv.Hash, func(u ports.InvoiceUpdate) error { updates <- u; return nil })
	}()
	// The subscription is registered before the payment arrives.
	waitFor(t, "the invoice subscription to be registered", func() bool {
		h.mux.hub.mu.Lock()
		defer h.mux.hub.mu.Unlock()
		return len(h.mux.hub.invoices[inv.Hash]) > 0
	})
	h.send(h.build(inv, part{node: n, amount: 10000}))
	ev := nextAccepted(t, acc)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	r := n.next(t)
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: r.Circuit, Settled: true})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(updates)
	var got []domain.InvoiceStatus
	for u := range updates {
		got = append(got, u.Status)
	}
	want := []domain.InvoiceStatus{domain.StatusAccepted, domain.StatusSettleRequested, domain.StatusSettled}
	if !slices.Equal(got, want) {
		t.Fatalf("updates %v, want %v", got, want)
	}
}

func TestConcurrentPayments(t *testing.T) {
	h := newHarness(t, 2, func(c *Config) { c.AutoSettle = true })
	const n = 200
	invs := make([]ports.AddInvoiceResult, n)
	sent := make([][2]sentHTLC, n)
	for i := range invs {
		invs[i] = h.invoice(10000, time.Hour)
		sent[i][0] = h.build(invs[i], part{node: h.nodes[0], amount: 5000, total: 10000})
		sent[i][1] = h.build(invs[i], part{node: h.nodes[1], amount: 5000, total: 10000})
	}
	var wg sync.WaitGroup
	for side := range 2 {
		wg.Go(func() {
			for i := range n {
				h.send(sent[i][side])
			}
		})
	}
	wg.Wait()
	for _, node := range h.nodes {
		for range n {
			if r := node.next(t); r.Action != ports.ActionSettle {
				t.Fatalf("resolution %+v, want settle", r)
			}
		}
	}
	list, err := h.mux.ListInvoices(ctx, 0, 1000)
	if err != nil || len(list) != n {
		t.Fatalf("%d invoices stored, %v", len(list), err)
	}
}

// countingMetrics records what the multiplexer reports.
type countingMetrics struct {
	mu     sync.Mutex
	counts map[string]int
}

var _ ports.Metrics = (*countingMetrics)(nil)

func (c *countingMetrics) inc(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[k]++
}

func (c *countingMetrics) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[k]
}

func (c *countingMetrics) HTLCResolved(a ports.Action, r domain.FailureReason) {
	c.inc(a.String() + "/" + r.String())
}
func (c *countingMetrics) HTLCHeld()        { c.inc("held") }
func (c *countingMetrics) SetAccepted(int)  { c.inc("accepted") }
func (c *countingMetrics) SettleRequested() { c.inc("settle requested") }
func (c *countingMetrics) InvoiceFinal(s domain.InvoiceStatus, partial bool) {
	c.inc("final " + s.String())
	if partial {
		c.inc("partial")
	}
}

func TestMetricsAndStats(t *testing.T) {
	cm := &countingMetrics{}
	h := newHarness(t, 2, func(c *Config) { c.Metrics = cm })
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv := h.invoice(10000, time.Hour)
	h.send(h.build(inv, part{node: a, amount: 4000, total: 10000}))
	if st := h.mux.Stats(); st.Sets != 1 || len(st.Nodes) != 2 {
		t.Fatalf("stats %+v", st)
	}
	h.send(h.build(inv, part{node: b, amount: 6000, total: 10000}))
	ev := nextAccepted(t, acc)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	ra, rb := a.next(t), b.next(t)
	if st := h.mux.Stats(); st.Sets != 0 || st.PendingSettleHTLCs != 2 {
		t.Fatalf("stats after settle %+v", st)
	}
	// One part settled, the other failed on chain: a partial settlement.
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: ra.Circuit, Settled: true})
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: rb.Circuit, Settled: false})
	h.quiet()
	h.send(h.build(inv, part{node: a, amount: 10000, chanID: 99}))
	a.next(t)
	for k, want := range map[string]int{
		"held": 1, "accepted": 1, "settle requested": 1, "settle/none": 2,
		"final failed": 1, "partial": 1, "resume/none": 1,
	} {
		if got := cm.get(k); got != want {
			t.Errorf("%s = %d, want %d", k, got, want)
		}
	}
}

func TestConcurrentSettleCallsShareTheOutcome(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, _, ev := h.acceptedPayment(t, acc, n)

	// Hold the first call inside its database write.
	entered := make(chan struct{}, 4)
	h.store.entered = entered
	h.store.mu.Lock()
	errs := make(chan error, 3)
	go func() { errs <- h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID) }()
	waitEntered(t, entered, "the first settle call's write")
	// Two more calls while the write hangs join its attempt: startCall is
	// SettleInvoice up to the wait, so the joining is done when it returns.
	for range 2 {
		ticket := h.mux.startCall(settleCall(inv.Hash, ev.SetID, domain.Preimage{}))
		go func() { errs <- <-ticket.ch }()
	}
	h.store.mu.Unlock()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent settle: %v", err)
		}
	}
	if r := n.next(t); r.Action != ports.ActionSettle {
		t.Fatalf("resolution %+v, want settle", r)
	}
	n.none(t) // one settlement, one preimage sent
}
