package app

import (
	"bytes"
	"context"
	"time"

	"github.com/lnmux/lnmux/app/core"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// HTLCIntercepted implements ports.NodeSink: the HTLC path (docs/design.md,
// "The HTLC path"). The onion is peeled here, on the node's goroutine (or
// ahead, in parallel, by PrepareHTLC); everything else is the machine's
// (core.Machine.Offered). It returns once the HTLC is answered or held.
func (m *Mux) HTLCIntercepted(ctx context.Context, h ports.InterceptedHTLC) {
	ns, ok := m.nodes[h.Circuit.Node]
	if !ok {
		m.log.ErrorContext(ctx, "htlc from unknown node", "circuit", h.Circuit)
		return
	}
	o := core.Offer{
		Circuit:        h.Circuit,
		Hash:           h.Hash,
		Forward:        h.Forward,
		AutoFailHeight: h.AutoFailHeight,
		ForUs:          m.forUs(ns, h),
	}
	if o.ForUs {
		onion, fail := m.peel(h)
		o.Payload, o.PeelFail = onion.payload, fail
		// Only the keys are kept: a failure's encrypter is derived from
		// them when needed (onion.go).
		o.Onion = onion.failureKey()
	}
	m.do(ctx, func(c *core.Machine, now time.Time) { c.Offered(now, o) })
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
	onion, fail := m.decode(h)
	return &peeledOnion{hash: h.Hash, blob: h.Onion, onion: onion, fail: fail}
}

// peel returns the HTLC's decoded onion: the one PrepareHTLC made for this
// very onion and hash, or a fresh decode.
func (m *Mux) peel(h ports.InterceptedHTLC) (decodedOnion, domain.FailureReason) {
	if p, ok := h.Prepared.(*peeledOnion); ok && p.hash == h.Hash && bytes.Equal(p.blob, h.Onion) {
		return p.onion, p.fail
	}
	return m.decode(h)
}

// decode peels an HTLC for lnmux. One addressed to lnmux's node id rather
// than to its virtual channel came through a blinded path: only blinded
// route data names a next node (docs/blinded.md).
func (m *Mux) decode(h ports.InterceptedHTLC) (decodedOnion, domain.FailureReason) {
	if h.OutgoingNodeID != nil {
		return m.onion.decodeBlinded(m.blinder, h.Onion, h.Hash, h.Circuit.Node,
			h.Forward.OutgoingAmount, h.Forward.OutgoingExpiry)
	}
	return m.onion.decode(h.Onion, h.Hash)
}

func (m *Mux) forUs(ns *nodeState, h ports.InterceptedHTLC) bool {
	if h.OutgoingChanID == ns.chanID || h.OutgoingChanID == ns.originalChanID {
		return true
	}
	return h.OutgoingNodeID != nil && *h.OutgoingNodeID == m.pubKey
}

// BlockHeight implements ports.NodeSink (core.Machine.Block).
func (m *Mux) BlockHeight(ctx context.Context, node domain.NodeKey, height uint32) {
	ns, ok := m.nodes[node]
	if !ok {
		return
	}
	ns.height.Store(height)
	m.do(ctx, func(c *core.Machine, _ time.Time) { c.Block(node, height) })
}

// HTLCFinal implements ports.NodeSink: lnd's final word on an HTLC
// (core.Machine.Final).
func (m *Mux) HTLCFinal(ctx context.Context, r ports.FinalResolution) {
	m.do(ctx, func(c *core.Machine, now time.Time) { c.Final(now, r) })
}

// PendingCircuits implements ports.NodeSink (core.Machine.Pending).
func (m *Mux) PendingCircuits(ctx context.Context, node domain.NodeKey) []domain.CircuitKey {
	var out []domain.CircuitKey
	m.do(ctx, func(c *core.Machine, _ time.Time) { out = c.Pending(node) })
	return out
}
