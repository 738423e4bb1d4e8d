package lnd

import (
	"errors"
	"fmt"

	"github.com/lnmux/lnmux/domain"
)

var (
	// ErrMisconfigured: the node answered but is not one lnmux may use
	// (wrong key or network, too old, a required flag missing). Run
	// returns it and does not retry.
	ErrMisconfigured = errors.New("lnd node misconfigured")
	// ErrInterceptorDown: no interceptor stream is open; lnd keeps the HTLC
	// and re-offers it after the next connect.
	ErrInterceptorDown = fmt.Errorf("%w: interceptor stream down", domain.ErrNotReady)
	// ErrNotHeld: lnd does not hold this HTLC for the current stream (it was
	// answered already, lnd failed it at its auto-fail height, or it has not
	// been re-offered since a reconnect). lnd ends the whole interceptor
	// stream on an answer for an HTLC it does not hold, so none is sent.
	ErrNotHeld = errors.New("htlc not held by the current interceptor stream")
	// ErrOnChain: the HTLC's incoming channel was force-closed; lnd accepts
	// only SETTLE for it and ends the stream on RESUME or FAIL, so neither
	// is sent. Without a preimage the HTLC times out on chain.
	ErrOnChain = errors.New("htlc is being resolved on chain: only settle is possible")
)
