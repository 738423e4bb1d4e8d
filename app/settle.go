package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// storeTimeout bounds one settlement write. The write runs detached from the
// caller's context: a client hanging up must not leave the outcome unknown.
const storeTimeout = 30 * time.Second

// Recover loads what the store knows before any HTLC is judged: the HTLCs of
// settle-requested invoices, to re-settle their replays, and the hashes of
// paid invoices that have not expired, to refuse paying them twice.
func (m *Mux) Recover(ctx context.Context) error {
	pending, err := m.store.ListPending(ctx)
	if err != nil {
		return fmt.Errorf("load pending invoices: %w", err)
	}
	for _, inv := range pending {
		m.pending.add(inv)
	}
	paid, err := m.store.ListUnexpired(ctx, m.clock.Now())
	if err != nil {
		return fmt.Errorf("load paid invoices: %w", err)
	}
	for _, p := range paid {
		m.paid.add(p.Hash, p.Expiry)
	}
	m.recoveredAt.Store(m.clock.Now().UnixNano())
	m.ready.Store(true)
	m.log.InfoContext(ctx, "recovered from store", "pending_invoices", len(pending), "paid_unexpired", len(paid))
	return nil
}

// SettleInvoice implements ports.Service. The settlement is committed before
// any preimage leaves lnmux (I1); afterwards every HTLC of the set is
// settled, now and after every replay, until lnd reports it final (I2).
func (m *Mux) SettleInvoice(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	sh := m.shardOf(hash)
	sh.mu.Lock()
	e, ok := sh.sets[hash]
	if !ok {
		sh.mu.Unlock()
		return m.settleStored(ctx, hash, setID)
	}
	if e.set.State() == domain.SetSettling && e.set.ID() == setID {
		// Another call is committing this very settlement: its outcome
		// is this call's.
		done := e.settling
		sh.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		sh.mu.Lock()
		err := e.settleErr
		sh.mu.Unlock()
		return err
	}
	if err := e.set.BeginSettle(setID); err != nil {
		sh.mu.Unlock()
		return err
	}
	e.settling = make(chan struct{})
	inv, err := domain.NewSettleRequest(e.set, m.clock.Now())
	if err != nil {
		e.set.AbortSettle()
		sh.mu.Unlock()
		return err
	}
	if e.acceptTimer != nil {
		e.acceptTimer.Stop()
	}
	sh.mu.Unlock()

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	stored, err := m.store.RequestSettle(sctx, inv)
	cancel()
	if err != nil {
		err = fmt.Errorf("store settle request: %w", err)
		m.abortSettle(ctx, hash, e, err)
		return err
	}

	// Durable: from here on the HTLCs are never failed by lnmux.
	if m.cfg.AfterSettleCommit != nil {
		m.cfg.AfterSettleCommit()
	}
	m.pending.add(stored)
	m.paid.add(hash, inv.Expiry)
	sh.mu.Lock()
	_ = e.set.CommitSettle()
	if sh.sets[hash] == e {
		delete(sh.sets, hash)
	}
	close(e.settling)
	sh.mu.Unlock()

	m.log.InfoContext(ctx, "settle requested", "hash", hash, "set_id", setID, "htlcs", len(inv.HTLCs))
	m.cfg.Metrics.SettleRequested()
	m.hub.publishInvoice(ports.InvoiceUpdate{Hash: hash, Status: domain.StatusSettleRequested, SetID: setID})
	for _, h := range inv.HTLCs {
		ns := m.nodes[h.Circuit.Node]
		m.resolve(ctx, ns, ports.Resolution{Circuit: h.Circuit, Action: ports.ActionSettle, Preimage: inv.Preimage})
	}
	return nil
}

// abortSettle returns a set to Accepted after a failed write, with what is
// left of its accept time; a set past its deadline is cancelled at once.
func (m *Mux) abortSettle(ctx context.Context, hash domain.PaymentHash, e *setEntry, cause error) {
	sh := m.shardOf(hash)
	sh.mu.Lock()
	e.set.AbortSettle()
	e.settleErr = cause
	close(e.settling)
	left := e.acceptDeadline.Sub(m.clock.Now())
	setID := e.set.ID()
	e.acceptTimer = m.clock.AfterFunc(max(left, 0), func() {
		_ = m.cancelEntry(context.WithoutCancel(ctx), hash, e, setID, domain.FailAcceptTimeout)
	})
	sh.mu.Unlock()
}

// settleStored answers a settle request for a set no longer in memory: a
// repeat of a committed request succeeds (I6).
func (m *Mux) settleStored(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	inv, err := m.store.Get(ctx, hash)
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
	err := m.cancelEntry(ctx, hash, nil, setID, domain.FailCancelled)
	if !errors.Is(err, domain.ErrInvoiceNotFound) {
		return err
	}
	// Not in memory: done if cancelled before, refused if stored (I6),
	// unknown otherwise.
	if m.wasCancelled(hash, setID) {
		return nil
	}
	if _, gerr := m.store.Get(ctx, hash); gerr == nil {
		return domain.ErrSettleRequested
	} else if !errors.Is(gerr, domain.ErrInvoiceNotFound) {
		return fmt.Errorf("load invoice: %w", gerr)
	}
	return domain.ErrInvoiceNotFound
}

// PendingCircuits implements ports.NodeSink.
func (m *Mux) PendingCircuits(_ context.Context, node domain.NodeKey) []domain.CircuitKey {
	return m.pending.forNode(node)
}

// HTLCFinal implements ports.NodeSink: lnd's final word on an HTLC moves its
// invoice towards Settled or Failed (I3).
func (m *Mux) HTLCFinal(ctx context.Context, r ports.FinalResolution) {
	p, ok := m.pending.get(r.Circuit)
	if !ok {
		return // not an HTLC of a settle-requested invoice
	}
	inv, err := m.store.Update(ctx, p.hash, func(inv *domain.Invoice) error {
		_, err := inv.ApplyFinal(r.Circuit, r.Settled, m.clock.Now())
		return err
	})
	if err != nil {
		// Stays pending: the next reconnect looks it up again.
		m.log.ErrorContext(ctx, "cannot record final htlc resolution", "hash", p.hash, "circuit", r.Circuit, "err", err)
		return
	}
	m.pending.remove(r.Circuit)
	m.log.InfoContext(ctx, "htlc final", "hash", p.hash, "circuit", r.Circuit, "settled", r.Settled)
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

// currentStatus is what an invoice subscriber sees first: the in-memory set,
// else the stored invoice; false if lnmux knows nothing of the hash.
func (m *Mux) currentStatus(ctx context.Context, hash domain.PaymentHash) (ports.InvoiceUpdate, bool, error) {
	sh := m.shardOf(hash)
	sh.mu.Lock()
	if e, ok := sh.sets[hash]; ok {
		st := e.set.State()
		id := e.set.ID()
		sh.mu.Unlock()
		switch st {
		case domain.SetAccepted, domain.SetSettling:
			return ports.InvoiceUpdate{Hash: hash, Status: domain.StatusAccepted, SetID: id}, true, nil
		}
		// Collecting: open as far as anyone outside can tell.
		return ports.InvoiceUpdate{Hash: hash, Status: domain.StatusOpen}, true, nil
	}
	sh.mu.Unlock()
	inv, err := m.store.Get(ctx, hash)
	switch {
	case errors.Is(err, domain.ErrInvoiceNotFound):
		return ports.InvoiceUpdate{Hash: hash, Status: domain.StatusOpen}, false, nil
	case err != nil:
		return ports.InvoiceUpdate{}, false, fmt.Errorf("load invoice: %w", err)
	}
	return ports.InvoiceUpdate{Hash: hash, Status: inv.Status, SetID: inv.SetID}, true, nil
}

func (m *Mux) wasCancelled(hash domain.PaymentHash, setID domain.SetID) bool {
	sh := m.shardOf(hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, ok := sh.cancelled[hash]
	return ok && (setID == domain.SetID{} || r.setID == setID)
}
