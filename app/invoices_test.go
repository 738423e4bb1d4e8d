package app

import (
	"errors"
	"testing"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// TestAddInvoiceRefusesWhatTheDomainRefuses: the application checks a
// request with domain.NewInvoiceTerms whoever calls the port, and reports
// the field.
func TestAddInvoiceRefusesWhatTheDomainRefuses(t *testing.T) {
	h := newHarness(t, 1, nil)
	hash := [32]byte{1}
	tests := []struct {
		name      string
		req       ports.AddInvoiceRequest
		wantField string
	}{
		{name: "negative amount", req: ports.AddInvoiceRequest{Amount: -1, Expiry: time.Hour}, wantField: domain.FieldAmount},
		{name: "amount above max", req: ports.AddInvoiceRequest{Amount: domain.MaxMsat + 1, Expiry: time.Hour}, wantField: domain.FieldAmount},
		{name: "no expiry", req: ports.AddInvoiceRequest{Amount: 1}, wantField: domain.FieldExpiry},
		{name: "expiry above a year", req: ports.AddInvoiceRequest{Amount: 1, Expiry: domain.MaxInvoiceExpiry + time.Second}, wantField: domain.FieldExpiry},
		{name: "description too long", req: ports.AddInvoiceRequest{Expiry: time.Hour, Description: string(make([]byte, domain.MaxDescriptionLen+1))}, wantField: domain.FieldDescription},
		{name: "description and hash", req: ports.AddInvoiceRequest{Expiry: time.Hour, Description: "x", DescriptionHash: &hash}, wantField: domain.FieldDescriptionHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := h.mux.AddInvoice(ctx, tt.req)
			fe, ok := errors.AsType[*domain.FieldError](err)
			if !ok || fe.Field != tt.wantField || !errors.Is(err, domain.ErrInvalidArgument) {
				t.Fatalf("got %v (invoice %q), want an invalid-argument error for field %q", err, res.PaymentRequest, tt.wantField)
			}
		})
	}
}
