package domain

import (
	"errors"
	"testing"
	"time"
)

func storedInvoice() Invoice {
	pre := Preimage{1, 2, 3}
	return Invoice{
		Hash: pre.Hash(), Preimage: pre, Status: StatusSettleRequested, Amount: 5000, AmountPaid: 5000,
		Expiry: time.Unix(1_700_000_000, 0), SettleRequestedAt: time.Unix(1_699_999_000, 0), Sequence: 7,
		HTLCs: []SettledHTLC{
			{Circuit: CircuitKey{Chan: 1, HTLC: 1}, Amount: 2000, Status: HTLCPending},
			{Circuit: CircuitKey{Chan: 2, HTLC: 9}, Amount: 3000, Status: HTLCPending},
		},
	}
}

func TestCheckSettleRequest(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Invoice)
		wantErr bool
	}{
		{name: "a settle request", change: func(*Invoice) {}},
		{name: "not settle-requested", change: func(i *Invoice) { i.Status = StatusSettled }, wantErr: true},
		{name: "preimage of another hash", change: func(i *Invoice) { i.Preimage[0]++ }, wantErr: true},
		{name: "no htlcs", change: func(i *Invoice) { i.HTLCs = nil }, wantErr: true},
	}
	for _, tt := range tests {
		inv := storedInvoice()
		tt.change(&inv)
		err := inv.CheckSettleRequest()
		if tt.wantErr && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: CheckSettleRequest() = %v, want ErrInvalidArgument", tt.name, err)
		}
		if !tt.wantErr && err != nil {
			t.Errorf("%s: CheckSettleRequest() = %v, want nil", tt.name, err)
		}
	}
}

func TestCheckUpdate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Invoice)
		wantErr bool
	}{
		{name: "outcomes, status and final time change", change: func(i *Invoice) {
			i.Status, i.FinalizedAt = StatusSettled, time.Unix(1_700_000_100, 0)
			i.HTLCs[0].Status, i.HTLCs[1].Status = HTLCSettled, HTLCSettled
		}},
		{name: "htlcs in another order", change: func(i *Invoice) { i.HTLCs[0], i.HTLCs[1] = i.HTLCs[1], i.HTLCs[0] }},
		{name: "hash", change: func(i *Invoice) { i.Hash[0]++ }, wantErr: true},
		{name: "preimage", change: func(i *Invoice) { i.Preimage[0]++ }, wantErr: true},
		{name: "set id", change: func(i *Invoice) { i.SetID[0]++ }, wantErr: true},
		{name: "amount paid", change: func(i *Invoice) { i.AmountPaid++ }, wantErr: true},
		{name: "expiry", change: func(i *Invoice) { i.Expiry = i.Expiry.Add(time.Second) }, wantErr: true},
		{name: "sequence", change: func(i *Invoice) { i.Sequence++ }, wantErr: true},
		{name: "an htlc fewer", change: func(i *Invoice) { i.HTLCs = i.HTLCs[:1] }, wantErr: true},
		{name: "an htlc's amount", change: func(i *Invoice) { i.HTLCs[1].Amount++ }, wantErr: true},
		{name: "an htlc's circuit", change: func(i *Invoice) { i.HTLCs[1].Circuit.HTLC++ }, wantErr: true},
		{name: "a status that is not stored", change: func(i *Invoice) { i.Status = StatusAccepted }, wantErr: true},
	}
	for _, tt := range tests {
		before := storedInvoice()
		after := storedInvoice()
		tt.change(&after)
		err := CheckUpdate(before, after)
		if tt.wantErr && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: CheckUpdate() = %v, want ErrInvalidArgument", tt.name, err)
		}
		if !tt.wantErr && err != nil {
			t.Errorf("%s: CheckUpdate() = %v, want nil", tt.name, err)
		}
	}
}
