package app

import (
	"context"

	"github.com/lnmux/lnmux/domain"
)

// CancelInvoicePermanently implements ports.Service.
//
// STUB (branch cancelstore): it keeps the package compiling while the
// store, the API and the console gain the permanent cancel. It is NOT the
// permanent cancel: the lead replaces this file with the core's
// implementation (record the cancel with RecordCancel, Permanent set,
// before failing anything; fail later sets of the hash as unknown).
func (m *Mux) CancelInvoicePermanently(ctx context.Context, hash domain.PaymentHash) error {
	return m.CancelInvoice(ctx, hash, domain.SetID{})
}
