package domain

// FailureReason says why lnmux fails an HTLC. Each maps to a BOLT 4 failure
// message that the application encrypts to the sender, or, for onions that
// cannot be decrypted, to a malformed-HTLC code that lnd sends unencrypted.
type FailureReason uint8

// Failure reasons, in the order of the checks in docs/design.md, "Checks".
const (
	FailNone FailureReason = iota
	FailInvalidOnionVersion
	FailInvalidOnionHMAC
	FailInvalidOnionKey
	FailNotFinalHop
	FailInvalidPayload
	FailMissingMPP
	FailUnknownInvoice
	FailInvoiceExpired
	FailAmountTooLow
	FailAmountTooHigh
	FailIncorrectAmount
	FailIncorrectCLTV
	FailExpiryTooSoon
	FailPolicyFee
	FailPolicyCLTV
	FailSetTotalMismatch
	FailOverpayment
	FailAlreadyAccepted
	FailAlreadyPaid
	FailMPPTimeout
	FailAcceptTimeout
	FailCancelled
	FailNearAutoFail
	FailNotAccepting
	// FailInvalidBlinding: an HTLC through a blinded path whose onion or
	// encrypted data lnmux cannot use (docs/blinded.md). Every failure of
	// a blinded HTLC goes on the wire as invalid_onion_blinding.
	FailInvalidBlinding
)

var failureNames = [...]string{
	FailNone:                "none",
	FailInvalidOnionVersion: "invalid onion version",
	FailInvalidOnionHMAC:    "invalid onion hmac",
	FailInvalidOnionKey:     "invalid onion key",
	FailNotFinalHop:         "not the final hop",
	FailInvalidPayload:      "invalid onion payload",
	FailMissingMPP:          "missing mpp record",
	FailUnknownInvoice:      "unknown invoice",
	FailInvoiceExpired:      "invoice expired",
	FailAmountTooLow:        "total below invoice amount",
	FailAmountTooHigh:       "total above twice the invoice amount",
	FailIncorrectAmount:     "htlc amount below onion amount",
	FailIncorrectCLTV:       "htlc expiry below onion cltv",
	FailExpiryTooSoon:       "htlc expiry too soon",
	FailPolicyFee:           "routing fee not paid",
	FailPolicyCLTV:          "routing cltv delta not paid",
	FailSetTotalMismatch:    "mpp total differs within set",
	FailOverpayment:         "htlc exceeds set total",
	FailAlreadyAccepted:     "set already complete",
	FailAlreadyPaid:         "invoice already paid",
	FailMPPTimeout:          "mpp timeout",
	FailAcceptTimeout:       "accept timeout",
	FailCancelled:           "cancelled",
	FailNearAutoFail:        "close to lnd auto-fail height",
	FailNotAccepting:        "no one can decide on the payment",
	FailInvalidBlinding:     "blinded path unusable",
}

// String names the reason for logs.
func (r FailureReason) String() string {
	if int(r) < len(failureNames) {
		return failureNames[r]
	}
	return "unknown failure"
}

// FailureContext is what BOLT 4 messages echo back to the sender.
type FailureContext struct {
	Amount Msat   // the HTLC amount lnmux received
	Expiry uint32 // the HTLC's CLTV expiry at lnmux
	Height uint32 // the current block height of the node holding it
}
