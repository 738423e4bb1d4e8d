package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// The event log stream (docs/api.md, "The event log"). Stored changes are
// never buffered per subscriber: each subscriber reads the store's log
// (ports.InvoiceEventLog) from its own cursor, so it receives them in
// cursor order with no gap between the replay and the live part, and a slow
// one holds up nothing but itself. A commit only wakes the subscribers
// (storedWaiters.wake, a non-blocking send on a channel of capacity 1),
// which then read what is new. The sets waiting for a decision come from
// the hub like SubscribeAccepted's, through its bounded channel: a
// subscriber that lets them pile up is dropped with ErrSubscriberLagged and
// resubscribes from its cursor.

const (
	// eventPage is how many stored events one read of the log returns.
	eventPage = 256
	// eventPoll is how often a subscriber reads the log without being woken:
	// a safety net only, every stored change of this process wakes it.
	eventPoll = 5 * time.Second
)

// storedWaiters wakes the event log's subscribers when a stored status
// changed. The zero value is ready.
type storedWaiters struct {
	mu    sync.Mutex
	next  uint64
	chans map[uint64]chan struct{}
}

func (w *storedWaiters) add() (uint64, chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.chans == nil {
		w.chans = make(map[uint64]chan struct{})
	}
	w.next++
	ch := make(chan struct{}, 1)
	w.chans[w.next] = ch
	return w.next, ch
}

func (w *storedWaiters) remove(id uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.chans, id)
}

// wake tells every subscriber that the log may have grown. It never
// blocks: a subscriber already woken stays woken once.
func (w *storedWaiters) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.chans {
		signal(ch)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func acceptedLogEvent(ev ports.AcceptedEvent) ports.InvoiceEvent {
	return ports.InvoiceEvent{Hash: ev.Hash, Status: domain.StatusAccepted, SetID: ev.SetID, AmountPaid: ev.Amount}
}

// SubscribeInvoiceEvents implements ports.Service. A subscriber also
// counts as an accept subscriber (it is told of sets to decide), as
// SubscribeAccepted's do.
func (m *Mux) SubscribeInvoiceEvents(ctx context.Context, after uint64, send func(ports.InvoiceEvent) error) error {
	log, ok := m.store.(ports.InvoiceEventLog)
	if !ok {
		return ports.ErrNoEventLog
	}
	// Both registrations come before the first read: a change committed
	// after them wakes this subscriber, one committed before is read.
	wid, wake := m.hub.stored.add()
	defer m.hub.stored.remove(wid)
	// The sets waiting for a decision, as SubscribeAccepted sends them.
	accepted, waiting, unsubscribe := m.subscribeAccepted(ctx)
	defer unsubscribe()
	for _, ev := range waiting {
		if err := send(acceptedLogEvent(ev)); err != nil {
			return err
		}
	}
	cursor := after
	sendAccepted := func(ev ports.AcceptedEvent, open bool) error {
		if !open {
			return fmt.Errorf("%w: %w (last cursor sent: %d)", domain.ErrNotReady, ports.ErrSubscriberLagged, cursor)
		}
		return send(acceptedLogEvent(ev))
	}
	// readLog sends every stored event after the cursor, page by page,
	// with the accepted sets that arrived meanwhile between pages.
	readLog := func() error {
		for {
			sctx, cancel := context.WithTimeout(ctx, storeTimeout)
			evs, err := log.ListEvents(sctx, cursor, eventPage)
			cancel()
			if err != nil {
				return fmt.Errorf("read the event log after cursor %d: %w", cursor, err)
			}
			for _, ev := range evs {
				if err := send(ev); err != nil {
					return err
				}
				cursor = ev.Cursor
			}
			for drained := false; !drained; {
				select {
				case ev, open := <-accepted:
					if err := sendAccepted(ev, open); err != nil {
						return err
					}
				default:
					drained = true
				}
			}
			if len(evs) < eventPage {
				return nil
			}
		}
	}
	read := true
	for {
		if read {
			if err := readLog(); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			read = false
		}
		poll := m.clock.AfterFunc(eventPoll, func() { signal(wake) })
		select {
		case <-ctx.Done():
			poll.Stop()
			return nil
		case <-wake:
			read = true
		case ev, open := <-accepted:
			if err := sendAccepted(ev, open); err != nil {
				poll.Stop()
				return err
			}
		}
		poll.Stop()
	}
}
