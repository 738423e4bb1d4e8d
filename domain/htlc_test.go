package domain

import (
	"math"
	"testing"
	"time"
)

// checkFixture is a valid HTLC paying a 100,000 msat invoice through a
// virtual channel charging 1000 msat + 100 ppm and 40 blocks.
type checkFixture struct {
	rules   Rules
	meta    InvoiceMeta
	addr    PaymentAddr
	pre     Preimage
	circuit CircuitKey
}

const (
	fxAmount = Msat(100_000)
	fxHeight = uint32(800_000)
	fxExpiry = fxHeight + 100 // HTLC expiry at lnmux
)

func newCheckFixture(tb testing.TB) checkFixture {
	tb.Helper()
	c := newTestCodec(tb, 1)
	meta := InvoiceMeta{Amount: fxAmount, Expiry: testNow.Add(time.Hour)}
	addr, pre := mustEncode(tb, c, meta, testNonce(1))
	return checkFixture{
		rules: Rules{
			Codec:                c,
			Policy:               RoutingPolicy{FeeBase: 1000, FeeRatePPM: 100, CLTVDelta: 40},
			FinalCLTVRejectDelta: 19,
		},
		meta:    meta,
		addr:    addr,
		pre:     pre,
		circuit: CircuitKey{Node: testNode(1), Chan: 123, HTLC: 4},
	}
}

// incoming returns an HTLC that passes every check, for amount amt of an MPP
// total total.
func (fx checkFixture) incoming(amt, total Msat) Incoming {
	return Incoming{
		Circuit: fx.circuit,
		Hash:    fx.pre.Hash(),
		Forward: Forward{
			IncomingAmount: amt + fx.rules.Policy.Fee(amt),
			OutgoingAmount: amt,
			IncomingExpiry: fxExpiry + uint32(fx.rules.Policy.CLTVDelta),
			OutgoingExpiry: fxExpiry,
		},
		AutoFailHeight: fxExpiry + 20,
		Payload: FinalHop{
			AmountToForward: amt,
			OutgoingCLTV:    fxExpiry,
			MPP:             &MPP{Total: total, Addr: fx.addr},
		},
		Height: fxHeight,
		Now:    testNow,
	}
}

func TestRulesCheck(t *testing.T) {
	fx := newCheckFixture(t)
	other := newTestCodec(t, 2)
	foreignAddr, foreignPre := mustEncode(t, other, fx.meta, testNonce(1))
	anyAddr, anyPre := mustEncode(t, fx.rules.Codec, InvoiceMeta{Amount: 0, Expiry: fx.meta.Expiry}, testNonce(2))
	anyAmount := func(in *Incoming) { in.Payload.MPP.Addr = anyAddr; in.Hash = anyPre.Hash() }

	tests := []struct {
		name string
		mod  func(in *Incoming)
		want FailureReason
	}{
		// In the order of Rules.Check.
		{"missing mpp record", func(in *Incoming) { in.Payload.MPP = nil }, FailMissingMPP},
		{"unknown address of another key", func(in *Incoming) { in.Payload.MPP.Addr = foreignAddr; in.Hash = foreignPre.Hash() }, FailUnknownInvoice},
		{"tampered address", func(in *Incoming) { in.Payload.MPP.Addr[20] ^= 0x04 }, FailUnknownInvoice},
		{"tampered nonce", func(in *Incoming) { in.Payload.MPP.Addr[0] ^= 0x80 }, FailUnknownInvoice},
		{"wrong payment hash", func(in *Incoming) { in.Hash[0] ^= 1 }, FailUnknownInvoice},
		{"zero address", func(in *Incoming) { in.Payload.MPP.Addr = PaymentAddr{} }, FailUnknownInvoice},
		{"expired at expiry", func(in *Incoming) { in.Now = fx.meta.Expiry }, FailInvoiceExpired},
		{"expired after expiry", func(in *Incoming) { in.Now = fx.meta.Expiry.Add(time.Hour) }, FailInvoiceExpired},
		{"total below amount", func(in *Incoming) { in.Payload.MPP.Total = fxAmount - 1 }, FailAmountTooLow},
		{"total zero", func(in *Incoming) { in.Payload.MPP.Total = 0 }, FailAmountTooLow},
		{"total negative", func(in *Incoming) { in.Payload.MPP.Total = -1 }, FailAmountTooLow},
		{"total above twice", func(in *Incoming) { in.Payload.MPP.Total = 2*fxAmount + 1 }, FailAmountTooHigh},
		{"total max int64", func(in *Incoming) { in.Payload.MPP.Total = math.MaxInt64 }, FailAmountTooHigh},
		{"any amount, total zero", func(in *Incoming) { anyAmount(in); in.Payload.MPP.Total = 0 }, FailAmountTooLow},
		{"amount below onion amt_to_forward", func(in *Incoming) { in.Payload.AmountToForward = in.Forward.OutgoingAmount + 1 }, FailIncorrectAmount},
		{"zero amount part", func(in *Incoming) { in.Forward.OutgoingAmount, in.Payload.AmountToForward = 0, 0 }, FailIncorrectAmount},
		{"expiry below onion cltv", func(in *Incoming) { in.Payload.OutgoingCLTV = in.Forward.OutgoingExpiry + 1 }, FailIncorrectCLTV},
		{"expiry one block too soon", func(in *Incoming) {
			in.Height = fxExpiry - fx.rules.FinalCLTVRejectDelta + 1
		}, FailExpiryTooSoon},
		{"expiry below height", func(in *Incoming) { in.Height = fxExpiry + 1 }, FailExpiryTooSoon},
		{"height near uint32 max does not wrap", func(in *Incoming) { in.Height = math.MaxUint32 }, FailExpiryTooSoon},
		{"policy fee not paid", func(in *Incoming) { in.Forward.IncomingAmount-- }, FailPolicyFee},
		{"policy cltv delta not paid", func(in *Incoming) { in.Forward.IncomingExpiry-- }, FailPolicyCLTV},

		// Boundaries that pass.
		{"valid", func(*Incoming) {}, FailNone},
		{"one second before expiry", func(in *Incoming) { in.Now = fx.meta.Expiry.Add(-time.Second) }, FailNone},
		{"total exactly twice", func(in *Incoming) { in.Payload.MPP.Total = 2 * fxAmount }, FailNone},
		{"part of a larger total", func(in *Incoming) { in.Payload.MPP.Total = fxAmount + 1 }, FailNone},
		{"any amount, total one msat", func(in *Incoming) { anyAmount(in); in.Payload.MPP.Total = 1 }, FailNone},
		{"any amount, total max", func(in *Incoming) { anyAmount(in); in.Payload.MPP.Total = MaxMsat }, FailNone},
		{"any amount, total above max", func(in *Incoming) { anyAmount(in); in.Payload.MPP.Total = math.MaxInt64 }, FailAmountTooHigh},
		{"amount above onion amt_to_forward", func(in *Incoming) { in.Payload.AmountToForward-- }, FailNone},
		{"expiry above onion cltv", func(in *Incoming) { in.Payload.OutgoingCLTV-- }, FailNone},
		{"expiry exactly reject delta away", func(in *Incoming) { in.Height = fxExpiry - fx.rules.FinalCLTVRejectDelta }, FailNone},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := fx.incoming(fxAmount, fxAmount)
			tt.mod(&in)
			got, reason := fx.rules.Check(in)
			if reason != tt.want {
				t.Fatalf("reason = %v, want %v", reason, tt.want)
			}
			if reason != FailNone && got != (Accepted{}) {
				t.Errorf("a failed check returned %+v", got)
			}
		})
	}

	t.Run("zero reject delta", func(t *testing.T) {
		r := fx.rules
		r.FinalCLTVRejectDelta = 0
		in := fx.incoming(fxAmount, fxAmount)
		in.Height = fxExpiry
		if _, reason := r.Check(in); reason != FailNone {
			t.Errorf("expiry at height with delta 0: %v", reason)
		}
		in.Height = fxExpiry + 1
		if _, reason := r.Check(in); reason != FailExpiryTooSoon {
			t.Errorf("expiry below height with delta 0: %v", reason)
		}
	})
}

// TestRulesCheckOrder starts from an HTLC that fails every check and repairs
// one fault at a time: each step must report the next check's reason.
func TestRulesCheckOrder(t *testing.T) {
	fx := newCheckFixture(t)
	in := fx.incoming(fxAmount, fxAmount)
	mpp := *in.Payload.MPP
	good := in

	in.Payload.MPP = nil
	tampered := mpp
	tampered.Addr[31] ^= 1
	tampered.Total = 2*fxAmount + 1
	in.Now = fx.meta.Expiry
	in.Payload.AmountToForward = good.Forward.OutgoingAmount + 1
	in.Payload.OutgoingCLTV = good.Forward.OutgoingExpiry + 1
	in.Height = good.Forward.OutgoingExpiry
	in.Forward.IncomingAmount = good.Forward.OutgoingAmount
	in.Forward.IncomingExpiry = good.Forward.OutgoingExpiry

	steps := []struct {
		want FailureReason
		fix  func()
	}{
		{FailMissingMPP, func() { in.Payload.MPP = &tampered }},
		{FailUnknownInvoice, func() { tampered.Addr = mpp.Addr }},
		{FailInvoiceExpired, func() { in.Now = good.Now }},
		{FailAmountTooHigh, func() { tampered.Total = fxAmount - 1 }},
		{FailAmountTooLow, func() { tampered.Total = fxAmount }},
		{FailIncorrectAmount, func() { in.Payload.AmountToForward = good.Payload.AmountToForward }},
		{FailIncorrectCLTV, func() { in.Payload.OutgoingCLTV = good.Payload.OutgoingCLTV }},
		{FailExpiryTooSoon, func() { in.Height = good.Height }},
		{FailPolicyFee, func() { in.Forward.IncomingAmount = good.Forward.IncomingAmount }},
		{FailPolicyCLTV, func() { in.Forward.IncomingExpiry = good.Forward.IncomingExpiry }},
		{FailNone, func() {}},
	}
	for i, s := range steps {
		if _, got := fx.rules.Check(in); got != s.want {
			t.Fatalf("step %d: reason = %v, want %v", i, got, s.want)
		}
		s.fix()
	}
}

func TestRulesCheckAccepted(t *testing.T) {
	fx := newCheckFixture(t)
	in := fx.incoming(60_000, fxAmount)
	in.Forward.OutgoingAmount += 5 // the node forwards a little more than asked
	in.Forward.IncomingAmount += 5
	in.Forward.OutgoingExpiry += 3
	in.Forward.IncomingExpiry += 3

	got, reason := fx.rules.Check(in)
	if reason != FailNone {
		t.Fatalf("reason = %v", reason)
	}
	want := HTLC{
		Circuit:        fx.circuit,
		Hash:           fx.pre.Hash(),
		Amount:         in.Forward.OutgoingAmount,
		Expiry:         in.Forward.OutgoingExpiry,
		AutoFailHeight: in.AutoFailHeight,
		MPP:            MPP{Total: fxAmount, Addr: fx.addr},
		ArrivedAt:      testNow,
	}
	if got.HTLC != want {
		t.Errorf("HTLC = %+v\nwant   %+v", got.HTLC, want)
	}
	if got.Meta.Amount != fx.meta.Amount || !got.Meta.Expiry.Equal(fx.meta.Expiry) {
		t.Errorf("Meta = %+v, want %+v", got.Meta, fx.meta)
	}
	if got.Preimage != fx.pre || got.Preimage.Hash() != in.Hash {
		t.Errorf("Preimage = %x, want %x", got.Preimage, fx.pre)
	}

	// The accepted HTLC holds a copy of the MPP record, not the caller's.
	in.Payload.MPP.Total = 1
	if got.HTLC.MPP.Total != fxAmount {
		t.Error("Accepted.HTLC.MPP aliases the incoming payload")
	}
}
