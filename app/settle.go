package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lnmux/lnmux/app/core"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Recover loads what the store knows and makes the machine lead
// (core.Machine.Lead): the HTLCs of settle-requested invoices, to re-settle
// their replays, and the hashes of paid invoices that have not expired, to
// refuse paying them twice. lnmuxd calls it once it holds the leader lock.
func (m *Mux) Recover(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	pending, err := m.store.ListPending(sctx)
	if err != nil {
		return fmt.Errorf("load pending invoices: %w", err)
	}
	paid, err := m.store.ListUnexpired(sctx, m.clock.Now())
	if err != nil {
		return fmt.Errorf("load paid invoices: %w", err)
	}
	cancels, err := m.store.ListCancels(sctx, m.clock.Now())
	if err != nil {
		return fmt.Errorf("load recorded cancels: %w", err)
	}
	m.do(ctx, func(c *core.Machine, now time.Time) { c.Lead(now, pending, paid, cancels) })
	m.ready.Store(true)
	return nil
}

// Depose ends this process's leadership (core.Machine.Depose): from its
// return on, no answer leaves it, settle and cancel calls are refused as
// not ready, and nothing is judged or written. Every answer decided before
// was handed to its node when it returns. lnmuxd calls it when the leader
// lock is lost and before it releases the lock in a hand-over.
func (m *Mux) Depose(ctx context.Context) error {
	m.do(ctx, func(c *core.Machine, _ time.Time) { c.Depose("leadership ended") })
	return nil
}

// SettleInvoice implements ports.Service (core.Machine.Settle). A call whose
// context ends while the outcome of the write is unknown returns
// domain.ErrOutcomeUnknown; the set stays untouchable and the write is
// retried until the store answers (I7): calling again waits for that
// answer.
func (m *Mux) SettleInvoice(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	return m.SettleInvoiceWithPreimage(ctx, hash, setID, domain.Preimage{})
}

// SettleInvoiceWithPreimage implements ports.Service: SettleInvoice with
// the application's preimage, which an invoice with a caller-supplied
// payment hash needs. A preimage that does not hash to hash is refused with
// domain.ErrInvalidArgument before anything is recorded; the set stays as
// it was.
func (m *Mux) SettleInvoiceWithPreimage(ctx context.Context, hash domain.PaymentHash, setID domain.SetID, preimage domain.Preimage) error {
	return m.call(ctx, func(c *core.Machine, now time.Time, req core.ReqID) { c.Settle(now, req, hash, setID, preimage) })
}

// CancelInvoice implements ports.Service (core.Machine.Cancel): the set's
// HTLCs are failed, and the call returns once the cancel is recorded, so
// that no later leader undoes it.
func (m *Mux) CancelInvoice(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	return m.call(ctx, func(c *core.Machine, now time.Time, req core.ReqID) { c.Cancel(now, req, hash, setID, false) })
}

// CancelInvoicePermanently implements ports.Service: whatever set the hash
// has is cancelled, and the hash can never be paid again until its invoice
// expires (a stored tombstone; later HTLCs are failed as unknown).
func (m *Mux) CancelInvoicePermanently(ctx context.Context, hash domain.PaymentHash) error {
	return m.call(ctx, func(c *core.Machine, now time.Time, req core.ReqID) { c.Cancel(now, req, hash, domain.SetID{}, true) })
}

// currentStatus is what an invoice subscriber sees first: the in-memory set,
// else the stored invoice; false if lnmux knows nothing of the hash.
func (m *Mux) currentStatus(ctx context.Context, hash domain.PaymentHash) (ports.InvoiceUpdate, bool, error) {
	var u ports.InvoiceUpdate
	var ok bool
	m.do(ctx, func(c *core.Machine, _ time.Time) { u, ok = c.Status(hash) })
	if ok {
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
