package domain

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func mustTerms(tb testing.TB, amount Msat, expiry time.Duration, desc string, descHash []byte) InvoiceTerms {
	tb.Helper()
	t, err := NewInvoiceTerms(amount, expiry, desc, descHash)
	if err != nil {
		tb.Fatalf("NewInvoiceTerms(%d, %s, %d-byte description, %d-byte hash): %v", amount, expiry, len(desc), len(descHash), err)
	}
	return t
}

// TestNewInvoiceTerms checks every AddInvoice limit at and beyond its
// boundary: a refusal names the field, and matches ErrInvalidArgument.
func TestNewInvoiceTerms(t *testing.T) {
	hash := make([]byte, 32)
	tests := []struct {
		name      string
		amount    Msat
		expiry    time.Duration
		desc      string
		descHash  []byte
		wantField string // empty: accepted
		// wantReason, where set, is a message clients assert.
		wantReason string
	}{
		{name: "any amount", amount: 0, expiry: time.Hour},
		{name: "one msat", amount: 1, expiry: time.Hour},
		{name: "max amount", amount: MaxMsat, expiry: time.Hour},
		{name: "negative amount", amount: -1, expiry: time.Hour, wantField: FieldAmount, wantReason: "must not be negative"},
		{name: "amount above max", amount: MaxMsat + 1, expiry: time.Hour, wantField: FieldAmount},
		{name: "amount max int64", amount: math.MaxInt64, expiry: time.Hour, wantField: FieldAmount},
		{name: "min expiry", amount: 1, expiry: time.Second},
		{name: "max expiry", amount: 1, expiry: MaxInvoiceExpiry},
		{name: "zero expiry", amount: 1, expiry: 0, wantField: FieldExpiry, wantReason: "must be positive"},
		{name: "sub-second expiry", amount: 1, expiry: 999 * time.Millisecond, wantField: FieldExpiry},
		{name: "negative expiry", amount: 1, expiry: -time.Hour, wantField: FieldExpiry},
		{name: "expiry above a year", amount: 1, expiry: MaxInvoiceExpiry + time.Second, wantField: FieldExpiry},
		{name: "max int64 expiry", amount: 1, expiry: math.MaxInt64, wantField: FieldExpiry},
		{name: "longest description", amount: 1, expiry: time.Hour, desc: strings.Repeat("x", MaxDescriptionLen)},
		{name: "description too long", amount: 1, expiry: time.Hour, desc: strings.Repeat("x", MaxDescriptionLen+1), wantField: FieldDescription},
		{name: "description hash", amount: 1, expiry: time.Hour, descHash: hash},
		{name: "description and hash", amount: 1, expiry: time.Hour, desc: "x", descHash: hash, wantField: FieldDescriptionHash},
		{name: "short description hash", amount: 1, expiry: time.Hour, descHash: hash[:31], wantField: FieldDescriptionHash},
		{name: "long description hash", amount: 1, expiry: time.Hour, descHash: append(hash, 0), wantField: FieldDescriptionHash},
		{name: "empty description hash is none", amount: 1, expiry: time.Hour, desc: "x", descHash: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terms, err := NewInvoiceTerms(tt.amount, tt.expiry, tt.desc, tt.descHash)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("got error %v, want the terms accepted", err)
				}
				if !terms.Valid() {
					t.Fatal("accepted terms report Valid() = false")
				}
				return
			}
			fe, ok := errors.AsType[*FieldError](err)
			if !ok {
				t.Fatalf("got error %v, want a *FieldError for %q", err, tt.wantField)
			}
			if fe.Field != tt.wantField {
				t.Errorf("got field %q (%s), want %q", fe.Field, fe.Reason, tt.wantField)
			}
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("errors.Is(%v, ErrInvalidArgument) = false, want true", err)
			}
			if terms.Valid() {
				t.Error("refused terms report Valid() = true")
			}
			if tt.wantReason != "" && fe.Reason != tt.wantReason {
				t.Errorf("got reason %q, want %q (the web console and its client tests show it)", fe.Reason, tt.wantReason)
			}
		})
	}
}

// TestInvoiceTermsKeepWhatWasAsked: the accessors return the request, the
// expiry in whole seconds (BOLT11's precision).
func TestInvoiceTermsKeepWhatWasAsked(t *testing.T) {
	hash := [32]byte{1, 2, 3}
	withHash := mustTerms(t, 20_000, 90*time.Second+400*time.Millisecond, "", hash[:])
	if got := withHash.Amount(); got != 20_000 {
		t.Errorf("Amount() = %d, want 20000", got)
	}
	if got := withHash.Expiry(); got != 90*time.Second {
		t.Errorf("Expiry() = %s, want 1m30s (truncated to seconds)", got)
	}
	if got, ok := withHash.DescriptionHash(); !ok || got != hash {
		t.Errorf("DescriptionHash() = %x, %v; want %x, true", got, ok, hash)
	}
	withDesc := mustTerms(t, 0, time.Minute, "coffee", nil)
	if got := withDesc.Description(); got != "coffee" {
		t.Errorf("Description() = %q, want %q", got, "coffee")
	}
	if _, ok := withDesc.DescriptionHash(); ok {
		t.Error("DescriptionHash() reports a hash for terms without one")
	}
	if (InvoiceTerms{}).Valid() {
		t.Error("the zero InvoiceTerms reports Valid() = true")
	}
}
