package domain

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var allStatuses = []InvoiceStatus{StatusOpen, StatusAccepted, StatusSettleRequested, StatusSettled, StatusFailed, StatusCancelled, StatusExpired}

func TestInvoiceStatusProperties(t *testing.T) {
	tests := []struct {
		s      InvoiceStatus
		name   string
		final  bool
		stored bool
	}{
		{s: StatusOpen, name: "open", final: false, stored: false},
		{s: StatusAccepted, name: "accepted", final: false, stored: false},
		{s: StatusSettleRequested, name: "settle_requested", final: false, stored: true},
		{s: StatusSettled, name: "settled", final: true, stored: true},
		{s: StatusFailed, name: "failed", final: true, stored: true},
		{s: StatusCancelled, name: "cancelled", final: true, stored: false},
		{s: StatusExpired, name: "expired", final: true, stored: false},
	}
	if len(tests) != len(allStatuses) {
		t.Fatal("table does not cover every status")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.s.IsFinal(); got != tt.final {
				t.Errorf("IsFinal() = %v, want %v", got, tt.final)
			}
			if got := tt.s.IsStored(); got != tt.stored {
				t.Errorf("IsStored() = %v, want %v", got, tt.stored)
			}
			got, err := ParseInvoiceStatus(tt.s.String())
			if err != nil || got != tt.s {
				t.Errorf("ParseInvoiceStatus(%q) = %v, %v; want %v, nil", tt.s.String(), got, err, tt.s)
			}
		})
	}
	if got := (StatusExpired + 1).String(); got != "InvoiceStatus(7)" {
		t.Errorf("unknown status String() = %q", got)
	}
}

func TestParseInvoiceStatusRejects(t *testing.T) {
	for _, in := range []string{"", "OPEN", "Settled", "settle requested", "settle-requested", " settled", "unknown", "InvoiceStatus(7)"} {
		if _, err := ParseInvoiceStatus(in); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseInvoiceStatus(%q) err = %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestHTLCStatus(t *testing.T) {
	tests := []struct {
		s     HTLCStatus
		name  string
		final bool
	}{
		{s: HTLCPending, name: "pending", final: false},
		{s: HTLCSettled, name: "settled", final: true},
		{s: HTLCFailed, name: "failed", final: true},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.name {
			t.Errorf("String() = %q, want %q", got, tt.name)
		}
		if got := tt.s.IsFinal(); got != tt.final {
			t.Errorf("%v.IsFinal() = %v, want %v", tt.s, got, tt.final)
		}
		got, err := ParseHTLCStatus(tt.name)
		if err != nil || got != tt.s {
			t.Errorf("ParseHTLCStatus(%q) = %v, %v; want %v, nil", tt.name, got, err, tt.s)
		}
	}
	if got := (HTLCFailed + 1).String(); got != "HTLCStatus(3)" {
		t.Errorf("unknown status String() = %q", got)
	}
	for _, in := range []string{"", "PENDING", "open", "HTLCStatus(3)"} {
		if _, err := ParseHTLCStatus(in); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseHTLCStatus(%q) err = %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestNewSettleRequest(t *testing.T) {
	at := testNow.Add(time.Minute)
	for _, st := range allSetStates {
		t.Run(st.String(), func(t *testing.T) {
			s := setIn(t, st)
			inv, err := NewSettleRequest(s, Preimage{}, at)
			if st != SetSettling && st != SetSettleRequested {
				if !errors.Is(err, ErrInvalidTransition) {
					t.Fatalf("err = %v, want ErrInvalidTransition", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fields := []struct {
				name      string
				got, want any
			}{
				{name: "Hash", got: inv.Hash, want: s.Hash},
				{name: "Preimage", got: inv.Preimage, want: s.Preimage},
				{name: "Amount", got: inv.Amount, want: s.Meta.Amount},
				{name: "AmountPaid", got: inv.AmountPaid, want: setTotal},
				{name: "SetID", got: inv.SetID, want: s.ID()},
				{name: "Status", got: inv.Status, want: StatusSettleRequested},
				{name: "Expiry", got: inv.Expiry.UTC(), want: s.Meta.Expiry.UTC()},
				{name: "SettleRequestedAt", got: inv.SettleRequestedAt.UTC(), want: at.UTC()},
				{name: "FinalizedAt", got: inv.FinalizedAt, want: time.Time{}},
			}
			for _, f := range fields {
				if f.got != f.want {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
			parts := s.HTLCs()
			if len(inv.HTLCs) != len(parts) {
				t.Fatalf("%d HTLCs, want %d", len(inv.HTLCs), len(parts))
			}
			for i, h := range inv.HTLCs {
				if h.Circuit != parts[i].Circuit || h.Amount != parts[i].Amount || h.Status != HTLCPending {
					t.Errorf("HTLC %d = %+v, want %+v pending", i, h, parts[i])
				}
			}
		})
	}
}

func TestInvoiceApplyFinal(t *testing.T) {
	c1 := CircuitKey{Node: nodeA, Chan: 1, HTLC: 1}
	c2 := CircuitKey{Node: nodeB, Chan: 1, HTLC: 1}
	unknown := CircuitKey{Node: nodeA, Chan: 1, HTLC: 2}
	t1, t2, t3 := testNow.Add(time.Second), testNow.Add(2*time.Second), testNow.Add(3*time.Second)

	// step is one final resolution from lnd and what the invoice must look
	// like after it.
	type step struct {
		circuit         CircuitKey
		settled         bool
		at              time.Time
		wantChanged     bool
		wantErr         error
		wantStatus      InvoiceStatus
		wantFinalizedAt time.Time // zero: FinalizedAt stays zero
	}
	tests := []struct {
		name        string
		circuits    []CircuitKey
		steps       []step
		wantPartial bool // PartiallySettled at the end
	}{
		{name: "single part settled", circuits: []CircuitKey{c1}, steps: []step{
			{circuit: c1, settled: true, at: t1, wantChanged: true, wantStatus: StatusSettled, wantFinalizedAt: t1},
		}, wantPartial: false},
		{name: "single part failed", circuits: []CircuitKey{c1}, steps: []step{
			{circuit: c1, settled: false, at: t1, wantChanged: true, wantStatus: StatusFailed, wantFinalizedAt: t1},
		}, wantPartial: false},
		{name: "all settled", circuits: []CircuitKey{c1, c2}, steps: []step{
			{circuit: c1, settled: true, at: t1, wantChanged: true, wantStatus: StatusSettleRequested},
			{circuit: c2, settled: true, at: t2, wantChanged: true, wantStatus: StatusSettled, wantFinalizedAt: t2},
		}, wantPartial: false},
		{name: "one failed", circuits: []CircuitKey{c1, c2}, steps: []step{
			{circuit: c1, settled: true, at: t1, wantChanged: true, wantStatus: StatusSettleRequested},
			{circuit: c2, settled: false, at: t2, wantChanged: true, wantStatus: StatusFailed, wantFinalizedAt: t2},
		}, wantPartial: true},
		{name: "failed first waits for the rest", circuits: []CircuitKey{c1, c2}, steps: []step{
			{circuit: c1, settled: false, at: t1, wantChanged: true, wantStatus: StatusSettleRequested},
			{circuit: c2, settled: true, at: t2, wantChanged: true, wantStatus: StatusFailed, wantFinalizedAt: t2},
		}, wantPartial: true},
		{name: "all failed", circuits: []CircuitKey{c1, c2}, steps: []step{
			{circuit: c1, settled: false, at: t1, wantChanged: true, wantStatus: StatusSettleRequested},
			{circuit: c2, settled: false, at: t2, wantChanged: true, wantStatus: StatusFailed, wantFinalizedAt: t2},
		}, wantPartial: false},
		{name: "idempotent before final", circuits: []CircuitKey{c1, c2}, steps: []step{
			{circuit: c1, settled: true, at: t1, wantChanged: true, wantStatus: StatusSettleRequested},
			{circuit: c1, settled: true, at: t2, wantChanged: false, wantStatus: StatusSettleRequested},
			{circuit: c2, settled: true, at: t3, wantChanged: true, wantStatus: StatusSettled, wantFinalizedAt: t3},
		}, wantPartial: false},
		{name: "idempotent after final keeps FinalizedAt", circuits: []CircuitKey{c1, c2}, steps: []step{
			{circuit: c1, settled: true, at: t1, wantChanged: true, wantStatus: StatusSettleRequested},
			{circuit: c2, settled: true, at: t2, wantChanged: true, wantStatus: StatusSettled, wantFinalizedAt: t2},
			{circuit: c2, settled: true, at: t3, wantChanged: false, wantStatus: StatusSettled, wantFinalizedAt: t2},
			{circuit: c1, settled: true, at: t3, wantChanged: false, wantStatus: StatusSettled, wantFinalizedAt: t2},
		}, wantPartial: false},
		{name: "conflicting final before invoice final", circuits: []CircuitKey{c1, c2}, steps: []step{
			{circuit: c1, settled: true, at: t1, wantChanged: true, wantStatus: StatusSettleRequested},
			{circuit: c1, settled: false, at: t2, wantChanged: false, wantErr: ErrInvalidTransition, wantStatus: StatusSettleRequested},
			{circuit: c2, settled: true, at: t3, wantChanged: true, wantStatus: StatusSettled, wantFinalizedAt: t3},
		}, wantPartial: false},
		{name: "conflicting final after invoice final", circuits: []CircuitKey{c1}, steps: []step{
			{circuit: c1, settled: false, at: t1, wantChanged: true, wantStatus: StatusFailed, wantFinalizedAt: t1},
			{circuit: c1, settled: true, at: t2, wantChanged: false, wantErr: ErrInvalidTransition, wantStatus: StatusFailed, wantFinalizedAt: t1},
		}, wantPartial: false},
		{name: "unknown circuit", circuits: []CircuitKey{c1}, steps: []step{
			{circuit: unknown, settled: true, at: t1, wantChanged: false, wantErr: ErrInvalidArgument, wantStatus: StatusSettleRequested},
			{circuit: c1, settled: true, at: t2, wantChanged: true, wantStatus: StatusSettled, wantFinalizedAt: t2},
		}, wantPartial: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := Invoice{Status: StatusSettleRequested, SettleRequestedAt: testNow}
			for _, c := range tt.circuits {
				inv.HTLCs = append(inv.HTLCs, SettledHTLC{Circuit: c, Amount: 1000, Status: HTLCPending})
			}
			for i, s := range tt.steps {
				before := fmt.Sprint(inv.HTLCs)
				changed, err := inv.ApplyFinal(s.circuit, s.settled, s.at)
				if !errIs(err, s.wantErr) {
					t.Fatalf("step %d: err = %v, want %v", i, err, s.wantErr)
				}
				if changed != s.wantChanged {
					t.Errorf("step %d: changed = %v, want %v", i, changed, s.wantChanged)
				}
				if err != nil && fmt.Sprint(inv.HTLCs) != before {
					t.Errorf("step %d: a refused update changed the HTLCs", i)
				}
				if inv.Status != s.wantStatus {
					t.Errorf("step %d: status = %v, want %v", i, inv.Status, s.wantStatus)
				}
				if !inv.FinalizedAt.Equal(s.wantFinalizedAt) {
					t.Errorf("step %d: FinalizedAt = %v, want %v", i, inv.FinalizedAt, s.wantFinalizedAt)
				}
			}
			if got := inv.PartiallySettled(); got != tt.wantPartial {
				t.Errorf("PartiallySettled = %v, want %v", got, tt.wantPartial)
			}
		})
	}
}

func TestInvoicePartiallySettled(t *testing.T) {
	settled := SettledHTLC{Status: HTLCSettled}
	failed := SettledHTLC{Status: HTLCFailed}
	pending := SettledHTLC{Status: HTLCPending}
	tests := []struct {
		status InvoiceStatus
		htlcs  []SettledHTLC
		want   bool
	}{
		{status: StatusFailed, htlcs: []SettledHTLC{settled, failed}, want: true},
		{status: StatusFailed, htlcs: []SettledHTLC{failed, failed}, want: false},
		{status: StatusFailed, htlcs: nil, want: false},
		{status: StatusSettled, htlcs: []SettledHTLC{settled, settled}, want: false},
		{status: StatusSettleRequested, htlcs: []SettledHTLC{settled, pending}, want: false},
	}
	for i, tt := range tests {
		inv := Invoice{Status: tt.status, HTLCs: tt.htlcs}
		if got := inv.PartiallySettled(); got != tt.want {
			t.Errorf("case %d (%v): PartiallySettled = %v, want %v", i, tt.status, got, tt.want)
		}
	}
}
