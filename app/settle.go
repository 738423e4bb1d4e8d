package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Store deadlines and retry backoff (docs/design.md, "Writes").
const (
	// storeTimeout bounds one store call. Writes run detached from the
	// caller's context: a client hanging up must not end a write.
	storeTimeout = 30 * time.Second
	// retryMin and retryMax bound the backoff of a write that must happen.
	retryMin = 100 * time.Millisecond
	retryMax = 10 * time.Second
)

func backoff(attempt int) time.Duration {
	d := retryMin
	for i := 1; i < attempt && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

// Recover loads what the store knows before any HTLC is judged: the HTLCs of
// settle-requested invoices, to re-settle their replays, and the hashes of
// paid invoices that have not expired, to refuse paying them twice.
func (m *Mux) Recover(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	pending, err := m.store.ListPending(sctx)
	if err != nil {
		return fmt.Errorf("load pending invoices: %w", err)
	}
	for _, inv := range pending {
		m.ledger.recover(inv)
	}
	paid, err := m.store.ListUnexpired(sctx, m.clock.Now())
	if err != nil {
		return fmt.Errorf("load paid invoices: %w", err)
	}
	for _, p := range paid {
		m.ledger.markPaid(p.Hash, p.Expiry)
	}
	m.ledger.prune(m.clock.Now())
	m.recoveredAt.Store(m.clock.Now().UnixNano())
	m.ready.Store(true)
	m.log.InfoContext(ctx, "recovered from store", "pending_invoices", len(pending), "paid_unexpired", len(paid))
	return nil
}

// SettleInvoice implements ports.Service. The settlement is committed before
// any preimage leaves lnmux (I1); afterwards every HTLC of the set is
// settled, now and after every replay, until lnd reports it final (I2).
// Concurrent calls for the same set share one attempt and its outcome (I6).
// A call whose context ends while the outcome of the write is unknown
// returns an error; the set stays untouchable and the write is retried
// until the store answers (I7): calling again waits for that answer.
func (m *Mux) SettleInvoice(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	t, err := m.startSettle(ctx, hash, setID)
	switch {
	case errors.Is(err, errNotInMemory):
		return m.settleStored(ctx, hash, setID)
	case errors.Is(err, domain.ErrSetNotFound) && m.ledger.mayBeEvicted(hash):
		// Memory does not know this set, and the hash's paid mark may
		// have been dropped: the store tells whether this very set was
		// settled before (I6).
		if serr := m.settleStored(ctx, hash, setID); serr == nil || !errors.Is(serr, domain.ErrInvoiceNotFound) {
			return serr
		}
		return err
	case err != nil:
		return err
	}
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
		if m.ticketUnknown(t) {
			return fmt.Errorf("%w: the settlement's outcome is not known yet; it is retried and this call can be repeated", domain.ErrOutcomeUnknown)
		}
		return ctx.Err()
	}
}

func (m *Mux) ticketUnknown(t *settleTicket) bool {
	sh, _ := m.ledger.lock(t.hash)
	defer sh.mu.Unlock()
	return t.unknown
}

// startSettle begins (or joins) the settlement of a set and returns its
// ticket without waiting for it.
func (m *Mux) startSettle(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) (*settleTicket, error) {
	if m.stopping.Load() {
		return nil, fmt.Errorf("%w: shutting down", domain.ErrNotReady)
	}
	t, start, err := m.ledger.beginSettle(hash, setID, m.clock.Now())
	if err != nil {
		return nil, err
	}
	if start {
		// The settlement's span (docs/tracing.md) covers the write and the
		// settle answers; it outlives the caller.
		t.ctx, t.endTrace = m.cfg.Tracer.Settlement(context.WithoutCancel(ctx), hash, setID, len(t.inv.HTLCs))
		m.cfg.Go(func() { m.writeSettle(t) })
	}
	return t, nil
}

// writeSettle runs one attempt of a settlement write. Any error but a
// positive refusal leaves the outcome unknown: the same idempotent write is
// retried with backoff until the store answers, and the set stays
// untouchable meanwhile (I7). A committed row always leads to settling every
// HTLC of the set.
func (m *Mux) writeSettle(t *settleTicket) {
	ctx := t.ctx
	t.attempts++
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	stored, err := m.store.RequestSettle(sctx, t.inv)
	cancel()
	switch {
	case err == nil && stored.SetID != t.setID:
		fallthrough // a conflict like ErrConflict
	case errors.Is(err, domain.ErrConflict):
		// Positive: the hash is stored with another set, so this one was
		// not committed and can never be. Its HTLCs pay an invoice paid
		// already.
		m.log.ErrorContext(ctx, "settle refused: invoice stored with another set", "hash", t.hash, "set_id", t.setID)
		m.apply(ctx, m.ledger.abortSettle(t, domain.FailAlreadyPaid, m.height))
		m.finishTicket(t, fmt.Errorf("%w: invoice was settled with another set", domain.ErrSetNotFound))
		return
	case errors.Is(err, domain.ErrNotLeader):
		// Fenced: nothing was written, and another lnmux leads now. Stop
		// before anything else is answered.
		m.finishTicket(t, fmt.Errorf("%w: leadership lost", domain.ErrNotReady))
		m.fatal(err)
		return
	case err != nil:
		m.markUnknown(t)
		d := backoff(t.attempts)
		m.log.ErrorContext(ctx, "settle write failed, outcome unknown: retrying", "hash", t.hash,
			"set_id", t.setID, "attempt", t.attempts, "retry_in", d, "err", err)
		m.clock.AfterFunc(d, func() {
			if m.stopping.Load() {
				return
			}
			m.cfg.Go(func() { m.writeSettle(t) })
		})
		return
	}
	// Durable: from here on the HTLCs are never failed by lnmux.
	if m.cfg.AfterSettleCommit != nil {
		m.cfg.AfterSettleCommit()
	}
	m.cfg.Metrics.SettleRequested()
	m.apply(ctx, m.ledger.commitSettle(t, stored))
	m.finishTicket(t, nil)
}

func (m *Mux) markUnknown(t *settleTicket) {
	sh, _ := m.ledger.lock(t.hash)
	t.unknown = true
	sh.mu.Unlock()
}

func (m *Mux) finishTicket(t *settleTicket, err error) {
	if t.endTrace != nil {
		t.endTrace(err)
	}
	sh, _ := m.ledger.lock(t.hash)
	t.err = err
	t.unknown = false
	close(t.done)
	sh.mu.Unlock()
}

// settleStored answers a settle request for a set no longer in memory: a
// repeat of a committed request succeeds (I6).
func (m *Mux) settleStored(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	inv, err := m.store.Get(sctx, hash)
	switch {
	case errors.Is(err, domain.ErrInvoiceNotFound):
		return domain.ErrInvoiceNotFound
	case err != nil:
		return fmt.Errorf("load invoice: %w", err)
	case inv.SetID != setID:
		return fmt.Errorf("%w: invoice was settled with another set", domain.ErrSetNotFound)
	}
	return nil
}

// CancelInvoice implements ports.Service.
func (m *Mux) CancelInvoice(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	if m.stopping.Load() {
		return fmt.Errorf("%w: not the leader", domain.ErrNotReady)
	}
	if m.ledger.mayBeEvicted(hash) {
		// Memory holds no paid mark, but it may have dropped one: a set in
		// memory may be a second payment of an invoice stored as paid, and
		// cancelling it must not read as "never paid" (I6).
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		inv, err := m.store.Get(sctx, hash)
		cancel()
		switch {
		case err == nil:
			m.apply(ctx, m.ledger.paidElsewhere(inv, m.height))
			if setID == (domain.SetID{}) || setID == inv.SetID {
				return domain.ErrSettleRequested
			}
		case !errors.Is(err, domain.ErrInvoiceNotFound):
			return fmt.Errorf("load invoice: %w", err)
		}
	}
	fx, err := m.ledger.cancel(cancelRequest{hash: hash, setID: setID, reason: domain.FailCancelled}, m.height)
	if err == nil {
		m.apply(ctx, fx)
		return nil
	}
	if !errors.Is(err, errNotInMemory) {
		return err
	}
	// Not in memory: refused if stored (I6), unknown otherwise.
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if _, gerr := m.store.Get(sctx, hash); gerr == nil {
		return domain.ErrSettleRequested
	} else if !errors.Is(gerr, domain.ErrInvoiceNotFound) {
		return fmt.Errorf("load invoice: %w", gerr)
	}
	return domain.ErrInvoiceNotFound
}

// PendingCircuits implements ports.NodeSink.
func (m *Mux) PendingCircuits(_ context.Context, node domain.NodeKey) []domain.CircuitKey {
	return m.ledger.pendingFor(node)
}

// HTLCFinal implements ports.NodeSink: lnd's final word on an HTLC moves its
// invoice towards Settled or Failed (I3). lnd sends it once, so it is never
// dropped while lnmux waits for it: a committed circuit's is written (off
// the node's delivery goroutine, retried until stored), a settling one's is
// kept until the commit is known, and a held part that lnd failed leaves its
// set, which can then not be settled as complete.
func (m *Mux) HTLCFinal(ctx context.Context, r ports.FinalResolution) {
	hash, ok := m.ledger.index.get(r.Circuit)
	if m.testHookFinalLookedUp != nil {
		m.testHookFinalLookedUp()
	}
	if !ok {
		return // an ordinary forward, or nothing lnmux waits for any more
	}
	kind, fx := m.ledger.final(hash, r, m.rearmHold)
	m.apply(ctx, fx)
	if kind != finalRecord {
		return
	}
	m.finals.Lock()
	if _, busy := m.finalsInFlight[r.Circuit]; busy {
		m.finals.Unlock()
		return
	}
	m.finalsInFlight[r.Circuit] = struct{}{}
	m.finals.Unlock()
	m.cfg.Go(func() { m.writeFinal(hash, r, 1) })
}

// rearmHold starts the hold timer of a part of a set that collects again.
func (m *Mux) rearmHold(hash domain.PaymentHash, c domain.CircuitKey, expiry time.Time) ports.Timer {
	hold := min(m.cfg.HoldTimeout, expiry.Sub(m.clock.Now()))
	return m.clock.AfterFunc(hold, func() { m.onHoldTimeout(hash, c) })
}

func (m *Mux) writeFinal(hash domain.PaymentHash, r ports.FinalResolution, attempt int) {
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	inv, err := m.store.Update(sctx, hash, func(inv *domain.Invoice) error {
		_, err := inv.ApplyFinal(r.Circuit, r.Settled, m.clock.Now())
		return err
	})
	cancel()
	switch {
	case errors.Is(err, domain.ErrNotLeader):
		m.doneFinal(r.Circuit)
		m.fatal(err)
		return
	case errors.Is(err, domain.ErrInvalidTransition), errors.Is(err, domain.ErrInvalidArgument):
		// lnd contradicts what is stored: retrying cannot help.
		m.log.ErrorContext(ctx, "final htlc resolution contradicts the store", "hash", hash, "circuit", r.Circuit,
			"settled", r.Settled, "err", err)
		m.ledger.finalRecorded(hash, r.Circuit)
		m.doneFinal(r.Circuit)
		return
	case err != nil:
		d := backoff(attempt)
		m.log.ErrorContext(ctx, "cannot record final htlc resolution: retrying", "hash", hash, "circuit", r.Circuit,
			"attempt", attempt, "retry_in", d, "err", err)
		m.clock.AfterFunc(d, func() {
			if m.stopping.Load() {
				m.doneFinal(r.Circuit)
				return
			}
			m.cfg.Go(func() { m.writeFinal(hash, r, attempt+1) })
		})
		return
	}
	m.ledger.finalRecorded(hash, r.Circuit)
	m.doneFinal(r.Circuit)
	m.log.InfoContext(ctx, "htlc final", "hash", hash, "circuit", r.Circuit, "settled", r.Settled)
	if !inv.Status.IsFinal() {
		return
	}
	partial := inv.PartiallySettled()
	m.cfg.Metrics.InvoiceFinal(inv.Status, partial)
	if partial {
		m.log.ErrorContext(ctx, "PARTIAL SETTLEMENT: some htlcs of the invoice settled, others failed",
			"hash", inv.Hash, "amount_paid", inv.AmountPaid)
	}
	m.log.InfoContext(ctx, "invoice final", "hash", inv.Hash, "status", inv.Status)
	m.hub.publishInvoice(ports.InvoiceUpdate{Hash: inv.Hash, Status: inv.Status, SetID: inv.SetID})
}

func (m *Mux) doneFinal(c domain.CircuitKey) {
	m.finals.Lock()
	delete(m.finalsInFlight, c)
	m.finals.Unlock()
}

// currentStatus is what an invoice subscriber sees first: the in-memory set,
// else the stored invoice; false if lnmux knows nothing of the hash.
func (m *Mux) currentStatus(ctx context.Context, hash domain.PaymentHash) (ports.InvoiceUpdate, bool, error) {
	if u, ok := m.ledger.status(hash); ok {
		return u, true, nil
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	inv, err := m.store.Get(sctx, hash)
	switch {
	case errors.Is(err, domain.ErrInvoiceNotFound):
		return ports.InvoiceUpdate{Hash: hash, Status: domain.StatusOpen}, false, nil
	case err != nil:
		return ports.InvoiceUpdate{}, false, fmt.Errorf("load invoice: %w", err)
	}
	return ports.InvoiceUpdate{Hash: hash, Status: inv.Status, SetID: inv.SetID}, true, nil
}
