package app

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// ledger is the one owner of lnmux's in-memory payment state: for every
// payment hash it knows, the set being collected or decided, the settlement
// in flight, the circuits of a committed settlement that lnd has not
// finalised, the circuits lnmux failed and must fail again when lnd re-offers
// them, and whether the hash is paid.
//
// Every method takes the hash's shard lock, decides on what it sees, updates
// every index in the same critical section and returns what must be done
// outside the lock (answers to send, events to publish, a write to start).
// Nothing under the lock does I/O. See docs/design.md, "The ledger".
type ledger struct {
	shards [numShards]ledgerShard
	// index names the hash of every circuit whose final outcome in lnd
	// matters to lnmux: lnd's final events and lookups name only the
	// circuit (docs/design.md, "The ledger").
	index circuitIndex
	// maxPaid bounds how many paid hashes without pending circuits are
	// kept; older ones are answered by the store at settle time.
	maxPaid int
	// evictedUntil is the latest expiry (unix nanos) of a paid mark
	// dropped beyond maxPaid: a hash of an invoice expiring no later may
	// be paid although memory does not say so.
	evictedUntil atomic.Int64
}

// circuitIndex maps each circuit that is held in a set, part of a
// settlement being written, or part of a committed settlement lnd has not
// finalised, to its payment hash. One circuit keeps one entry from the
// moment it joins a set until lnd's final word on it is recorded or lnmux
// fails it, so a final event finds it whatever the set went through
// meanwhile (the commit of its settlement does not move it). Entries change
// only with the hash's shard lock held; an index lock is never held while
// a shard lock is taken.
type circuitIndex struct {
	shards [numShards]circuitShard
}

type circuitShard struct {
	mu sync.RWMutex
	m  map[domain.CircuitKey]domain.PaymentHash
}

func (x *circuitIndex) shard(c domain.CircuitKey) *circuitShard {
	return &x.shards[(c.HTLC^c.Chan^uint64(c.Node[32]))%numShards]
}

func (x *circuitIndex) add(c domain.CircuitKey, h domain.PaymentHash) {
	s := x.shard(c)
	s.mu.Lock()
	s.m[c] = h
	s.mu.Unlock()
}

func (x *circuitIndex) remove(c domain.CircuitKey) {
	s := x.shard(c)
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (x *circuitIndex) get(c domain.CircuitKey) (domain.PaymentHash, bool) {
	s := x.shard(c)
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, ok := s.m[c]
	return h, ok
}

func (x *circuitIndex) len() int {
	n := 0
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

type ledgerShard struct {
	mu      sync.Mutex
	entries map[domain.PaymentHash]*entry
}

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
	// cancelled lists the ids of cancelled sets, for idempotent cancels.
	cancelled []domain.SetID
	// lost lists the ids of accepted sets of which lnd failed a part: they
	// can no longer be settled (the set collects again under a new id).
	lost []domain.SetID
}

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

// setEntry is an in-memory HTLC set with what the application keeps beside
// the domain state: timers, the means to answer each HTLC and the
// settlement in flight.
type setEntry struct {
	htlcs *domain.HTLCSet
	// held lists the set's HTLCs with the means to answer them. A slice,
	// not a map: sets have few parts, and a Go map's first group alone
	// costs more than a held HTLC (docs/benchmarks.md, "Memory").
	held           []*heldHTLC
	acceptTimer    ports.Timer
	acceptDeadline time.Time
	// ticket is the settlement in flight while the set is Settling.
	ticket *settleTicket
}

// heldHTLC is what a set keeps beside the domain's copy of the HTLC: only
// what answering it needs.
type heldHTLC struct {
	htlc heldCircuit
	// onion keeps only what an encrypted failure needs (the ephemeral key);
	// the payload was checked and the onion packet itself is not kept.
	onion decodedOnion
	timer ports.Timer
}

// heldCircuit names a held HTLC and when lnd stops holding it.
type heldCircuit struct {
	Circuit        domain.CircuitKey
	AutoFailHeight uint32
}

// heldOf returns the held HTLC of circuit c, or nil.
func (se *setEntry) heldOf(c domain.CircuitKey) *heldHTLC {
	for _, h := range se.held {
		if h.htlc.Circuit == c {
			return h
		}
	}
	return nil
}

// removeHeld removes and returns the held HTLC of circuit c, or nil.
func (se *setEntry) removeHeld(c domain.CircuitKey) *heldHTLC {
	for i, h := range se.held {
		if h.htlc.Circuit == c {
			se.held = slices.Delete(se.held, i, i+1)
			return h
		}
	}
	return nil
}

// settleTicket is one settlement attempt of one set. Every SettleInvoice call
// for the set while it is in flight waits on the same ticket.
type settleTicket struct {
	hash  domain.PaymentHash
	setID domain.SetID
	inv   domain.Invoice
	done  chan struct{}
	err   error // valid once done is closed
	// unknown is set while the outcome of a failed write is not known.
	unknown bool
	// attempts counts the store writes tried.
	attempts int
	// early holds lnd's final resolutions of the set's HTLCs that arrived
	// before the commit was known; they are applied once it is.
	early []ports.FinalResolution
	// ctx carries the settlement's trace span; endTrace ends it.
	ctx      context.Context
	endTrace func(error)
}

func newSettleTicket(inv domain.Invoice) *settleTicket {
	return &settleTicket{hash: inv.Hash, setID: inv.SetID, inv: inv, done: make(chan struct{}), ctx: context.Background()}
}

// doneTicket is a ticket that has already succeeded.
func doneTicket() *settleTicket {
	t := &settleTicket{done: make(chan struct{})}
	close(t.done)
	return t
}

// answer is a resolution to send to a node once the lock is released. Fail
// answers are encrypted outside the lock too.
type answer struct {
	hash     domain.PaymentHash
	circuit  domain.CircuitKey
	action   ports.Action
	preimage domain.Preimage
	reason   domain.FailureReason
	onion    decodedOnion
	fc       domain.FailureContext
}

// effects is what a ledger decision asks the multiplexer to do.
type effects struct {
	answers  []answer
	accepted []ports.AcceptedEvent
	// acceptedParts is the number of HTLCs of the accepted set.
	acceptedParts int
	updates       []ports.InvoiceUpdate
	// autoSettle names a set to settle at once (auto-settle mode).
	autoSettle *ports.AcceptedEvent
	// held counts HTLCs that joined an incomplete set.
	held int
	// finals are lnd's final resolutions to record now (they arrived
	// while the settlement was being written).
	finals []ports.FinalResolution
	log    []logLine
}

type logLine struct {
	msg   string
	attrs []any
}

func (e *effects) logf(msg string, attrs ...any) { e.log = append(e.log, logLine{msg, attrs}) }

func (e *effects) fail(h domain.HTLC, held *heldHTLC, reason domain.FailureReason, height uint32) {
	a := answer{hash: h.Hash, circuit: h.Circuit, action: ports.ActionFail, reason: reason,
		fc: domain.FailureContext{Amount: h.Amount, Expiry: h.Expiry, Height: height}}
	if held != nil {
		a.onion = held.onion
	}
	e.answers = append(e.answers, a)
}

func newLedger(maxPaid int) *ledger {
	l := &ledger{maxPaid: maxPaid}
	for i := range l.shards {
		l.shards[i].entries = make(map[domain.PaymentHash]*entry)
		l.index.shards[i].m = make(map[domain.CircuitKey]domain.PaymentHash)
	}
	return l
}

func (l *ledger) shard(h domain.PaymentHash) *ledgerShard { return &l.shards[h[0]%numShards] }

// lock takes the hash's shard lock and returns the shard and the hash's
// entry (nil if none). The caller unlocks sh.mu, after sh.dropIfEmpty(e) if it
// changed e.
func (l *ledger) lock(h domain.PaymentHash) (*ledgerShard, *entry) {
	sh := l.shard(h)
	sh.mu.Lock()
	return sh, sh.entries[h]
}

// getOrCreate returns the hash's entry, creating it; sh.mu is held.
func (sh *ledgerShard) getOrCreate(h domain.PaymentHash, expiry time.Time) *entry {
	e := sh.entries[h]
	if e == nil {
		e = &entry{hash: h, expiry: expiry}
		sh.entries[h] = e
	}
	if expiry.After(e.expiry) {
		e.expiry = expiry
	}
	return e
}

// isPaidOnly reports an entry that only marks its hash as paid.
func (sh *ledgerShard) isPaidOnly(e *entry) bool {
	return e.set == nil && e.settled != nil && len(e.settled.pending) == 0 && len(e.failed) == 0 &&
		len(e.cancelled) == 0 && len(e.lost) == 0
}

// dropIfEmpty is called with sh.mu held after e changed: it drops an entry
// that holds nothing.
func (sh *ledgerShard) dropIfEmpty(e *entry) {
	if e.set == nil && e.settled == nil && len(e.failed) == 0 && len(e.cancelled) == 0 && len(e.lost) == 0 {
		delete(sh.entries, e.hash)
	}
}

// replayKind is what the HTLC path knows of a circuit before decoding it.
type replayKind uint8

const (
	// circuitNew: never seen, or seen and forgotten: decode and check it.
	circuitNew replayKind = iota
	// circuitSettle: part of a committed settlement: settle it again.
	circuitSettle
	// circuitHeld: part of a set in memory: it is still held, do nothing.
	circuitHeld
	// circuitRefail: lnmux failed it before: fail it again.
	circuitRefail
)

// classify looks a re-offered circuit up, without changing anything.
func (l *ledger) classify(hash domain.PaymentHash, c domain.CircuitKey) (replayKind, domain.Preimage, domain.FailureReason) {
	sh, e := l.lock(hash)
	defer sh.mu.Unlock()
	return e.classify(c)
}

func (e *entry) classify(c domain.CircuitKey) (replayKind, domain.Preimage, domain.FailureReason) {
	if e == nil {
		return circuitNew, domain.Preimage{}, domain.FailNone
	}
	if e.settled != nil {
		if _, ok := e.settled.pending[c]; ok {
			return circuitSettle, e.settled.preimage, domain.FailNone
		}
	}
	if e.set != nil && e.set.htlcs.Has(c) {
		return circuitHeld, domain.Preimage{}, domain.FailNone
	}
	if f, ok := e.failed[c]; ok {
		return circuitRefail, domain.Preimage{}, f.reason
	}
	return circuitNew, domain.Preimage{}, domain.FailNone
}

// addParams is what add needs beyond the checked HTLC.
type addParams struct {
	onion  decodedOnion
	height uint32
	now    time.Time
	// mayHoldNew reports whether a new set may be started.
	mayHoldNew func() bool
	// holdTimeout and acceptTimeout start the set's timers.
	holdTimeout   time.Duration
	acceptTimeout time.Duration
	autoSettle    bool
	clock         ports.Clock
	onHold        func(domain.PaymentHash, domain.CircuitKey)
	onAccept      func(domain.PaymentHash, *setEntry)
}

// add offers a checked HTLC to its invoice's set. The circuit is classified
// again under the same lock: nothing can change between the check and the
// decision.
func (l *ledger) add(acc domain.Accepted, p addParams) effects {
	var fx effects
	h := acc.HTLC
	sh, e := l.lock(h.Hash)
	defer sh.mu.Unlock()

	switch kind, preimage, reason := e.classify(h.Circuit); kind { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case circuitSettle:
		fx.answers = append(fx.answers, answer{hash: h.Hash, circuit: h.Circuit, action: ports.ActionSettle, preimage: preimage})
		return fx
	case circuitHeld:
		return fx
	case circuitRefail:
		fx.answers = append(fx.answers, answer{hash: h.Hash, circuit: h.Circuit, action: ports.ActionFail, reason: reason,
			onion: p.onion, fc: domain.FailureContext{Amount: h.Amount, Expiry: h.Expiry, Height: p.height}})
		return fx
	}
	held := &heldHTLC{htlc: heldCircuit{Circuit: h.Circuit, AutoFailHeight: h.AutoFailHeight},
		onion: decodedOnion{ephemeralKey: p.onion.ephemeralKey, proc: p.onion.proc}}
	if e != nil && e.settled != nil {
		fx.fail(h, held, domain.FailAlreadyPaid, p.height)
		return fx
	}
	if e == nil || e.set == nil {
		// With no one to decide and no auto-settle, holding a new set only
		// delays the payer's retry elsewhere (I4).
		if !p.mayHoldNew() {
			fx.fail(h, held, domain.FailNotAccepting, p.height)
			return fx
		}
		e = sh.getOrCreate(h.Hash, acc.Meta.Expiry)
		e.set = &setEntry{htlcs: domain.NewHTLCSet(acc)}
	}
	se := e.set
	outcome, reason := se.htlcs.Add(h, p.now)
	switch outcome { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case domain.AddReplay:
		return fx
	case domain.AddRejected:
		if se.htlcs.Len() == 0 && se.htlcs.State() == domain.SetCollecting {
			e.set = nil
			sh.dropIfEmpty(e)
		}
		fx.fail(h, held, reason, p.height)
		return fx
	}
	se.held = append(se.held, held)
	l.index.add(h.Circuit, h.Hash)
	if outcome == domain.AddHeld {
		hold := min(p.holdTimeout, acc.Meta.Expiry.Sub(p.now))
		// The closure keeps only what it needs, not p (the timer lives
		// as long as the HTLC is held).
		hash, c, onHold := h.Hash, h.Circuit, p.onHold
		held.timer = p.clock.AfterFunc(hold, func() { onHold(hash, c) })
		fx.held++
		fx.logf("htlc held", "hash", h.Hash, "circuit", h.Circuit, "amount", h.Amount,
			"set_sum", se.htlcs.Sum(), "set_total", se.htlcs.Total)
		return fx
	}
	// Complete: the parts wait for a decision now, not for more parts.
	for _, hh := range se.held {
		if hh.timer != nil {
			hh.timer.Stop()
			hh.timer = nil
		}
	}
	se.acceptDeadline = p.now.Add(p.acceptTimeout)
	hash, onAccept := h.Hash, p.onAccept
	se.acceptTimer = p.clock.AfterFunc(p.acceptTimeout, func() { onAccept(hash, se) })
	ev := ports.AcceptedEvent{Hash: h.Hash, SetID: se.htlcs.ID(), Amount: se.htlcs.Sum()}
	fx.accepted = append(fx.accepted, ev)
	fx.acceptedParts = len(se.held)
	fx.updates = append(fx.updates, ports.InvoiceUpdate{Hash: h.Hash, Status: se.htlcs.State().InvoiceStatus(), SetID: ev.SetID})
	if p.autoSettle {
		fx.autoSettle = &ev
	}
	fx.logf("invoice accepted", "hash", h.Hash, "set_id", ev.SetID, "amount", ev.Amount, "htlcs", len(se.held))
	return fx
}

// holdTimeout fails one part of a set that did not complete in time.
func (l *ledger) holdTimeout(hash domain.PaymentHash, c domain.CircuitKey, height func(domain.NodeKey) uint32) effects {
	var fx effects
	sh, e := l.lock(hash)
	defer sh.mu.Unlock()
	if e == nil || e.set == nil {
		return fx
	}
	se := e.set
	h, timedOut := se.htlcs.Timeout(c)
	if !timedOut {
		return fx
	}
	held := se.removeHeld(c)
	l.index.remove(c)
	e.remember(h, domain.FailMPPTimeout)
	if se.htlcs.Len() == 0 {
		e.set = nil
	}
	sh.dropIfEmpty(e)
	fx.logf("mpp timeout", "hash", hash, "circuit", c)
	fx.fail(h, held, domain.FailMPPTimeout, height(c.Node))
	return fx
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

// cancelRequest says which set to cancel.
type cancelRequest struct {
	hash  domain.PaymentHash
	setID domain.SetID // zero: whatever set is in memory
	// only, if set, restricts the cancel to this very set entry (timers:
	// a later set of the same HTLCs has the same id).
	only   *setEntry
	reason domain.FailureReason
	// expire: no one decided in time (a timer, not a CancelInvoice); the
	// set ends as expired rather than cancelled.
	expire bool
}

// errNotInMemory tells the caller to ask the store.
var errNotInMemory = fmt.Errorf("%w: not in memory", domain.ErrInvoiceNotFound)

// cancel fails every HTLC of a set that is not being settled. The invoice
// stays payable until it expires; the set's circuits are failed again if
// lnd re-offers them.
func (l *ledger) cancel(r cancelRequest, height func(domain.NodeKey) uint32) (effects, error) {
	var fx effects
	sh, e := l.lock(r.hash)
	defer sh.mu.Unlock()
	if e == nil {
		return fx, errNotInMemory
	}
	zero := r.setID == domain.SetID{}
	se := e.set
	if r.only != nil && se != r.only {
		return fx, domain.ErrSetNotFound
	}
	switch {
	case e.settled != nil && e.settled.setID == (domain.SetID{}) && !slices.Contains(e.cancelled, r.setID):
		return fx, errNotInMemory
	case e.settled != nil && (zero || e.settled.setID == r.setID):
		return fx, domain.ErrSettleRequested
	case se != nil && (zero || se.htlcs.ID() == r.setID):
		if se.htlcs.State() == domain.SetSettling {
			// Being committed, or its outcome unknown: untouchable (I7).
			return fx, domain.ErrSettleRequested
		}
	case !zero && slices.Contains(e.cancelled, r.setID):
		return fx, nil
	case se == nil && e.settled == nil && len(e.cancelled) > 0 && zero:
		return fx, nil
	default:
		return fx, domain.ErrSetNotFound
	}
	end := se.htlcs.Cancel
	if r.expire {
		end = se.htlcs.Expire
	}
	htlcs, err := end()
	if err != nil {
		return fx, err
	}
	se.stopTimers()
	for _, h := range htlcs {
		l.index.remove(h.Circuit)
		e.remember(h, r.reason)
		fx.fail(h, se.heldOf(h.Circuit), r.reason, height(h.Circuit.Node))
	}
	id := se.htlcs.ID()
	if id != (domain.SetID{}) {
		e.cancelled = append(e.cancelled, id)
	}
	e.set = nil
	sh.dropIfEmpty(e)
	fx.updates = append(fx.updates, ports.InvoiceUpdate{Hash: r.hash, Status: se.htlcs.State().InvoiceStatus(), SetID: id})
	fx.logf("set cancelled", "hash", r.hash, "set_id", id, "reason", r.reason, "htlcs", len(htlcs))
	return fx, nil
}

func (se *setEntry) stopTimers() {
	if se.acceptTimer != nil {
		se.acceptTimer.Stop()
	}
	for _, h := range se.held {
		if h.timer != nil {
			h.timer.Stop()
		}
	}
}

// beginSettle moves an accepted set into Settling and returns the ticket to
// wait on; start reports whether the caller must run the write. A set
// already committed returns a done ticket. errNotInMemory sends the caller to
// the store.
func (l *ledger) beginSettle(hash domain.PaymentHash, setID domain.SetID, now time.Time) (t *settleTicket, start bool, err error) {
	sh, e := l.lock(hash)
	defer sh.mu.Unlock()
	if e == nil {
		return nil, false, errNotInMemory
	}
	if e.settled != nil {
		switch e.settled.setID {
		case domain.SetID{}:
			return nil, false, errNotInMemory
		case setID:
			return doneTicket(), false, nil
		}
		return nil, false, fmt.Errorf("%w: invoice was settled with another set", domain.ErrSetNotFound)
	}
	se := e.set
	if se == nil || se.htlcs.ID() != setID {
		if slices.Contains(e.cancelled, setID) {
			return nil, false, fmt.Errorf("%w: set was cancelled", domain.ErrSetNotFound)
		}
		return nil, false, domain.ErrSetNotFound
	}
	if se.htlcs.State() == domain.SetSettling {
		return se.ticket, false, nil
	}
	if err := se.htlcs.BeginSettle(setID); err != nil {
		return nil, false, err
	}
	inv, err := domain.NewSettleRequest(se.htlcs, now)
	if err != nil {
		se.htlcs.AbortSettle()
		return nil, false, err
	}
	if se.acceptTimer != nil {
		se.acceptTimer.Stop()
	}
	se.ticket = newSettleTicket(inv)
	return se.ticket, true, nil
}

// commitSettle records that the ticket's settlement is durable: the set's
// circuits become pending settles, the hash is paid, and every HTLC is
// settled now (I1, I2). stored is what the store holds.
func (l *ledger) commitSettle(t *settleTicket, stored domain.Invoice) effects {
	var fx effects
	sh, e := l.lock(t.hash)
	defer sh.mu.Unlock()
	if e == nil {
		e = sh.getOrCreate(t.hash, stored.Expiry)
	}
	if e.set != nil && e.set.ticket == t {
		if err := e.set.htlcs.CommitSettle(); err != nil {
			// A ticket's set is Settling until its write ends.
			panic(fmt.Sprintf("ledger: commit of a set in state %v: %v", e.set.htlcs.State(), err))
		}
		e.set.stopTimers()
		e.set = nil
	}
	fx.finals = t.early
	l.markSettled(e, stored)
	sh.dropIfEmpty(e)
	for _, h := range stored.HTLCs {
		if !h.Status.IsFinal() {
			fx.answers = append(fx.answers, answer{hash: t.hash, circuit: h.Circuit, action: ports.ActionSettle, preimage: stored.Preimage})
		}
	}
	fx.updates = append(fx.updates, ports.InvoiceUpdate{Hash: t.hash, Status: domain.StatusSettleRequested, SetID: stored.SetID})
	fx.logf("settle requested", "hash", t.hash, "set_id", stored.SetID, "htlcs", len(stored.HTLCs))
	return fx
}

// markSettled sets e.settled from a stored invoice; sh.mu is held.
func (l *ledger) markSettled(e *entry, inv domain.Invoice) {
	st := &settledState{setID: inv.SetID, preimage: inv.Preimage}
	if inv.Status == domain.StatusSettleRequested {
		st.pending = make(map[domain.CircuitKey]struct{}, len(inv.HTLCs))
		for _, h := range inv.HTLCs {
			if !h.Status.IsFinal() {
				st.pending[h.Circuit] = struct{}{}
				l.index.add(h.Circuit, inv.Hash)
			}
		}
	}
	e.settled = st
	if inv.Expiry.After(e.expiry) {
		e.expiry = inv.Expiry
	}
}

// abortSettle ends a settlement that the store positively refused: the set
// is cancelled back (the hash is paid by another set, or lnmux must stop).
func (l *ledger) abortSettle(t *settleTicket, reason domain.FailureReason, height func(domain.NodeKey) uint32) effects {
	var fx effects
	sh, e := l.lock(t.hash)
	defer sh.mu.Unlock()
	if e == nil || e.set == nil || e.set.ticket != t {
		return fx
	}
	se := e.set
	se.htlcs.AbortSettle()
	htlcs, err := se.htlcs.Cancel()
	if err != nil {
		// AbortSettle returned the set to Accepted, which Cancel ends.
		panic(fmt.Sprintf("ledger: cancel after abort: %v", err))
	}
	se.stopTimers()
	for _, h := range htlcs {
		l.index.remove(h.Circuit)
		e.remember(h, reason)
		fx.fail(h, se.heldOf(h.Circuit), reason, height(h.Circuit.Node))
	}
	e.cancelled = append(e.cancelled, se.htlcs.ID())
	e.set = nil
	if e.settled == nil {
		// Paid by a set this process does not know: the store has it.
		e.settled = paidByHashOnly
	}
	sh.dropIfEmpty(e)
	fx.updates = append(fx.updates, ports.InvoiceUpdate{Hash: t.hash, Status: se.htlcs.State().InvoiceStatus(), SetID: t.setID})
	fx.logf("settlement refused by the store, set cancelled", "hash", t.hash, "set_id", t.setID, "reason", reason)
	return fx
}

// recover loads a stored invoice at start.
func (l *ledger) recover(inv domain.Invoice) {
	sh, e := l.lock(inv.Hash)
	defer sh.mu.Unlock()
	if e == nil {
		e = sh.getOrCreate(inv.Hash, inv.Expiry)
	}
	l.markSettled(e, inv)
	sh.dropIfEmpty(e)
}

// markPaid records a stored invoice known only by hash and expiry.
func (l *ledger) markPaid(hash domain.PaymentHash, expiry time.Time) {
	sh, e := l.lock(hash)
	defer sh.mu.Unlock()
	if e != nil && e.settled != nil {
		return
	}
	if e == nil {
		e = sh.getOrCreate(hash, expiry)
	}
	e.settled = paidByHashOnly
	sh.dropIfEmpty(e)
}

// finalKind is what lnd's final word on a circuit means to the ledger.
type finalKind uint8

const (
	// finalIgnored: nothing lnmux waits for (an ordinary forward, a
	// circuit lnmux failed itself, a repeat).
	finalIgnored finalKind = iota
	// finalRecord: a circuit of a committed settlement: record it.
	finalRecord
	// finalKept: a circuit of a settlement being written: kept with the
	// ticket and recorded once the commit is known.
	finalKept
	// finalLost: lnd failed a held part of a set that is not being
	// settled: the part left the set.
	finalLost
)

// rearmFunc starts the hold timer of a part of a set that collects again.
type rearmFunc func(hash domain.PaymentHash, c domain.CircuitKey, expiry time.Time) ports.Timer

// final classifies lnd's final word on r.Circuit, whose hash the index
// gave, and applies what it can in the same critical section: the circuit
// cannot move between the lookup and the decision (review scenario 1 in
// docs/design.md). It never loses a final lnmux waits for: a committed
// circuit is recorded, a settling one kept with its ticket, a held one
// leaves its set.
func (l *ledger) final(hash domain.PaymentHash, r ports.FinalResolution, rearm rearmFunc) (finalKind, effects) {
	var fx effects
	sh, e := l.lock(hash)
	defer sh.mu.Unlock()
	if e == nil {
		return finalIgnored, fx
	}
	if e.settled != nil {
		if _, ok := e.settled.pending[r.Circuit]; ok {
			return finalRecord, fx
		}
	}
	se := e.set
	if se == nil || !se.htlcs.Has(r.Circuit) {
		return finalIgnored, fx
	}
	switch st := se.htlcs.State(); st {
	case domain.SetSettling:
		se.ticket.early = append(se.ticket.early, r)
		fx.logf("final htlc resolution before its settlement is committed", "hash", hash, "circuit", r.Circuit, "settled", r.Settled)
		return finalKept, fx
	case domain.SetCollecting, domain.SetAccepted:
		if r.Settled {
			// No preimage of a set not yet committed ever left lnmux (I1):
			// another process settled it. Nothing here can be right.
			fx.logf("lnd reports a held htlc settled that lnmux never settled", "hash", hash, "circuit", r.Circuit)
			return finalIgnored, fx
		}
		id := se.htlcs.ID()
		se.htlcs.Lost(r.Circuit)
		if held := se.removeHeld(r.Circuit); held != nil && held.timer != nil {
			held.timer.Stop()
		}
		l.index.remove(r.Circuit)
		if st == domain.SetAccepted {
			// Incomplete again: the parts wait for the payer's retry of
			// the failed one, each under a hold timer, not for a decision.
			if se.acceptTimer != nil {
				se.acceptTimer.Stop()
				se.acceptTimer = nil
			}
			se.acceptDeadline = time.Time{}
			for _, hh := range se.held {
				hh.timer = rearm(hash, hh.htlc.Circuit, se.htlcs.Meta.Expiry)
			}
			e.lost = append(e.lost, id)
			// Shown as expired: lnd's time for the part ran out (its
			// auto-fail height) before anyone settled the set.
			fx.updates = append(fx.updates, ports.InvoiceUpdate{Hash: hash, Status: domain.StatusExpired, SetID: id})
		}
		if se.htlcs.Len() == 0 {
			e.set = nil
		}
		sh.dropIfEmpty(e)
		fx.logf("lnd failed a held htlc: it left its set", "hash", hash, "circuit", r.Circuit, "set_id", id,
			"was_accepted", st == domain.SetAccepted)
		return finalLost, fx
	case domain.SetSettleRequested, domain.SetCancelled, domain.SetExpired:
	}
	return finalIgnored, fx
}

// finalRecorded removes a circuit whose final resolution is stored.
func (l *ledger) finalRecorded(hash domain.PaymentHash, c domain.CircuitKey) {
	sh, e := l.lock(hash)
	defer sh.mu.Unlock()
	l.index.remove(c)
	if e == nil || e.settled == nil {
		return
	}
	delete(e.settled.pending, c)
	if e.settled.pending != nil && len(e.settled.pending) == 0 {
		// A map keeps its buckets when emptied; the paid mark outlives it
		// by the invoice's expiry.
		e.settled.pending = nil
	}
	sh.dropIfEmpty(e)
}

// pendingFor lists a node's circuits whose final outcome lnmux waits for:
// held in sets, in settlements being written and in committed ones. The
// node's adapter looks each up in lnd whenever it (re)subscribes to final
// events, as lnd sends each event once, to whoever listens then (I3).
func (l *ledger) pendingFor(node domain.NodeKey) []domain.CircuitKey {
	var out []domain.CircuitKey
	for i := range l.index.shards {
		s := &l.index.shards[i]
		s.mu.RLock()
		for c := range s.m {
			if c.Node == node {
				out = append(out, c)
			}
		}
		s.mu.RUnlock()
	}
	slices.SortFunc(out, domain.CircuitKey.Compare)
	return out
}

// victims lists the sets holding an HTLC of node within margin blocks of its
// auto-fail height, and forgets failed circuits lnd can no longer re-offer.
func (l *ledger) nearAutoFail(node domain.NodeKey, height, margin uint32) []cancelRequest {
	var out []cancelRequest
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for hash, e := range sh.entries {
			changed := false
			for c, f := range e.failed {
				if c.Node == node && height > f.until {
					delete(e.failed, c)
					changed = true
				}
			}
			if se := e.set; se != nil && se.htlcs.State() != domain.SetSettling {
				for _, h := range se.held {
					if h.htlc.Circuit.Node == node && h.htlc.AutoFailHeight != 0 && height+margin >= h.htlc.AutoFailHeight {
						out = append(out, cancelRequest{hash: hash, only: se, reason: domain.FailNearAutoFail, expire: true})
						break
					}
				}
			}
			if changed {
				sh.dropIfEmpty(e)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// prune forgets what can no longer matter: entries of expired invoices that
// hold no set and no pending circuit, and, beyond maxPaid, the paid marks
// of the invoices that expire first (the store refuses a second settlement
// of those: see docs/design.md, "Memory").
func (l *ledger) prune(now time.Time) {
	perShard := max(l.maxPaid/numShards, 1)
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		var paid []*entry
		for h, e := range sh.entries {
			if e.set != nil || (e.settled != nil && len(e.settled.pending) > 0) {
				continue
			}
			if !now.Before(e.expiry) {
				delete(sh.entries, h)
				continue
			}
			if sh.isPaidOnly(e) {
				paid = append(paid, e)
			}
		}
		if over := len(paid) - perShard; over > 0 {
			slices.SortFunc(paid, func(a, b *entry) int { return a.expiry.Compare(b.expiry) })
			for _, e := range paid[:over] {
				delete(sh.entries, e.hash)
			}
			l.noteEvicted(paid[over-1].expiry)
		}
		sh.mu.Unlock()
	}
}

// noteEvicted records that paid marks of invoices expiring up to t were
// dropped.
func (l *ledger) noteEvicted(t time.Time) {
	n := t.UnixNano()
	for {
		cur := l.evictedUntil.Load()
		if n <= cur || l.evictedUntil.CompareAndSwap(cur, n) {
			return
		}
	}
}

// mayBeEvicted reports whether hash may be paid although memory holds no
// paid mark for it: its mark may have been dropped beyond maxPaid. Only
// then does a decision on it need the store (review scenario 4).
func (l *ledger) mayBeEvicted(hash domain.PaymentHash) bool {
	until := l.evictedUntil.Load()
	if until == 0 {
		return false
	}
	sh, e := l.lock(hash)
	defer sh.mu.Unlock()
	switch {
	case e == nil:
		return true
	case e.settled != nil:
		return false
	}
	return e.expiry.UnixNano() <= until
}

// paidElsewhere records what the store says of a hash whose paid mark had
// been dropped: it is paid by inv's set. A set of the hash in memory (the
// payer paid again) is failed as already paid, unless its settlement is
// being written: the store refuses that one (ErrConflict) and abortSettle
// fails it.
func (l *ledger) paidElsewhere(inv domain.Invoice, height func(domain.NodeKey) uint32) effects {
	var fx effects
	sh, e := l.lock(inv.Hash)
	defer sh.mu.Unlock()
	if e == nil {
		e = sh.getOrCreate(inv.Hash, inv.Expiry)
	}
	if e.settled == nil || e.settled.setID == (domain.SetID{}) {
		l.markSettled(e, inv)
	}
	if se := e.set; se != nil && se.htlcs.State() != domain.SetSettling {
		htlcs, err := se.htlcs.Cancel()
		if err != nil {
			panic(fmt.Sprintf("ledger: cancel of a set not being settled: %v", err))
		}
		se.stopTimers()
		for _, h := range htlcs {
			l.index.remove(h.Circuit)
			e.remember(h, domain.FailAlreadyPaid)
			fx.fail(h, se.heldOf(h.Circuit), domain.FailAlreadyPaid, height(h.Circuit.Node))
		}
		if id := se.htlcs.ID(); id != (domain.SetID{}) {
			e.cancelled = append(e.cancelled, id)
		}
		e.set = nil
		fx.logf("invoice paid before, its paid mark dropped from memory: new set failed", "hash", inv.Hash,
			"stored_set_id", inv.SetID, "htlcs", len(htlcs))
	}
	sh.dropIfEmpty(e)
	return fx
}

// snapshotAccepted lists the sets waiting for a decision.
func (l *ledger) snapshotAccepted() []ports.AcceptedEvent {
	var out []ports.AcceptedEvent
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for hash, e := range sh.entries {
			if e.set != nil && e.set.htlcs.State() == domain.SetAccepted {
				out = append(out, ports.AcceptedEvent{Hash: hash, SetID: e.set.htlcs.ID(), Amount: e.set.htlcs.Sum()})
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// status is what memory says of a hash, if anything.
func (l *ledger) status(hash domain.PaymentHash) (ports.InvoiceUpdate, bool) {
	sh, e := l.lock(hash)
	defer sh.mu.Unlock()
	if e == nil {
		return ports.InvoiceUpdate{}, false
	}
	if e.set != nil {
		if st := e.set.htlcs.State().InvoiceStatus(); st == domain.StatusAccepted {
			return ports.InvoiceUpdate{Hash: hash, Status: st, SetID: e.set.htlcs.ID()}, true
		}
	}
	// Collecting, cancelled or stored: the caller asks the store for the
	// stored states; a collecting set looks open from outside.
	return ports.InvoiceUpdate{}, false
}

// counts reports sizes for gauges and tests.
type ledgerCounts struct {
	entries, sets, pending, paidOnly, failed int
	// indexed counts the circuits whose final outcome lnmux waits for.
	indexed int
}

func (l *ledger) counts() ledgerCounts {
	var c ledgerCounts
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		c.entries += len(sh.entries)
		for _, e := range sh.entries {
			if e.set != nil {
				c.sets++
			}
			c.failed += len(e.failed)
			if e.settled != nil {
				c.pending += len(e.settled.pending)
			}
			if sh.isPaidOnly(e) {
				c.paidOnly++
			}
		}
		sh.mu.Unlock()
	}
	c.indexed = l.index.len()
	return c
}
