package core

import (
	"slices"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// entry is everything lnmux holds in memory for one payment hash.
type entry struct {
	hash domain.PaymentHash
	// expiry is the invoice's expiry: after it, no HTLC can pay the hash
	// and the entry may go once nothing else holds it.
	expiry time.Time
	// set is the set being collected, decided or committed; nil if none.
	set *setEntry
	// settled is non-nil once a settlement of the hash is committed.
	settled *settledState
	// failed holds the circuits lnmux failed on its own decision (cancel,
	// timeouts, auto-fail margin): lnd re-offers an HTLC whose FAIL was not
	// delivered, and it must be failed again, never re-assembled.
	failed map[domain.CircuitKey]failedHTLC
	// cold holds what few entries need, allocated on first use: most
	// entries in memory are paid marks, and every byte of an entry counts
	// a million times (docs/design.md, "Memory").
	cold *entryCold
}

// entryCold is the rarely used part of an entry.
type entryCold struct {
	// cancelled lists the ids of cancelled sets, for idempotent cancels.
	cancelled []domain.SetID
	// lost lists the ids of accepted sets of which lnd failed a part: they
	// can no longer be settled (the set collects again under a new id).
	lost []domain.SetID
	// recorded lists the ids of sets whose cancel is stored (cancel.go);
	// recording are the cancels being written.
	recorded  []domain.SetID
	recording []*cancelTicket
	// tombstone: cancelled permanently, unpayable until expiry.
	tombstone bool
}

// c returns the entry's cold part, allocating it.
func (e *entry) c() *entryCold {
	if e.cold == nil {
		e.cold = &entryCold{}
	}
	return e.cold
}

func (e *entry) coldEmpty() bool {
	c := e.cold
	return c == nil || (len(c.cancelled) == 0 && len(c.lost) == 0 && len(c.recorded) == 0 && len(c.recording) == 0 && !c.tombstone)
}

func (e *entry) cancelledIDs() []domain.SetID {
	if e.cold == nil {
		return nil
	}
	return e.cold.cancelled
}

func (e *entry) lostIDs() []domain.SetID {
	if e.cold == nil {
		return nil
	}
	return e.cold.lost
}

func (e *entry) recordedIDs() []domain.SetID {
	if e.cold == nil {
		return nil
	}
	return e.cold.recorded
}

func (e *entry) recordings() []*cancelTicket {
	if e.cold == nil {
		return nil
	}
	return e.cold.recording
}

func (e *entry) tombstoned() bool { return e.cold != nil && e.cold.tombstone }

type failedHTLC struct {
	reason domain.FailureReason
	// until is the block height after which lnd can no longer re-offer the
	// HTLC (its auto-fail height or its expiry).
	until uint32
}

// paidByHashOnly is the settled state of every hash known to be paid by a
// set this process does not know (loaded by hash only, or refused by the
// store as paid): one shared value, never changed, as most of the paid
// hashes in memory are these (docs/design.md, "Memory").
var paidByHashOnly = &settledState{}

type settledState struct {
	// setID is zero for a paid mark loaded by hash only: ask the store.
	setID    domain.SetID
	preimage domain.Preimage
	// pending are the circuits lnd has not reported final.
	pending map[domain.CircuitKey]struct{}
}

// setEntry is an in-memory HTLC set with what the machine keeps beside the
// domain state: deadlines, what answering each HTLC needs and the
// settlement in flight.
type setEntry struct {
	htlcs *domain.HTLCSet
	// held lists the set's HTLCs with the means to answer them. A slice,
	// not a map: sets have few parts, and a Go map's first group alone
	// costs more than a held HTLC (docs/benchmarks.md, "Memory").
	held           []*heldHTLC
	accept         timer
	acceptDeadline time.Time
	// ticket is the settlement in flight while the set is Settling.
	ticket *ticket
}

// heldHTLC is what a set keeps beside the domain's copy of the HTLC.
type heldHTLC struct {
	circuit  domain.CircuitKey
	autoFail uint32
	// onion is the driver's means to encrypt a failure (opaque).
	onion any
	// hold fails the part if its set does not complete in time.
	hold timer
}

func (se *setEntry) heldOf(c domain.CircuitKey) *heldHTLC {
	for _, h := range se.held {
		if h.circuit == c {
			return h
		}
	}
	return nil
}

func (se *setEntry) onionOf(c domain.CircuitKey) any {
	if h := se.heldOf(c); h != nil {
		return h.onion
	}
	return nil
}

// removeHeld removes and returns the held HTLC of circuit c, or nil.
func (se *setEntry) removeHeld(c domain.CircuitKey) *heldHTLC {
	for i, h := range se.held {
		if h.circuit == c {
			se.held = slices.Delete(se.held, i, i+1)
			return h
		}
	}
	return nil
}

// stopTimers disarms the set's deadlines.
func (m *Machine) stopTimers(se *setEntry) {
	m.disarm(&se.accept)
	for _, h := range se.held {
		m.disarm(&h.hold)
	}
}

// remember records a circuit lnmux fails, to fail it again if re-offered.
func (e *entry) remember(h domain.HTLC, reason domain.FailureReason) {
	if e.failed == nil {
		e.failed = make(map[domain.CircuitKey]failedHTLC)
	}
	until := h.Expiry
	if h.AutoFailHeight != 0 {
		until = max(until, h.AutoFailHeight)
	}
	e.failed[h.Circuit] = failedHTLC{reason: reason, until: until}
}

// isPaidOnly reports an entry that only marks its hash as paid.
func (e *entry) isPaidOnly() bool {
	return e.set == nil && e.settled != nil && len(e.settled.pending) == 0 && len(e.failed) == 0 &&
		e.coldEmpty()
}

// markSettled sets e.settled from a stored invoice.
func (m *Machine) markSettled(e *entry, inv domain.Invoice) {
	st := &settledState{setID: inv.SetID, preimage: inv.Preimage}
	if inv.Status == domain.StatusSettleRequested {
		st.pending = make(map[domain.CircuitKey]struct{}, len(inv.HTLCs))
		for _, h := range inv.HTLCs {
			if !h.Status.IsFinal() {
				st.pending[h.Circuit] = struct{}{}
				m.index[h.Circuit] = inv.Hash
			}
		}
	}
	e.settled = st
	if inv.Expiry.After(e.expiry) {
		e.expiry = inv.Expiry
	}
}

// markPaid records a stored invoice known only by hash and expiry.
func (m *Machine) markPaid(hash domain.PaymentHash, expiry time.Time) {
	e := m.lookup(hash)
	if e != nil && e.settled != nil {
		return
	}
	e = m.getOrCreate(hash, expiry)
	e.settled = paidByHashOnly
}

// MarkPaid is a paid invoice learnt outside the machine's own settlements
// (tests, and the simulation's stand-in for many other paid invoices).
func (m *Machine) MarkPaid(hash domain.PaymentHash, expiry time.Time) { m.markPaid(hash, expiry) }

// pruneShard forgets what can no longer matter in one shard: entries of
// expired invoices that hold no set and no pending circuit, and, beyond
// the shard's part of MaxPaidInMemory, the paid marks of the invoices that
// expire first (the store refuses a second settlement of those, and
// decisions on their hashes ask it: docs/design.md, "Memory").
func (m *Machine) pruneShard(i int, now time.Time) {
	sh := m.shards[i]
	perShard := max(m.cfg.MaxPaidInMemory/numShards, 1)
	var paid []*entry
	for h, e := range sh {
		if e.set != nil || (e.settled != nil && len(e.settled.pending) > 0) || len(e.recordings()) > 0 {
			continue
		}
		if !now.Before(e.expiry) {
			delete(sh, h)
			continue
		}
		if e.isPaidOnly() {
			paid = append(paid, e)
		}
	}
	if over := len(paid) - perShard; over > 0 {
		slices.SortFunc(paid, func(a, b *entry) int {
			if c := a.expiry.Compare(b.expiry); c != 0 {
				return c
			}
			return slices.Compare(a.hash[:], b.hash[:])
		})
		for _, e := range paid[:over] {
			delete(sh, e.hash)
		}
		if t := paid[over-1].expiry; t.After(m.evictedUntil) {
			m.evictedUntil = t
		}
	}
}

// mayBeEvicted reports whether hash may be paid although memory holds no
// paid mark for it: its mark may have been dropped beyond MaxPaidInMemory.
// Only then does a decision on it need the store (review scenario 4).
func (m *Machine) mayBeEvicted(hash domain.PaymentHash) bool {
	if m.evictedUntil.IsZero() {
		return false
	}
	e := m.lookup(hash)
	switch {
	case e == nil:
		return true
	case e.settled != nil:
		return false
	}
	return !e.expiry.After(m.evictedUntil)
}

// Pending lists a node's circuits whose final outcome lnmux waits for:
// held in sets, in settlements being written and in committed ones. The
// node's adapter looks each up in lnd whenever it (re)subscribes to final
// events, as lnd sends each event once, to whoever listens then (I3).
func (m *Machine) Pending(node domain.NodeKey) []domain.CircuitKey {
	var out []domain.CircuitKey
	for c := range m.index {
		if c.Node == node {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, domain.CircuitKey.Compare)
	return out
}

// AcceptedSets lists the sets waiting for a decision, in hash order.
func (m *Machine) AcceptedSets() []ports.AcceptedEvent {
	var out []ports.AcceptedEvent
	for i := range m.shards {
		for hash, e := range m.shards[i] {
			if e.set != nil && e.set.htlcs.State() == domain.SetAccepted {
				out = append(out, ports.AcceptedEvent{Hash: hash, SetID: e.set.htlcs.ID(), Amount: e.set.htlcs.Sum()})
			}
		}
	}
	slices.SortFunc(out, func(a, b ports.AcceptedEvent) int { return slices.Compare(a.Hash[:], b.Hash[:]) })
	return out
}

// Status is what memory says of a hash: an accepted set waiting for a
// decision; false otherwise (collecting looks open from outside, and the
// stored states are the store's to tell).
func (m *Machine) Status(hash domain.PaymentHash) (ports.InvoiceUpdate, bool) {
	e := m.lookup(hash)
	if e == nil || e.set == nil {
		return ports.InvoiceUpdate{}, false
	}
	if st := e.set.htlcs.State().InvoiceStatus(); st == domain.StatusAccepted {
		return ports.InvoiceUpdate{Hash: hash, Status: st, SetID: e.set.htlcs.ID()}, true
	}
	return ports.InvoiceUpdate{}, false
}

// SetView is a set as memory holds it, for checks from outside.
type SetView struct {
	State    domain.SetState
	ID       domain.SetID
	Circuits []domain.CircuitKey
	// AutoFail are the parts' auto-fail heights, by circuit order.
	AutoFail []uint32
}

// Set returns the set of hash in memory, if any.
func (m *Machine) Set(hash domain.PaymentHash) (SetView, bool) {
	e := m.lookup(hash)
	if e == nil || e.set == nil {
		return SetView{}, false
	}
	v := SetView{State: e.set.htlcs.State(), ID: e.set.htlcs.ID()}
	for _, h := range e.set.held {
		v.Circuits = append(v.Circuits, h.circuit)
		v.AutoFail = append(v.AutoFail, h.autoFail)
	}
	return v, true
}

// Sets calls f for every set in memory.
func (m *Machine) Sets(f func(domain.PaymentHash, SetView)) {
	for i := range m.shards {
		for hash := range m.shards[i] {
			if v, ok := m.Set(hash); ok {
				f(hash, v)
			}
		}
	}
}

// Has reports whether memory holds anything for hash.
func (m *Machine) Has(hash domain.PaymentHash) bool { return m.lookup(hash) != nil }

// Counts are sizes, for gauges and tests.
type Counts struct {
	Entries, Sets, Pending, PaidOnly, Failed int
	// Indexed counts the circuits whose final outcome lnmux waits for.
	Indexed int
	Timers  int
}

// Counts walks the memory (O(entries)).
func (m *Machine) Counts() Counts {
	var c Counts
	for i := range m.shards {
		c.Entries += len(m.shards[i])
		for _, e := range m.shards[i] {
			if e.set != nil {
				c.Sets++
			}
			c.Failed += len(e.failed)
			if e.settled != nil {
				c.Pending += len(e.settled.pending)
			}
			if e.isPaidOnly() {
				c.PaidOnly++
			}
		}
	}
	c.Indexed = len(m.index)
	c.Timers = len(m.timers)
	return c
}

// Paid reports whether memory marks hash as paid.
func (m *Machine) Paid(hash domain.PaymentHash) bool {
	e := m.lookup(hash)
	return e != nil && e.settled != nil
}

// SetLookup is what memory holds of a hash's set, for LookupInvoice.
type SetLookup struct {
	State               domain.SetState
	SetID               domain.SetID
	Amount, Total, Held domain.Msat
	Parts               int
	// Deadline is when an accepted set expires without a decision.
	Deadline time.Time
}

// Lookup returns the set being collected, decided or written for hash, if
// any. Cancelled and expired sets are gone (the invoice is open again); a
// committed one is the store's.
func (m *Machine) Lookup(hash domain.PaymentHash) (SetLookup, bool) {
	e := m.lookup(hash)
	if e == nil || e.set == nil {
		return SetLookup{}, false
	}
	s := e.set.htlcs
	l := SetLookup{State: s.State(), Amount: s.Meta.Amount, Total: s.Total, Held: s.Sum(), Parts: s.Len()}
	switch l.State { //nolint:exhaustive // the other states are not in memory for long: reported as not there
	case domain.SetCollecting:
	case domain.SetAccepted:
		l.SetID, l.Deadline = s.ID(), e.set.acceptDeadline
	case domain.SetSettling:
		l.SetID = s.ID()
	default:
		return SetLookup{}, false
	}
	return l, true
}
