package app

import (
	"context"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// HTLCIntercepted implements ports.NodeSink: the HTLC path. It takes no lock
// shared by unrelated invoices (only the invoice's shard) and reads no
// database.
func (m *Mux) HTLCIntercepted(ctx context.Context, h ports.InterceptedHTLC) {
	ns, ok := m.nodes[h.Circuit.Node]
	if !ok {
		m.log.ErrorContext(ctx, "htlc from unknown node", "circuit", h.Circuit)
		return
	}
	// 1. Not for the virtual channel: forward untouched.
	if !m.forUs(ns, h) {
		m.resolve(ctx, ns, ports.Resolution{Circuit: h.Circuit, Action: ports.ActionResume})
		return
	}
	if !m.ready.Load() {
		// Never judged before recovery; lnd keeps holding it and the
		// interceptor reconnect re-offers it.
		m.log.WarnContext(ctx, "htlc before recovery ignored", "circuit", h.Circuit)
		return
	}
	// 3a. A replay of an HTLC whose settlement was requested: settle again.
	if p, ok := m.pending.get(h.Circuit); ok {
		m.log.InfoContext(ctx, "re-settling replayed htlc", "hash", p.hash, "circuit", h.Circuit)
		m.resolve(ctx, ns, ports.Resolution{Circuit: h.Circuit, Action: ports.ActionSettle, Preimage: p.preimage})
		return
	}
	// 3b. A replay of an HTLC held in memory: it is still held, nothing to do.
	if m.isHeld(h.Hash, h.Circuit) {
		m.log.DebugContext(ctx, "htlc re-offered while held", "hash", h.Hash, "circuit", h.Circuit)
		return
	}

	now := m.clock.Now()
	height := ns.height.Load()
	fc := domain.FailureContext{Amount: h.Forward.OutgoingAmount, Expiry: h.Forward.OutgoingExpiry, Height: height}

	// 2. Decode the onion.
	onion, reason := m.onion.decode(h.Onion, h.Hash)
	if reason != domain.FailNone {
		m.fail(ctx, ns, h.Circuit, h.Hash, reason, onion, fc)
		return
	}
	// 4 and 5. Stateless invoice and the checks.
	acc, reason := m.rules.Check(domain.Incoming{
		Circuit:        h.Circuit,
		Hash:           h.Hash,
		Forward:        h.Forward,
		AutoFailHeight: h.AutoFailHeight,
		Payload:        onion.payload,
		Height:         height,
		Now:            now,
	})
	switch {
	case reason != domain.FailNone:
	case m.paid.has(h.Hash):
		reason = domain.FailAlreadyPaid
	case h.AutoFailHeight != 0 && height+m.cfg.AutoFailMargin >= h.AutoFailHeight:
		reason = domain.FailNearAutoFail
	}
	if reason != domain.FailNone {
		m.fail(ctx, ns, h.Circuit, h.Hash, reason, onion, fc)
		return
	}
	// 6–8. Into the set.
	m.addToSet(ctx, ns, acc, onion, fc, now)
}

func (m *Mux) forUs(ns *nodeState, h ports.InterceptedHTLC) bool {
	if h.OutgoingChanID == ns.chanID || h.OutgoingChanID == ns.originalChanID {
		return true
	}
	return h.OutgoingNodeID != nil && *h.OutgoingNodeID == m.pubKey
}

func (m *Mux) isHeld(hash domain.PaymentHash, c domain.CircuitKey) bool {
	sh := m.shardOf(hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.sets[hash]
	return ok && e.set.Has(c)
}

func (m *Mux) addToSet(ctx context.Context, ns *nodeState, acc domain.Accepted, onion decodedOnion,
	fc domain.FailureContext, now time.Time) {

	hash, c := acc.HTLC.Hash, acc.HTLC.Circuit
	sh := m.shardOf(hash)
	sh.mu.Lock()
	e, ok := sh.sets[hash]
	if !ok {
		// With no one to decide and no auto-settle, holding a new set only
		// delays the payer's retry elsewhere (I4).
		if !m.mayHoldNewSet(now) {
			sh.mu.Unlock()
			m.fail(ctx, ns, c, hash, domain.FailNotAccepting, onion, fc)
			return
		}
		e = &setEntry{set: domain.NewHTLCSet(acc), held: make(map[domain.CircuitKey]*heldHTLC)}
		sh.sets[hash] = e
	}
	outcome, reason := e.set.Add(acc.HTLC, now)
	switch outcome {
	case domain.AddReplay:
		sh.mu.Unlock()
		return
	case domain.AddRejected:
		if e.set.Len() == 0 && e.set.State() == domain.SetCollecting {
			delete(sh.sets, hash)
		}
		sh.mu.Unlock()
		m.fail(ctx, ns, c, hash, reason, onion, fc)
		return
	}
	held := &heldHTLC{htlc: acc.HTLC, onion: onion}
	e.held[c] = held
	if outcome == domain.AddHeld {
		hold := min(m.cfg.HoldTimeout, acc.Meta.Expiry.Sub(now))
		held.timer = m.clock.AfterFunc(hold, func() { m.onHoldTimeout(context.WithoutCancel(ctx), hash, c) })
		sum, total := e.set.Sum(), e.set.Total
		sh.mu.Unlock()
		m.cfg.Metrics.HTLCHeld()
		m.log.InfoContext(ctx, "htlc held", "hash", hash, "circuit", c, "amount", acc.HTLC.Amount,
			"set_sum", sum, "set_total", total)
		return
	}
	// Complete: the parts wait for a decision now, not for more parts.
	for _, hh := range e.held {
		if hh.timer != nil {
			hh.timer.Stop()
			hh.timer = nil
		}
	}
	setID := e.set.ID()
	e.acceptDeadline = now.Add(m.cfg.AcceptTimeout)
	e.acceptTimer = m.clock.AfterFunc(m.cfg.AcceptTimeout, func() {
		// Only this entry: a later set of the same HTLCs has the same id.
		_ = m.cancelEntry(context.WithoutCancel(ctx), hash, e, setID, domain.FailAcceptTimeout)
	})
	amount, parts := e.set.Sum(), len(e.held)
	sh.mu.Unlock()

	m.log.InfoContext(ctx, "invoice accepted", "hash", hash, "set_id", setID, "amount", amount, "htlcs", parts)
	m.cfg.Metrics.SetAccepted(parts)
	m.hub.publishAccepted(ports.AcceptedEvent{Hash: hash, SetID: setID, Amount: amount})
	m.hub.publishInvoice(ports.InvoiceUpdate{Hash: hash, Status: domain.StatusAccepted, SetID: setID})
	if m.cfg.AutoSettle {
		go func() {
			sctx := context.WithoutCancel(ctx)
			if err := m.SettleInvoice(sctx, hash, setID); err != nil {
				m.log.ErrorContext(sctx, "auto-settle failed", "hash", hash, "err", err)
			}
		}()
	}
}

// onHoldTimeout fails one part of a set that did not complete in time.
func (m *Mux) onHoldTimeout(ctx context.Context, hash domain.PaymentHash, c domain.CircuitKey) {
	sh := m.shardOf(hash)
	sh.mu.Lock()
	e, ok := sh.sets[hash]
	if !ok {
		sh.mu.Unlock()
		return
	}
	h, timedOut := e.set.Timeout(c)
	if !timedOut {
		sh.mu.Unlock()
		return
	}
	held := e.held[c]
	delete(e.held, c)
	if e.set.Len() == 0 {
		delete(sh.sets, hash)
	}
	sh.mu.Unlock()

	ns := m.nodes[c.Node]
	m.log.InfoContext(ctx, "mpp timeout", "hash", hash, "circuit", c)
	m.failHeld(ctx, ns, h, held, domain.FailMPPTimeout)
}

// cancelEntry fails every HTLC of a set that is not being settled. The invoice
// stays payable until it expires.
// A zero setID matches any set, a nil want any entry.
func (m *Mux) cancelEntry(ctx context.Context, hash domain.PaymentHash, want *setEntry, setID domain.SetID,
	reason domain.FailureReason) error {

	sh := m.shardOf(hash)
	sh.mu.Lock()
	e, ok := sh.sets[hash]
	if !ok || (want != nil && e != want) {
		sh.mu.Unlock()
		return domain.ErrInvoiceNotFound
	}
	if setID != (domain.SetID{}) && e.set.ID() != setID {
		sh.mu.Unlock()
		return domain.ErrSetNotFound
	}
	htlcs, err := e.set.Cancel()
	if err != nil {
		sh.mu.Unlock()
		return err
	}
	e.stopTimers()
	held := e.held
	delete(sh.sets, hash)
	if id := e.set.ID(); id != (domain.SetID{}) {
		sh.cancelled[hash] = cancelRecord{setID: id, expiry: e.set.Meta.Expiry}
	}
	sh.mu.Unlock()

	m.log.InfoContext(ctx, "set cancelled", "hash", hash, "reason", reason, "htlcs", len(htlcs))
	for _, h := range htlcs {
		m.failHeld(ctx, m.nodes[h.Circuit.Node], h, held[h.Circuit], reason)
	}
	m.hub.publishInvoice(ports.InvoiceUpdate{Hash: hash, Status: domain.StatusCancelled, SetID: setID})
	return nil
}

func (m *Mux) failHeld(ctx context.Context, ns *nodeState, h domain.HTLC, held *heldHTLC, reason domain.FailureReason) {
	var onion decodedOnion
	if held != nil {
		onion = held.onion
	}
	fc := domain.FailureContext{Amount: h.Amount, Expiry: h.Expiry, Height: ns.height.Load()}
	m.fail(ctx, ns, h.Circuit, h.Hash, reason, onion, fc)
}

func (m *Mux) fail(ctx context.Context, ns *nodeState, c domain.CircuitKey, hash domain.PaymentHash,
	reason domain.FailureReason, onion decodedOnion, fc domain.FailureContext) {

	res, err := failureResolution(c, reason, onion, fc)
	if err != nil {
		m.log.ErrorContext(ctx, "cannot encrypt failure", "circuit", c, "err", err)
		return
	}
	m.log.InfoContext(ctx, "failing htlc", "hash", hash, "circuit", c, "reason", reason)
	m.cfg.Metrics.HTLCResolved(ports.ActionFail, reason)
	m.send(ctx, ns, res)
}

// resolve answers an HTLC with RESUME or SETTLE.
func (m *Mux) resolve(ctx context.Context, ns *nodeState, r ports.Resolution) {
	m.cfg.Metrics.HTLCResolved(r.Action, domain.FailNone)
	m.send(ctx, ns, r)
}

func (m *Mux) send(ctx context.Context, ns *nodeState, r ports.Resolution) {
	if err := ns.node.Resolve(ctx, r); err != nil {
		// lnd keeps the HTLC and re-offers it after reconnecting; the
		// replay is answered then.
		m.log.WarnContext(ctx, "resolution not delivered", "circuit", r.Circuit, "action", r.Action, "err", err)
	}
}

// BlockHeight implements ports.NodeSink. Sets holding an HTLC of this node
// close to lnd's auto-fail height are cancelled before lnd fails it (I4).
func (m *Mux) BlockHeight(ctx context.Context, node domain.NodeKey, height uint32) {
	ns, ok := m.nodes[node]
	if !ok {
		return
	}
	ns.height.Store(height)
	type victim struct {
		hash domain.PaymentHash
		id   domain.SetID
	}
	var victims []victim
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for hash, e := range sh.sets {
			for c, h := range e.held {
				if c.Node == node && h.htlc.AutoFailHeight != 0 && height+m.cfg.AutoFailMargin >= h.htlc.AutoFailHeight {
					victims = append(victims, victim{hash, e.set.ID()})
					break
				}
			}
		}
		sh.mu.Unlock()
	}
	for _, v := range victims {
		if err := m.cancelEntry(ctx, v.hash, nil, v.id, domain.FailNearAutoFail); err != nil {
			m.log.DebugContext(ctx, "auto-fail cancel skipped", "hash", v.hash, "err", err)
		}
	}
}

// acceptedSnapshot lists the sets waiting for a decision.
func (m *Mux) acceptedSnapshot() []ports.AcceptedEvent {
	var out []ports.AcceptedEvent
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for hash, e := range sh.sets {
			if e.set.State() == domain.SetAccepted {
				out = append(out, ports.AcceptedEvent{Hash: hash, SetID: e.set.ID(), Amount: e.set.Sum()})
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// mayHoldNewSet reports whether someone can decide on a new set: auto-settle,
// an accepted subscriber, or the grace period after start or after the last
// subscriber left, in which the application is expected back.
func (m *Mux) mayHoldNewSet(now time.Time) bool {
	if m.cfg.AutoSettle || m.hub.hasAcceptedSubscribers() {
		return true
	}
	since := max(m.recoveredAt.Load(), m.hub.lastGone.Load())
	return now.Sub(time.Unix(0, since)) < m.cfg.SubscriberGrace
}
