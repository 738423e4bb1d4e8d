package ports

import (
	"context"
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
}

// AddInvoiceResult is a new invoice. Nothing of it is stored.
type AddInvoiceResult struct {
	PaymentRequest string
	Hash           domain.PaymentHash
	Preimage       domain.Preimage
	PaymentAddr    domain.PaymentAddr
	ExpiresAt      time.Time
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
	// CancelInvoice fails an accepted set back. Idempotent; after a settle
	// request it fails with domain.ErrSettleRequested.
	CancelInvoice(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error
	// ListInvoices pages through stored invoices by sequence number.
	ListInvoices(ctx context.Context, from uint64, limit int) ([]domain.Invoice, error)
}
