package domain

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/lightningnetwork/lnd/lnwire"
)

// lastFailure is the last defined reason; update it with failure.go.
const lastFailure = FailNotAccepting

func TestFailureReasonString(t *testing.T) {
	if len(failureNames) != int(lastFailure)+1 {
		t.Fatalf("%d names for %d reasons", len(failureNames), lastFailure+1)
	}
	seen := map[string]FailureReason{}
	for r := FailNone; r <= lastFailure; r++ {
		s := r.String()
		if s == "" || s == "unknown failure" {
			t.Errorf("reason %d has no name", r)
		}
		if o, dup := seen[s]; dup {
			t.Errorf("reasons %d and %d share the name %q", o, r, s)
		}
		seen[s] = r
	}
	for _, r := range []FailureReason{lastFailure + 1, 255} {
		if got := r.String(); got != "unknown failure" {
			t.Errorf("FailureReason(%d).String() = %q", r, got)
		}
	}
}

func TestFailureReasonMalformedCode(t *testing.T) {
	want := map[FailureReason]lnwire.FailCode{
		FailInvalidOnionVersion: lnwire.CodeInvalidOnionVersion,
		FailInvalidOnionHMAC:    lnwire.CodeInvalidOnionHmac,
		FailInvalidOnionKey:     lnwire.CodeInvalidOnionKey,
	}
	for r := FailNone; r <= lastFailure+1; r++ {
		code, ok := r.MalformedCode()
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

func TestFailureReasonMessage(t *testing.T) {
	ctx := FailureContext{Amount: 123_456, Expiry: 800_140, Height: 800_001}
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
	want := map[FailureReason]func(t *testing.T, m lnwire.FailureMessage){
		// Malformed onions are sent with MalformedCode; the message is a
		// harmless fallback.
		FailNone:                incorrectDetails,
		FailInvalidOnionVersion: incorrectDetails,
		FailInvalidOnionHMAC:    incorrectDetails,
		FailInvalidOnionKey:     incorrectDetails,
		FailNotFinalHop: func(t *testing.T, m lnwire.FailureMessage) {
			if _, ok := m.(*lnwire.FailUnknownNextPeer); !ok {
				t.Fatalf("message %T, want *lnwire.FailUnknownNextPeer", m)
			}
		},
		FailInvalidPayload: func(t *testing.T, m lnwire.FailureMessage) {
			if _, ok := m.(*lnwire.InvalidOnionPayload); !ok {
				t.Fatalf("message %T, want *lnwire.InvalidOnionPayload", m)
			}
		},
		FailMissingMPP:     incorrectDetails,
		FailUnknownInvoice: incorrectDetails,
		FailInvoiceExpired: incorrectDetails,
		FailAmountTooLow:   incorrectDetails,
		FailAmountTooHigh:  incorrectDetails,
		FailIncorrectAmount: func(t *testing.T, m lnwire.FailureMessage) {
			f, ok := m.(*lnwire.FailFinalIncorrectHtlcAmount)
			if !ok {
				t.Fatalf("message %T, want *lnwire.FailFinalIncorrectHtlcAmount", m)
			}
			if f.IncomingHTLCAmount != lnwire.MilliSatoshi(ctx.Amount) {
				t.Errorf("amount = %v, want %v", f.IncomingHTLCAmount, ctx.Amount)
			}
		},
		FailIncorrectCLTV: func(t *testing.T, m lnwire.FailureMessage) {
			f, ok := m.(*lnwire.FailFinalIncorrectCltvExpiry)
			if !ok {
				t.Fatalf("message %T, want *lnwire.FailFinalIncorrectCltvExpiry", m)
			}
			if f.CltvExpiry != ctx.Expiry {
				t.Errorf("expiry = %d, want %d", f.CltvExpiry, ctx.Expiry)
			}
		},
		FailExpiryTooSoon:    incorrectDetails, // BOLT 4, not expiry_too_soon
		FailPolicyFee:        temporaryChannel,
		FailPolicyCLTV:       temporaryChannel,
		FailSetTotalMismatch: incorrectDetails,
		FailOverpayment:      incorrectDetails,
		FailAlreadyAccepted:  incorrectDetails,
		FailAlreadyPaid:      incorrectDetails,
		FailMPPTimeout: func(t *testing.T, m lnwire.FailureMessage) {
			if _, ok := m.(*lnwire.FailMPPTimeout); !ok {
				t.Fatalf("message %T, want *lnwire.FailMPPTimeout", m)
			}
		},
		FailAcceptTimeout: incorrectDetails,
		FailCancelled:     incorrectDetails,
		FailNearAutoFail:  incorrectDetails,
		FailNotAccepting:  temporaryChannel,
	}
	for r := FailNone; r <= lastFailure; r++ {
		t.Run(r.String(), func(t *testing.T) {
			check, ok := want[r]
			if !ok {
				t.Fatalf("no expectation for %v", r)
			}
			m := r.Message(ctx)
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
