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
	// ErrNotLeader: the store refused a write because this process is no
	// longer the leader (another lnmux took the leader lock since); nothing
	// was written. The process must stop.
	ErrNotLeader = errors.New("not the leader")
	// ErrOutcomeUnknown: a write failed at or after its commit was sent, so
	// it may or may not be durable. Only reading the record again tells.
	// Errors without it are certain: nothing was written.
	ErrOutcomeUnknown = errors.New("outcome of the write unknown")
)
