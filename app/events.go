package app

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lnmux/lnmux/app/core"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// subscriberBuffer is how many events a subscriber may lag behind before it
// is dropped: the HTLC path never waits for a slow client.
const subscriberBuffer = 1024

// hub fans out accepted events and per-invoice updates.
type hub struct {
	mu       sync.Mutex
	nextID   uint64
	accepted map[uint64]chan ports.AcceptedEvent
	invoices map[domain.PaymentHash]map[uint64]chan ports.InvoiceUpdate
	// acceptedCount is read on the HTLC path without the lock.
	acceptedCount atomic.Int64
	// stored wakes the event log's subscribers (eventlog.go).
	stored storedWaiters
}

func newHub() *hub {
	return &hub{
		accepted: make(map[uint64]chan ports.AcceptedEvent),
		invoices: make(map[domain.PaymentHash]map[uint64]chan ports.InvoiceUpdate),
	}
}

func (h *hub) hasAcceptedSubscribers() bool { return h.acceptedCount.Load() > 0 }

func (h *hub) acceptedSubscribers() int { return int(h.acceptedCount.Load()) }

func (h *hub) subscribeAccepted() (uint64, chan ports.AcceptedEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	ch := make(chan ports.AcceptedEvent, subscriberBuffer)
	h.accepted[h.nextID] = ch
	h.acceptedCount.Add(1)
	return h.nextID, ch
}

func (h *hub) unsubscribeAccepted(id uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.accepted[id]; ok {
		h.dropAccepted(id, ch)
	}
}

// dropAccepted removes a subscriber; h.mu is held.
func (h *hub) dropAccepted(id uint64, ch chan ports.AcceptedEvent) {
	delete(h.accepted, id)
	close(ch)
	h.acceptedCount.Add(-1)
}

func (h *hub) publishAccepted(ev ports.AcceptedEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, ch := range h.accepted {
		select {
		case ch <- ev:
		default:
			// Closing tells the subscriber it fell behind.
			h.dropAccepted(id, ch)
		}
	}
}

func (h *hub) subscribeInvoice(hash domain.PaymentHash) (uint64, chan ports.InvoiceUpdate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	ch := make(chan ports.InvoiceUpdate, 16)
	subs := h.invoices[hash]
	if subs == nil {
		subs = make(map[uint64]chan ports.InvoiceUpdate)
		h.invoices[hash] = subs
	}
	subs[h.nextID] = ch
	return h.nextID, ch
}

func (h *hub) unsubscribeInvoice(hash domain.PaymentHash, id uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := h.invoices[hash]
	if ch, ok := subs[id]; ok {
		delete(subs, id)
		close(ch)
		if len(subs) == 0 {
			delete(h.invoices, hash)
		}
	}
}

func (h *hub) publishInvoice(u ports.InvoiceUpdate) {
	if u.Status.IsStored() {
		// Published after the store committed the change.
		h.stored.wake()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := h.invoices[u.Hash]
	for id, ch := range subs {
		select {
		case ch <- u:
		default:
			delete(subs, id)
			close(ch)
		}
	}
	if subs != nil && len(subs) == 0 {
		delete(h.invoices, u.Hash)
	}
}

// errSubscriberLagged ends a stream whose client did not keep up.
var errSubscriberLagged = fmt.Errorf("%w: subscriber fell behind and was dropped", domain.ErrNotReady)

// subscribeAccepted registers an accepted-set subscriber and lists the sets
// waiting for a decision, in one step of the machine: no set is missed
// between the two. A reconnecting application hears again of sets it was
// told of before: deciding is idempotent. The subscriber counts for I4
// (core.Machine.Subscribers) until unsubscribe.
func (m *Mux) subscribeAccepted(ctx context.Context) (ch chan ports.AcceptedEvent, waiting []ports.AcceptedEvent, unsubscribe func()) {
	var id uint64
	m.do(ctx, func(c *core.Machine, now time.Time) {
		id, ch = m.hub.subscribeAccepted()
		waiting = c.AcceptedSets()
		c.Subscribers(now, m.hub.acceptedSubscribers())
	})
	return ch, waiting, func() {
		m.do(context.WithoutCancel(ctx), func(c *core.Machine, now time.Time) {
			m.hub.unsubscribeAccepted(id)
			c.Subscribers(now, m.hub.acceptedSubscribers())
		})
	}
}

// SubscribeAccepted implements ports.Service.
func (m *Mux) SubscribeAccepted(ctx context.Context, send func(ports.AcceptedEvent) error) error {
	ch, waiting, unsubscribe := m.subscribeAccepted(ctx)
	defer unsubscribe()
	for _, ev := range waiting {
		if err := send(ev); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				return errSubscriberLagged
			}
			if err := send(ev); err != nil {
				return err
			}
		}
	}
}

// SubscribeInvoice implements ports.Service.
func (m *Mux) SubscribeInvoice(ctx context.Context, hash domain.PaymentHash, send func(ports.InvoiceUpdate) error) error {
	id, ch := m.hub.subscribeInvoice(hash)
	defer m.hub.unsubscribeInvoice(hash, id)

	cur, ok, err := m.currentStatus(ctx, hash)
	if err != nil {
		return err
	}
	// A set still collecting looks open from outside: nothing to report.
	if ok && cur.Status != domain.StatusOpen {
		if err := send(cur); err != nil {
			return err
		}
		if cur.Status.IsStored() && cur.Status.IsFinal() {
			return nil
		}
	}
	last := cur.Status
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-ch:
			if !ok {
				return errSubscriberLagged
			}
			if u.Status == last && u.SetID == cur.SetID {
				continue
			}
			last, cur = u.Status, u
			if err := send(u); err != nil {
				return err
			}
			if u.Status.IsStored() && u.Status.IsFinal() {
				return nil
			}
		}
	}
}

// WaitForFinalStatus implements ports.Service.
func (m *Mux) WaitForFinalStatus(ctx context.Context, hash domain.PaymentHash) (domain.InvoiceStatus, error) {
	id, ch := m.hub.subscribeInvoice(hash)
	defer m.hub.unsubscribeInvoice(hash, id)

	cur, ok, err := m.currentStatus(ctx, hash)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, domain.ErrInvoiceNotFound
	case cur.Status == domain.StatusSettled || cur.Status == domain.StatusFailed:
		return cur.Status, nil
	}
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case u, ok := <-ch:
			if !ok {
				return 0, errSubscriberLagged
			}
			if u.Status == domain.StatusSettled || u.Status == domain.StatusFailed {
				return u.Status, nil
			}
		}
	}
}
