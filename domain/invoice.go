package domain

import (
	"crypto/subtle"
	"fmt"
	"time"
)

// InvoiceStatus is where an invoice is in its lifecycle, as the API shows
// it (docs/design.md, "Lifecycle"). Open invoices exist nowhere; Accepted,
// Cancelled and Expired are the state of a set in memory
// (SetState.InvoiceStatus); SettleRequested, Settled and Failed are stored,
// and Invoice.ApplyFinal is what moves them.
type InvoiceStatus uint8

// Invoice statuses.
const (
	StatusOpen InvoiceStatus = iota
	StatusAccepted
	StatusSettleRequested
	StatusSettled
	StatusFailed
	StatusCancelled
	StatusExpired
)

// String names the status.
func (s InvoiceStatus) String() string {
	switch s {
	case StatusOpen:
		return "open"
	case StatusAccepted:
		return "accepted"
	case StatusSettleRequested:
		return "settle_requested"
	case StatusSettled:
		return "settled"
	case StatusFailed:
		return "failed"
	case StatusCancelled:
		return "cancelled"
	case StatusExpired:
		return "expired"
	}
	return fmt.Sprintf("InvoiceStatus(%d)", uint8(s))
}

// ParseInvoiceStatus is the inverse of String for stored statuses.
func ParseInvoiceStatus(s string) (InvoiceStatus, error) {
	for st := StatusOpen; st <= StatusExpired; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("%w: invoice status %q", ErrInvalidArgument, s)
}

// IsFinal reports whether no event can change the status any more. Cancelled
// and Expired end one set only, so they are final for that set.
func (s InvoiceStatus) IsFinal() bool {
	switch s { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case StatusSettled, StatusFailed, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// IsStored reports whether the status is kept in the database.
func (s InvoiceStatus) IsStored() bool {
	return s == StatusSettleRequested || s == StatusSettled || s == StatusFailed
}

// HTLCStatus is the fate of one HTLC of a settle-requested set, as lnd
// reports it.
type HTLCStatus uint8

// HTLC statuses.
const (
	HTLCPending HTLCStatus = iota
	HTLCSettled
	HTLCFailed
)

// String names the status.
func (s HTLCStatus) String() string {
	switch s {
	case HTLCPending:
		return "pending"
	case HTLCSettled:
		return "settled"
	case HTLCFailed:
		return "failed"
	}
	return fmt.Sprintf("HTLCStatus(%d)", uint8(s))
}

// ParseHTLCStatus is the inverse of String.
func ParseHTLCStatus(s string) (HTLCStatus, error) {
	for st := HTLCPending; st <= HTLCFailed; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("%w: htlc status %q", ErrInvalidArgument, s)
}

// IsFinal reports whether lnd has resolved the HTLC.
func (s HTLCStatus) IsFinal() bool { return s != HTLCPending }

// SettledHTLC is an HTLC of a settle-requested invoice.
type SettledHTLC struct {
	Circuit CircuitKey
	Amount  Msat
	Status  HTLCStatus
}

// Invoice is a stored invoice: one whose settlement has been requested.
type Invoice struct {
	Hash     PaymentHash
	Preimage Preimage
	// Amount is the invoice amount (zero: any amount).
	Amount Msat
	// AmountPaid is the sum of the settled set.
	AmountPaid        Msat
	SetID             SetID
	Status            InvoiceStatus
	Expiry            time.Time
	SettleRequestedAt time.Time
	// FinalizedAt is zero until the status is final.
	FinalizedAt time.Time
	// Sequence orders stored invoices; the store assigns it.
	Sequence uint64
	HTLCs    []SettledHTLC
}

// NewSettleRequest builds the invoice to store when settlement of an accepted
// set is requested. preimage is the application's: required for an
// external-hash invoice, whose preimage only the application knows, and
// optional (zero) for lnmux's own; when given it must hash to the set's
// payment hash, or the request is refused with ErrInvalidArgument and
// nothing else happens.
func NewSettleRequest(set *HTLCSet, preimage Preimage, now time.Time) (Invoice, error) {
	if set.State() != SetSettling && set.State() != SetSettleRequested {
		return Invoice{}, fmt.Errorf("%w: settle request from %s", ErrInvalidTransition, set.State())
	}
	if err := CheckSettlePreimage(set.Hash, set.Meta.External, preimage); err != nil {
		return Invoice{}, err
	}
	if !set.Meta.External {
		preimage = set.Preimage
	}
	inv := Invoice{
		Hash:              set.Hash,
		Preimage:          preimage,
		Amount:            set.Meta.Amount,
		AmountPaid:        set.Sum(),
		SetID:             set.ID(),
		Status:            StatusSettleRequested,
		Expiry:            set.Meta.Expiry,
		SettleRequestedAt: now,
	}
	for _, h := range set.HTLCs() {
		inv.HTLCs = append(inv.HTLCs, SettledHTLC{Circuit: h.Circuit, Amount: h.Amount, Status: HTLCPending})
	}
	return inv, nil
}

// CheckSettlePreimage is the rule for the preimage an application settles
// with: a non-zero one must hash to hash (checked in constant time), and an
// external-hash invoice needs one. The error never contains the preimage.
func CheckSettlePreimage(hash PaymentHash, external bool, preimage Preimage) error {
	if preimage == (Preimage{}) {
		if external {
			return fieldErr(FieldPreimage, "required for an invoice with a caller-supplied payment hash")
		}
		return nil
	}
	got := preimage.Hash()
	if subtle.ConstantTimeCompare(got[:], hash[:]) != 1 {
		return fieldErr(FieldPreimage, "does not hash to the payment hash")
	}
	return nil
}

// ApplyFinal records lnd's final resolution of one HTLC. It returns whether
// anything changed; once every HTLC is final the invoice becomes Settled (all
// settled) or Failed (any failed) with FinalizedAt = now.
func (inv *Invoice) ApplyFinal(c CircuitKey, settled bool, now time.Time) (bool, error) {
	idx := -1
	for i, h := range inv.HTLCs {
		if h.Circuit == c {
			idx = i
			break
		}
	}
	if idx < 0 {
		return false, fmt.Errorf("%w: htlc %s not in invoice %s", ErrInvalidArgument, c, inv.Hash)
	}
	st := HTLCFailed
	if settled {
		st = HTLCSettled
	}
	switch cur := inv.HTLCs[idx].Status; {
	case cur == st:
		return false, nil
	case cur.IsFinal():
		return false, fmt.Errorf("%w: htlc %s already %s", ErrInvalidTransition, c, cur)
	}
	inv.HTLCs[idx].Status = st
	if inv.Status != StatusSettleRequested {
		return true, nil
	}
	anyFailed := false
	for _, h := range inv.HTLCs {
		if !h.Status.IsFinal() {
			return true, nil
		}
		anyFailed = anyFailed || h.Status == HTLCFailed
	}
	// I3: the final state comes from lnd, all settled or any failed.
	inv.Status = StatusSettled
	if anyFailed {
		inv.Status = StatusFailed
	}
	inv.FinalizedAt = now
	return true, nil
}

// PartiallySettled reports a failed invoice of which some HTLCs were settled:
// the payer lost funds the merchant only partly received. Log it loudly.
func (inv *Invoice) PartiallySettled() bool {
	if inv.Status != StatusFailed {
		return false
	}
	for _, h := range inv.HTLCs {
		if h.Status == HTLCSettled {
			return true
		}
	}
	return false
}
