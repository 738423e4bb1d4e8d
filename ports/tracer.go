package ports

import (
	"context"

	"github.com/lnmux/lnmux/domain"
)

// Tracer marks a settlement in the traces: the store write and the settle
// answer to every HTLC of the set run inside the context it returns, and
// the lnd adapter links each HTLC's span to it. The application calls it
// where a settlement starts when that is not inside the SettleInvoice call
// (a settlement worker, recovery, auto-settle); inside the call the RPC's
// own span plays the part.
type Tracer interface {
	// Settlement starts the settlement of set setID of hash with htlcs
	// parts; end it with the outcome.
	Settlement(ctx context.Context, hash domain.PaymentHash, setID domain.SetID, htlcs int) (context.Context, func(error))
}

// NoTracer traces nothing.
type NoTracer struct{}

var _ Tracer = NoTracer{}

// Settlement implements Tracer.
func (NoTracer) Settlement(ctx context.Context, _ domain.PaymentHash, _ domain.SetID, _ int) (context.Context, func(error)) {
	return ctx, func(error) {}
}
