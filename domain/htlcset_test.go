package domain

import (
	"slices"
	"testing"
	"time"
)

var (
	setHash  = Preimage{0x42}.Hash()
	setTotal = Msat(100_000)
	nodeA    = testNode(1)
	nodeB    = testNode(2)
)

// part is an HTLC of the test invoice (hash setHash, total setTotal).
func part(node NodeKey, chanID, htlcID uint64, amt Msat) HTLC {
	return HTLC{
		Circuit:   CircuitKey{Node: node, Chan: chanID, HTLC: htlcID},
		Hash:      setHash,
		Amount:    amt,
		Expiry:    800_100,
		MPP:       MPP{Total: setTotal, Addr: PaymentAddr{0x01}},
		ArrivedAt: testNow,
	}
}

func newTestSet(first HTLC) *HTLCSet {
	return NewHTLCSet(Accepted{
		HTLC:     first,
		Meta:     InvoiceMeta{Amount: setTotal, Expiry: testNow.Add(time.Hour)},
		Preimage: Preimage{0x42},
	})
}

func mustAdd(t *testing.T, s *HTLCSet, h HTLC, want AddOutcome) {
	t.Helper()
	out, reason := s.Add(h, testNow)
	if out != want || reason != FailNone {
		t.Fatalf("Add(%s) = %v, %v; want %v, none", h.Circuit, out, reason, want)
	}
}

// setIn returns a set of two parts (nodeA and nodeB, same channel and HTLC
// ids) driven into the given state.
func setIn(t *testing.T, st SetState) *HTLCSet {
	t.Helper()
	p1, p2 := part(nodeA, 1, 1, 40_000), part(nodeB, 1, 1, 60_000)
	s := newTestSet(p1)
	mustAdd(t, s, p1, AddHeld)
	if st == SetCollecting {
		return s
	}
	mustAdd(t, s, p2, AddCompleted)
	switch st {
	case SetAccepted:
	case SetSettling:
		if err := s.BeginSettle(s.ID()); err != nil {
			t.Fatal(err)
		}
	case SetSettleRequested:
		if err := s.BeginSettle(s.ID()); err != nil {
			t.Fatal(err)
		}
		if err := s.CommitSettle(); err != nil {
			t.Fatal(err)
		}
	case SetCancelled:
		if _, err := s.Cancel(); err != nil {
			t.Fatal(err)
		}
	case SetExpired:
		if _, err := s.Expire(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("no fixture for state %v", st)
	}
	if s.State() != st {
		t.Fatalf("fixture state = %v, want %v", s.State(), st)
	}
	return s
}

var allSetStates = []SetState{SetCollecting, SetAccepted, SetSettling, SetSettleRequested, SetCancelled, SetExpired}

func TestSetStateString(t *testing.T) {
	tests := []struct {
		s     SetState
		name  string
		final bool
	}{
		{s: SetCollecting, name: "collecting", final: false},
		{s: SetAccepted, name: "accepted", final: false},
		{s: SetSettling, name: "settling", final: false},
		{s: SetSettleRequested, name: "settle requested", final: true},
		{s: SetCancelled, name: "cancelled", final: true},
		{s: SetExpired, name: "expired", final: true},
		{s: SetExpired + 1, name: "SetState(6)", final: false},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.name {
			t.Errorf("String() = %q, want %q", got, tt.name)
		}
		if got := tt.s.IsFinal(); got != tt.final {
			t.Errorf("%v.IsFinal() = %v, want %v", tt.s, got, tt.final)
		}
	}
}

func TestHTLCSetNew(t *testing.T) {
	p := part(nodeA, 1, 1, 100_000)
	s := newTestSet(p)
	expect(t, "new set",
		check{name: "state", got: s.State(), want: SetCollecting},
		check{name: "id", got: s.ID(), want: SetID{}},
		check{name: "parts", got: s.Len(), want: 0},
		check{name: "sum", got: s.Sum(), want: Msat(0)},
		check{name: "AcceptedAt is zero", got: s.AcceptedAt().IsZero(), want: true},
		check{name: "Hash", got: s.Hash, want: setHash},
		check{name: "Total", got: s.Total, want: setTotal},
		check{name: "Preimage", got: s.Preimage, want: Preimage{0x42}},
		check{name: "Meta.Amount", got: s.Meta.Amount, want: setTotal},
	)
	if s.Has(p.Circuit) {
		t.Error("NewHTLCSet must not add the first HTLC; Add does")
	}
}

func TestHTLCSetSinglePart(t *testing.T) {
	p := part(nodeA, 1, 1, setTotal)
	s := newTestSet(p)
	at := testNow.Add(time.Second)
	out, reason := s.Add(p, at)
	if out != AddCompleted || reason != FailNone {
		t.Fatalf("Add = %v, %v; want completed", out, reason)
	}
	expect(t, "after the only part",
		check{name: "state", got: s.State(), want: SetAccepted},
		check{name: "sum", got: s.Sum(), want: setTotal},
		check{name: "parts", got: s.Len(), want: 1},
		check{name: "holds the part", got: s.Has(p.Circuit), want: true},
	)
	if want := NewSetID([]CircuitKey{p.Circuit}); s.ID() != want {
		t.Errorf("ID = %s, want %s", s.ID(), want)
	}
	if !s.AcceptedAt().Equal(at) {
		t.Errorf("AcceptedAt = %v, want %v", s.AcceptedAt(), at)
	}
	if got := s.HTLCs(); len(got) != 1 || got[0] != p {
		t.Errorf("HTLCs = %+v, want only %+v", got, p)
	}
}

// TestHTLCSetTwoNodes pays through two nodes whose HTLCs have the same
// channel and HTLC ids: the circuit keys must not collide.
func TestHTLCSetTwoNodes(t *testing.T) {
	pa, pb := part(nodeA, 5, 7, 60_000), part(nodeB, 5, 7, 40_000)
	s := newTestSet(pa)
	mustAdd(t, s, pa, AddHeld)
	if !expect(t, "after one part",
		check{name: "state", got: s.State(), want: SetCollecting},
		check{name: "id", got: s.ID(), want: SetID{}},
	) {
		t.FailNow()
	}
	mustAdd(t, s, pb, AddCompleted)
	if !expect(t, "after both parts",
		check{name: "parts", got: s.Len(), want: 2},
		check{name: "sum", got: s.Sum(), want: setTotal},
		check{name: "holds node A's part", got: s.Has(pa.Circuit), want: true},
		check{name: "holds node B's part", got: s.Has(pb.Circuit), want: true},
	) {
		t.FailNow()
	}
	want := NewSetID([]CircuitKey{pb.Circuit, pa.Circuit})
	if s.ID() != want {
		t.Errorf("ID = %s, want %s", s.ID(), want)
	}
	if s.ID() == NewSetID([]CircuitKey{pa.Circuit}) || s.ID() == NewSetID([]CircuitKey{pb.Circuit}) {
		t.Error("set id ignores a part")
	}
	got := s.HTLCs()
	if !slices.IsSortedFunc(got, func(a, b HTLC) int { return a.Circuit.Compare(b.Circuit) }) || len(got) != 2 {
		t.Errorf("HTLCs = %+v, want both parts sorted by circuit", got)
	}
}

func TestHTLCSetReplay(t *testing.T) {
	pa, pb := part(nodeA, 1, 1, 40_000), part(nodeB, 1, 1, 60_000)

	t.Run("while collecting", func(t *testing.T) {
		s := newTestSet(pa)
		mustAdd(t, s, pa, AddHeld)
		mustAdd(t, s, pa, AddReplay)
		expect(t, "after a replay",
			check{name: "sum", got: s.Sum(), want: Msat(40_000)},
			check{name: "parts", got: s.Len(), want: 1},
		)
		mustAdd(t, s, pb, AddCompleted)
	})
	t.Run("replay with changed amount is still a replay", func(t *testing.T) {
		s := newTestSet(pa)
		mustAdd(t, s, pa, AddHeld)
		big := pa
		big.Amount = setTotal
		mustAdd(t, s, big, AddReplay)
		expect(t, "after a replay with another amount",
			check{name: "sum", got: s.Sum(), want: Msat(40_000)},
			check{name: "state", got: s.State(), want: SetCollecting},
		)
	})
	for _, st := range []SetState{SetAccepted, SetSettling, SetSettleRequested} {
		t.Run("in state "+st.String(), func(t *testing.T) {
			s := setIn(t, st)
			id := s.ID()
			mustAdd(t, s, pa, AddReplay)
			mustAdd(t, s, pb, AddReplay)
			expect(t, "after replays",
				check{name: "state", got: s.State(), want: st},
				check{name: "sum", got: s.Sum(), want: setTotal},
				check{name: "parts", got: s.Len(), want: 2},
				check{name: "id", got: s.ID(), want: id},
			)
		})
	}
	t.Run("after cancel", func(t *testing.T) {
		s := setIn(t, SetCancelled)
		if out, reason := s.Add(pa, testNow); out != AddRejected || reason != FailCancelled {
			t.Errorf("Add after cancel = %v, %v; want rejected, cancelled", out, reason)
		}
	})
	t.Run("after timeout the part is new again", func(t *testing.T) {
		s := newTestSet(pa)
		mustAdd(t, s, pa, AddHeld)
		if _, ok := s.Timeout(pa.Circuit); !ok {
			t.Fatal("Timeout failed")
		}
		mustAdd(t, s, pa, AddHeld)
		if s.Sum() != 40_000 {
			t.Errorf("sum = %v, want 40000 (the part counted once)", s.Sum())
		}
	})
}

func TestHTLCSetAddRejects(t *testing.T) {
	pa := part(nodeA, 1, 1, 40_000)
	tests := []struct {
		name string
		h    HTLC
		want FailureReason
	}{
		{name: "overpays the total", h: part(nodeB, 1, 1, 60_001), want: FailOverpayment},
		{name: "single part above remaining", h: part(nodeB, 2, 2, setTotal), want: FailOverpayment},
		{name: "max amount", h: part(nodeB, 2, 2, MaxMsat), want: FailOverpayment},
		{name: "total mismatch", h: func() HTLC { h := part(nodeB, 1, 1, 60_000); h.MPP.Total = setTotal - 1; return h }(), want: FailSetTotalMismatch},
		{name: "larger total", h: func() HTLC { h := part(nodeB, 1, 1, 60_000); h.MPP.Total = setTotal + 1; return h }(), want: FailSetTotalMismatch},
		{name: "other payment hash", h: func() HTLC { h := part(nodeB, 1, 1, 60_000); h.Hash[0] ^= 1; return h }(), want: FailUnknownInvoice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSet(pa)
			mustAdd(t, s, pa, AddHeld)
			out, reason := s.Add(tt.h, testNow)
			if out != AddRejected || reason != tt.want {
				t.Fatalf("Add = %v, %v; want rejected, %v", out, reason, tt.want)
			}
			expect(t, "after a rejected part",
				check{name: "sum", got: s.Sum(), want: Msat(40_000)},
				check{name: "parts", got: s.Len(), want: 1},
				check{name: "holds the rejected part", got: s.Has(tt.h.Circuit), want: false},
				check{name: "state", got: s.State(), want: SetCollecting},
			)
			// The set can still complete with a correct part.
			mustAdd(t, s, part(nodeB, 9, 9, 60_000), AddCompleted)
		})
	}
}

func TestHTLCSetAddAfterCompletion(t *testing.T) {
	extra := part(nodeA, 2, 2, 1)
	tests := []struct {
		state SetState
		want  FailureReason
	}{
		{state: SetAccepted, want: FailAlreadyAccepted},
		{state: SetSettling, want: FailAlreadyAccepted},
		{state: SetSettleRequested, want: FailAlreadyPaid},
		{state: SetCancelled, want: FailCancelled},
		{state: SetExpired, want: FailCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.state.String(), func(t *testing.T) {
			s := setIn(t, tt.state)
			sum, n := s.Sum(), s.Len()
			out, reason := s.Add(extra, testNow)
			if out != AddRejected || reason != tt.want {
				t.Fatalf("Add = %v, %v; want rejected, %v", out, reason, tt.want)
			}
			expect(t, "after a rejected part",
				check{name: "sum", got: s.Sum(), want: sum},
				check{name: "parts", got: s.Len(), want: n},
				check{name: "state", got: s.State(), want: tt.state},
			)
		})
	}
}

func TestHTLCSetTimeout(t *testing.T) {
	pa := part(nodeA, 1, 1, 40_000)
	t.Run("collecting", func(t *testing.T) {
		s := newTestSet(pa)
		mustAdd(t, s, pa, AddHeld)
		pb := part(nodeB, 1, 1, 30_000)
		mustAdd(t, s, pb, AddHeld)
		h, ok := s.Timeout(pa.Circuit)
		if !ok || h != pa {
			t.Fatalf("Timeout = %+v, %v; want the part", h, ok)
		}
		expect(t, "after the timeout",
			check{name: "holds the timed-out part", got: s.Has(pa.Circuit), want: false},
			check{name: "sum", got: s.Sum(), want: Msat(30_000)},
			check{name: "parts", got: s.Len(), want: 1},
			check{name: "state", got: s.State(), want: SetCollecting},
		)
		if _, ok := s.Timeout(pa.Circuit); ok {
			t.Error("second Timeout of the same part succeeded")
		}
		if _, ok := s.Timeout(CircuitKey{Node: nodeB, Chan: 99}); ok {
			t.Error("Timeout of an unknown circuit succeeded")
		}
		// Timing out every part leaves an empty collecting set that can
		// still complete.
		if _, ok := s.Timeout(pb.Circuit); !ok || s.Sum() != 0 || s.Len() != 0 {
			t.Fatal("timing out the last part")
		}
		mustAdd(t, s, part(nodeB, 3, 3, setTotal), AddCompleted)
	})
	for _, st := range []SetState{SetAccepted, SetSettling, SetSettleRequested, SetCancelled, SetExpired} {
		t.Run(st.String(), func(t *testing.T) {
			s := setIn(t, st)
			sum, n := s.Sum(), s.Len()
			if h, ok := s.Timeout(pa.Circuit); ok || h != (HTLC{}) {
				t.Errorf("Timeout in state %v = %+v, %v; want nothing", st, h, ok)
			}
			if s.State() != st || s.Sum() != sum || s.Len() != n {
				t.Error("Timeout changed the set")
			}
		})
	}
}

// TestHTLCSetEnd ends a set in every state, by a decision (Cancel) and for
// want of one (Expire): only a set not being settled ends (I2), in the
// state that says why, and ending an ended set is a no-op.
func TestHTLCSetEnd(t *testing.T) {
	ends := []struct {
		name string
		end  func(*HTLCSet) ([]HTLC, error)
		to   SetState
	}{
		{name: "Cancel", end: (*HTLCSet).Cancel, to: SetCancelled},
		{name: "Expire", end: (*HTLCSet).Expire, to: SetExpired},
	}
	tests := []struct {
		state     SetState
		wantParts int
		wantErr   error
		// wantState is the state after; ended: the end's own state.
		wantState SetState
		ended     bool
	}{
		{state: SetCollecting, wantParts: 1, ended: true},
		{state: SetAccepted, wantParts: 2, ended: true},
		{state: SetSettling, wantErr: ErrSettleRequested, wantState: SetSettling},
		{state: SetSettleRequested, wantErr: ErrSettleRequested, wantState: SetSettleRequested},
		{state: SetCancelled, wantState: SetCancelled},
		{state: SetExpired, wantState: SetExpired},
	}
	for _, e := range ends {
		for _, tt := range tests {
			t.Run(e.name+"/"+tt.state.String(), func(t *testing.T) {
				want := tt.wantState
				if tt.ended {
					want = e.to
				}
				s := setIn(t, tt.state)
				sum, n := s.Sum(), s.Len()
				parts, err := e.end(s)
				if !errIs(err, tt.wantErr) {
					t.Fatalf("%s err = %v, want %v", e.name, err, tt.wantErr)
				}
				if len(parts) != tt.wantParts {
					t.Errorf("%s returned %d parts, want %d", e.name, len(parts), tt.wantParts)
				}
				if !slices.IsSortedFunc(parts, func(a, b HTLC) int { return a.Circuit.Compare(b.Circuit) }) {
					t.Errorf("%s returned parts not sorted by circuit", e.name)
				}
				if s.State() != want {
					t.Errorf("state = %v, want %v", s.State(), want)
				}
				if err != nil && (s.Sum() != sum || s.Len() != n) {
					t.Errorf("a refused %s changed the set: sum %v → %v, parts %d → %d", e.name, sum, s.Sum(), n, s.Len())
				}
				if !tt.ended {
					return
				}
				if s.Len() != 0 || s.Sum() != 0 {
					t.Errorf("ended set still holds %d parts, %v; want none", s.Len(), s.Sum())
				}
				for _, again := range ends {
					parts, err := again.end(s)
					if err != nil || len(parts) != 0 || s.State() != e.to {
						t.Errorf("%s after %s = %d parts, %v, state %v; want no parts, no error, state %v",
							again.name, e.name, len(parts), err, s.State(), e.to)
					}
				}
			})
		}
	}
}

// TestSetStateInvoiceStatus: every state shows the API one status, and
// every status the API shows for an invoice in memory comes from a state.
func TestSetStateInvoiceStatus(t *testing.T) {
	want := map[SetState]InvoiceStatus{
		SetCollecting:      StatusOpen,
		SetAccepted:        StatusAccepted,
		SetSettling:        StatusAccepted,
		SetSettleRequested: StatusSettleRequested,
		SetCancelled:       StatusCancelled,
		SetExpired:         StatusExpired,
	}
	shown := map[InvoiceStatus]bool{}
	for _, st := range allSetStates {
		w, ok := want[st]
		if !ok {
			t.Errorf("no expectation for state %v", st)
			continue
		}
		if got := st.InvoiceStatus(); got != w {
			t.Errorf("%v.InvoiceStatus() = %v, want %v", st, got, w)
		}
		shown[st.InvoiceStatus()] = true
	}
	// Settled and Failed are only ever stored: Invoice.ApplyFinal makes them.
	for _, s := range allStatuses {
		if !shown[s] && s != StatusSettled && s != StatusFailed {
			t.Errorf("status %v is produced by no set state", s)
		}
	}
}

func TestHTLCSetSettleTransitions(t *testing.T) {
	wrongID := SetID{0xde, 0xad}
	tests := []struct {
		state     SetState
		rightID   bool
		wantErr   error
		wantState SetState
	}{
		{state: SetCollecting, rightID: true, wantErr: ErrSetNotFound, wantState: SetCollecting},
		{state: SetCollecting, rightID: false, wantErr: ErrSetNotFound, wantState: SetCollecting},
		{state: SetAccepted, rightID: true, wantState: SetSettling},
		{state: SetAccepted, rightID: false, wantErr: ErrSetNotFound, wantState: SetAccepted},
		{state: SetSettling, rightID: true, wantErr: ErrInvalidTransition, wantState: SetSettling},
		{state: SetSettling, rightID: false, wantErr: ErrSetNotFound, wantState: SetSettling},
		{state: SetSettleRequested, rightID: true, wantState: SetSettleRequested},
		{state: SetSettleRequested, rightID: false, wantErr: ErrSetNotFound, wantState: SetSettleRequested},
		{state: SetCancelled, rightID: true, wantErr: ErrSetNotFound, wantState: SetCancelled},
		{state: SetCancelled, rightID: false, wantErr: ErrSetNotFound, wantState: SetCancelled},
		{state: SetExpired, rightID: true, wantErr: ErrSetNotFound, wantState: SetExpired},
		{state: SetExpired, rightID: false, wantErr: ErrSetNotFound, wantState: SetExpired},
	}
	for _, tt := range tests {
		name := tt.state.String() + "/wrong id"
		if tt.rightID {
			name = tt.state.String() + "/right id"
		}
		t.Run("BeginSettle "+name, func(t *testing.T) {
			s := setIn(t, tt.state)
			id := wrongID
			if tt.rightID {
				id = s.ID()
			}
			if err := s.BeginSettle(id); !errIs(err, tt.wantErr) {
				t.Fatalf("BeginSettle err = %v, want %v", err, tt.wantErr)
			}
			if s.State() != tt.wantState {
				t.Errorf("state = %v, want %v", s.State(), tt.wantState)
			}
		})
	}

	commit := map[SetState]struct {
		wantErr   error
		wantState SetState
	}{
		SetCollecting:      {wantErr: ErrInvalidTransition, wantState: SetCollecting},
		SetAccepted:        {wantErr: ErrInvalidTransition, wantState: SetAccepted},
		SetSettling:        {wantState: SetSettleRequested},
		SetSettleRequested: {wantState: SetSettleRequested},
		SetCancelled:       {wantErr: ErrInvalidTransition, wantState: SetCancelled},
		SetExpired:         {wantErr: ErrInvalidTransition, wantState: SetExpired},
	}
	abort := map[SetState]SetState{
		SetCollecting:      SetCollecting,
		SetAccepted:        SetAccepted,
		SetSettling:        SetAccepted,
		SetSettleRequested: SetSettleRequested,
		SetCancelled:       SetCancelled,
		SetExpired:         SetExpired,
	}
	for _, st := range allSetStates {
		t.Run("CommitSettle "+st.String(), func(t *testing.T) {
			want, ok := commit[st]
			if !ok {
				t.Fatalf("no expectation for %v", st)
			}
			s := setIn(t, st)
			if err := s.CommitSettle(); !errIs(err, want.wantErr) {
				t.Fatalf("CommitSettle err = %v, want %v", err, want.wantErr)
			}
			if s.State() != want.wantState {
				t.Errorf("state = %v, want %v", s.State(), want.wantState)
			}
		})
		t.Run("AbortSettle "+st.String(), func(t *testing.T) {
			want, ok := abort[st]
			if !ok {
				t.Fatalf("no expectation for %v", st)
			}
			s := setIn(t, st)
			s.AbortSettle()
			if s.State() != want {
				t.Errorf("state = %v, want %v", s.State(), want)
			}
		})
	}

	t.Run("abort then settle again or cancel", func(t *testing.T) {
		s := setIn(t, SetSettling)
		id := s.ID()
		s.AbortSettle()
		if s.ID() != id || s.Len() != 2 || s.Sum() != setTotal {
			t.Fatal("AbortSettle changed the parts")
		}
		if err := s.BeginSettle(id); err != nil {
			t.Fatalf("BeginSettle after abort: %v", err)
		}
		s.AbortSettle()
		parts, err := s.Cancel()
		if err != nil || len(parts) != 2 {
			t.Fatalf("Cancel after abort = %d parts, %v", len(parts), err)
		}
	})
}

// TestHTLCSetLost covers lnd failing a part on its own in every state: the
// part leaves a collecting or accepted set (which then collects again,
// without an id), and nothing changes a set being settled or ended.
func TestHTLCSetLost(t *testing.T) {
	pa := part(nodeA, 1, 1, 40_000)
	for _, st := range allSetStates {
		t.Run(st.String(), func(t *testing.T) {
			s := setIn(t, st)
			sum, n, id := s.Sum(), s.Len(), s.ID()
			lost := s.Lost(pa.Circuit)
			switch st {
			case SetCollecting, SetAccepted:
				expect(t, "after the loss",
					check{name: "lost", got: lost, want: true},
					check{name: "holds the part", got: s.Has(pa.Circuit), want: false},
					check{name: "sum", got: s.Sum(), want: sum - pa.Amount},
					check{name: "parts", got: s.Len(), want: n - 1},
					check{name: "state", got: s.State(), want: SetCollecting},
					check{name: "id", got: s.ID(), want: SetID{}},
				)
				if st == SetAccepted {
					if err := s.BeginSettle(id); err == nil {
						t.Fatal("the old id of a set that lost a part can be settled")
					}
					// The payer's retry of the part completes it anew.
					mustAdd(t, s, part(nodeA, 2, 9, 40_000), AddCompleted)
					if s.ID() == id || s.ID() == (SetID{}) {
						t.Fatal("completed again with the old id or none")
					}
				}
				if s.Lost(pa.Circuit) {
					t.Error("second loss of the same part")
				}
			default:
				if lost || s.State() != st || s.Sum() != sum || s.Len() != n || s.ID() != id {
					t.Errorf("Lost changed a %v set", st)
				}
			}
			if s.Lost(CircuitKey{Node: nodeB, Chan: 99}) {
				t.Error("loss of an unknown circuit")
			}
		})
	}
}
