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
		{StatusOpen, "open", false, false},
		{StatusAccepted, "accepted", false, false},
		{StatusSettleRequested, "settle_requested", false, true},
		{StatusSettled, "settled", true, true},
		{StatusFailed, "failed", true, true},
		{StatusCancelled, "cancelled", true, false},
		{StatusExpired, "expired", true, false},
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
				t.Errorf("ParseInvoiceStatus(%q) = %v, %v", tt.s.String(), got, err)
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
		{HTLCPending, "pending", false},
		{HTLCSettled, "settled", true},
		{HTLCFailed, "failed", true},
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
			t.Errorf("ParseHTLCStatus(%q) = %v, %v", tt.name, got, err)
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
			inv, err := NewSettleRequest(s, at)
			if st != SetSettling && st != SetSettleRequested {
				if !errors.Is(err, ErrInvalidTransition) {
					t.Fatalf("err = %v, want ErrInvalidTransition", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if inv.Hash != s.Hash || inv.Preimage != s.Preimage || inv.Amount != s.Meta.Amount ||
				inv.AmountPaid != setTotal || inv.SetID != s.ID() || inv.Status != StatusSettleRequested ||
				!inv.Expiry.Equal(s.Meta.Expiry) || !inv.SettleRequestedAt.Equal(at) || !inv.FinalizedAt.IsZero() {
				t.Errorf("invoice = %+v", inv)
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

	type step struct {
		c           CircuitKey
		settled     bool
		at          time.Time
		wantChanged bool
		wantErr     error
		wantStatus  InvoiceStatus
		wantFinal   time.Time // zero: FinalizedAt stays zero
	}
	tests := []struct {
		name      string
		circuits  []CircuitKey
		steps     []step
		wantParts bool // PartiallySettled at the end
	}{
		{"single part settled", []CircuitKey{c1}, []step{
			{c1, true, t1, true, nil, StatusSettled, t1},
		}, false},
		{"single part failed", []CircuitKey{c1}, []step{
			{c1, false, t1, true, nil, StatusFailed, t1},
		}, false},
		{"all settled", []CircuitKey{c1, c2}, []step{
			{c1, true, t1, true, nil, StatusSettleRequested, time.Time{}},
			{c2, true, t2, true, nil, StatusSettled, t2},
		}, false},
		{"one failed", []CircuitKey{c1, c2}, []step{
			{c1, true, t1, true, nil, StatusSettleRequested, time.Time{}},
			{c2, false, t2, true, nil, StatusFailed, t2},
		}, true},
		{"failed first waits for the rest", []CircuitKey{c1, c2}, []step{
			{c1, false, t1, true, nil, StatusSettleRequested, time.Time{}},
			{c2, true, t2, true, nil, StatusFailed, t2},
		}, true},
		{"all failed", []CircuitKey{c1, c2}, []step{
			{c1, false, t1, true, nil, StatusSettleRequested, time.Time{}},
			{c2, false, t2, true, nil, StatusFailed, t2},
		}, false},
		{"idempotent before final", []CircuitKey{c1, c2}, []step{
			{c1, true, t1, true, nil, StatusSettleRequested, time.Time{}},
			{c1, true, t2, false, nil, StatusSettleRequested, time.Time{}},
			{c2, true, t3, true, nil, StatusSettled, t3},
		}, false},
		{"idempotent after final keeps FinalizedAt", []CircuitKey{c1, c2}, []step{
			{c1, true, t1, true, nil, StatusSettleRequested, time.Time{}},
			{c2, true, t2, true, nil, StatusSettled, t2},
			{c2, true, t3, false, nil, StatusSettled, t2},
			{c1, true, t3, false, nil, StatusSettled, t2},
		}, false},
		{"conflicting final before invoice final", []CircuitKey{c1, c2}, []step{
			{c1, true, t1, true, nil, StatusSettleRequested, time.Time{}},
			{c1, false, t2, false, ErrInvalidTransition, StatusSettleRequested, time.Time{}},
			{c2, true, t3, true, nil, StatusSettled, t3},
		}, false},
		{"conflicting final after invoice final", []CircuitKey{c1}, []step{
			{c1, false, t1, true, nil, StatusFailed, t1},
			{c1, true, t2, false, ErrInvalidTransition, StatusFailed, t1},
		}, false},
		{"unknown circuit", []CircuitKey{c1}, []step{
			{unknown, true, t1, false, ErrInvalidArgument, StatusSettleRequested, time.Time{}},
			{c1, true, t2, true, nil, StatusSettled, t2},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := Invoice{Status: StatusSettleRequested, SettleRequestedAt: testNow}
			for _, c := range tt.circuits {
				inv.HTLCs = append(inv.HTLCs, SettledHTLC{Circuit: c, Amount: 1000, Status: HTLCPending})
			}
			for i, s := range tt.steps {
				before := fmt.Sprint(inv.HTLCs)
				changed, err := inv.ApplyFinal(s.c, s.settled, s.at)
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
				if !inv.FinalizedAt.Equal(s.wantFinal) {
					t.Errorf("step %d: FinalizedAt = %v, want %v", i, inv.FinalizedAt, s.wantFinal)
				}
			}
			if got := inv.PartiallySettled(); got != tt.wantParts {
				t.Errorf("PartiallySettled = %v, want %v", got, tt.wantParts)
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
		{StatusFailed, []SettledHTLC{settled, failed}, true},
		{StatusFailed, []SettledHTLC{failed, failed}, false},
		{StatusFailed, nil, false},
		{StatusSettled, []SettledHTLC{settled, settled}, false},
		{StatusSettleRequested, []SettledHTLC{settled, pending}, false},
	}
	for i, tt := range tests {
		inv := Invoice{Status: tt.status, HTLCs: tt.htlcs}
		if got := inv.PartiallySettled(); got != tt.want {
			t.Errorf("case %d (%v): PartiallySettled = %v, want %v", i, tt.status, got, tt.want)
		}
	}
}
