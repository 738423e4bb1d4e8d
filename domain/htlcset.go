package domain

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// SetState is the in-memory state of a set of HTLCs paying one invoice.
// It is lnmux's one lifecycle model: the invoice status the API shows
// (InvoiceStatus) is the state of the invoice's latest set until the set's
// settlement is stored, and from then on the stored invoice's status, which
// only lnd's final resolutions move (Invoice.ApplyFinal). docs/design.md,
// "Lifecycle", draws it.
type SetState uint8

// Set states. Collecting → Accepted → Settling → SettleRequested;
// Collecting/Accepted → Cancelled (someone decided so) or Expired (no one
// decided in time). Settling is the short window in which the settlement is
// being committed to the store: nothing may fail the HTLCs then.
const (
	SetCollecting SetState = iota
	SetAccepted
	SetSettling
	SetSettleRequested
	SetCancelled
	SetExpired
)

// String names the state.
func (s SetState) String() string {
	switch s {
	case SetCollecting:
		return "collecting"
	case SetAccepted:
		return "accepted"
	case SetSettling:
		return "settling"
	case SetSettleRequested:
		return "settle requested"
	case SetCancelled:
		return "cancelled"
	case SetExpired:
		return "expired"
	}
	return fmt.Sprintf("SetState(%d)", uint8(s))
}

// IsFinal reports whether the set leaves memory in this state.
func (s SetState) IsFinal() bool {
	return s == SetSettleRequested || s == SetCancelled || s == SetExpired
}

// InvoiceStatus is what the state shows outside lnmux. A collecting set is
// not visible: the invoice looks open. Settling is still accepted: the
// settlement is not committed yet (I1).
func (s SetState) InvoiceStatus() InvoiceStatus {
	switch s {
	case SetAccepted, SetSettling:
		return StatusAccepted
	case SetSettleRequested:
		return StatusSettleRequested
	case SetCancelled:
		return StatusCancelled
	case SetExpired:
		return StatusExpired
	case SetCollecting:
	}
	return StatusOpen
}

// AddOutcome says what happened to an HTLC offered to a set.
type AddOutcome uint8

// Add outcomes.
const (
	// AddHeld: the HTLC joined an incomplete set; hold it.
	AddHeld AddOutcome = iota
	// AddReplay: the set already holds this circuit; lnd re-offered it.
	AddReplay
	// AddCompleted: the HTLC completed the set, which is now accepted.
	AddCompleted
	// AddRejected: fail the HTLC with the returned reason.
	AddRejected
)

// HTLCSet collects the HTLCs that pay one invoice, possibly through several
// nodes. It is not safe for concurrent use: the application guards it.
type HTLCSet struct {
	Hash     PaymentHash
	Preimage Preimage
	Meta     InvoiceMeta
	// Total is the MPP total_msat every part must announce.
	Total Msat
	// Addr is the payment address of the first part.
	Addr PaymentAddr

	state      SetState
	parts      map[CircuitKey]HTLC
	sum        Msat
	id         SetID
	acceptedAt time.Time
}

// NewHTLCSet starts an empty set for an invoice, from its first checked HTLC.
func NewHTLCSet(a Accepted) *HTLCSet {
	return &HTLCSet{
		Hash:     a.HTLC.Hash,
		Preimage: a.Preimage,
		Meta:     a.Meta,
		Total:    a.HTLC.MPP.Total,
		Addr:     a.HTLC.MPP.Addr,
		parts:    make(map[CircuitKey]HTLC),
	}
}

// State returns the set's state.
func (s *HTLCSet) State() SetState { return s.state }

// ID returns the set id; it is the zero id until the set is complete.
func (s *HTLCSet) ID() SetID { return s.id }

// Sum is the amount of the HTLCs held.
func (s *HTLCSet) Sum() Msat { return s.sum }

// AcceptedAt is when the set completed.
func (s *HTLCSet) AcceptedAt() time.Time { return s.acceptedAt }

// Len is the number of HTLCs held.
func (s *HTLCSet) Len() int { return len(s.parts) }

// HTLCs returns the parts ordered by circuit key.
func (s *HTLCSet) HTLCs() []HTLC {
	out := slices.Collect(maps.Values(s.parts))
	slices.SortFunc(out, func(a, b HTLC) int { return a.Circuit.Compare(b.Circuit) })
	return out
}

// Has reports whether the set holds the circuit.
func (s *HTLCSet) Has(c CircuitKey) bool {
	_, ok := s.parts[c]
	return ok
}

// Add offers an HTLC to the set.
func (s *HTLCSet) Add(h HTLC, now time.Time) (AddOutcome, FailureReason) {
	if _, ok := s.parts[h.Circuit]; ok {
		return AddReplay, FailNone
	}
	switch s.state {
	case SetCollecting:
	case SetAccepted, SetSettling:
		return AddRejected, FailAlreadyAccepted
	case SetSettleRequested:
		return AddRejected, FailAlreadyPaid
	default:
		return AddRejected, FailCancelled
	}
	if h.Hash != s.Hash {
		return AddRejected, FailUnknownInvoice
	}
	// An own invoice's hash is derived from its payment address, so the
	// address needs no comparison. An external hash can have several
	// addresses (one per AddInvoice with other terms): every part must
	// name the one the set's terms came from.
	if s.Meta.External && h.MPP.Addr != s.Addr {
		return AddRejected, FailUnknownInvoice
	}
	if h.MPP.Total != s.Total {
		return AddRejected, FailSetTotalMismatch
	}
	if h.Amount > s.Total-s.sum {
		return AddRejected, FailOverpayment
	}
	s.parts[h.Circuit] = h
	s.sum += h.Amount
	if s.sum < s.Total {
		return AddHeld, FailNone
	}
	s.state = SetAccepted
	s.acceptedAt = now
	s.id = NewSetID(slices.Collect(maps.Keys(s.parts)))
	return AddCompleted, FailNone
}

// Timeout handles the hold timer of one part. While the set is collecting the
// part leaves it and must be failed with mpp_timeout; otherwise nothing
// happens and false is returned.
func (s *HTLCSet) Timeout(c CircuitKey) (HTLC, bool) {
	h, ok := s.parts[c]
	if !ok || s.state != SetCollecting {
		return HTLC{}, false
	}
	delete(s.parts, c)
	s.sum -= h.Amount
	return h, true
}

// Lost handles lnd's report that it failed part c on its own (its
// auto-fail height, a channel gone on chain): the part leaves the set. A
// collecting set keeps collecting; an accepted set is no longer complete, so
// it collects again and loses its id (the payer's retry of the part makes a
// new set with a new id). A set being settled or settled is not changed:
// lnd's word on its parts is recorded with the settlement (I3). It reports
// whether the part left the set.
func (s *HTLCSet) Lost(c CircuitKey) bool {
	h, ok := s.parts[c]
	if !ok {
		return false
	}
	switch s.state {
	case SetCollecting, SetAccepted:
	case SetSettling, SetSettleRequested, SetCancelled, SetExpired:
		return false
	}
	delete(s.parts, c)
	s.sum -= h.Amount
	s.state = SetCollecting
	s.id = SetID{}
	s.acceptedAt = time.Time{}
	return true
}

// Cancel ends, because someone decided so, a set that is not being settled
// and returns the HTLCs to fail. Ending an ended set is a no-op.
func (s *HTLCSet) Cancel() ([]HTLC, error) { return s.end(SetCancelled) }

// Expire ends, because no one decided on it in time (the accept timeout, or
// lnd's auto-fail height drawing near), a set that is not being settled and
// returns the HTLCs to fail. Ending an ended set is a no-op.
func (s *HTLCSet) Expire() ([]HTLC, error) { return s.end(SetExpired) }

func (s *HTLCSet) end(to SetState) ([]HTLC, error) {
	switch s.state {
	case SetCollecting, SetAccepted:
		out := s.HTLCs()
		s.state = to
		clear(s.parts)
		s.sum = 0
		return out, nil
	case SetCancelled, SetExpired:
		return nil, nil
	default:
		return nil, ErrSettleRequested
	}
}

// BeginSettle moves an accepted set with the given id into Settling, where no
// timer or cancel can touch it while the settlement is committed.
func (s *HTLCSet) BeginSettle(id SetID) error {
	switch {
	case s.state != SetAccepted && s.state != SetSettling && s.state != SetSettleRequested:
		return fmt.Errorf("%w: set is %s", ErrSetNotFound, s.state)
	case id != s.id:
		return ErrSetNotFound
	case s.state == SetSettling:
		return fmt.Errorf("%w: settlement in progress", ErrInvalidTransition)
	case s.state == SetSettleRequested:
		return nil
	}
	s.state = SetSettling
	return nil
}

// CommitSettle records that the settlement is durable.
func (s *HTLCSet) CommitSettle() error {
	if s.state != SetSettling && s.state != SetSettleRequested {
		return fmt.Errorf("%w: commit settle from %s", ErrInvalidTransition, s.state)
	}
	s.state = SetSettleRequested
	return nil
}

// AbortSettle returns a set whose settlement could not be committed to
// Accepted, so that it can be settled again or cancelled.
func (s *HTLCSet) AbortSettle() {
	if s.state == SetSettling {
		s.state = SetAccepted
	}
}
