package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/app/core"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// The scenarios of the fund-safety review (docs/design.md, "Invariants"),
// each written as a failing test against the old core first.

// Scenario 1: RequestSettle fails although the transaction committed. The
// set must stay untouchable (never failed, never cancelled) until the store
// answers, and a committed row must lead to settling every HTLC of the set,
// also after a restart.
func TestAmbiguousSettleCommitNeverSplits(t *testing.T) {
	h := newHarness(t, 2, nil)
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv := h.invoice(20000, time.Hour)
	h.send(h.build(inv, part{node: a, amount: 12000, total: 20000}))
	pb := h.build(inv, part{node: b, amount: 8000, total: 20000})
	h.send(pb)
	ev := nextAccepted(t, acc)

	// The write commits and then reports an error; the store is
	// unreachable for the retries that follow.
	h.store.mu.Lock()
	h.store.ambiguous = 1
	h.store.mu.Unlock()
	if err := h.mux.SettleInvoice(cancelled(), inv.Hash, ev.SetID); !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("settle: %v, want outcome unknown", err)
	}
	h.quiet()
	h.store.mu.Lock()
	h.store.unavailable = errors.New("connection refused")
	h.store.mu.Unlock()
	// Node b's stream is down: whatever lnmux answers it is lost.
	b.down.Store(true)
	// Past the accept timeout and close to the auto-fail height.
	h.clock.Advance(2 * h.mux.cfg.AcceptTimeout)
	a.none(t)
	if err := h.mux.CancelInvoice(ctx, inv.Hash, ev.SetID); !errors.Is(err, domain.ErrSettleRequested) {
		t.Fatalf("cancel while the outcome is unknown: %v, want settle requested", err)
	}
	a.none(t)
	// A retried SettleInvoice does not succeed before the store answers.
	if err := h.mux.SettleInvoice(cancelled(), inv.Hash, ev.SetID); !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("second settle: %v, want outcome unknown", err)
	}
	h.quiet()
	// The store answers again: the committed row leads to settling.
	h.store.mu.Lock()
	h.store.unavailable = nil
	h.store.mu.Unlock()
	h.clock.Advance(core.Backoff(100))
	h.quiet()
	if r := a.next(t); r.Action != ports.ActionSettle {
		t.Fatalf("node a: %+v, want settle", r)
	}
	a.none(t)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatalf("settle after commit: %v", err)
	}
	// After a restart, b's part is re-offered and settled, never failed.
	b.down.Store(false)
	h.restart()
	h.send(pb)
	if r := b.next(t); r.Action != ports.ActionSettle {
		t.Fatalf("node b after restart: %+v, want settle", r)
	}
}

// Scenario 1, restart while the outcome is unknown: the write did commit, so
// the next process re-settles every part when lnd re-offers it.
func TestRestartDuringUnknownOutcomeSettles(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, p, ev := h.acceptedPayment(t, acc, n)
	h.store.ambiguous = 1
	if err := h.mux.SettleInvoice(cancelled(), inv.Hash, ev.SetID); !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("settle: %v", err)
	}
	h.quiet()
	n.none(t)
	h.restart()
	h.send(p)
	if r := n.next(t); r.Action != ports.ActionSettle {
		t.Fatalf("%+v, want settle", r)
	}
}

// Scenario 2: a part re-offered while its set's settlement is being
// committed is neither failed as "already paid" nor forgotten.
func TestReplayDuringSettleCommit(t *testing.T) {
	h := newHarness(t, 2, func(c *Config) { c.Go = nil })
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv := h.invoice(20000, time.Hour)
	pa := h.build(inv, part{node: a, amount: 10000, total: 20000})
	pb := h.build(inv, part{node: b, amount: 10000, total: 20000})
	h.send(pa)
	h.send(pb)
	ev := nextAccepted(t, acc)

	entered := make(chan struct{}, 4)
	h.store.entered = entered
	h.store.mu.Lock() // the commit hangs
	errc := make(chan error, 1)
	go func() { errc <- h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID) }()
	waitEntered(t, entered, "the settlement write")
	if st := h.setState(inv.Hash); st != domain.SetSettling {
		t.Fatalf("set is %v while its settlement is being written, want settling", st)
	}
	h.send(pb) // b reconnected and re-offers its part
	b.none(t)
	h.store.mu.Unlock()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, n := range []*fakeNode{a, b} {
		if r := n.next(t); r.Action != ports.ActionSettle {
			t.Fatalf("%+v, want settle", r)
		}
	}
	h.send(pb) // and once more after the commit
	if r := b.next(t); r.Action != ports.ActionSettle {
		t.Fatalf("%+v, want settle", r)
	}
}

func (h *harness) setState(hash domain.PaymentHash) domain.SetState {
	v, ok := h.mux.setOf(hash)
	if !ok {
		return domain.SetCancelled
	}
	return v.State
}

// Scenario 3: a cancel whose FAIL was not delivered sticks: the re-offered
// HTLC is failed again, never re-assembled into a set that can be settled.
func TestCancelSticksWhenTheFailIsLost(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, p, ev := h.acceptedPayment(t, acc, n)
	n.down.Store(true)
	if err := h.mux.CancelInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	n.down.Store(false)
	h.send(p)
	r := n.next(t)
	if !isIncorrectDetails(h.failure(p, r)) {
		t.Fatalf("re-offered cancelled htlc: %+v", r)
	}
	select {
	case ev := <-acc:
		t.Fatalf("cancelled set accepted again: %+v", ev)
	default:
	}
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); !errors.Is(err, domain.ErrSetNotFound) {
		t.Fatalf("settle of a cancelled set: %v", err)
	}
	// The invoice itself stays payable with new HTLCs.
	p2 := h.build(inv, part{node: n, amount: 10000})
	h.send(p2)
	ev2 := nextAccepted(t, acc)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev2.SetID); err != nil {
		t.Fatal(err)
	}
	if r := n.next(t); r.Action != ports.ActionSettle {
		t.Fatalf("resolution %+v, want settle", r)
	}
}

// Scenario 3, hold timeout: an mpp_timeout that was not delivered is sent
// again when the part is re-offered.
func TestHoldTimeoutSticksWhenTheFailIsLost(t *testing.T) {
	h := newHarness(t, 1, nil)
	h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(20000, time.Hour)
	p := h.build(inv, part{node: n, amount: 10000, total: 20000})
	h.send(p)
	n.down.Store(true)
	h.clock.Advance(h.mux.cfg.HoldTimeout)
	n.down.Store(false)
	h.send(p)
	if _, ok := h.failure(p, n.next(t)).(*lnwire.FailMPPTimeout); !ok {
		t.Fatal("re-offered timed-out part not failed with mpp_timeout")
	}
	if h.setState(inv.Hash) != domain.SetCancelled {
		t.Fatal("timed-out part re-assembled into a set")
	}
}

// Scenario 4: a final resolution whose write fails is retried until stored.
func TestFinalResolutionRetried(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, p, ev := h.acceptedPayment(t, acc, n)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	n.next(t)
	h.store.failUpdates = 3
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: p.htlc.Circuit, Settled: true})
	for range 5 {
		h.quiet()
		h.clock.Advance(core.Backoff(100))
	}
	h.quiet()
	got, err := h.store.Get(ctx, inv.Hash)
	if err != nil || got.Status != domain.StatusSettled {
		t.Fatalf("invoice %v after retries (%v), want settled", got.Status, err)
	}
	st, err := h.mux.WaitForFinalStatus(ctx, inv.Hash)
	if err != nil || st != domain.StatusSettled {
		t.Fatalf("wait: %v %v", st, err)
	}
	if len(h.mux.PendingCircuits(ctx, n.key)) != 0 {
		t.Fatal("circuit still pending")
	}
}

// Scenario 5: a hung database never holds up a node's HTLC delivery.
func TestHungStoreDoesNotBlockDelivery(t *testing.T) {
	h := newHarness(t, 1, func(c *Config) { c.Go = nil })
	acc := h.subscribe()
	n := h.nodes[0]
	inv, p, ev := h.acceptedPayment(t, acc, n)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	n.next(t)
	gate := make(chan struct{})
	h.store.mu.Lock()
	h.store.updateGate = gate
	h.store.mu.Unlock()
	defer close(gate)
	// Delivered from the node's goroutine: must return at once.
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: p.htlc.Circuit, Settled: true})
	other := h.build(inv, part{node: n, amount: 10000, chanID: 12345})
	h.send(other)
	if r := n.next(t); r.Action != ports.ActionResume {
		t.Fatalf("%+v, want resume", r)
	}
}

// Scenario 6: idempotency holes.
func TestCancelIdempotentAcrossSets(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	h.send(h.build(inv, part{node: n, amount: 10000}))
	s1 := nextAccepted(t, acc)
	if err := h.mux.CancelInvoice(ctx, inv.Hash, s1.SetID); err != nil {
		t.Fatal(err)
	}
	n.next(t)
	// The payer retries: a new set is collecting.
	h.send(h.build(inv, part{node: n, amount: 5000, total: 10000}))
	if err := h.mux.CancelInvoice(ctx, inv.Hash, s1.SetID); err != nil {
		t.Fatalf("repeated cancel of S1 while S2 collects: %v", err)
	}
	h.send(h.build(inv, part{node: n, amount: 5000, total: 10000}))
	s2 := nextAccepted(t, acc)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, s2.SetID); err != nil {
		t.Fatal(err)
	}
	if err := h.mux.CancelInvoice(ctx, inv.Hash, domain.SetID{}); !errors.Is(err, domain.ErrSettleRequested) {
		t.Fatalf("cancel any set after S2's settle request: %v, want settle requested", err)
	}
	if err := h.mux.CancelInvoice(ctx, inv.Hash, s1.SetID); err != nil {
		t.Fatalf("repeated cancel of S1 after S2's settle request: %v", err)
	}
	if err := h.mux.CancelInvoice(ctx, inv.Hash, s2.SetID); !errors.Is(err, domain.ErrSettleRequested) {
		t.Fatalf("cancel S2: %v", err)
	}
}

// Scenario 6: every waiter of an attempt gets that attempt's outcome, not a
// stale error of an earlier one.
func TestSettleWaitersShareTheRetriedOutcome(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, _, ev := h.acceptedPayment(t, acc, n)
	h.store.failNext = errors.New("connection refused")
	if err := h.mux.SettleInvoice(cancelled(), inv.Hash, ev.SetID); !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatal(err)
	}
	h.quiet()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.mux.SettleInvoice(wctx, inv.Hash, ev.SetID) }()
	h.clock.Advance(core.Backoff(1))
	if err := <-errc; err != nil {
		t.Fatalf("waiter: %v", err)
	}
}

// Scenario 6: a replay re-settles only when the stored hash is the HTLC's.
func TestReplayResettleChecksTheHash(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, p, ev := h.acceptedPayment(t, acc, n)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	n.next(t)
	other := h.invoice(10000, time.Hour)
	q := h.build(other, part{node: n, amount: 10000, htlcID: p.htlc.Circuit.HTLC})
	h.send(q)
	n.none(t) // judged as an HTLC of the other invoice, not re-settled
	if ev := nextAccepted(t, acc); ev.Hash != other.Hash {
		t.Fatalf("accepted %x, want the other invoice", ev.Hash)
	}
}

// Scenario 9, revised: the reject delta is enforced on every offer; the
// invoice's min_final_cltv_expiry is not (lnd's registry checks it on new
// HTLCs only, and lnmux cannot tell a new HTLC from one lnd offers again
// after a restart: TestSwapSetSurvivesRestartBlocksLater, docs/design.md
// "Checks").
func TestMinFinalCLTVEnforced(t *testing.T) {
	h := newHarness(t, 1, nil)
	h.subscribe()
	n := h.nodes[0]
	inv := h.invoice(10000, time.Hour)
	p := h.build(inv, part{node: n, amount: 10000, expiry: h.height + h.mux.cfg.FinalCLTVRejectDelta - 1})
	h.send(p)
	if !isIncorrectDetails(h.failure(p, n.next(t))) {
		t.Fatal("htlc below the reject delta not refused")
	}
	ok := h.build(inv, part{node: n, amount: 10000, expiry: h.height + h.mux.cfg.FinalCLTVRejectDelta})
	h.send(ok)
	n.none(t)
}

// Scenario 10: dropped invoice subscribers leave nothing behind, and the
// paid marks kept in memory are bounded; an evicted paid hash is still
// never paid twice (the store refuses the second set).
func TestMemoryBounded(t *testing.T) {
	h := newHarness(t, 1, func(c *Config) { c.MaxPaidInMemory = coreShards })
	acc := h.subscribe()
	n := h.nodes[0]

	var first ports.AddInvoiceResult
	for i := range 4 * coreShards {
		inv := h.invoice(1000, time.Hour)
		if i == 0 {
			first = inv
		}
		p := h.build(inv, part{node: n, amount: 1000})
		h.send(p)
		ev := nextAccepted(t, acc)
		if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
			t.Fatal(err)
		}
		n.next(t)
		h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: p.htlc.Circuit, Settled: true})
	}
	h.quiet()
	h.mux.pruneAll()
	if c := h.mux.counts(); c.PaidOnly > 2*64 || c.Pending != 0 {
		t.Fatalf("ledger after pruning: %+v", c)
	}
	// Pay the first invoice again, with a new set.
	p := h.build(first, part{node: n, amount: 1000})
	h.send(p)
	if r, ok := h.nextOrAccepted(n, acc); ok {
		if err := h.mux.SettleInvoice(ctx, first.Hash, r.SetID); err == nil {
			t.Fatal("second set of a paid invoice settled")
		}
		if _, ok := h.failure(p, n.next(t)).(*lnwire.FailIncorrectDetails); !ok {
			t.Fatal("second set not failed")
		}
	}

	// Invoice subscribers that lag are dropped without a trace.
	hub := h.mux.hub
	_, ch := hub.subscribeInvoice(first.Hash)
	for range cap(ch) + 1 {
		hub.publishInvoice(ports.InvoiceUpdate{Hash: first.Hash, Status: domain.StatusAccepted})
	}
	hub.mu.Lock()
	left := len(hub.invoices)
	hub.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d invoice subscriber maps left", left)
	}
}

// nextOrAccepted returns the accepted event of a new set, or false if the
// node got an answer instead.
func (h *harness) nextOrAccepted(n *fakeNode, acc <-chan ports.AcceptedEvent) (ports.AcceptedEvent, bool) {
	h.t.Helper()
	select {
	case ev := <-acc:
		return ev, true
	case r := <-n.ch:
		if r.Action == ports.ActionSettle {
			h.t.Fatal("second payment of a paid invoice settled")
		}
		return ports.AcceptedEvent{}, false
	case <-time.After(5 * time.Second):
		h.t.Fatal("neither an answer nor an accepted set")
		return ports.AcceptedEvent{}, false
	}
}

// A final resolution lnd reports while the settlement's write has no known
// outcome (lnd auto-failed the HTLC meanwhile) is applied once the commit is
// known, not lost until the node's next reconnect.
func TestFinalBeforeCommitIsKept(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, p, ev := h.acceptedPayment(t, acc, n)
	h.store.unavailable = errors.New("connection refused")
	if err := h.mux.SettleInvoice(cancelled(), inv.Hash, ev.SetID); !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatal(err)
	}
	h.quiet()
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: p.htlc.Circuit, Settled: false})
	h.store.mu.Lock()
	h.store.unavailable = nil
	h.store.mu.Unlock()
	h.clock.Advance(core.Backoff(100))
	h.quiet()
	got, err := h.store.Get(ctx, inv.Hash)
	if err != nil || got.Status != domain.StatusFailed {
		t.Fatalf("invoice %v (%v), want failed from lnd's early final", got.Status, err)
	}
	if len(h.mux.PendingCircuits(ctx, n.key)) != 0 {
		t.Fatal("circuit still pending")
	}
}
