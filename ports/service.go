package ports

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/lnmux/lnmux/domain"
)

// AddInvoiceRequest asks for a new invoice.
type AddInvoiceRequest struct {
	// Amount is zero for an any-amount invoice.
	Amount          domain.Msat
	Description     string
	DescriptionHash *[32]byte
	Expiry          time.Duration
	// PaymentHash, if set, is the caller's: only it knows the preimage
	// (a swap's), and it settles with SettleInvoiceWithPreimage.
	PaymentHash *domain.PaymentHash
	// AcceptTimeout is how long an accepted set waits for a decision;
	// zero: the configured default. lnd's auto-fail height still bounds
	// it.
	AcceptTimeout time.Duration
	// Blinded asks for blinded payment paths instead of route hints: one
	// per node, lnmux's key hidden (docs/blinded.md).
	Blinded bool
}

// AddInvoiceResult is a new invoice. Nothing of it is stored.
type AddInvoiceResult struct {
	PaymentRequest string
	Hash           domain.PaymentHash
	// Preimage is zero for an invoice with a caller-supplied hash.
	Preimage    domain.Preimage
	PaymentAddr domain.PaymentAddr
	ExpiresAt   time.Time
}

// AcceptedEvent reports a complete HTLC set waiting for a decision.
type AcceptedEvent struct {
	Hash   domain.PaymentHash
	SetID  domain.SetID
	Amount domain.Msat
}

// InvoiceUpdate reports a lifecycle step of one invoice.
type InvoiceUpdate struct {
	Hash   domain.PaymentHash
	Status domain.InvoiceStatus
	SetID  domain.SetID
}

// Info describes the running lnmux.
type Info struct {
	PubKey     domain.NodeKey
	Network    string
	AutoSettle bool
	Nodes      []NodeStatus
}

// Service is the driving port: the use cases the API offers.
type Service interface {
	Info(ctx context.Context) Info
	AddInvoice(ctx context.Context, req AddInvoiceRequest) (AddInvoiceResult, error)
	// SubscribeAccepted calls send for every accepted set, starting with the
	// sets accepted before the call, until ctx is done or send fails. A
	// subscriber that cannot keep up is dropped with domain.ErrNotReady.
	SubscribeAccepted(ctx context.Context, send func(AcceptedEvent) error) error
	// SubscribeInvoice calls send for each lifecycle step of one invoice,
	// starting with its current state if it has one, until ctx is done,
	// send fails or the invoice reaches a stored final state.
	SubscribeInvoice(ctx context.Context, hash domain.PaymentHash, send func(InvoiceUpdate) error) error
	// WaitForFinalStatus blocks until the stored invoice is Settled or Failed.
	WaitForFinalStatus(ctx context.Context, hash domain.PaymentHash) (domain.InvoiceStatus, error)
	// SettleInvoice requests settlement of an accepted set. Idempotent.
	SettleInvoice(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error
	// SettleInvoiceWithPreimage is SettleInvoice with the application's
	// preimage: required for an invoice with a caller-supplied payment
	// hash, optional for lnmux's own. One that does not hash to the
	// payment hash is refused with domain.ErrInvalidArgument and nothing
	// is recorded.
	SettleInvoiceWithPreimage(ctx context.Context, hash domain.PaymentHash, setID domain.SetID, preimage domain.Preimage) error
	// CancelInvoice fails an accepted set back. Idempotent; after a settle
	// request it fails with domain.ErrSettleRequested.
	CancelInvoice(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error
	// CancelInvoicePermanently fails every set of the hash, the one held now
	// if any and every later one until the invoice expires (they are
	// failed as for an unknown invoice), and logs a Cancelled event. The
	// cancel is stored (InvoiceStore.RecordCancel) before any HTLC is
	// failed and before it returns. Idempotent; after a settle request it
	// fails with domain.ErrSettleRequested.
	CancelInvoicePermanently(ctx context.Context, hash domain.PaymentHash) error
	// ListInvoices pages through stored invoices by sequence number.
	ListInvoices(ctx context.Context, from uint64, limit int) ([]domain.Invoice, error)
	// LookupInvoice reports what lnmux holds for a hash: a set in memory,
	// the stored invoice, or nothing (LookupOpenOrUnknown, not an error).
	LookupInvoice(ctx context.Context, hash domain.PaymentHash) (InvoiceLookup, error)
	// SubscribeInvoiceEvents calls send for the sets waiting for a
	// decision (Cursor 0), then for every stored change with a cursor
	// above after, in cursor order, then for every later change and newly
	// accepted set as they happen, until ctx is done or send fails. Stored
	// changes are sent in cursor order with no gap, across the replay and
	// the live part. A subscriber whose accepted events pile up is dropped
	// with an error wrapping ErrSubscriberLagged and domain.ErrNotReady.
	SubscribeInvoiceEvents(ctx context.Context, after uint64, send func(InvoiceEvent) error) error
}

// LookupState is what lnmux knows of a payment hash (LookupInvoice).
type LookupState uint8

// Lookup states.
const (
	// LookupOpenOrUnknown: nothing in memory or stored. lnmux keeps no
	// state for open invoices, so an open invoice of its own and a hash it
	// never issued look the same.
	LookupOpenOrUnknown LookupState = iota
	// LookupCollecting: a set is collecting parts, not complete yet.
	LookupCollecting
	// LookupAccepted: a complete set waits for a decision.
	LookupAccepted
	// LookupSettling: the set's settlement is being written (or its
	// outcome is not known yet); it is not stored.
	LookupSettling
	// LookupStored: the settlement is stored; Invoice holds it.
	LookupStored
)

// String names the state.
func (s LookupState) String() string {
	switch s {
	case LookupOpenOrUnknown:
		return "open_or_unknown"
	case LookupCollecting:
		return "collecting"
	case LookupAccepted:
		return "accepted"
	case LookupSettling:
		return "settling"
	case LookupStored:
		return "stored"
	}
	return "LookupState(" + strconv.Itoa(int(s)) + ")"
}

// InvoiceLookup is what LookupInvoice found for a hash.
type InvoiceLookup struct {
	Hash  domain.PaymentHash
	State LookupState
	// For a set in memory (collecting, accepted, settling): the invoice
	// amount from the payment address (zero: any amount), the total the
	// parts announce, what the held parts sum to and how many there are.
	// SetID and AcceptDeadline are set once the set is complete
	// (accepted; the deadline is zero while settling).
	Amount         domain.Msat
	Total          domain.Msat
	Held           domain.Msat
	Parts          int
	SetID          domain.SetID
	AcceptDeadline time.Time
	// Invoice is the stored invoice with its HTLCs (LookupStored only).
	Invoice domain.Invoice
}

// ErrSubscriberLagged ends an event stream whose client did not keep up:
// it was dropped so that it holds up nothing, and resubscribes from the
// last cursor it handled.
var ErrSubscriberLagged = errors.New("subscriber fell behind and was dropped: subscribe again from the last cursor handled")
