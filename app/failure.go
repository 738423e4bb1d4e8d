package app

import (
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/domain"
)

// The wire encoding of lnmux's failure reasons (BOLT 4) lives here, beside
// the onion code that encrypts it: the domain names the reasons and stays
// free of lnd's wire packages (docs/design.md, "Checks").

// malformedCode returns the failure code lnd sends back unencrypted when the
// onion itself could not be used, and false for reasons that need an
// encrypted failure message.
func malformedCode(r domain.FailureReason) (lnwire.FailCode, bool) {
	switch r { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case domain.FailInvalidOnionVersion:
		return lnwire.CodeInvalidOnionVersion, true
	case domain.FailInvalidOnionHMAC:
		return lnwire.CodeInvalidOnionHmac, true
	case domain.FailInvalidOnionKey:
		return lnwire.CodeInvalidOnionKey, true
	}
	return 0, false
}

// failureMessage returns the BOLT 4 failure message for the reason.
func failureMessage(r domain.FailureReason, c domain.FailureContext) lnwire.FailureMessage {
	//nolint:gosec // an HTLC amount, positive (domain.Rules refuses others)
	amt := lnwire.MilliSatoshi(c.Amount)
	switch r { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case domain.FailIncorrectAmount:
		return lnwire.NewFinalIncorrectHtlcAmount(amt)
	case domain.FailIncorrectCLTV:
		return lnwire.NewFinalIncorrectCltvExpiry(c.Expiry)
	case domain.FailMPPTimeout:
		return &lnwire.FailMPPTimeout{}
	case domain.FailPolicyFee, domain.FailPolicyCLTV, domain.FailNotAccepting:
		return lnwire.NewTemporaryChannelFailure(nil)
	case domain.FailNotFinalHop:
		return &lnwire.FailUnknownNextPeer{}
	case domain.FailInvalidPayload:
		return lnwire.NewInvalidOnionPayload(0, 0)
	}
	return lnwire.NewFailIncorrectDetails(amt, c.Height)
}
