package app

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	sphinx "github.com/lightningnetwork/lightning-onion"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Blinded payments in the simulation (docs/design.md, "Simulation";
// docs/blinded.md). A third of the invoices are blinded. Their payer reads
// the invoice with lnd's decoder and sends each part through the path of a
// node, packing the onion with lnd's route code; the node plays lnd's
// introduction node with lnd's own hop iterator (htlcswitch/hop/iterator.go)
// and offers lnmux what lnd's interceptor offers for a forward addressed to
// a node (lnrpc/routerrpc/forward_interceptor.go): OutgoingNodeID = lnmux's
// key, OutgoingChanID all ones, the onion after its own layer, and the
// outgoing amount and expiry it derived from the path's relay info. From
// there a blinded part is an HTLC like any other: held, re-offered, failed
// by lnd, forced on chain, across crashes and leadership changes.
//
// The payer's choices, session keys and the adversarial HTLCs come from a
// stream of their own (sim.payer), so that the schedule's stream is drawn
// as in runs before blinded invoices existed.

// blindedPlan is one part of a blinded payment, built when it is sent: a
// payer computes each HTLC's CLTV from the height of the moment, and the
// path's final delta includes only a few blocks of padding for delays.
type blindedPlan struct {
	node          *simNode
	amount, total domain.Msat
	htlcID        uint64
	// autoFailIn is the schedule's auto-fail draw, in blocks from the
	// height at sending (capped by what lnd would set).
	autoFailIn uint32
}

// Kinds of adversarial blinded HTLCs: each must be refused, never taken
// into a set.
const (
	badOtherHash = "path used with another payment hash"
	badOtherNode = "path's htlc offered through another node"
	badTampered  = "lnmux's encrypted data in the path tampered"
)

// blindedHTLC describes one HTLC through a blinded path.
type blindedHTLC struct {
	path *zpay32.BlindedPaymentPath
	hash domain.PaymentHash
	// at is the node that offers the HTLC to lnmux: the path's
	// introduction node, except for badOtherNode.
	at            *simNode
	amount, total domain.Msat
	htlcID        uint64
	autoFailIn    uint32
}

// payerKey is a payer's onion session key, from the seed.
func (s *sim) payerKey() *btcec.PrivateKey {
	for {
		var b [32]byte
		for i := range b {
			b[i] = byte(s.payer.UintN(256))
		}
		var k btcec.ModNScalar
		if overflow := k.SetBytes(&b); overflow == 0 && !k.IsZero() {
			return btcec.PrivKeyFromScalar(&k)
		}
	}
}

// decodeBlinded reads a blinded invoice as lnd's payer does.
func decodeBlinded(inv ports.AddInvoiceResult) (*zpay32.Invoice, error) {
	dec, err := zpay32.Decode(inv.PaymentRequest, &chaincfg.RegressionNetParams)
	if err != nil {
		return nil, fmt.Errorf("lnd cannot decode the blinded invoice: %w", err)
	}
	if len(dec.BlindedPaymentPaths) == 0 {
		return nil, errors.New("blinded invoice without paths")
	}
	return dec, nil
}

// pathThrough returns the invoice's path whose introduction node is n, or
// nil.
func pathThrough(dec *zpay32.Invoice, n domain.NodeKey) *zpay32.BlindedPaymentPath {
	for _, p := range dec.BlindedPaymentPaths {
		if bytes.Equal(p.Hops[0].BlindedNodePub.SerializeCompressed(), n[:]) {
			return p
		}
	}
	return nil
}

// buildBlinded makes the HTLC the payer sends through b.path and the
// introduction node forwards to lnmux, with lnd's code on both sides. The
// error is the introduction node's refusal: such an HTLC never reaches
// lnmux.
func (s *sim) buildBlinded(b blindedHTLC) (sentHTLC, error) {
	path := b.path
	intro := s.nodeOf(domain.NodeKey(path.Hops[0].BlindedNodePub.SerializeCompressed()))
	if intro == nil {
		return sentHTLC{}, fmt.Errorf("path through unknown node %x", path.Hops[0].BlindedNodePub.SerializeCompressed()[:3])
	}
	f, refused, err := payBlinded(intro.proc, path, b.hash, b.amount, b.total, s.height, s.payerKey())
	if err != nil {
		return sentHTLC{}, err
	}
	if refused != nil {
		return sentHTLC{}, refused
	}
	fee, incomingExpiry, fwd, to, next := f.fee, f.incomingExpiry, f.fwd, f.to, f.next
	circuit, introEnc := f.circuit, f.introEnc
	// lnd's auto-fail height is the incoming expiry less its CLTV reject
	// delta (htlcswitch/interceptable_switch.go, lncfg's
	// DefaultFinalCltvRejectDelta); the schedule may draw an earlier one.
	const lndCltvRejectDelta = 19
	autoFail := min(s.height+b.autoFailIn, incomingExpiry-lndCltvRejectDelta)
	return sentHTLC{
		htlc: ports.InterceptedHTLC{
			Circuit:        domain.CircuitKey{Node: b.at.key, Chan: 7, HTLC: b.htlcID},
			Hash:           b.hash,
			OutgoingChanID: ^uint64(0),
			OutgoingNodeID: &to,
			Forward: domain.Forward{
				IncomingAmount: b.amount + fee,
				OutgoingAmount: domain.Msat(fwd.AmountToForward),
				IncomingExpiry: incomingExpiry,
				OutgoingExpiry: fwd.OutgoingCLTV,
			},
			AutoFailHeight: autoFail,
			Onion:          next,
		},
		circuit: circuit,
		intro:   introEnc,
	}, nil
}

// sendBlinded sends the next part of a blinded payment, and now and then an
// adversarial HTLC beside it.
func (s *sim) sendBlinded(p *simPayment) {
	pl := p.plans[p.sent]
	p.sent++
	path := pathThrough(p.dec, pl.node.key)
	if path == nil {
		// The invoice has no path through that node: the payer takes one
		// it has.
		path = p.dec.BlindedPaymentPaths[pl.htlcID%uint64(len(p.dec.BlindedPaymentPaths))]
	}
	b := blindedHTLC{path: path, hash: p.inv.Hash, amount: pl.amount, total: pl.total, htlcID: pl.htlcID,
		autoFailIn: pl.autoFailIn}
	b.at = s.nodeOf(domain.NodeKey(path.Hops[0].BlindedNodePub.SerializeCompressed()))
	sent, err := s.buildBlinded(b)
	if err != nil {
		// lnd's introduction node refuses only what lnmux's path does not
		// allow: after the path's max_cltv_expiry, which is at least
		// minPathBlocks after the invoice was made.
		if s.height <= p.height+minPathBlocks {
			s.violate("lnd's introduction node refuses a part of blinded invoice %x at height %d (made at %d): %v",
				p.inv.Hash[:4], s.height, p.height, err)
			return
		}
		s.tracef("blinded part %d of %x refused by the introduction node: %v", pl.htlcID, p.inv.Hash[:4], err)
		return
	}
	s.deliver(sent, "", s.checkPeeled(sent, p, pl))
	if s.payer.IntN(8) == 0 {
		s.sendBad(p, b)
	}
}

// checkPeeled: lnmux peels a well-formed blinded HTLC into what the payer
// wrote (amount, CLTV, total) and the invoice's payment address, whatever
// node it came through. It returns the peeled onion, which the node's
// adapter hands lnmux with the HTLC as lnd's adapter does
// (ports.HTLCPreparer).
func (s *sim) checkPeeled(sent sentHTLC, p *simPayment, pl blindedPlan) any {
	prepared := s.mux.PrepareHTLC(sent.htlc)
	pp, ok := prepared.(*peeledOnion)
	if !ok {
		s.violate("blinded part %s not taken as lnmux's", sent.htlc.Circuit)
		return nil
	}
	want := domain.FinalHop{AmountToForward: pl.amount, OutgoingCLTV: s.height, Blinded: true,
		MPP: &domain.MPP{Total: pl.total, Addr: p.inv.PaymentAddr}}
	got := pp.onion.payload
	show := func(f domain.FinalHop) string {
		if f.MPP == nil {
			return fmt.Sprintf("amount %d cltv %d blinded %v, no total", f.AmountToForward, f.OutgoingCLTV, f.Blinded)
		}
		return fmt.Sprintf("amount %d cltv %d blinded %v total %d addr %x", f.AmountToForward, f.OutgoingCLTV, f.Blinded,
			f.MPP.Total, f.MPP.Addr[:4])
	}
	if pp.fail != domain.FailNone || show(got) != show(want) {
		s.violate("well-formed blinded part %s (of %x, through %x) peeled as %s (failure %v), want %s",
			sent.htlc.Circuit, p.inv.Hash[:4], sent.htlc.Circuit.Node[:3], show(got), pp.fail, show(want))
	}
	return prepared
}

// deliver hands an HTLC to its node: held and offered to lnmux, or failed
// by lnd at once while no interceptor is connected. prepared, if not nil,
// is the current incarnation's PrepareHTLC of it; re-offers come without.
func (s *sim) deliver(sent sentHTLC, bad string, prepared any) {
	c := sent.htlc.Circuit
	n := s.nodeOf(c.Node)
	if n.down {
		// lnd fails new HTLCs at once while no interceptor is connected.
		s.htlcs[c] = &lndHTLC{sent: sent, state: lndFailed, byLnd: true, bad: bad}
		return
	}
	s.htlcs[c] = &lndHTLC{sent: sent, bad: bad}
	h := sent.htlc
	if n.holder == s.epoch {
		h.Prepared = prepared
	}
	s.offer(n, h)
	if bad != "" {
		s.checkRefused(c)
	}
}

// sendBad sends an HTLC made from a valid part b of a blinded payment but
// not payable: b's path with another hash, through another node, or with
// lnmux's encrypted data tampered.
func (s *sim) sendBad(p *simPayment, b blindedHTLC) {
	kinds := []string{badOtherHash, badTampered}
	if len(s.nodes) > 1 {
		kinds = append(kinds, badOtherNode)
	}
	kind := kinds[s.payer.IntN(len(kinds))]
	s.h.htlcID++
	b.htlcID = s.h.htlcID
	switch kind {
	case badOtherHash:
		// Another invoice's hash if there is one, else a made-up one.
		b.hash[s.payer.IntN(len(b.hash))] ^= 1 << s.payer.IntN(8)
		if o := s.payments[s.payer.IntN(len(s.payments))]; o.inv.Hash != p.inv.Hash {
			b.hash = o.inv.Hash
		}
	case badOtherNode:
		others := slices.DeleteFunc(slices.Clone(s.nodes), func(n *simNode) bool { return n == b.at })
		b.at = others[s.payer.IntN(len(others))]
	case badTampered:
		// One bit of one of lnmux's hops (after the introduction node,
		// which cannot tell).
		tampered := *b.path
		tampered.Hops = slices.Clone(b.path.Hops)
		i := 1 + s.payer.IntN(len(tampered.Hops)-1)
		data := slices.Clone(tampered.Hops[i].CipherText)
		data[s.payer.IntN(len(data))] ^= 1 << s.payer.IntN(8)
		tampered.Hops[i] = &sphinx.BlindedHopInfo{BlindedNodePub: tampered.Hops[i].BlindedNodePub, CipherText: data}
		b.path = &tampered
	}
	sent, err := s.buildBlinded(b)
	if err != nil {
		// lnd's introduction node caught it (the path expired): it never
		// reaches lnmux.
		s.tracef("bad blinded htlc %d (%s) refused by the introduction node: %v", b.htlcID, kind, err)
		return
	}
	s.tracef("bad blinded htlc %s: %s", sent.htlc.Circuit, kind)
	s.deliver(sent, kind, nil)
}

// checkRefused: an adversarial HTLC is in no set of any incarnation.
func (s *sim) checkRefused(c domain.CircuitKey) {
	l := s.htlcs[c]
	for _, m := range s.muxes {
		if v, ok := m.core.Set(l.sent.htlc.Hash); ok && slices.Contains(v.Circuits, c) {
			s.violate("%s (%s) taken into a %v set", c, l.bad, v.State)
		}
	}
}

// checkBlindedFail is the payer's view of a FAIL of a blinded HTLC, as it
// leaves lnmux: the failure the payer decrypts (if lnd's introduction node
// passed it on rather than replacing it, htlcswitch/link.go
// sendIncomingHTLCFailureMsg) is invalid_onion_blinding from lnmux's hop,
// never a plain failure that says more. A malformed code (no usable onion)
// only for an HTLC lnmux cannot peel: never for a well-formed one.
func checkBlindedFail(l *lndHTLC, r ports.Resolution) error {
	if len(r.FailureMessage) == 0 {
		if l.bad == "" {
			return fmt.Errorf("well-formed blinded htlc %s failed with malformed code %d: lnmux could not peel it",
				r.Circuit, r.FailureCode)
		}
		if slices.Contains([]lnwire.FailCode{lnwire.CodeInvalidOnionHmac, lnwire.CodeInvalidOnionKey, lnwire.CodeInvalidOnionVersion},
			lnwire.FailCode(r.FailureCode)) {
			return nil
		}
		return fmt.Errorf("blinded htlc %s failed with code %d", r.Circuit, r.FailureCode)
	}
	de, err := sphinx.NewOnionErrorDecrypter(l.sent.circuit).DecryptError(l.sent.intro.IntermediateEncrypt(r.FailureMessage))
	if err != nil {
		return fmt.Errorf("the payer cannot read the failure of blinded htlc %s: %w", r.Circuit, err)
	}
	// From lnmux's first hop, the one after the introduction node
	// (lnmux peels any hop of its own beyond it itself).
	if de.SenderIdx != 2 {
		return fmt.Errorf("failure of blinded htlc %s from hop %d of %d", r.Circuit, de.SenderIdx, len(l.sent.circuit.PaymentPath))
	}
	msg, err := lnwire.DecodeFailure(bytes.NewReader(de.Message), 0)
	if err != nil {
		return fmt.Errorf("failure of blinded htlc %s: %w", r.Circuit, err)
	}
	if _, ok := msg.(*lnwire.FailInvalidBlinding); !ok {
		return fmt.Errorf("blinded htlc %s failed with %T (%s), want invalid_onion_blinding", r.Circuit, msg, msg.Error())
	}
	return nil
}

// blindedStats counts, over a test's runs, what the blinded part of the
// simulation exercised (TestSimulation logs them).
var blindedStats struct {
	parts, settled, failed, bad atomic.Int64
	plain, plainSettled         atomic.Int64
	// sets: stored sets of blinded parts; acrossNodes: of those, the
	// ones whose parts came through two nodes or more.
	sets, acrossNodes atomic.Int64
}

// countBlinded adds a finished run's blinded HTLCs to blindedStats.
func (s *sim) countBlinded() {
	for _, inv := range s.store.invs {
		nodes := map[domain.NodeKey]bool{}
		for _, h := range inv.HTLCs {
			if l := s.htlcs[h.Circuit]; l != nil && l.sent.intro != nil {
				nodes[h.Circuit.Node] = true
			}
		}
		if len(nodes) > 0 {
			blindedStats.sets.Add(1)
		}
		if len(nodes) > 1 {
			blindedStats.acrossNodes.Add(1)
		}
	}
	for _, l := range s.htlcs {
		switch {
		case l.sent.intro == nil:
			blindedStats.plain.Add(1)
			if l.state == lndSettled {
				blindedStats.plainSettled.Add(1)
			}
		case l.bad != "":
			blindedStats.bad.Add(1)
		default:
			blindedStats.parts.Add(1)
			switch l.state {
			case lndSettled:
				blindedStats.settled.Add(1)
			case lndFailed:
				blindedStats.failed.Add(1)
			}
		}
	}
}
