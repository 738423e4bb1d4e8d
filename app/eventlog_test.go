package app

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
	"github.com/lnmux/lnmux/ports/storetest"
)

// eventStream is a SubscribeInvoiceEvents subscription running in a
// goroutine for the test's lifetime.
type eventStream struct {
	ch   chan ports.InvoiceEvent
	done chan error
}

// subscribeEvents subscribes from cursor after. send blocks while gate is
// non-nil and open (a slow client).
func (h *harness) subscribeEvents(t *testing.T, after uint64, gate <-chan struct{}) *eventStream {
	t.Helper()
	before := h.mux.hub.acceptedCount.Load()
	ctx, cancel := context.WithCancel(context.Background())
	s := &eventStream{ch: make(chan ports.InvoiceEvent, 4096), done: make(chan error, 1)}
	go func() {
		s.done <- h.mux.SubscribeInvoiceEvents(ctx, after, func(ev ports.InvoiceEvent) error {
			if gate != nil {
				<-gate
			}
			s.ch <- ev
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil && !errors.Is(err, ports.ErrSubscriberLagged) {
			t.Errorf("event stream from %d: %v", after, err)
		}
	})
	// Registered for accepted sets after the log's wake-ups.
	waitFor(t, "the event subscriber to be registered", func() bool { return h.mux.hub.acceptedCount.Load() > before })
	return s
}

func (s *eventStream) next(t *testing.T) ports.InvoiceEvent {
	t.Helper()
	select {
	case ev := <-s.ch:
		return ev
	case err := <-s.done:
		t.Fatalf("event stream ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	return ports.InvoiceEvent{}
}

// none asserts that nothing more is sent once the stream is idle: it reads
// the log at the end, so a further event would already be queued after a
// round trip through the hub (an accepted event published and received).
func (s *eventStream) noneAfter(t *testing.T, h *harness) {
	t.Helper()
	marker := ports.AcceptedEvent{Hash: domain.PaymentHash{0xee}}
	h.mux.hub.publishAccepted(marker)
	ev := s.next(t)
	if ev.Hash != marker.Hash {
		t.Fatalf("unexpected event %+v", ev)
	}
}

func wantStored(t *testing.T, ev ports.InvoiceEvent, hash domain.PaymentHash, st domain.InvoiceStatus, after uint64) {
	t.Helper()
	if ev.Hash != hash || ev.Status != st || ev.Cursor <= after {
		t.Fatalf("event %+v, want %s of %s with a cursor above %d", ev, st, hash, after)
	}
}

// settleFully pays, settles and has lnd settle a one-part invoice.
func (h *harness) settleFully(t *testing.T, acc <-chan ports.AcceptedEvent) (ports.AddInvoiceResult, domain.SetID) {
	t.Helper()
	inv, _, ev := h.acceptedPayment(t, acc, h.nodes[0])
	settleThenLndReports(true)(t, h, inv, ev.SetID)
	return inv, ev.SetID
}

// TestSubscribeInvoiceEventsReplaysThenFollows: a subscriber from cursor 0
// gets the stored history first, then the sets waiting for a decision and
// the live changes, in cursor order; resubscribing from the last cursor
// sends nothing stored twice.
func TestSubscribeInvoiceEventsReplaysThenFollows(t *testing.T) {
	h := newHarness(t, 1, nil)
	acc := h.subscribe()
	a, aSet := h.settleFully(t, acc)
	waiting, _, waitingEv := h.acceptedPayment(t, acc, h.nodes[0])

	s := h.subscribeEvents(t, 0, nil)
	// The waiting set first (cursor 0), then the replay.
	ev := s.next(t)
	if ev.Status != domain.StatusAccepted || ev.Hash != waiting.Hash || ev.SetID != waitingEv.SetID || ev.Cursor != 0 {
		t.Fatalf("first event %+v, want the waiting set, accepted, without cursor", ev)
	}
	ev = s.next(t)
	wantStored(t, ev, a.Hash, domain.StatusSettleRequested, 0)
	if ev.SetID != aSet || ev.AmountPaid != 10000 || ev.Amount != 10000 || ev.Sequence == 0 {
		t.Fatalf("settle request event %+v", ev)
	}
	first := ev.Cursor
	ev = s.next(t)
	wantStored(t, ev, a.Hash, domain.StatusSettled, first)
	last := ev.Cursor

	// Live: the waiting set settled, then a new one accepted and settled.
	settleThenLndReports(true)(t, h, waiting, waitingEv.SetID)
	ev = s.next(t)
	wantStored(t, ev, waiting.Hash, domain.StatusSettleRequested, last)
	ev = s.next(t)
	wantStored(t, ev, waiting.Hash, domain.StatusSettled, ev.Cursor-1)
	last = ev.Cursor
	c, _, cEv := h.acceptedPayment(t, acc, h.nodes[0])
	if ev = s.next(t); ev.Status != domain.StatusAccepted || ev.Hash != c.Hash || ev.SetID != cEv.SetID || ev.Cursor != 0 {
		t.Fatalf("live accepted event %+v", ev)
	}
	settleThenLndReports(false)(t, h, c, cEv.SetID)
	ev = s.next(t)
	wantStored(t, ev, c.Hash, domain.StatusSettleRequested, last)
	ev = s.next(t)
	wantStored(t, ev, c.Hash, domain.StatusFailed, ev.Cursor-1)
	last = ev.Cursor
	s.noneAfter(t, h)

	// Reconnecting with the last cursor: nothing stored again.
	again := h.subscribeEvents(t, last, nil)
	again.noneAfter(t, h)
	// From the middle: what came after.
	mid := h.subscribeEvents(t, first, nil)
	wantStored(t, mid.next(t), a.Hash, domain.StatusSettled, first)
	wantStored(t, mid.next(t), waiting.Hash, domain.StatusSettleRequested, first)
}

// TestSubscribeInvoiceEventsLaggingSubscriberIsDropped: a client that stops
// reading holds up neither the HTLC path (publishing accepted sets and
// waking the log never block) nor anyone else; once its accepted events
// pile up past the buffer it is dropped with ErrSubscriberLagged.
func TestSubscribeInvoiceEventsLaggingSubscriberIsDropped(t *testing.T) {
	h := newHarness(t, 1, nil)
	gate := make(chan struct{})
	s := h.subscribeEvents(t, 0, gate)
	for i := range subscriberBuffer + 2 {
		h.mux.hub.publishAccepted(ports.AcceptedEvent{Hash: domain.PaymentHash{byte(i), byte(i >> 8)}})
		h.mux.hub.stored.wake()
	}
	close(gate)
	var err error
	for err == nil {
		select {
		case <-s.ch:
		case err = <-s.done:
			s.done <- err // for the cleanup
		case <-time.After(30 * time.Second):
			t.Fatal("the lagging subscriber was not dropped")
		}
	}
	if !errors.Is(err, ports.ErrSubscriberLagged) || !errors.Is(err, domain.ErrNotReady) {
		t.Fatalf("lagging subscriber ended with %v, want ErrSubscriberLagged and ErrNotReady", err)
	}
}

// TestSubscribeInvoiceEventsUnderConcurrentSettles: many invoices settled
// concurrently (writes on their own goroutines) while a subscriber follows
// the log: it sees every change once, in cursor order, and each settle
// request before its final status. A lost wake-up would leave it short.
func TestSubscribeInvoiceEventsUnderConcurrentSettles(t *testing.T) {
	h := newHarness(t, 2, func(c *Config) { c.AutoSettle = true; c.Go = nil })
	s := h.subscribeEvents(t, 0, nil)
	const n = 60
	invs := make([]ports.AddInvoiceResult, n)
	sent := make([][2]sentHTLC, n)
	for i := range invs {
		invs[i] = h.invoice(10000, time.Hour)
		for side := range 2 {
			sent[i][side] = h.build(invs[i], part{node: h.nodes[side], amount: 5000, total: 10000})
		}
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
		wg.Go(func() {
			for range n {
				r := node.next(t)
				h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: r.Circuit, Settled: true})
			}
		})
	}
	wg.Wait()
	got := map[domain.PaymentHash][]domain.InvoiceStatus{}
	var last uint64
	for stored := 0; stored < 2*n; {
		ev := s.next(t)
		if ev.Status == domain.StatusAccepted {
			continue
		}
		if ev.Cursor <= last {
			t.Fatalf("cursor %d after %d", ev.Cursor, last)
		}
		last = ev.Cursor
		got[ev.Hash] = append(got[ev.Hash], ev.Status)
		stored++
	}
	for i, inv := range invs {
		if g := got[inv.Hash]; len(g) != 2 || g[0] != domain.StatusSettleRequested || g[1] != domain.StatusSettled {
			t.Errorf("invoice %d: %v", i, g)
		}
	}
}

// TestLookupInvoiceEveryState: open or unknown, collecting, accepted (with
// its set id and deadline), settling (the write in flight), stored
// (settle requested, then settled) with its HTLCs and sequence number.
func TestLookupInvoiceEveryState(t *testing.T) {
	h := newHarness(t, 2, func(c *Config) { c.Go = nil })
	acc := h.subscribe()
	lookup := func(hash domain.PaymentHash) ports.InvoiceLookup {
		t.Helper()
		l, err := h.mux.LookupInvoice(ctx, hash)
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if l.Hash != hash {
			t.Fatalf("lookup of %s answered for %s", hash, l.Hash)
		}
		return l
	}
	inv := h.invoice(10000, time.Hour)
	if l := lookup(inv.Hash); l.State != ports.LookupOpenOrUnknown {
		t.Fatalf("new invoice: %+v, want open or unknown", l)
	}
	h.send(h.build(inv, part{node: h.nodes[0], amount: 4000, total: 10000}))
	l := lookup(inv.Hash)
	if l.State != ports.LookupCollecting || l.Parts != 1 || l.Held != 4000 || l.Total != 10000 || l.Amount != 10000 ||
		l.SetID != (domain.SetID{}) || !l.AcceptDeadline.IsZero() {
		t.Fatalf("one part of two: %+v", l)
	}
	h.send(h.build(inv, part{node: h.nodes[1], amount: 6000, total: 10000}))
	ev := nextAccepted(t, acc)
	l = lookup(inv.Hash)
	if l.State != ports.LookupAccepted || l.Parts != 2 || l.Held != 10000 || l.SetID != ev.SetID ||
		!l.AcceptDeadline.Equal(h.clock.Now().Add(h.mux.cfg.AcceptTimeout)) {
		t.Fatalf("accepted: %+v (now %v)", l, h.clock.Now())
	}

	// Settling: the settle write hangs on the store's lock.
	h.store.entered = make(chan struct{}, 1)
	h.store.mu.Lock()
	settled := make(chan error, 1)
	go func() { settled <- h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID) }()
	waitEntered(t, h.store.entered, "the settle write")
	if l = lookup(inv.Hash); l.State != ports.LookupSettling || l.SetID != ev.SetID || !l.AcceptDeadline.IsZero() {
		h.store.mu.Unlock()
		t.Fatalf("settling: %+v", l)
	}
	h.store.mu.Unlock()
	if err := <-settled; err != nil {
		t.Fatal(err)
	}

	l = lookup(inv.Hash)
	if l.State != ports.LookupStored || l.Invoice.Status != domain.StatusSettleRequested || l.Invoice.Sequence == 0 ||
		len(l.Invoice.HTLCs) != 2 || l.Invoice.AmountPaid != 10000 || l.Invoice.SetID != ev.SetID || l.Invoice.Preimage != inv.Preimage {
		t.Fatalf("settle requested: %+v", l)
	}
	for _, n := range h.nodes {
		r := n.next(t)
		h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: r.Circuit, Settled: true})
	}
	waitFor(t, "the invoice to be stored settled", func() bool { return lookup(inv.Hash).Invoice.Status == domain.StatusSettled })
	for _, htlc := range lookup(inv.Hash).Invoice.HTLCs {
		if htlc.Status != domain.HTLCSettled {
			t.Fatalf("htlc %+v", htlc)
		}
	}
	// A hash lnmux never issued looks like an open invoice.
	if l := lookup(domain.PaymentHash{1, 2, 3}); l.State != ports.LookupOpenOrUnknown {
		t.Fatalf("unknown hash: %+v", l)
	}
}

// TestSubscribeInvoiceEventsPollsTheStore: a change this process did not
// publish (stored by another writer) still reaches the subscriber, at the
// next poll of the log.
func TestSubscribeInvoiceEventsPollsTheStore(t *testing.T) {
	h := newHarness(t, 1, nil)
	s := h.subscribeEvents(t, 0, nil)
	armed := func() bool {
		h.clock.mu.Lock()
		defer h.clock.mu.Unlock()
		for _, tm := range h.clock.timers {
			if !tm.stopped && tm.at.Equal(h.clock.now.Add(eventPoll)) {
				return true
			}
		}
		return false
	}
	waitFor(t, "the subscriber to wait with its poll timer armed", armed)
	inv := storetest.NewInvoice(t, 1)
	if _, err := h.store.core.RequestSettle(ctx, inv); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(eventPoll)
	wantStored(t, s.next(t), inv.Hash, domain.StatusSettleRequested, 0)
}
