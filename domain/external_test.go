package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// externalSet is a settling two-part set of an external-hash invoice of
// setHash, whose preimage is Preimage{0x42}: lnmux does not know it.
func externalSet(t *testing.T) *HTLCSet {
	t.Helper()
	p1, p2 := part(nodeA, 1, 1, 40_000), part(nodeB, 1, 1, 60_000)
	s := NewHTLCSet(Accepted{HTLC: p1, Meta: InvoiceMeta{Amount: setTotal, Expiry: testNow.Add(time.Hour), External: true}})
	mustAdd(t, s, p1, AddHeld)
	// A part naming another address of the same hash is not this invoice.
	other := part(nodeB, 2, 2, 60_000)
	other.MPP.Addr = PaymentAddr{0x02}
	if out, reason := s.Add(other, testNow); out != AddRejected || reason != FailUnknownInvoice {
		t.Fatalf("part with another address: %v %v, want rejected as unknown", out, reason)
	}
	mustAdd(t, s, p2, AddCompleted)
	if err := s.BeginSettle(s.ID()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewSettleRequestExternal(t *testing.T) {
	s := externalSet(t)
	if _, err := NewSettleRequest(s, Preimage{}, testNow); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no preimage: err = %v, want ErrInvalidArgument", err)
	}
	wrong := Preimage{0x43}
	_, err := NewSettleRequest(s, wrong, testNow)
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("wrong preimage: err = %v, want ErrInvalidArgument", err)
	}
	if err != nil && strings.Contains(err.Error(), "43") {
		t.Errorf("the error shows the preimage: %v", err)
	}
	inv, err := NewSettleRequest(s, Preimage{0x42}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Preimage != (Preimage{0x42}) || inv.Hash != setHash || inv.AmountPaid != setTotal {
		t.Errorf("invoice = %+v", inv)
	}
}

func TestNewSettleRequestOwnPreimage(t *testing.T) {
	s := setIn(t, SetSettling)
	if inv, err := NewSettleRequest(s, Preimage{0x42}, testNow); err != nil || inv.Preimage != s.Preimage {
		t.Errorf("own invoice with its preimage: %v", err)
	}
	if _, err := NewSettleRequest(s, Preimage{0x43}, testNow); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("own invoice with a wrong preimage: err = %v, want ErrInvalidArgument", err)
	}
}

func TestInvoiceTermsAcceptTimeout(t *testing.T) {
	terms, err := NewInvoiceTerms(1000, time.Hour, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if terms.AcceptTimeout() != 0 {
		t.Error("default accept timeout not zero")
	}
	for _, d := range []time.Duration{-time.Second, MaxAcceptTimeout + time.Second, 1500 * time.Millisecond} {
		var fe *FieldError
		if _, err := terms.WithAcceptTimeout(d); !errors.As(err, &fe) || fe.Field != FieldAcceptTimeout {
			t.Errorf("%v: err = %v, want a FieldError on %s", d, err, FieldAcceptTimeout)
		}
	}
	got, err := terms.WithAcceptTimeout(MaxAcceptTimeout)
	if err != nil || got.AcceptTimeout() != MaxAcceptTimeout || !got.Valid() {
		t.Errorf("max: %v %v", got.AcceptTimeout(), err)
	}
}
