package core

import (
	"errors"
	"slices"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// An application's cancel is recorded in the store before any HTLC of the
// set is failed and before the cancel is reported done (docs/design.md,
// "Cancels"): the next leader loads the record and fails the set's HTLCs
// again if lnd offers them again, so a cancel reported OK is never undone
// by a successor. A permanent cancel also leaves a tombstone: the hash is
// unpayable until its invoice expires. Cancels by lnmux itself (timeouts,
// the auto-fail margin) are not recorded: nobody was told they happened.

// cancelTicket is a cancel being recorded. Every cancel of the same set
// while it is in flight waits on it.
type cancelTicket struct {
	rec     domain.CancelRecord
	waiters []ReqID
	// attempts counts the store writes tried.
	attempts int
	retry    timer
}

// cancelInMemory decides an application's cancel on what memory holds;
// the store is asked when memory cannot answer. The set's HTLCs are failed
// at once (nobody was told anything yet, so a crash before the record is
// stored undoes nothing reported); the caller is answered once the record
// is stored.
func (m *Machine) cancelInMemory(now time.Time, req ReqID, hash domain.PaymentHash, setID domain.SetID, permanent bool) {
	e, se, err := m.cancelTarget(cancelRequest{hash: hash, setID: setID, reason: domain.FailCancelled})
	switch {
	case errors.Is(err, errNotInMemory):
		m.read(&pendingRead{purpose: readCancelStored, req: req, hash: hash, setID: setID, permanent: permanent})
		return
	case err != nil:
		m.reply(req, err)
		return
	case se != nil:
		rec := m.cancelRecord(now, hash, se, permanent)
		m.endSet(e, se, domain.FailCancelled, false)
		m.startCancel(req, e, rec)
		return
	}
	// The set ended before: by a cancel (recorded, or being recorded),
	// or by lnmux itself, which recorded nothing.
	if ct := e.recordingOf(setID, permanent); ct != nil {
		m.joinCancel(req, ct)
		return
	}
	if (setID == domain.SetID{} || slices.Contains(e.recordedIDs(), setID)) && (!permanent || e.tombstoned()) {
		m.reply(req, nil)
		return
	}
	rec := m.cancelRecord(now, hash, nil, permanent)
	rec.SetID = setID
	m.startCancel(req, e, rec)
}

// recordingOf returns the cancel of setID being recorded, if any (a
// permanent cancel joins only a permanent one).
func (e *entry) recordingOf(setID domain.SetID, permanent bool) *cancelTicket {
	for _, ct := range e.recordings() {
		if (setID == domain.SetID{} || ct.rec.SetID == setID) && (!permanent || ct.rec.Permanent) {
			return ct
		}
	}
	return nil
}

// cancelRecord is the record of a cancel of se (nil: the hash alone).
func (m *Machine) cancelRecord(now time.Time, hash domain.PaymentHash, se *setEntry, permanent bool) domain.CancelRecord {
	rec := domain.CancelRecord{Hash: hash, Permanent: permanent, CancelledAt: now, Expiry: now.Add(domain.MaxInvoiceExpiry)}
	if se != nil {
		rec.SetID = se.htlcs.ID()
		rec.Expiry = se.htlcs.Meta.Expiry
		for _, h := range se.htlcs.HTLCs() {
			until := h.Expiry
			if h.AutoFailHeight != 0 {
				until = max(until, h.AutoFailHeight)
			}
			rec.HTLCs = append(rec.HTLCs, domain.CancelledHTLC{Circuit: h.Circuit, Until: until})
		}
	} else if e := m.lookup(hash); e != nil && e.expiry.After(now) {
		rec.Expiry = e.expiry
	}
	return rec
}

// startCancel starts the write of rec; req is answered when it is stored.
func (m *Machine) startCancel(req ReqID, e *entry, rec domain.CancelRecord) {
	ct := &cancelTicket{rec: rec}
	ct.retry.kind, ct.retry.ct = timerCancelRetry, ct
	e.c().recording = append(e.recordings(), ct)
	m.joinCancel(req, ct)
	m.writeCancel(ct)
}

func (m *Machine) joinCancel(req ReqID, ct *cancelTicket) {
	if req == 0 {
		return
	}
	ct.waiters = append(ct.waiters, req)
	m.cancelling[req] = ct
}

func (m *Machine) writeCancel(ct *cancelTicket) {
	if m.role != leading {
		return
	}
	ct.attempts++
	id := m.op()
	m.writes[id] = &pendingWrite{ct: ct}
	m.rd.Writes = append(m.rd.Writes, Write{ID: id, Kind: WriteCancel, Hash: ct.rec.Hash, SetID: ct.rec.SetID,
		Cancel: ct.rec, Attempt: ct.attempts})
}

func (m *Machine) retryCancel(ct *cancelTicket) { m.writeCancel(ct) }

// cancelDone is the outcome of a cancel's write.
func (m *Machine) cancelDone(now time.Time, ct *cancelTicket, err error) {
	if m.role == deposed {
		return // its waiters were told
	}
	switch {
	case errors.Is(err, domain.ErrNotLeader):
		m.endCancel(ct, notReady("leadership lost"))
		m.fenced(err)
		return
	case errors.Is(err, domain.ErrSettleRequested):
		// The store holds a settlement of the hash, by a set memory did
		// not know (its paid mark was dropped): nothing was recorded.
		m.logf(LevelInfo, "cancel refused by the store: the invoice is stored", "hash", ct.rec.Hash, "set_id", ct.rec.SetID)
		m.endCancel(ct, domain.ErrSettleRequested)
		return
	case err != nil:
		d := Backoff(ct.attempts)
		m.logf(LevelError, "cancel write failed, outcome unknown: retrying", "hash", ct.rec.Hash,
			"set_id", ct.rec.SetID, "attempt", ct.attempts, "retry_in", d, "err", err)
		m.arm(&ct.retry, now.Add(d))
		return
	}
	// Recorded: from here on the set is cancelled, by this process or by
	// any successor.
	e := m.getOrCreate(ct.rec.Hash, ct.rec.Expiry)
	if id := ct.rec.SetID; id != (domain.SetID{}) && !slices.Contains(e.recordedIDs(), id) {
		e.c().recorded = append(e.recordedIDs(), id)
	}
	if ct.rec.Permanent && !e.tombstoned() {
		e.c().tombstone = true
		m.rd.LogChanged = true
		m.update(ports.InvoiceUpdate{Hash: ct.rec.Hash, Status: domain.StatusCancelled, SetID: ct.rec.SetID})
		m.logf(LevelInfo, "invoice cancelled permanently", "hash", ct.rec.Hash, "until", ct.rec.Expiry)
	}
	m.endCancel(ct, nil)
}

func (m *Machine) endCancel(ct *cancelTicket, err error) {
	if e := m.lookup(ct.rec.Hash); e != nil {
		e.c().recording = slices.DeleteFunc(e.recordings(), func(x *cancelTicket) bool { return x == ct })
		m.dropIfEmpty(e)
	}
	for _, req := range ct.waiters {
		delete(m.cancelling, req)
		m.reply(req, err)
	}
	ct.waiters = nil
}

// rememberCircuit records a circuit lnmux failed, by key alone.
func (e *entry) rememberCircuit(c domain.CircuitKey, reason domain.FailureReason, until uint32) {
	if e.failed == nil {
		e.failed = make(map[domain.CircuitKey]failedHTLC)
	}
	e.failed[c] = failedHTLC{reason: reason, until: until}
}

// loadCancels is what Lead knows of recorded cancels: their circuits are
// failed again if offered, their sets cannot be settled, tombstoned hashes
// are unpayable.
func (m *Machine) loadCancels(cancels []domain.CancelRecord) {
	for _, c := range cancels {
		e := m.getOrCreate(c.Hash, c.Expiry)
		for _, h := range c.HTLCs {
			e.rememberCircuit(h.Circuit, domain.FailCancelled, h.Until)
		}
		if c.SetID != (domain.SetID{}) {
			if !slices.Contains(e.cancelledIDs(), c.SetID) {
				e.c().cancelled = append(e.cancelledIDs(), c.SetID)
			}
			if !slices.Contains(e.recordedIDs(), c.SetID) {
				e.c().recorded = append(e.recordedIDs(), c.SetID)
			}
		}
		if c.Permanent {
			e.c().tombstone = true
		}
	}
}
