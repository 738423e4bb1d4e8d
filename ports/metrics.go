package ports

import "github.com/lnmux/lnmux/domain"

// Metrics counts what the multiplexer decides, for operators. Calls must be
// cheap and never block: they are on the HTLC path.
type Metrics interface {
	// HTLCResolved counts an answer sent to a node; reason is FailNone
	// unless action is ActionFail.
	HTLCResolved(action Action, reason domain.FailureReason)
	// HTLCHeld counts an HTLC that joined an incomplete set.
	HTLCHeld()
	// SetAccepted counts a complete set published as accepted.
	SetAccepted(parts int)
	// SettleRequested counts a settlement committed to the store.
	SettleRequested()
	// InvoiceFinal counts an invoice that reached Settled or Failed;
	// partial marks a failed invoice of which some HTLCs were settled.
	InvoiceFinal(status domain.InvoiceStatus, partial bool)
}

// Stats is the multiplexer's state at one instant, for gauges.
type Stats struct {
	// Sets is the number of HTLC sets in memory (collecting or accepted).
	Sets int
	// PendingSettleHTLCs is the number of HTLCs of settle-requested
	// invoices whose final outcome lnd has not reported yet.
	PendingSettleHTLCs int
	// Nodes is the state of every node.
	Nodes []NodeStatus
}
