package core

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// ticket is one settlement attempt of one set. Every Settle of the set
// while it is in flight waits on the same ticket and gets its outcome (I6).
type ticket struct {
	hash  domain.PaymentHash
	setID domain.SetID
	inv   domain.Invoice
	// waiters are the requests to reply to when the outcome is known.
	waiters []ReqID
	// attempts counts the store writes tried.
	attempts int
	// early holds lnd's final resolutions of the set's HTLCs that came
	// before the commit was known; they are applied once it is.
	early []ports.FinalResolution
	retry timer
}

// pendingWrite is a write in flight.
type pendingWrite struct {
	t  *ticket
	fw *finalWrite
	ct *cancelTicket
}

// readPurpose is why the store is read.
type readPurpose uint8

const (
	// readSettleStored: a settle of a set memory does not know; a repeat
	// of a committed one succeeds (I6).
	readSettleStored readPurpose = iota + 1
	// readSettleEvicted: as readSettleStored, but memory's own refusal
	// stands if the store knows nothing.
	readSettleEvicted
	// readCancelEvicted: a cancel of a hash whose paid mark may have been
	// dropped: the store says whether it is paid before memory cancels.
	readCancelEvicted
	// readCancelStored: a cancel memory cannot answer.
	readCancelStored
)

type pendingRead struct {
	purpose readPurpose
	req     ReqID
	hash    domain.PaymentHash
	setID   domain.SetID
	// memErr is memory's own answer, for readSettleEvicted.
	memErr    error
	permanent bool
	abandoned bool
}

func (m *Machine) read(p *pendingRead) {
	id := m.op()
	m.reads[id] = p
	m.rd.Reads = append(m.rd.Reads, Read{ID: id, Hash: p.hash})
}

// Settle is the application's decision to settle a set (req 0: the
// machine's own auto-settle). The settlement is written before any
// preimage leaves lnmux (I1); once committed every HTLC of the set is
// settled, now and after every replay, until lnd reports it final (I2).
// Concurrent requests for the same set share one attempt and its outcome
// (I6). A write whose outcome is unknown is retried until the store
// answers, and the set stays untouchable meanwhile (I7).
//
// preimage is the application's: zero for lnmux's own invoices (it may
// also be their preimage), required for an invoice with a caller-supplied
// payment hash. One that does not hash to hash is refused with
// domain.ErrInvalidArgument before anything is read, written or changed
// (docs/design.md, "Caller-supplied payment hashes").
func (m *Machine) Settle(now time.Time, req ReqID, hash domain.PaymentHash, setID domain.SetID, preimage domain.Preimage) {
	if m.role != leading {
		m.reply(req, notReady(m.why))
		return
	}
	if err := domain.CheckSettlePreimage(hash, false, preimage); err != nil {
		m.reply(req, err)
		return
	}
	t, start, err := m.beginSettle(now, hash, setID, preimage)
	switch {
	case errors.Is(err, errNotInMemory):
		m.read(&pendingRead{purpose: readSettleStored, req: req, hash: hash, setID: setID})
		return
	case errors.Is(err, domain.ErrSetNotFound) && m.mayBeEvicted(hash):
		// Memory does not know this set, and the hash's paid mark may
		// have been dropped: the store tells whether this very set was
		// settled before (I6).
		m.read(&pendingRead{purpose: readSettleEvicted, req: req, hash: hash, setID: setID, memErr: err})
		return
	case err != nil:
		m.reply(req, err)
		return
	case t == nil:
		m.reply(req, nil) // committed before
		return
	}
	if req != 0 {
		t.waiters = append(t.waiters, req)
		m.waiting[req] = t
	}
	if start {
		m.writeSettle(t)
	}
}

// beginSettle moves an accepted set into Settling; start reports whether
// the write must begin. A set already committed returns a nil ticket.
func (m *Machine) beginSettle(now time.Time, hash domain.PaymentHash, setID domain.SetID, preimage domain.Preimage) (t *ticket, start bool, err error) {
	e := m.lookup(hash)
	if e == nil {
		return nil, false, errNotInMemory
	}
	if e.tombstoned() {
		return nil, false, fmt.Errorf("%w: invoice cancelled permanently", domain.ErrSetNotFound)
	}
	if e.settled != nil {
		switch e.settled.setID {
		case domain.SetID{}:
			return nil, false, errNotInMemory
		case setID:
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("%w: invoice was settled with another set", domain.ErrSetNotFound)
	}
	se := e.set
	if se == nil || se.htlcs.ID() != setID {
		if slices.Contains(e.cancelledIDs(), setID) {
			return nil, false, fmt.Errorf("%w: set was cancelled", domain.ErrSetNotFound)
		}
		if slices.Contains(e.lostIDs(), setID) {
			return nil, false, fmt.Errorf("%w: lnd failed a part of the set", domain.ErrSetNotFound)
		}
		return nil, false, domain.ErrSetNotFound
	}
	// An external hash's set is settled only with its preimage, checked
	// before the set is touched; a repeat while the write is in flight
	// must bring it too.
	if err := domain.CheckSettlePreimage(hash, se.htlcs.Meta.External, preimage); err != nil {
		return nil, false, err
	}
	if se.htlcs.State() == domain.SetSettling {
		return se.ticket, false, nil
	}
	if err := se.htlcs.BeginSettle(setID); err != nil {
		return nil, false, err
	}
	inv, err := domain.NewSettleRequest(se.htlcs, preimage, now)
	if err != nil {
		se.htlcs.AbortSettle()
		return nil, false, err
	}
	m.disarm(&se.accept)
	se.ticket = &ticket{hash: hash, setID: setID, inv: inv}
	se.ticket.retry.kind, se.ticket.retry.t = timerSettleRetry, se.ticket
	return se.ticket, true, nil
}

func (m *Machine) writeSettle(t *ticket) {
	t.attempts++
	id := m.op()
	m.writes[id] = &pendingWrite{t: t}
	m.rd.Writes = append(m.rd.Writes, Write{ID: id, Kind: WriteSettle, Hash: t.hash, SetID: t.setID, Invoice: t.inv, Attempt: t.attempts})
}

func (m *Machine) retrySettle(t *ticket) {
	if m.role != leading {
		return
	}
	m.writeSettle(t)
}

// Abandon is a caller that stopped waiting for its request; the decision
// itself goes on. A settlement whose write has started is reported as of
// unknown outcome (I7); any other request as abandoned.
func (m *Machine) Abandon(req ReqID) {
	if t, ok := m.waiting[req]; ok {
		delete(m.waiting, req)
		t.waiters = slices.DeleteFunc(t.waiters, func(r ReqID) bool { return r == req })
		// A write is in flight or being retried: whether it committed is
		// not known yet, and the caller must not read its giving up as
		// "not settled".
		m.reply(req, fmt.Errorf("%w: the settlement's outcome is not known yet; it is retried and this call can be repeated", domain.ErrOutcomeUnknown))
		return
	}
	if ct, ok := m.cancelling[req]; ok {
		delete(m.cancelling, req)
		ct.waiters = slices.DeleteFunc(ct.waiters, func(r ReqID) bool { return r == req })
		m.reply(req, fmt.Errorf("%w: the cancel's HTLCs were failed, its record is being stored; repeat the call to learn when it is", domain.ErrOutcomeUnknown))
		return
	}
	for _, r := range m.reads {
		if r.req == req && !r.abandoned {
			r.abandoned = true
			m.reply(req, ErrAbandoned)
			return
		}
	}
}

// WriteDone is the outcome of a write: stored is what the store holds
// after it (a settlement or an updated invoice), err its error. Any error
// but a positive refusal leaves the outcome unknown.
func (m *Machine) WriteDone(now time.Time, id uint64, stored domain.Invoice, err error) {
	w, ok := m.writes[id]
	if !ok {
		return
	}
	delete(m.writes, id)
	if w.t != nil {
		m.settleDone(now, w.t, stored, err)
		return
	}
	if w.ct != nil {
		m.cancelDone(now, w.ct, err)
		return
	}
	m.finalDone(now, w.fw, stored, err)
}

func (m *Machine) settleDone(now time.Time, t *ticket, stored domain.Invoice, err error) {
	if m.role == deposed {
		return // its waiters were told
	}
	switch {
	case err == nil && stored.SetID != t.setID:
		fallthrough // a conflict like ErrConflict
	case errors.Is(err, domain.ErrConflict):
		// Positive: the hash is stored with another set, so this one was
		// not committed and can never be. Its HTLCs pay an invoice paid
		// already.
		m.logf(LevelError, "settle refused: invoice stored with another set", "hash", t.hash, "set_id", t.setID)
		m.abortSettle(t, domain.FailAlreadyPaid)
		m.endTicket(t, fmt.Errorf("%w: invoice was settled with another set", domain.ErrSetNotFound))
		return
	case errors.Is(err, domain.ErrNotLeader):
		// Fenced: nothing was written, and another lnmux leads now. Stop
		// before anything else is answered.
		m.endTicket(t, notReady("leadership lost"))
		m.fenced(err)
		return
	case err != nil:
		d := Backoff(t.attempts)
		m.logf(LevelError, "settle write failed, outcome unknown: retrying", "hash", t.hash,
			"set_id", t.setID, "attempt", t.attempts, "retry_in", d, "err", err)
		m.arm(&t.retry, now.Add(d))
		return
	}
	// Durable: from here on the HTLCs are never failed by lnmux.
	m.rd.Committed = append(m.rd.Committed, SettleEnd{Hash: t.hash, SetID: t.setID})
	m.commitSettle(now, t, stored)
	m.endTicket(t, nil)
}

func (m *Machine) endTicket(t *ticket, err error) {
	for _, req := range t.waiters {
		delete(m.waiting, req)
		m.reply(req, err)
	}
	t.waiters = nil
	m.rd.Ended = append(m.rd.Ended, SettleEnd{Hash: t.hash, SetID: t.setID, Err: err})
}

// fenced is a write refused because another process holds the lock.
func (m *Machine) fenced(err error) {
	m.rd.Fatal = fmt.Errorf("stopped: %w", err)
	m.Depose("fenced: another process leads")
}

// commitSettle records that the ticket's settlement is durable: the set's
// circuits become pending settles, the hash is paid, and every HTLC is
// settled now (I1, I2). stored is what the store holds.
func (m *Machine) commitSettle(now time.Time, t *ticket, stored domain.Invoice) {
	e := m.getOrCreate(t.hash, stored.Expiry)
	if e.set != nil && e.set.ticket == t {
		if err := e.set.htlcs.CommitSettle(); err != nil {
			// A ticket's set is Settling until its write ends.
			panic(fmt.Sprintf("core: commit of a set in state %v: %v", e.set.htlcs.State(), err))
		}
		m.stopTimers(e.set)
		e.set = nil
	}
	m.markSettled(e, stored)
	m.dropIfEmpty(e)
	for _, h := range stored.HTLCs {
		if !h.Status.IsFinal() {
			m.answer(Answer{Hash: t.hash, Circuit: h.Circuit, Action: ports.ActionSettle, Preimage: stored.Preimage})
		}
	}
	m.update(ports.InvoiceUpdate{Hash: t.hash, Status: domain.StatusSettleRequested, SetID: stored.SetID})
	m.logf(LevelInfo, "settle requested", "hash", t.hash, "set_id", stored.SetID, "htlcs", len(stored.HTLCs))
	early := t.early
	t.early = nil
	for _, r := range early {
		m.Final(now, r)
	}
}

// abortSettle ends a settlement that the store positively refused: the set
// is cancelled back (the hash is paid by another set).
func (m *Machine) abortSettle(t *ticket, reason domain.FailureReason) {
	e := m.lookup(t.hash)
	if e == nil || e.set == nil || e.set.ticket != t {
		return
	}
	se := e.set
	se.htlcs.AbortSettle()
	htlcs, err := se.htlcs.Cancel()
	if err != nil {
		// AbortSettle returned the set to Accepted, which Cancel ends.
		panic(fmt.Sprintf("core: cancel after abort: %v", err))
	}
	m.stopTimers(se)
	for _, h := range htlcs {
		delete(m.index, h.Circuit)
		e.remember(h, reason)
		m.fail(h, se.onionOf(h.Circuit), reason)
	}
	e.c().cancelled = append(e.cancelledIDs(), se.htlcs.ID())
	e.set = nil
	if e.settled == nil {
		// Paid by a set this process does not know: the store has it.
		e.settled = paidByHashOnly
	}
	m.dropIfEmpty(e)
	m.update(ports.InvoiceUpdate{Hash: t.hash, Status: se.htlcs.State().InvoiceStatus(), SetID: t.setID})
	m.logf(LevelInfo, "settlement refused by the store, set cancelled", "hash", t.hash, "set_id", t.setID, "reason", reason)
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

// Cancel is the application's decision to cancel a set (setID zero:
// whatever set the hash has). Its HTLCs are failed; the invoice stays
// payable until it expires, and the set's circuits are failed again if lnd
// re-offers them. A settled or settling set cannot be cancelled (I6, I7).
func (m *Machine) Cancel(now time.Time, req ReqID, hash domain.PaymentHash, setID domain.SetID, permanent bool) {
	if m.role != leading {
		m.reply(req, notReady(m.why))
		return
	}
	if m.mayBeEvicted(hash) {
		// Memory holds no paid mark, but it may have dropped one: a set in
		// memory may be a second payment of an invoice stored as paid, and
		// cancelling it must not read as "never paid" (I6).
		m.read(&pendingRead{purpose: readCancelEvicted, req: req, hash: hash, setID: setID, permanent: permanent})
		return
	}
	m.cancelInMemory(now, req, hash, setID, permanent)
}

func (m *Machine) cancel(r cancelRequest) error {
	e, se, err := m.cancelTarget(r)
	if err != nil || se == nil {
		return err
	}
	m.endSet(e, se, r.reason, r.expire)
	return nil
}

// cancelTarget finds the set a cancel ends: nil with a nil error when the
// cancel was done before (idempotent).
func (m *Machine) cancelTarget(r cancelRequest) (*entry, *setEntry, error) {
	e := m.lookup(r.hash)
	if e == nil {
		return nil, nil, errNotInMemory
	}
	zero := r.setID == domain.SetID{}
	se := e.set
	if r.only != nil && se != r.only {
		return nil, nil, domain.ErrSetNotFound
	}
	switch {
	case e.settled != nil && e.settled.setID == (domain.SetID{}) && !slices.Contains(e.cancelledIDs(), r.setID):
		return nil, nil, errNotInMemory
	case e.settled != nil && (zero || e.settled.setID == r.setID):
		return nil, nil, domain.ErrSettleRequested
	case se != nil && (zero || se.htlcs.ID() == r.setID):
		if se.htlcs.State() == domain.SetSettling {
			// Being committed, or its outcome unknown: untouchable (I7).
			return nil, nil, domain.ErrSettleRequested
		}
		return e, se, nil
	case !zero && slices.Contains(e.cancelledIDs(), r.setID):
		return e, nil, nil
	case se == nil && e.settled == nil && (len(e.cancelledIDs()) > 0 || e.tombstoned()) && zero:
		return e, nil, nil
	}
	return nil, nil, domain.ErrSetNotFound
}

// endSet fails every HTLC of a set that is not being settled and forgets
// the set; its circuits are failed again if lnd re-offers them.
func (m *Machine) endSet(e *entry, se *setEntry, reason domain.FailureReason, expire bool) {
	end := se.htlcs.Cancel
	if expire {
		end = se.htlcs.Expire
	}
	htlcs, err := end()
	if err != nil {
		panic(fmt.Sprintf("core: end of a set in state %v: %v", se.htlcs.State(), err))
	}
	m.stopTimers(se)
	for _, h := range htlcs {
		delete(m.index, h.Circuit)
		e.remember(h, reason)
		m.fail(h, se.onionOf(h.Circuit), reason)
	}
	id := se.htlcs.ID()
	if id != (domain.SetID{}) {
		e.c().cancelled = append(e.cancelledIDs(), id)
	}
	if e.set == se {
		e.set = nil
	}
	m.dropIfEmpty(e)
	m.update(ports.InvoiceUpdate{Hash: e.hash, Status: se.htlcs.State().InvoiceStatus(), SetID: id})
	m.logf(LevelInfo, "set cancelled", "hash", e.hash, "set_id", id, "reason", reason, "htlcs", len(htlcs))
}

// ReadDone is the outcome of a read: the stored invoice, or its error
// (domain.ErrInvoiceNotFound if the store has none).
func (m *Machine) ReadDone(now time.Time, id uint64, inv domain.Invoice, err error) {
	r, ok := m.reads[id]
	if !ok {
		return
	}
	delete(m.reads, id)
	if r.abandoned {
		return
	}
	found := err == nil
	notFound := errors.Is(err, domain.ErrInvoiceNotFound)
	if !found && !notFound {
		m.reply(r.req, fmt.Errorf("load invoice: %w", err))
		return
	}
	switch r.purpose {
	case readSettleStored, readSettleEvicted:
		switch {
		case notFound && r.purpose == readSettleEvicted:
			m.reply(r.req, r.memErr)
		case notFound:
			m.reply(r.req, domain.ErrInvoiceNotFound)
		case inv.SetID != r.setID:
			m.reply(r.req, fmt.Errorf("%w: invoice was settled with another set", domain.ErrSetNotFound))
		default:
			m.reply(r.req, nil)
		}
	case readCancelEvicted:
		if m.role != leading {
			m.reply(r.req, notReady(m.why))
			return
		}
		if found {
			m.paidElsewhere(inv)
			if r.setID == (domain.SetID{}) || r.setID == inv.SetID {
				m.reply(r.req, domain.ErrSettleRequested)
				return
			}
		}
		m.cancelInMemory(now, r.req, r.hash, r.setID, r.permanent)
	case readCancelStored:
		switch {
		case found:
			m.reply(r.req, domain.ErrSettleRequested)
		case r.permanent && m.role == leading:
			// Never paid and nothing in memory: the tombstone alone.
			rec := m.cancelRecord(now, r.hash, nil, true)
			m.startCancel(r.req, m.getOrCreate(r.hash, rec.Expiry), rec)
		default:
			m.reply(r.req, domain.ErrInvoiceNotFound)
		}
	}
}

// paidElsewhere records what the store says of a hash whose paid mark had
// been dropped: it is paid by inv's set. A set of the hash in memory (the
// payer paid again) is failed as already paid, unless its settlement is
// being written: the store refuses that one (ErrConflict) and abortSettle
// fails it.
func (m *Machine) paidElsewhere(inv domain.Invoice) {
	e := m.getOrCreate(inv.Hash, inv.Expiry)
	if e.settled == nil || e.settled.setID == (domain.SetID{}) {
		m.markSettled(e, inv)
	}
	if se := e.set; se != nil && se.htlcs.State() != domain.SetSettling {
		htlcs, err := se.htlcs.Cancel()
		if err != nil {
			panic(fmt.Sprintf("core: cancel of a set not being settled: %v", err))
		}
		m.stopTimers(se)
		for _, h := range htlcs {
			delete(m.index, h.Circuit)
			e.remember(h, domain.FailAlreadyPaid)
			m.fail(h, se.onionOf(h.Circuit), domain.FailAlreadyPaid)
		}
		if id := se.htlcs.ID(); id != (domain.SetID{}) {
			e.c().cancelled = append(e.cancelledIDs(), id)
		}
		e.set = nil
		m.logf(LevelInfo, "invoice paid before, its paid mark dropped from memory: new set failed", "hash", inv.Hash,
			"stored_set_id", inv.SetID, "htlcs", len(htlcs))
	}
	m.dropIfEmpty(e)
}

// Final is lnd's final word on an HTLC (an event read, or a lookup after a
// reconnect). lnd sends it once, so it is never dropped while lnmux waits
// for it: a committed circuit's is written (retried until stored), a
// settling one's is kept until the commit is known, and a held part lnd
// failed leaves its set, which can then not be settled as complete
// (review scenarios 1–3 in docs/design.md).
func (m *Machine) Final(now time.Time, r ports.FinalResolution) {
	hash, ok := m.index[r.Circuit]
	if !ok {
		return // an ordinary forward, or nothing lnmux waits for any more
	}
	e := m.lookup(hash)
	if e == nil {
		delete(m.index, r.Circuit)
		return
	}
	if e.settled != nil {
		if _, ok := e.settled.pending[r.Circuit]; ok {
			m.recordFinal(now, hash, r)
			return
		}
	}
	se := e.set
	if se == nil || !se.htlcs.Has(r.Circuit) {
		return
	}
	switch st := se.htlcs.State(); st {
	case domain.SetSettling:
		se.ticket.early = append(se.ticket.early, r)
		m.logf(LevelInfo, "final htlc resolution before its settlement is committed", "hash", hash, "circuit", r.Circuit, "settled", r.Settled)
	case domain.SetCollecting, domain.SetAccepted:
		if r.Settled {
			// No preimage of a set not yet committed ever left lnmux (I1):
			// another process settled it. Nothing here can be right.
			m.logf(LevelError, "lnd reports a held htlc settled that lnmux never settled", "hash", hash, "circuit", r.Circuit)
			return
		}
		id := se.htlcs.ID()
		se.htlcs.Lost(r.Circuit)
		if held := se.removeHeld(r.Circuit); held != nil {
			m.disarm(&held.hold)
		}
		delete(m.index, r.Circuit)
		if st == domain.SetAccepted {
			// Incomplete again: the parts wait for the payer's retry of
			// the failed one, each under a hold timer, not for a decision.
			m.disarm(&se.accept)
			se.acceptDeadline = time.Time{}
			for _, hh := range se.held {
				m.armHold(now, hash, hh, se.htlcs.Meta.Expiry)
			}
			e.c().lost = append(e.lostIDs(), id)
			// Shown as expired: lnd's time for the part ran out (its
			// auto-fail height) before anyone settled the set.
			m.update(ports.InvoiceUpdate{Hash: hash, Status: domain.StatusExpired, SetID: id})
		}
		if se.htlcs.Len() == 0 {
			e.set = nil
		}
		m.dropIfEmpty(e)
		m.logf(LevelInfo, "lnd failed a held htlc: it left its set", "hash", hash, "circuit", r.Circuit, "set_id", id,
			"was_accepted", st == domain.SetAccepted)
	case domain.SetSettleRequested, domain.SetCancelled, domain.SetExpired:
	}
}

// recordFinal starts the write of a committed circuit's final resolution,
// unless one is in flight.
func (m *Machine) recordFinal(now time.Time, hash domain.PaymentHash, r ports.FinalResolution) {
	if _, busy := m.finals[r.Circuit]; busy {
		return
	}
	fw := &finalWrite{hash: hash, r: r}
	fw.retry.kind, fw.retry.fw = timerFinalRetry, fw
	m.finals[r.Circuit] = fw
	m.writeFinal(now, fw)
}

func (m *Machine) writeFinal(now time.Time, fw *finalWrite) {
	if m.role != leading {
		delete(m.finals, fw.r.Circuit)
		return
	}
	fw.attempt++
	id := m.op()
	m.writes[id] = &pendingWrite{fw: fw}
	m.rd.Writes = append(m.rd.Writes, Write{ID: id, Kind: WriteFinal, Hash: fw.hash, Final: fw.r, At: now, Attempt: fw.attempt})
}

func (m *Machine) finalDone(now time.Time, fw *finalWrite, inv domain.Invoice, err error) {
	if m.role == deposed {
		delete(m.finals, fw.r.Circuit)
		return
	}
	hash, r := fw.hash, fw.r
	switch {
	case errors.Is(err, domain.ErrNotLeader):
		delete(m.finals, r.Circuit)
		m.fenced(err)
		return
	case errors.Is(err, domain.ErrInvalidTransition), errors.Is(err, domain.ErrInvalidArgument):
		// lnd contradicts what is stored: retrying cannot help.
		m.logf(LevelError, "final htlc resolution contradicts the store", "hash", hash, "circuit", r.Circuit,
			"settled", r.Settled, "err", err)
		m.finalRecorded(hash, r.Circuit)
		return
	case err != nil:
		d := Backoff(fw.attempt)
		m.logf(LevelError, "cannot record final htlc resolution: retrying", "hash", hash, "circuit", r.Circuit,
			"attempt", fw.attempt, "retry_in", d, "err", err)
		m.arm(&fw.retry, now.Add(d))
		return
	}
	m.finalRecorded(hash, r.Circuit)
	m.logf(LevelInfo, "htlc final", "hash", hash, "circuit", r.Circuit, "settled", r.Settled)
	if !inv.Status.IsFinal() {
		return
	}
	partial := inv.PartiallySettled()
	m.rd.Finals = append(m.rd.Finals, FinalInvoice{Invoice: inv, Partial: partial})
	if partial {
		m.logf(LevelError, "PARTIAL SETTLEMENT: some htlcs of the invoice settled, others failed",
			"hash", inv.Hash, "amount_paid", inv.AmountPaid)
	}
	m.logf(LevelInfo, "invoice final", "hash", inv.Hash, "status", inv.Status)
	m.update(ports.InvoiceUpdate{Hash: inv.Hash, Status: inv.Status, SetID: inv.SetID})
}

// finalRecorded removes a circuit whose final resolution is stored.
func (m *Machine) finalRecorded(hash domain.PaymentHash, c domain.CircuitKey) {
	delete(m.finals, c)
	delete(m.index, c)
	e := m.lookup(hash)
	if e == nil || e.settled == nil {
		return
	}
	delete(e.settled.pending, c)
	if e.settled.pending != nil && len(e.settled.pending) == 0 {
		// A map keeps its buckets when emptied; the paid mark outlives it
		// by the invoice's expiry.
		e.settled.pending = nil
	}
	m.dropIfEmpty(e)
}
