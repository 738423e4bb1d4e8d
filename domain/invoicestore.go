package domain

import "fmt"

// The rules every invoice store applies to what it is asked to persist
// (the contract of ports.InvoiceStore, held by ports/storetest). A request
// that breaks one can only come from a bug; storing it silently would hide
// the bug or, for a wrong preimage, have lnmux settle with it forever.

// CheckSettleRequest refuses a settle request a store must not persist: it
// must be settle-requested, carry the preimage of its hash and hold HTLCs.
func (inv Invoice) CheckSettleRequest() error {
	switch {
	case inv.Status != StatusSettleRequested:
		return fmt.Errorf("%w: invoice %s has status %s, want %s", ErrInvalidArgument, inv.Hash, inv.Status, StatusSettleRequested)
	case inv.Preimage.Hash() != inv.Hash:
		return fmt.Errorf("%w: preimage does not match invoice %s", ErrInvalidArgument, inv.Hash)
	case len(inv.HTLCs) == 0:
		return fmt.Errorf("%w: invoice %s has no htlcs", ErrInvalidArgument, inv.Hash)
	}
	return nil
}

// CheckUpdate refuses an update of before into after that changes what is
// immutable once stored: everything but the status, FinalizedAt and the
// HTLCs' outcomes. after must have a stored status and the same HTLCs (by
// circuit and amount, in any order).
func CheckUpdate(before, after Invoice) error {
	fail := func(what string) error {
		return fmt.Errorf("%w: update of invoice %s changed %s, which is immutable", ErrInvalidArgument, before.Hash, what)
	}
	switch {
	case after.Hash != before.Hash:
		return fail("the hash")
	case after.Preimage != before.Preimage:
		return fail("the preimage")
	case after.SetID != before.SetID:
		return fail("the set id")
	case after.Amount != before.Amount || after.AmountPaid != before.AmountPaid:
		return fail("an amount")
	case !after.Expiry.Equal(before.Expiry) || !after.SettleRequestedAt.Equal(before.SettleRequestedAt):
		return fail("a time other than FinalizedAt")
	case after.Sequence != before.Sequence:
		return fail("the sequence number")
	case len(after.HTLCs) != len(before.HTLCs):
		return fail("the htlc set")
	case !after.Status.IsStored():
		return fmt.Errorf("%w: invoice %s cannot be stored with status %s", ErrInvalidArgument, before.Hash, after.Status)
	}
	amounts := make(map[CircuitKey]Msat, len(before.HTLCs))
	for _, h := range before.HTLCs {
		amounts[h.Circuit] = h.Amount
	}
	for _, a := range after.HTLCs {
		amt, ok := amounts[a.Circuit]
		if !ok || a.Amount != amt {
			return fail("the htlc set")
		}
		delete(amounts, a.Circuit)
	}
	return nil
}
