package ports

import (
	"context"
	"time"

	"github.com/lnmux/lnmux/domain"
)

// InterceptedHTLC is an HTLC a cluster node would forward and offers to lnmux.
type InterceptedHTLC struct {
	Circuit domain.CircuitKey
	Hash    domain.PaymentHash
	// OutgoingChanID is the channel the sender asked the node to forward on.
	OutgoingChanID uint64
	// OutgoingNodeID is set by lnd ≥ 0.21.2 when the sender named the next
	// node instead of a channel (OutgoingChanID is then all ones).
	OutgoingNodeID *domain.NodeKey
	Forward        domain.Forward
	AutoFailHeight uint32
	// Onion is the onion packet for the next hop (lnmux).
	Onion []byte
	// Prepared is what the sink's PrepareHTLC returned for this HTLC;
	// opaque to the node.
	Prepared any
}

// Action is what lnmux tells a node to do with an intercepted HTLC.
type Action uint8

// Actions.
const (
	ActionResume Action = iota
	ActionSettle
	ActionFail
)

// String names the action.
func (a Action) String() string {
	switch a {
	case ActionResume:
		return "resume"
	case ActionSettle:
		return "settle"
	case ActionFail:
		return "fail"
	}
	return "unknown"
}

// Resolution answers one intercepted HTLC.
type Resolution struct {
	Circuit  domain.CircuitKey
	Action   Action
	Preimage domain.Preimage
	// FailureMessage is the failure encrypted to the sender (ActionFail).
	FailureMessage []byte
	// FailureCode is used instead of FailureMessage for malformed onions.
	FailureCode uint16
}

// FinalResolution is lnd's final word on an HTLC.
type FinalResolution struct {
	Circuit domain.CircuitKey
	Settled bool
}

// NodeStatus is what lnmux knows of a node's connection.
type NodeStatus struct {
	Node              domain.NodeKey
	Connected         bool
	InterceptorActive bool
	Height            uint32
	LastError         string
	Since             time.Time
	// Inbound is what the node's active channels can still receive: the
	// peers' balances above their channel reserves (docs/route-hints.md).
	// It is meaningful only when InboundKnown: a node that was never
	// measured, or whose last measurement failed, reports false.
	Inbound      domain.Msat
	InboundKnown bool
	// Hint is whether new invoices carry the node's route hint. The
	// application fills it in Info; a node leaves it zero.
	Hint HintStatus
}

// HintStatus says whether new invoices carry a node's route hint, and why
// not (docs/route-hints.md).
type HintStatus uint8

// Hint statuses.
const (
	// HintUnspecified: not known (a node's own report).
	HintUnspecified HintStatus = iota
	// HintIncluded: invoices hint the node, for the amounts its inbound
	// liquidity (or, multi-part, the cluster's) can take.
	HintIncluded
	// HintUnreachable: left out, unreachable for longer than the grace.
	HintUnreachable
	// HintNoInbound: left out, no inbound liquidity.
	HintNoInbound
	// HintFallback: no node qualifies, so every invoice hints every node.
	HintFallback
)

// String names the status.
func (h HintStatus) String() string {
	switch h {
	case HintIncluded:
		return "included"
	case HintUnreachable:
		return "unreachable"
	case HintNoInbound:
		return "no_inbound"
	case HintFallback:
		return "fallback"
	case HintUnspecified:
	}
	return "unspecified"
}

// NodeSink receives what a node reports. The application implements it; a
// node calls it from its own goroutines, so the sink must never block for
// long on one node's behalf.
//
// PrepareHTLC is part of the port, not an optional extension found by a
// type assertion: a wrapper of a sink (lnmuxd's hand-over gate) then cannot
// hide it without failing to compile, and a node always prepares HTLCs in
// parallel when the application can.
type NodeSink interface {
	HTLCPreparer
	// HTLCIntercepted hands over an HTLC. lnd re-offers held HTLCs after a
	// reconnect, so the same circuit can arrive more than once.
	HTLCIntercepted(ctx context.Context, h InterceptedHTLC)
	// BlockHeight reports the node's new best height.
	BlockHeight(ctx context.Context, node domain.NodeKey, height uint32)
	// HTLCFinal reports a final resolution, from the event stream or from a
	// lookup.
	HTLCFinal(ctx context.Context, r FinalResolution)
	// PendingCircuits lists the node's HTLCs of settle-requested invoices
	// whose final resolution is not known yet. A node asks after it has
	// subscribed to final events and looks each one up.
	PendingCircuits(ctx context.Context, node domain.NodeKey) []domain.CircuitKey
	// NodeStatusChanged reports connection changes.
	NodeStatusChanged(ctx context.Context, s NodeStatus)
}

// HTLCPreparer is the part of NodeSink a node may call out of order.
// PrepareHTLC does the part of handling an HTLC that depends on the HTLC
// alone and on no state (for lnmux: peeling the onion, one ECDH), so a node
// calls it for many HTLCs at once, on any goroutine, in any order. The node
// then sets the result as the HTLC's Prepared field and calls
// HTLCIntercepted in arrival order: everything that reads or changes state
// stays ordered. A sink with nothing to prepare returns nil.
type HTLCPreparer interface {
	PrepareHTLC(h InterceptedHTLC) any
}

// Node is one cluster LND node.
type Node interface {
	// Key is the node's public key.
	Key() domain.NodeKey
	// Run connects, intercepts, follows block heights and final resolutions
	// and reports to sink until ctx is done, reconnecting as needed. It
	// returns only when ctx is done or the node is misconfigured.
	Run(ctx context.Context, sink NodeSink) error
	// Resolve answers an intercepted HTLC. It fails if the interceptor stream
	// is down; lnd then re-offers the HTLC after reconnecting.
	Resolve(ctx context.Context, r Resolution) error
}
