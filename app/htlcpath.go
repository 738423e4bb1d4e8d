package app

import (
	"bytes"
	"context"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// HTLCIntercepted implements ports.NodeSink: the HTLC path (docs/design.md,
// "The HTLC path"). It takes no lock shared by unrelated invoices (only the
// invoice's ledger shard), reads no database and never waits for a write.
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
	// 2. Not serving (before recovery, after leadership ended).
	if !m.ready.Load() || m.stopping.Load() {
		// Never judged before recovery or after leadership is lost; lnd
		// keeps holding it and the interceptor reconnect re-offers it.
		m.log.WarnContext(ctx, "htlc not judged: not serving", "circuit", h.Circuit)
		return
	}
	height := ns.height.Load()
	fc := domain.FailureContext{Amount: h.Forward.OutgoingAmount, Expiry: h.Forward.OutgoingExpiry, Height: height}

	// 3. Replays are recognised before the onion is decoded.
	kind, preimage, reason := m.ledger.classify(h.Hash, h.Circuit)
	switch kind { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case circuitSettle:
		m.log.InfoContext(ctx, "re-settling replayed htlc", "hash", h.Hash, "circuit", h.Circuit)
		m.resolve(ctx, ns, ports.Resolution{Circuit: h.Circuit, Action: ports.ActionSettle, Preimage: preimage})
		return
	case circuitHeld:
		m.log.DebugContext(ctx, "htlc re-offered while held", "hash", h.Hash, "circuit", h.Circuit)
		return
	}

	// 4. Peel the onion, unless the node had it peeled ahead.
	onion, fail := m.peel(h)
	if fail != domain.FailNone {
		m.fail(ctx, ns, answer{hash: h.Hash, circuit: h.Circuit, action: ports.ActionFail, reason: fail, onion: onion, fc: fc})
		return
	}
	if kind == circuitRefail {
		// lnmux failed it before and the FAIL was not delivered: the
		// decision stands (a cancel sticks).
		m.fail(ctx, ns, answer{hash: h.Hash, circuit: h.Circuit, action: ports.ActionFail, reason: reason, onion: onion, fc: fc})
		return
	}
	now := m.clock.Now()
	// 5. The stateless invoice and the checks.
	acc, fail := m.rules.Check(domain.Incoming{
		Circuit:        h.Circuit,
		Hash:           h.Hash,
		Forward:        h.Forward,
		AutoFailHeight: h.AutoFailHeight,
		Payload:        onion.payload,
		Height:         height,
		Now:            now,
	})
	if fail == domain.FailNone && h.AutoFailHeight != 0 && height+m.cfg.AutoFailMargin >= h.AutoFailHeight {
		fail = domain.FailNearAutoFail
	}
	if fail != domain.FailNone {
		m.fail(ctx, ns, answer{hash: h.Hash, circuit: h.Circuit, action: ports.ActionFail, reason: fail, onion: onion, fc: fc})
		return
	}
	// 6–8. Into the set, deciding on the same state the replay check saw
	// (the ledger classifies the circuit again under the same lock).
	fx := m.ledger.add(acc, addParams{
		onion:         onion,
		height:        height,
		now:           now,
		mayHoldNew:    func() bool { return m.mayHoldNewSet(now) },
		holdTimeout:   m.cfg.HoldTimeout,
		acceptTimeout: m.cfg.AcceptTimeout,
		autoSettle:    m.cfg.AutoSettle,
		clock:         m.clock,
		onHold:        m.onHoldTimeout,
		onAccept:      m.onAcceptTimeout,
	})
	m.apply(context.WithoutCancel(ctx), fx)
}

var _ ports.HTLCPreparer = (*Mux)(nil)

// peeledOnion is an onion peeled ahead of the ordered HTLC path.
type peeledOnion struct {
	hash  domain.PaymentHash
	blob  []byte
	onion decodedOnion
	fail  domain.FailureReason
}

// PrepareHTLC implements ports.HTLCPreparer: it peels the onion of an HTLC
// for the virtual channel. The result depends on the HTLC and the identity
// key alone, so nodes may peel many HTLCs in parallel while HTLCIntercepted
// still sees them in order. It returns nil for an HTLC that is not for
// lnmux (its onion is for another node: nothing to peel).
func (m *Mux) PrepareHTLC(h ports.InterceptedHTLC) any {
	ns, ok := m.nodes[h.Circuit.Node]
	if !ok || !m.forUs(ns, h) {
		return nil
	}
	onion, fail := m.onion.decode(h.Onion, h.Hash)
	return &peeledOnion{hash: h.Hash, blob: h.Onion, onion: onion, fail: fail}
}

// peel returns the HTLC's decoded onion: the one PrepareHTLC made for this
// very onion and hash, or a fresh decode.
func (m *Mux) peel(h ports.InterceptedHTLC) (decodedOnion, domain.FailureReason) {
	if p, ok := h.Prepared.(*peeledOnion); ok && p.hash == h.Hash && bytes.Equal(p.blob, h.Onion) {
		return p.onion, p.fail
	}
	return m.onion.decode(h.Onion, h.Hash)
}

func (m *Mux) forUs(ns *nodeState, h ports.InterceptedHTLC) bool {
	if h.OutgoingChanID == ns.chanID || h.OutgoingChanID == ns.originalChanID {
		return true
	}
	return h.OutgoingNodeID != nil && *h.OutgoingNodeID == m.pubKey
}

// onHoldTimeout fails one part of a set that did not complete in time.
func (m *Mux) onHoldTimeout(hash domain.PaymentHash, c domain.CircuitKey) {
	m.apply(context.Background(), m.ledger.holdTimeout(hash, c, m.height))
}

// onAcceptTimeout ends a set nobody decided on in time: it expires.
func (m *Mux) onAcceptTimeout(hash domain.PaymentHash, se *setEntry) {
	fx, err := m.ledger.cancel(cancelRequest{hash: hash, only: se, reason: domain.FailAcceptTimeout, expire: true}, m.height)
	if err != nil {
		return
	}
	m.apply(context.Background(), fx)
}

func (m *Mux) height(n domain.NodeKey) uint32 {
	if ns, ok := m.nodes[n]; ok {
		return ns.height.Load()
	}
	return 0
}

// apply carries out a ledger decision: answers, events, logs, metrics.
func (m *Mux) apply(ctx context.Context, fx effects) {
	for _, l := range fx.log {
		m.log.InfoContext(ctx, l.msg, l.attrs...)
	}
	for range fx.held {
		m.cfg.Metrics.HTLCHeld()
	}
	for _, a := range fx.answers {
		ns := m.nodes[a.circuit.Node]
		if ns == nil {
			continue
		}
		if a.action == ports.ActionFail {
			m.fail(ctx, ns, a)
			continue
		}
		m.resolve(ctx, ns, ports.Resolution{Circuit: a.circuit, Action: a.action, Preimage: a.preimage})
	}
	for _, ev := range fx.accepted {
		m.cfg.Metrics.SetAccepted(fx.acceptedParts)
		m.hub.publishAccepted(ev)
	}
	for _, u := range fx.updates {
		m.hub.publishInvoice(u)
	}
	for _, r := range fx.finals {
		m.HTLCFinal(ctx, r)
	}
	if ev := fx.autoSettle; ev != nil {
		m.cfg.Go(func() {
			if _, err := m.startSettle(ctx, ev.Hash, ev.SetID); err != nil {
				m.log.ErrorContext(ctx, "auto-settle failed", "hash", ev.Hash, "err", err)
			}
		})
	}
}

func (m *Mux) fail(ctx context.Context, ns *nodeState, a answer) {
	res, err := failureResolution(a.circuit, a.reason, a.onion, a.fc)
	if err != nil {
		m.log.ErrorContext(ctx, "cannot encrypt failure", "circuit", a.circuit, "err", err)
		return
	}
	m.log.InfoContext(ctx, "failing htlc", "hash", a.hash, "circuit", a.circuit, "reason", a.reason)
	m.cfg.Metrics.HTLCResolved(ports.ActionFail, a.reason)
	m.send(ctx, ns, res)
}

// resolve answers an HTLC with RESUME or SETTLE.
func (m *Mux) resolve(ctx context.Context, ns *nodeState, r ports.Resolution) {
	m.cfg.Metrics.HTLCResolved(r.Action, domain.FailNone)
	m.send(ctx, ns, r)
}

func (m *Mux) send(ctx context.Context, ns *nodeState, r ports.Resolution) {
	if !m.answers.enter() {
		// Not the leader any more: lnd keeps the HTLC and offers it to
		// the next one (leadership.go).
		m.log.DebugContext(ctx, "answer withheld: not leading", "circuit", r.Circuit, "action", r.Action)
		return
	}
	defer m.answers.leave()
	if err := ns.node.Resolve(ctx, r); err != nil {
		// lnd keeps the HTLC and re-offers it after reconnecting; the
		// replay is answered then (the ledger remembers the decision).
		m.log.WarnContext(ctx, "resolution not delivered", "circuit", r.Circuit, "action", r.Action, "err", err)
	}
}

// BlockHeight implements ports.NodeSink. Sets holding an HTLC of this node
// close to lnd's auto-fail height are cancelled before lnd fails it (I4);
// a set whose settlement is being committed is never touched (I7).
func (m *Mux) BlockHeight(ctx context.Context, node domain.NodeKey, height uint32) {
	ns, ok := m.nodes[node]
	if !ok {
		return
	}
	ns.height.Store(height)
	for _, v := range m.ledger.nearAutoFail(node, height, m.cfg.AutoFailMargin) {
		fx, err := m.ledger.cancel(v, m.height)
		if err != nil {
			m.log.DebugContext(ctx, "auto-fail cancel skipped", "hash", v.hash, "err", err)
			continue
		}
		m.apply(ctx, fx)
	}
}
