package core

import (
	"slices"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Offer is an HTLC a node offers, as the driver prepared it: the onion is
// peeled outside the machine (it is pure but costly, so nodes peel many in
// parallel), everything that reads or changes state happens here.
type Offer struct {
	Circuit        domain.CircuitKey
	Hash           domain.PaymentHash
	Forward        domain.Forward
	AutoFailHeight uint32
	// ForUs is false for an HTLC the node would forward on a real
	// channel: it is resumed untouched.
	ForUs bool
	// Payload is lnmux's final-hop payload; PeelFail is set instead when
	// the onion could not be used.
	Payload  domain.FinalHop
	PeelFail domain.FailureReason
	// Onion is what the driver needs to encrypt a failure; kept opaque.
	Onion any
}

// replayKind is what the machine knows of a circuit before judging it.
type replayKind uint8

const (
	// circuitNew: never seen, or seen and forgotten: check it.
	circuitNew replayKind = iota
	// circuitSettle: part of a committed settlement: settle it again.
	circuitSettle
	// circuitHeld: part of a set in memory: it is still held, do nothing.
	circuitHeld
	// circuitRefail: lnmux failed it before: fail it again.
	circuitRefail
)

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

// Offered is an HTLC offered by a node: the HTLC path (docs/design.md,
// "The HTLC path"). lnd re-offers held HTLCs after every reconnect, so the
// same circuit can come again; a replay is recognised before anything
// else and answered as decided before.
func (m *Machine) Offered(now time.Time, o Offer) {
	// 1. Not for the virtual channel: forward untouched.
	if !o.ForUs {
		m.answer(Answer{Hash: o.Hash, Circuit: o.Circuit, Action: ports.ActionResume})
		return
	}
	// 2. Not leading (before recovery, after leadership ended): never
	// judged; lnd keeps holding it and re-offers it to the leader.
	if m.role != leading {
		m.logf(LevelWarn, "htlc not judged: not leading", "circuit", o.Circuit)
		return
	}
	height := m.heights[o.Circuit.Node]
	fc := domain.FailureContext{Amount: o.Forward.OutgoingAmount, Expiry: o.Forward.OutgoingExpiry, Height: height}
	failNow := func(r domain.FailureReason) {
		m.answer(Answer{Hash: o.Hash, Circuit: o.Circuit, Action: ports.ActionFail, Reason: r, Onion: o.Onion, FC: fc})
	}
	e := m.lookup(o.Hash)

	// 3. Replays.
	kind, preimage, reason := e.classify(o.Circuit)
	switch kind { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case circuitSettle:
		m.logf(LevelInfo, "re-settling replayed htlc", "hash", o.Hash, "circuit", o.Circuit)
		m.answer(Answer{Hash: o.Hash, Circuit: o.Circuit, Action: ports.ActionSettle, Preimage: preimage})
		return
	case circuitHeld:
		m.logf(LevelDebug, "htlc re-offered while held", "hash", o.Hash, "circuit", o.Circuit)
		return
	}
	// 4. The onion.
	if o.PeelFail != domain.FailNone {
		failNow(o.PeelFail)
		return
	}
	if kind == circuitRefail {
		// lnmux failed it before and the FAIL was not delivered: the
		// decision stands (a cancel sticks).
		failNow(reason)
		return
	}
	if e != nil && e.tombstoned() {
		// Cancelled permanently: as if the invoice did not exist.
		failNow(domain.FailUnknownInvoice)
		return
	}
	// 5. The stateless invoice and the checks.
	acc, fail := m.cfg.Rules.Check(domain.Incoming{
		Circuit:        o.Circuit,
		Hash:           o.Hash,
		Forward:        o.Forward,
		AutoFailHeight: o.AutoFailHeight,
		Payload:        o.Payload,
		Height:         height,
		Now:            now,
	})
	if fail == domain.FailNone && o.AutoFailHeight != 0 && height+m.cfg.AutoFailMargin >= o.AutoFailHeight {
		fail = domain.FailNearAutoFail
	}
	if fail != domain.FailNone {
		failNow(fail)
		return
	}
	// 6–8. Into the set.
	m.add(now, e, acc, o.Onion)
}

// add offers a checked HTLC that is not a replay to its invoice's set.
// e is the hash's entry as the replay check found it (nil if none).
func (m *Machine) add(now time.Time, e *entry, acc domain.Accepted, onion any) {
	h := acc.HTLC
	held := &heldHTLC{circuit: h.Circuit, autoFail: h.AutoFailHeight, onion: onion}
	if e != nil && e.settled != nil {
		m.fail(h, onion, domain.FailAlreadyPaid)
		return
	}
	if e == nil || e.set == nil {
		// With no one to decide and no auto-settle, holding a new set only
		// delays the payer's retry elsewhere (I4).
		if !m.mayHoldNewSet(now) {
			m.fail(h, onion, domain.FailNotAccepting)
			return
		}
		e = m.getOrCreate(h.Hash, acc.Meta.Expiry)
		e.set = &setEntry{htlcs: domain.NewHTLCSet(acc)}
		e.set.accept.kind, e.set.accept.hash, e.set.accept.set = timerAccept, h.Hash, e.set
	}
	se := e.set
	outcome, reason := se.htlcs.Add(h, now)
	switch outcome { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case domain.AddReplay:
		return
	case domain.AddRejected:
		if se.htlcs.Len() == 0 && se.htlcs.State() == domain.SetCollecting {
			e.set = nil
			m.dropIfEmpty(e)
		}
		m.fail(h, onion, reason)
		return
	}
	se.held = append(se.held, held)
	m.index[h.Circuit] = h.Hash
	if outcome == domain.AddHeld {
		m.armHold(now, h.Hash, held, acc.Meta.Expiry)
		m.rd.Held++
		m.logf(LevelInfo, "htlc held", "hash", h.Hash, "circuit", h.Circuit, "amount", h.Amount,
			"set_sum", se.htlcs.Sum(), "set_total", se.htlcs.Total)
		return
	}
	// Complete: the parts wait for a decision now, not for more parts.
	for _, hh := range se.held {
		m.disarm(&hh.hold)
	}
	// The invoice may ask for a longer (or shorter) decision window; the
	// auto-fail margin still ends the set first if lnd's auto-fail height
	// comes sooner (Block, I4).
	timeout := m.cfg.AcceptTimeout
	if d := se.htlcs.Meta.AcceptTimeout; d > 0 {
		timeout = d
	}
	se.acceptDeadline = now.Add(timeout)
	m.arm(&se.accept, se.acceptDeadline)
	ev := ports.AcceptedEvent{Hash: h.Hash, SetID: se.htlcs.ID(), Amount: se.htlcs.Sum()}
	m.rd.Accepted = append(m.rd.Accepted, Accepted{Event: ev, Parts: len(se.held)})
	m.update(ports.InvoiceUpdate{Hash: h.Hash, Status: se.htlcs.State().InvoiceStatus(), SetID: ev.SetID})
	m.logf(LevelInfo, "invoice accepted", "hash", h.Hash, "set_id", ev.SetID, "amount", ev.Amount, "htlcs", len(se.held))
	if m.cfg.AutoSettle && !se.htlcs.Meta.External {
		// lnmux cannot settle a caller-supplied hash: its preimage is the
		// application's, so such a set waits for SettleInvoice.
		m.Settle(now, 0, ev.Hash, ev.SetID, domain.Preimage{})
	}
}

// Block is a node's new best height. Sets holding an HTLC of the node
// within the margin of lnd's auto-fail height are cancelled before lnd
// fails it (I4); a set whose settlement is being written is never touched
// (I7). Failed circuits lnd can no longer re-offer are forgotten.
func (m *Machine) Block(node domain.NodeKey, height uint32) {
	m.heights[node] = height
	var victims []cancelRequest
	for i := range m.shards {
		for hash, e := range m.shards[i] {
			changed := false
			for c, f := range e.failed {
				if c.Node == node && height > f.until {
					delete(e.failed, c)
					changed = true
				}
			}
			if se := e.set; se != nil && se.htlcs.State() != domain.SetSettling {
				for _, h := range se.held {
					if h.circuit.Node == node && h.autoFail != 0 && height+m.cfg.AutoFailMargin >= h.autoFail {
						victims = append(victims, cancelRequest{hash: hash, only: se, reason: domain.FailNearAutoFail, expire: true})
						break
					}
				}
			}
			if changed {
				m.dropIfEmpty(e)
			}
		}
	}
	if m.role != leading {
		return
	}
	// Map order is random; the machine's decisions are not.
	slices.SortFunc(victims, func(a, b cancelRequest) int { return slices.Compare(a.hash[:], b.hash[:]) })
	for _, v := range victims {
		if err := m.cancel(v); err != nil {
			m.logf(LevelDebug, "auto-fail cancel skipped", "hash", v.hash, "err", err)
		}
	}
}
