package app

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/domain"
)

// lastFailure is the last defined reason; update it with domain/failure.go.
const lastFailure = domain.FailNotAccepting

func TestMalformedCode(t *testing.T) {
	want := map[domain.FailureReason]lnwire.FailCode{
		domain.FailInvalidOnionVersion: lnwire.CodeInvalidOnionVersion,
		domain.FailInvalidOnionHMAC:    lnwire.CodeInvalidOnionHmac,
		domain.FailInvalidOnionKey:     lnwire.CodeInvalidOnionKey,
	}
	for r := domain.FailNone; r <= lastFailure+1; r++ {
		code, ok := malformedCode(r)
		w, malformed := want[r]
		if ok != malformed || code != w {
			t.Errorf("%v.MalformedCode() = %v, %v; want %v, %v", r, code, ok, w, malformed)
		}
		// lnd only accepts BADONION codes for malformed HTLCs.
		if ok && code&lnwire.FlagBadOnion == 0 {
			t.Errorf("%v: code %v lacks the BADONION flag", r, code)
		}
	}
}

func TestFailureMessage(t *testing.T) {
	ctx := domain.FailureContext{Amount: 123_456, Expiry: 800_140, Height: 800_001}
	incorrectDetails := func(t *testing.T, m lnwire.FailureMessage) {
		f, ok := m.(*lnwire.FailIncorrectDetails)
		if !ok {
			t.Fatalf("message %T, want *lnwire.FailIncorrectDetails", m)
		}
		if f.Amount() != lnwire.MilliSatoshi(ctx.Amount) || f.Height() != ctx.Height {
			t.Errorf("incorrect details amount %v height %d, want %v %d", f.Amount(), f.Height(), ctx.Amount, ctx.Height)
		}
	}
	temporaryChannel := func(t *testing.T, m lnwire.FailureMessage) {
		f, ok := m.(*lnwire.FailTemporaryChannelFailure)
		if !ok {
			t.Fatalf("message %T, want *lnwire.FailTemporaryChannelFailure", m)
		}
		if f.Update != nil {
			t.Error("temporary channel failure carries a channel update of a virtual channel")
		}
	}
	want := map[domain.FailureReason]func(t *testing.T, m lnwire.FailureMessage){
		// Malformed onions are sent with MalformedCode; the message is a
		// harmless fallback.
		domain.FailNone:                incorrectDetails,
		domain.FailInvalidOnionVersion: incorrectDetails,
		domain.FailInvalidOnionHMAC:    incorrectDetails,
		domain.FailInvalidOnionKey:     incorrectDetails,
		domain.FailNotFinalHop: func(t *testing.T, m lnwire.FailureMessage) {
			if _, ok := m.(*lnwire.FailUnknownNextPeer); !ok {
				t.Fatalf("message %T, want *lnwire.FailUnknownNextPeer", m)
			}
		},
		domain.FailInvalidPayload: func(t *testing.T, m lnwire.FailureMessage) {
			if _, ok := m.(*lnwire.InvalidOnionPayload); !ok {
				t.Fatalf("message %T, want *lnwire.InvalidOnionPayload", m)
			}
		},
		domain.FailMissingMPP:     incorrectDetails,
		domain.FailUnknownInvoice: incorrectDetails,
		domain.FailInvoiceExpired: incorrectDetails,
		domain.FailAmountTooLow:   incorrectDetails,
		domain.FailAmountTooHigh:  incorrectDetails,
		domain.FailIncorrectAmount: func(t *testing.T, m lnwire.FailureMessage) {
			f, ok := m.(*lnwire.FailFinalIncorrectHtlcAmount)
			if !ok {
				t.Fatalf("message %T, want *lnwire.FailFinalIncorrectHtlcAmount", m)
			}
			if f.IncomingHTLCAmount != lnwire.MilliSatoshi(ctx.Amount) {
				t.Errorf("amount = %v, want %v", f.IncomingHTLCAmount, ctx.Amount)
			}
		},
		domain.FailIncorrectCLTV: func(t *testing.T, m lnwire.FailureMessage) {
			f, ok := m.(*lnwire.FailFinalIncorrectCltvExpiry)
			if !ok {
				t.Fatalf("message %T, want *lnwire.FailFinalIncorrectCltvExpiry", m)
			}
			if f.CltvExpiry != ctx.Expiry {
				t.Errorf("expiry = %d, want %d", f.CltvExpiry, ctx.Expiry)
			}
		},
		domain.FailExpiryTooSoon:    incorrectDetails, // BOLT 4, not expiry_too_soon
		domain.FailPolicyFee:        temporaryChannel,
		domain.FailPolicyCLTV:       temporaryChannel,
		domain.FailSetTotalMismatch: incorrectDetails,
		domain.FailOverpayment:      incorrectDetails,
		domain.FailAlreadyAccepted:  incorrectDetails,
		domain.FailAlreadyPaid:      incorrectDetails,
		domain.FailMPPTimeout: func(t *testing.T, m lnwire.FailureMessage) {
			if _, ok := m.(*lnwire.FailMPPTimeout); !ok {
				t.Fatalf("message %T, want *lnwire.FailMPPTimeout", m)
			}
		},
		domain.FailAcceptTimeout: incorrectDetails,
		domain.FailCancelled:     incorrectDetails,
		domain.FailNearAutoFail:  incorrectDetails,
		domain.FailNotAccepting:  temporaryChannel,
	}
	for r := domain.FailNone; r <= lastFailure; r++ {
		t.Run(r.String(), func(t *testing.T) {
			check, ok := want[r]
			if !ok {
				t.Fatalf("no expectation for %v", r)
			}
			m := failureMessage(r, ctx)
			check(t, m)

			// lnd must be able to serialise the message and read it back.
			var buf bytes.Buffer
			if err := lnwire.EncodeFailureMessage(&buf, m, 0); err != nil {
				t.Fatalf("encode %T: %v", m, err)
			}
			back, err := lnwire.DecodeFailureMessage(&buf, 0)
			if err != nil {
				t.Fatalf("decode %T: %v", m, err)
			}
			if back.Code() != m.Code() || reflect.TypeOf(back) != reflect.TypeOf(m) {
				t.Errorf("round trip %T (%v) → %T (%v)", m, m.Code(), back, back.Code())
			}
		})
	}
}
