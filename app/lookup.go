package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// memorySet is what memory holds of a hash's set, for LookupInvoice.
type memorySet struct {
	state               domain.SetState
	setID               domain.SetID
	amount, total, held domain.Msat
	parts               int
	deadline            time.Time
}

// lookupSet is the one read of the ledger LookupInvoice needs: the set
// being collected, decided or committed for hash, if any. Cancelled and
// expired sets are gone (the invoice is open again); a committed one is
// the store's.
func (l *ledger) lookupSet(hash domain.PaymentHash) (memorySet, bool) {
	sh, e := l.lock(hash)
	defer sh.mu.Unlock()
	if e == nil || e.set == nil {
		return memorySet{}, false
	}
	s := e.set.htlcs
	ms := memorySet{state: s.State(), amount: s.Meta.Amount, total: s.Total, held: s.Sum(), parts: s.Len()}
	switch ms.state { //nolint:exhaustive // the other states are not in memory for long: reported as not there
	case domain.SetCollecting:
	case domain.SetAccepted:
		ms.setID, ms.deadline = s.ID(), e.set.acceptDeadline
	case domain.SetSettling:
		ms.setID = s.ID()
	default:
		return memorySet{}, false
	}
	return ms, true
}

// LookupInvoice implements ports.Service: a complete set in memory, else
// the stored invoice, else a collecting set, else open or unknown.
func (m *Mux) LookupInvoice(ctx context.Context, hash domain.PaymentHash) (ports.InvoiceLookup, error) {
	mem, inMemory := m.ledger.lookupSet(hash)
	if inMemory && mem.state != domain.SetCollecting {
		return mem.lookup(hash), nil
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	inv, err := m.store.Get(sctx, hash)
	switch {
	case err == nil:
		return ports.InvoiceLookup{Hash: hash, State: ports.LookupStored, Invoice: inv}, nil
	case !errors.Is(err, domain.ErrInvoiceNotFound):
		return ports.InvoiceLookup{}, fmt.Errorf("load invoice: %w", err)
	case inMemory:
		return mem.lookup(hash), nil
	}
	return ports.InvoiceLookup{Hash: hash, State: ports.LookupOpenOrUnknown}, nil
}

func (ms memorySet) lookup(hash domain.PaymentHash) ports.InvoiceLookup {
	st := ports.LookupCollecting
	switch ms.state { //nolint:exhaustive // lookupSet returns these three only
	case domain.SetAccepted:
		st = ports.LookupAccepted
	case domain.SetSettling:
		st = ports.LookupSettling
	}
	return ports.InvoiceLookup{
		Hash: hash, State: st, Amount: ms.amount, Total: ms.total, Held: ms.held, Parts: ms.parts,
		SetID: ms.setID, AcceptDeadline: ms.deadline,
	}
}
