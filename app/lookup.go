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

// LookupInvoice implements ports.Service: a complete set in memory, else
// the stored invoice, else a collecting set, else open or unknown.
func (m *Mux) LookupInvoice(ctx context.Context, hash domain.PaymentHash) (ports.InvoiceLookup, error) {
	var mem core.SetLookup
	var inMemory bool
	m.do(ctx, func(c *core.Machine, _ time.Time) { mem, inMemory = c.Lookup(hash) })
	if inMemory && mem.State != domain.SetCollecting {
		return lookupOf(hash, mem), nil
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
		return lookupOf(hash, mem), nil
	}
	return ports.InvoiceLookup{Hash: hash, State: ports.LookupOpenOrUnknown}, nil
}

func lookupOf(hash domain.PaymentHash, ms core.SetLookup) ports.InvoiceLookup {
	st := ports.LookupCollecting
	switch ms.State { //nolint:exhaustive // core.Machine.Lookup returns these three only
	case domain.SetAccepted:
		st = ports.LookupAccepted
	case domain.SetSettling:
		st = ports.LookupSettling
	}
	return ports.InvoiceLookup{
		Hash: hash, State: st, Amount: ms.Amount, Total: ms.Total, Held: ms.Held, Parts: ms.Parts,
		SetID: ms.SetID, AcceptDeadline: ms.Deadline,
	}
}
