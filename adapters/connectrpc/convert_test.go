package connectrpc

import (
	"math"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

func TestInvoiceUpdateToProto(t *testing.T) {
	t.Parallel()
	type state = lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState
	cases := []struct {
		status domain.InvoiceStatus
		want   state
		send   bool
		err    bool
	}{
		{domain.StatusOpen, 0, false, false},
		{domain.StatusAccepted, lnmuxpb.SubscribeSingleInvoiceResponse_STATE_ACCEPTED, true, false},
		{domain.StatusSettleRequested, lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLE_REQUESTED, true, false},
		{domain.StatusSettled, lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLED, true, false},
		{domain.StatusFailed, lnmuxpb.SubscribeSingleInvoiceResponse_STATE_FAILED, true, false},
		{domain.StatusCancelled, lnmuxpb.SubscribeSingleInvoiceResponse_STATE_CANCELLED, true, false},
		{domain.StatusExpired, lnmuxpb.SubscribeSingleInvoiceResponse_STATE_EXPIRED, true, false},
		{domain.InvoiceStatus(99), 0, false, true},
	}
	for _, tc := range cases {
		got, send, err := invoiceUpdateToProto(ports.InvoiceUpdate{Status: tc.status})
		if send != tc.send || (err != nil) != tc.err || (send && got.GetState() != tc.want) {
			t.Errorf("%s: got %v, %v, %v", tc.status, got, send, err)
		}
		if send && got.GetSetId() != nil {
			t.Errorf("%s: zero set id sent as %x", tc.status, got.GetSetId())
		}
	}
}

func TestStatusToProto(t *testing.T) {
	t.Parallel()
	for s := domain.StatusOpen; s <= domain.StatusExpired; s++ {
		_, err := invoiceStatusToProto(s)
		if (err == nil) != s.IsStored() {
			t.Errorf("invoiceStatusToProto(%s): %v", s, err)
		}
		st, err := finalStatusToProto(s)
		wantOK := s == domain.StatusSettled || s == domain.StatusFailed
		if (err == nil) != wantOK {
			t.Errorf("finalStatusToProto(%s): %v, %v", s, st, err)
		}
	}
	// The numbers are the original lnmux API's: a client built from it reads
	// them, not our names.
	want := map[domain.InvoiceStatus]int32{
		domain.StatusFailed:          1,
		domain.StatusSettleRequested: 2,
		domain.StatusSettled:         3,
	}
	for s, n := range want {
		st, err := invoiceStatusToProto(s)
		if err != nil || int32(st) != n {
			t.Errorf("invoiceStatusToProto(%s) = %d, %v; want %d", s, st, err, n)
		}
		if s.IsFinal() {
			if st, err := finalStatusToProto(s); err != nil || int32(st) != n {
				t.Errorf("finalStatusToProto(%s) = %d, %v; want %d", s, st, err, n)
			}
		}
	}
	if st, err := finalStatusToProto(domain.StatusSettleRequested); err == nil || st != lnmuxpb.InvoiceStatus_UNKNOWN {
		t.Errorf("settle requested as final status: %v, %v", st, err)
	}
	if _, err := invoicesToProto([]domain.Invoice{{Status: domain.StatusAccepted}}); err == nil {
		t.Error("accepted invoice listed")
	}
}

func TestInvoiceToProtoZeroTimes(t *testing.T) {
	t.Parallel()
	pb, err := invoiceToProto(domain.Invoice{Status: domain.StatusSettleRequested, SettleRequestedAt: time.Unix(42, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if pb.GetSettleRequestedAt() != 42 || pb.GetFinalizedAt() != 0 || pb.GetSetId() != nil {
		t.Errorf("got %v", pb)
	}
	resp, err := invoicesToProto(nil)
	if err != nil || resp.GetFirstSequenceNumber() != 0 || resp.GetLastSequenceNumber() != 0 || len(resp.GetInvoice()) != 0 {
		t.Errorf("empty page: %v, %v", resp, err)
	}
}

func TestAddInvoiceRequestFromProto(t *testing.T) {
	t.Parallel()
	got, err := addInvoiceRequestFromProto(&lnmuxpb.AddInvoiceRequest{AmtMsat: 5, Description: "coffee", ExpirySecs: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if got.Amount != 5 || got.Description != "coffee" || got.DescriptionHash != nil || got.Expiry != time.Hour {
		t.Errorf("got %+v", got)
	}
}

// TestInvoiceTermFieldsHaveAPINames: every field domain.NewInvoiceTerms
// may name is reported under its AddInvoiceRequest name.
func TestInvoiceTermFieldsHaveAPINames(t *testing.T) {
	for _, field := range []string{domain.FieldAmount, domain.FieldExpiry, domain.FieldDescription, domain.FieldDescriptionHash} {
		if addInvoiceFields[field] == "" {
			t.Errorf("domain field %q has no AddInvoiceRequest name in addInvoiceFields", field)
		}
	}
}

// TestExpirySecondsSaturate: an expiry_secs too large for a Duration is
// refused as too long, never wrapped into a valid expiry.
func TestExpirySecondsSaturate(t *testing.T) {
	for _, secs := range []int64{math.MaxInt64, math.MaxInt64 / 1_000_000_000 * 2, 18446744074} {
		_, err := addInvoiceRequestFromProto(&lnmuxpb.AddInvoiceRequest{AmtMsat: 1, ExpirySecs: secs})
		if code, msg := codeAndMessage(err); code != connect.CodeInvalidArgument || !strings.HasPrefix(msg, "expiry_secs: ") {
			t.Errorf("expiry_secs %d: got %v %q, want invalid_argument \"expiry_secs: …\"", secs, code, msg)
		}
	}
	for _, secs := range []int64{math.MinInt64, -1} {
		_, err := addInvoiceRequestFromProto(&lnmuxpb.AddInvoiceRequest{AmtMsat: 1, ExpirySecs: secs})
		if code, _ := codeAndMessage(err); code != connect.CodeInvalidArgument {
			t.Errorf("expiry_secs %d: got %v, want invalid_argument", secs, code)
		}
	}
}
