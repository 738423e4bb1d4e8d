package app

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lnmux/lnmux/app/core"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// The scenarios of the second fund-safety review (docs/design.md,
// "Invariants" and "Mutations"): each was written as a failing test against
// the core at a1bf763 first.

// Review 1: lnd reports an HTLC final while the settlement's commit is being
// applied. The final must not be lost between "not committed yet" and
// "no longer settling": the invoice would stay SETTLE_REQUESTED.
func TestFinalDuringCommitIsNotLost(t *testing.T) {
	h := newHarness(t, 1, func(c *Config) { c.Go = nil })
	acc := h.subscribe()
	n := h.nodes[0]
	inv, p, ev := h.acceptedPayment(t, acc, n)

	// The write hangs; the settle is in flight.
	entered := make(chan struct{}, 4)
	h.store.entered = entered
	h.store.mu.Lock()
	errc := make(chan error, 1)
	go func() { errc <- h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID) }()
	waitEntered(t, entered, "the settlement write")

	// lnd's final arrives while the commit is in flight; then the commit
	// completes. (With one loop owning the machine there is no window
	// between finding the circuit and deciding on it any more: the final
	// is one input, the commit another.)
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: p.htlc.Circuit, Settled: false})
	h.store.mu.Unlock()
	if err := <-errc; err != nil {
		t.Errorf("settle: %v", err)
	}
	waitFor(t, "the final to be recorded", func() bool {
		got, err := h.store.Get(ctx, inv.Hash)
		return err == nil && got.Status.IsFinal()
	})
	got, _ := h.store.Get(ctx, inv.Hash)
	if got.Status != domain.StatusFailed {
		t.Fatalf("invoice %v, want FAILED from lnd's only final event", got.Status)
	}
}

// Review 2: while a settle write's outcome is unknown, a node reconnects.
// The adapter looks up every circuit the core waits for; the circuits of the
// settlement in flight must be among them, or an HTLC lnd failed while the
// stream was down is never heard of.
func TestPendingCircuitsIncludeSettlementInFlight(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	n := h.nodes[0]
	inv, p, ev := h.acceptedPayment(t, acc, n)
	h.store.unavailable = errors.New("connection refused")
	if err := h.mux.SettleInvoice(cancelled(), inv.Hash, ev.SetID); !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatal(err)
	}
	h.quiet()
	if !slices.Contains(h.mux.PendingCircuits(ctx, n.key), p.htlc.Circuit) {
		t.Fatal("the circuit of the settlement in flight is not looked up on reconnect")
	}
	// The lookup finds it failed (lnd auto-failed it while the stream was
	// down); the commit then goes through.
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: p.htlc.Circuit, Settled: false})
	h.store.mu.Lock()
	h.store.unavailable = nil
	h.store.mu.Unlock()
	h.clock.Advance(core.Backoff(100))
	h.quiet()
	got, err := h.store.Get(ctx, inv.Hash)
	if err != nil || got.Status != domain.StatusFailed {
		t.Fatalf("invoice %v (%v), want FAILED", got.Status, err)
	}
}

// Review 3: lnd fails one part of an accepted set (its auto-fail height, a
// channel gone on chain). The application then settles: the preimage must
// not go out for the other parts as if the set were complete.
func TestSetThatLostAPartIsNotSettled(t *testing.T) {
	h := newHarness(t, 2, nil)
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv := h.invoice(20000, time.Hour)
	pa := h.build(inv, part{node: a, amount: 10000, total: 20000})
	pb := h.build(inv, part{node: b, amount: 10000, total: 20000})
	h.send(pa)
	h.send(pb)
	ev := nextAccepted(t, acc)
	// Held parts are looked up on reconnect too.
	if !slices.Contains(h.mux.PendingCircuits(ctx, a.key), pa.htlc.Circuit) {
		t.Fatal("a held circuit is not looked up on reconnect")
	}

	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: pa.htlc.Circuit, Settled: false})
	err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID)
	if err == nil {
		t.Fatal("settled a set of which lnd had failed a part")
	}
	if !errors.Is(err, domain.ErrSetNotFound) {
		t.Fatalf("settle: %v, want set not found", err)
	}
	a.none(t)
	b.none(t)
	if _, err := h.store.Get(ctx, inv.Hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
		t.Fatalf("stored: %v", err)
	}
	// The payer retries the failed part: the set completes again, with
	// another id, and can be settled.
	pa2 := h.build(inv, part{node: a, amount: 10000, total: 20000})
	h.send(pa2)
	ev2 := nextAccepted(t, acc)
	if ev2.SetID == ev.SetID {
		t.Fatal("same set id after a part was replaced")
	}
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev2.SetID); err != nil {
		t.Fatal(err)
	}
	if r := a.next(t); r.Action != ports.ActionSettle || r.Circuit != pa2.htlc.Circuit {
		t.Fatalf("node a: %+v", r)
	}
	if r := b.next(t); r.Action != ports.ActionSettle || r.Circuit != pb.htlc.Circuit {
		t.Fatalf("node b: %+v", r)
	}
	// The part lnd failed stays out of the stored set.
	got, err := h.store.Get(ctx, inv.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(got.HTLCs, func(x domain.SettledHTLC) bool { return x.Circuit == pa.htlc.Circuit }) {
		t.Fatal("the failed part is in the stored set")
	}
}

// Review 4: the paid mark of a settled invoice was dropped from memory
// (MaxPaidInMemory), and the payer pays the same hash again. Repeating the
// successful SettleInvoice must still succeed, and a cancel must not report
// success for an invoice stored as paid.
func TestIdempotentAfterPaidMarkEvicted(t *testing.T) {
	h := newHarness(t, 1, func(c *Config) { c.MaxPaidInMemory = 1 })
	acc := h.subscribe()
	n := h.nodes[0]
	inv, p, ev := h.acceptedPayment(t, acc, n)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	if r := n.next(t); r.Action != ports.ActionSettle {
		t.Fatalf("%+v", r)
	}
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: p.htlc.Circuit, Settled: true})
	h.quiet()
	// Another paid hash in the same shard that expires later pushes this
	// one's mark out.
	other := inv.Hash
	other[31] ^= 0xff
	h.mux.markPaid(other, h.clock.Now().Add(2*time.Hour))
	h.mux.pruneAll()
	if h.mux.has(inv.Hash) {
		t.Fatal("the paid mark was not evicted: the test does not test anything")
	}

	// The same invoice paid again: a second set completes in memory.
	p2 := h.build(inv, part{node: n, amount: 10000})
	h.send(p2)
	ev2, ok := h.nextOrAccepted(n, acc)
	if ok && ev2.SetID == ev.SetID {
		t.Fatal("same set id")
	}
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatalf("repeating the settle that succeeded: %v", err)
	}
	if err := h.mux.CancelInvoice(ctx, inv.Hash, domain.SetID{}); !errors.Is(err, domain.ErrSettleRequested) {
		t.Fatalf("cancel of a paid invoice: %v, want settle requested", err)
	}
	if err := h.mux.CancelInvoice(ctx, inv.Hash, ev.SetID); !errors.Is(err, domain.ErrSettleRequested) {
		t.Fatalf("cancel of the paid set: %v, want settle requested", err)
	}
	// The second payment is refused, never settled.
	if ok {
		r := n.next(t)
		if r.Action != ports.ActionFail || r.Circuit != p2.htlc.Circuit {
			t.Fatalf("second payment: %+v, want fail", r)
		}
	}
	got, err := h.store.Get(ctx, inv.Hash)
	if err != nil || got.SetID != ev.SetID || got.Status != domain.StatusSettled {
		t.Fatalf("stored %+v (%v)", got.Status, err)
	}
}

// Review 5: once an instance is no longer the leader (it lost the lock, is
// handing over, or was fenced), no answer of any kind leaves it: not a
// cancel, not a timer's, not the auto-fail margin's, not a RESUME.
func TestDeposedLeaderSendsNothing(t *testing.T) {
	for _, how := range []string{"deposed", "fenced"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, 1, nil)
			acc := h.subscribe()
			n := h.nodes[0]
			inv, _, ev := h.acceptedPayment(t, acc, n)
			// A second, incomplete set holds a part with a hold timer.
			inv2 := h.invoice(20000, time.Hour)
			h.send(h.build(inv2, part{node: n, amount: 10000, total: 20000, autoFail: h.height + 50}))
			switch how {
			case "deposed":
				if err := h.mux.Depose(ctx); err != nil {
					t.Fatal(err)
				}
			case "fenced":
				// Another process took the lock: the store refuses this
				// one's write.
				h.store.failNext = domain.ErrNotLeader
				if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); !errors.Is(err, domain.ErrNotReady) {
					t.Fatalf("fenced settle: %v, want not ready", err)
				}
				<-h.mux.Fatal()
			}
			if err := h.mux.CancelInvoice(ctx, inv.Hash, ev.SetID); !errors.Is(err, domain.ErrNotReady) {
				t.Fatalf("cancel: %v, want not ready", err)
			}
			h.clock.Advance(10 * time.Minute) // accept and hold timers
			h.mux.BlockHeight(ctx, n.key, h.height+45)
			h.send(h.build(inv2, part{node: n, amount: 10000, total: 20000, chanID: 12345}))
			n.none(t)
		})
	}
}
