package domain

import "time"

// MPP is the multi-path payment record of a final-hop onion payload.
type MPP struct {
	Total Msat
	Addr  PaymentAddr
}

// FinalHop is what lnmux's own onion payload asks for.
type FinalHop struct {
	AmountToForward Msat
	OutgoingCLTV    uint32
	MPP             *MPP
	// Blinded: the HTLC came through one of lnmux's blinded paths; MPP
	// holds the payer's total and the path id (docs/blinded.md).
	Blinded bool
}

// Incoming is an intercepted HTLC on a virtual channel, with its decoded
// final-hop payload, as the application hands it to Rules.Check.
type Incoming struct {
	Circuit        CircuitKey
	Hash           PaymentHash
	Forward        Forward
	AutoFailHeight uint32
	Payload        FinalHop
	// Height is the current block height of the node holding the HTLC.
	Height uint32
	Now    time.Time
}

// HTLC is an intercepted HTLC that pays a genuine lnmux invoice.
type HTLC struct {
	Circuit CircuitKey
	Hash    PaymentHash
	// Amount is what lnmux receives: the node's outgoing amount.
	Amount Msat
	// Expiry is the CLTV expiry at lnmux: the node's outgoing expiry.
	Expiry         uint32
	AutoFailHeight uint32
	MPP            MPP
	ArrivedAt      time.Time
}

// Rules are the acceptance checks of docs/design.md, "The HTLC path" and "Checks".
type Rules struct {
	Codec  *InvoiceCodec
	Policy RoutingPolicy
	// FinalCLTVRejectDelta: an HTLC whose expiry is within this many blocks
	// of the node's height is refused (lnd uses 19).
	FinalCLTVRejectDelta uint32
	// FinalCLTVDelta is the min_final_cltv_expiry every invoice publishes.
	// lnd's registry refuses new HTLCs that do not leave that many blocks;
	// lnmux cannot tell a new HTLC from one offered again after a restart,
	// and enforces FinalCLTVRejectDelta only (docs/design.md, "Checks").
	FinalCLTVDelta uint32
}

// Accepted is the outcome of a successful check.
type Accepted struct {
	HTLC     HTLC
	Meta     InvoiceMeta
	Preimage Preimage
}

// Check runs the acceptance checks in order and returns the first failure.
func (r Rules) Check(in Incoming) (Accepted, FailureReason) {
	mpp := in.Payload.MPP
	if mpp == nil {
		return Accepted{}, FailMissingMPP
	}
	meta, preimage, err := r.Codec.Verify(mpp.Addr, in.Hash)
	if err != nil {
		return Accepted{}, FailUnknownInvoice
	}
	if meta.Expired(in.Now) {
		return Accepted{}, FailInvoiceExpired
	}
	if mpp.Total < meta.Amount || mpp.Total <= 0 {
		return Accepted{}, FailAmountTooLow
	}
	if mpp.Total > MaxMsat || (meta.Amount > 0 && mpp.Total > 2*meta.Amount) {
		return Accepted{}, FailAmountTooHigh
	}
	f := in.Forward
	if f.OutgoingAmount <= 0 {
		// A part that pays nothing could only be held until it times out.
		return Accepted{}, FailIncorrectAmount
	}
	if f.OutgoingAmount < in.Payload.AmountToForward {
		return Accepted{}, FailIncorrectAmount
	}
	if f.OutgoingExpiry < in.Payload.OutgoingCLTV {
		return Accepted{}, FailIncorrectCLTV
	}
	// The floor only, not the invoice's min_final_cltv_expiry: lnmux keeps
	// nothing per HTLC across a restart, so a part lnd offers again after
	// one (a swap's set may wait hours for its preimage) looks new, and it
	// carries the CLTV its payer gave it blocks ago (docs/design.md,
	// "Checks").
	if uint64(f.OutgoingExpiry) < uint64(in.Height)+uint64(r.FinalCLTVRejectDelta) {
		return Accepted{}, FailExpiryTooSoon
	}
	// Through a blinded path the introduction node computed the HTLC's
	// outgoing amount and expiry itself, from the fee and CLTV delta lnmux
	// wrote into the path when it made the invoice (lnd's
	// htlcswitch/hop/iterator.go): that policy, not today's, applies.
	if reason := r.Policy.Check(f); reason != FailNone && !in.Payload.Blinded {
		return Accepted{}, reason
	}
	return Accepted{
		HTLC: HTLC{
			Circuit:        in.Circuit,
			Hash:           in.Hash,
			Amount:         f.OutgoingAmount,
			Expiry:         f.OutgoingExpiry,
			AutoFailHeight: in.AutoFailHeight,
			MPP:            *mpp,
			ArrivedAt:      in.Now,
		},
		Meta:     meta,
		Preimage: preimage,
	}, FailNone
}
