package domain

import "errors"

// Sentinel errors of the domain. Adapters map infrastructure errors onto them
// and only the RPC adapter maps them onto status codes.
var (
	// ErrInvalidArgument: a caller supplied a value that can never be valid.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvoiceNotFound: no invoice (in memory or stored) has this hash.
	ErrInvoiceNotFound = errors.New("invoice not found")
	// ErrSetNotFound: the invoice has no accepted set with this id.
	ErrSetNotFound = errors.New("htlc set not found")
	// ErrSettleRequested: the invoice's settlement was already requested, so
	// it can no longer be cancelled.
	ErrSettleRequested = errors.New("settle already requested")
	// ErrInvalidTransition: a lifecycle event does not apply to the state.
	ErrInvalidTransition = errors.New("invalid state transition")
	// ErrUnknownPaymentAddr: the payment address does not decode to an
	// invoice of this lnmux key, or was tampered with.
	ErrUnknownPaymentAddr = errors.New("unknown payment address")
	// ErrNotReady: the service cannot take the request now (no leader lock,
	// no accept subscriber, shutting down).
	ErrNotReady = errors.New("not ready")
	// ErrConflict: the store holds a different record for the same key.
	ErrConflict = errors.New("conflicting record")
	// ErrNotLeader: the store refused a write because this process no
	// longer holds the leader lock (its fencing token is stale, I5).
	ErrNotLeader = errors.New("not the leader")
	// ErrOutcomeUnknown: a write failed in a way that leaves unknown
	// whether it committed (I7).
	ErrOutcomeUnknown = errors.New("outcome unknown")
)
