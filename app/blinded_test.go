package app

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	sphinx "github.com/lightningnetwork/lightning-onion"
	"github.com/lightningnetwork/lnd/fn/v2"
	"github.com/lightningnetwork/lnd/htlcswitch/hop"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/record"
	"github.com/lightningnetwork/lnd/routing"
	"github.com/lightningnetwork/lnd/routing/route"
	"github.com/lightningnetwork/lnd/tlv"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Blinded invoices are checked against lnd's own code on every side: lnd's
// decoder reads the invoice and builds the payer's path set, lnd's route
// packs the payer's onion, and lnd's hop iterator plays the introduction
// node, whose output (onion, amount, expiry, next path key) is what lnmux
// receives. docs/blinded.md.

// blindedInvoice makes a blinded invoice and decodes it with lnd's decoder.
func (h *harness) blindedInvoice(amt domain.Msat, expiry time.Duration) (ports.AddInvoiceResult, *zpay32.Invoice) {
	h.t.Helper()
	res, err := h.mux.AddInvoice(context.Background(), ports.AddInvoiceRequest{Amount: amt, Expiry: expiry, Blinded: true})
	if err != nil {
		h.t.Fatal(err)
	}
	dec, err := zpay32.Decode(res.PaymentRequest, &chaincfg.RegressionNetParams)
	if err != nil {
		h.t.Fatalf("lnd cannot decode the blinded invoice: %v", err)
	}
	// What lnd's payer does with them (lnrpc/routerrpc/router_backend.go,
	// BuildBlindedPathSet).
	var set []*routing.BlindedPayment
	for _, p := range dec.BlindedPaymentPaths {
		bp := &routing.BlindedPayment{
			BlindedPath: &sphinx.BlindedPath{IntroductionPoint: p.Hops[0].BlindedNodePub,
				BlindingPoint: p.FirstEphemeralBlindingPoint, BlindedHops: p.Hops},
			BaseFee: p.FeeBaseMsat, ProportionalFeeRate: p.FeeRate, CltvExpiryDelta: p.CltvExpiryDelta,
			HtlcMinimum: p.HTLCMinMsat, HtlcMaximum: p.HTLCMaxMsat, Features: p.Features,
		}
		if err := bp.Validate(); err != nil {
			h.t.Fatalf("lnd's payer refuses a path: %v", err)
		}
		set = append(set, bp)
	}
	if _, err := routing.NewBlindedPaymentPathSet(set); err != nil {
		h.t.Fatalf("lnd's payer refuses the paths: %v", err)
	}
	return res, dec
}

// blindedPart is one HTLC a payer sends through a blinded path.
type blindedPart struct {
	node   *fakeNode
	amount domain.Msat
	total  domain.Msat
	htlcID uint64 // 0: next id
	// path replaces the invoice's path through node (a tampered one).
	path *zpay32.BlindedPaymentPath
	// hash replaces the invoice's payment hash (a path used for another
	// payment).
	hash *domain.PaymentHash
}

// introResult is what lnd's introduction node made of the payer's HTLC.
type introResult struct {
	fwd hop.ForwardingInfo
	err error
}

// buildBlinded makes the HTLC a payer sends through the invoice's path via
// p.node, as the node hands it to lnmux after processing it with lnd's hop
// iterator. It also returns what the introduction node computed.
func (h *harness) buildBlinded(inv *zpay32.Invoice, p blindedPart) (sentHTLC, introResult) {
	h.t.Helper()
	if p.htlcID == 0 {
		h.htlcID++
		p.htlcID = h.htlcID
	}
	if p.total == 0 {
		p.total = p.amount
	}
	path := p.path
	for _, bp := range inv.BlindedPaymentPaths {
		if path == nil && bytes.Equal(bp.Hops[0].BlindedNodePub.SerializeCompressed(), p.node.key[:]) {
			path = bp
		}
	}
	if path == nil {
		h.t.Fatalf("no blinded path through node %s", p.node.key)
	}
	hash := *inv.PaymentHash
	if p.hash != nil {
		hash = *p.hash
	}
	router := sphinx.NewRouter(&sphinx.PrivKeyECDH{PrivKey: p.node.priv}, sphinx.NewMemoryReplayLog())
	session, err := btcec.NewPrivateKey()
	if err != nil {
		h.t.Fatal(err)
	}
	f, refused, err := payBlinded(hop.NewOnionProcessor(router), path, hash, p.amount, p.total, h.height, session)
	if err != nil {
		h.t.Fatal(err)
	}
	if refused != nil {
		// lnd's introduction node refuses it: it never reaches lnmux.
		return sentHTLC{}, introResult{err: refused}
	}
	fwd, fee, incomingExpiry, next := f.fwd, f.fee, f.incomingExpiry, f.next
	to := f.to
	circuit := f.circuit
	introEnc := f.introEnc
	return sentHTLC{
		htlc: ports.InterceptedHTLC{
			Circuit:        domain.CircuitKey{Node: p.node.key, Chan: 7, HTLC: p.htlcID},
			Hash:           hash,
			OutgoingChanID: ^uint64(0),
			OutgoingNodeID: &to,
			Forward: domain.Forward{
				IncomingAmount: p.amount + fee,
				OutgoingAmount: domain.Msat(fwd.AmountToForward),
				IncomingExpiry: incomingExpiry,
				OutgoingExpiry: fwd.OutgoingCLTV,
			},
			Onion: next,
		},
		circuit: circuit,
		intro:   introEnc,
	}, introResult{fwd: fwd}
}

// blindedForward is what lnd's introduction node makes of a payer's HTLC
// through a blinded path.
type blindedForward struct {
	fee            domain.Msat
	incomingExpiry uint32
	fwd            hop.ForwardingInfo
	to             domain.NodeKey
	next           []byte
	circuit        *sphinx.Circuit
	introEnc       hop.ErrorEncrypter
}

// payBlinded builds the HTLC a payer sends through path as lnd's payer
// does (routing/pathfind.go for blinded paths: the final hop's CLTV is the
// height, the path's delta and fee go on top at the introduction node;
// routing/route packs the onion), and processes it as the introduction
// node proc does, with lnd's own code (htlcswitch/hop/iterator.go).
// refused is the introduction node's refusal: such an HTLC never reaches
// lnmux. Shared by the tests and the simulation.
func payBlinded(proc *hop.OnionProcessor, path *zpay32.BlindedPaymentPath, hash domain.PaymentHash,
	amount, total domain.Msat, height uint32, session *btcec.PrivateKey) (f blindedForward, refused, err error) {

	finalCLTV := height
	f.incomingExpiry = finalCLTV + uint32(path.CltvExpiryDelta)
	f.fee = domain.Msat(path.FeeBaseMsat) + amount*domain.Msat(path.FeeRate)/1_000_000
	last := path.Hops[len(path.Hops)-1]
	hops := []*route.Hop{{
		PubKeyBytes:   route.NewVertex(path.Hops[0].BlindedNodePub),
		EncryptedData: path.Hops[0].CipherText,
		BlindingPoint: path.FirstEphemeralBlindingPoint,
	}}
	for _, bh := range path.Hops[1 : len(path.Hops)-1] {
		hops = append(hops, &route.Hop{PubKeyBytes: route.NewVertex(bh.BlindedNodePub), EncryptedData: bh.CipherText})
	}
	hops = append(hops, &route.Hop{
		PubKeyBytes:      route.NewVertex(last.BlindedNodePub),
		EncryptedData:    last.CipherText,
		AmtToForward:     lnwire.MilliSatoshi(amount),
		OutgoingTimeLock: finalCLTV,
		TotalAmtMsat:     lnwire.MilliSatoshi(total),
	})
	rt, err := route.NewRouteFromHops(lnwire.MilliSatoshi(amount+f.fee), f.incomingExpiry, route.Vertex{2}, hops)
	if err != nil {
		return f, nil, fmt.Errorf("payer's route: %w", err)
	}
	sp, err := rt.ToSphinxPath()
	if err != nil {
		return f, nil, fmt.Errorf("payer's sphinx path: %w", err)
	}
	pkt, err := sphinx.NewOnionPacket(sp, session, hash[:], sphinx.DeterministicPacketFiller)
	if err != nil {
		return f, nil, fmt.Errorf("payer's onion: %w", err)
	}
	var buf bytes.Buffer
	if err := pkt.Encode(&buf); err != nil {
		return f, nil, err
	}

	iter, err := proc.ReconstructHopIterator(bytes.NewReader(buf.Bytes()), hash[:],
		hop.ReconstructBlindingInfo{IncomingAmt: lnwire.MilliSatoshi(amount + f.fee), IncomingExpiry: f.incomingExpiry})
	if err != nil {
		return f, nil, fmt.Errorf("introduction node cannot read the onion: %w", err)
	}
	payload, _, err := iter.HopPayload()
	if err != nil {
		return f, fmt.Errorf("introduction node refuses the payload: %w", err), nil
	}
	f.fwd = payload.ForwardingInfo()
	var code lnwire.FailCode
	if f.introEnc, code = iter.ExtractErrorEncrypter(proc.ExtractErrorEncrypter, true); code != lnwire.CodeNone {
		return f, nil, fmt.Errorf("introduction node's error encrypter: %v", code)
	}
	var next bytes.Buffer
	if err := iter.EncodeNextHop(&next); err != nil {
		return f, nil, err
	}
	f.next = next.Bytes()
	if !f.fwd.NextHop.IsRight() {
		return f, nil, fmt.Errorf("introduction node forwards to a channel, not to a node: %v", f.fwd.NextHop)
	}
	f.to = domain.NodeKey(f.fwd.NextHop.UnwrapRightOr([33]byte{}))
	f.circuit = &sphinx.Circuit{SessionKey: session}
	for _, hp := range sp[:sp.TrueRouteLength()] {
		f.circuit.PaymentPath = append(f.circuit.PaymentPath, &hp.NodePub)
	}
	return f, nil, nil
}

// TestBlindedInvoiceShape: the invoice lnd decodes has one path per node,
// the node as introduction point, no route hints, no payment secret, no
// final CLTV field, route blinding among its features, and a payee key that
// is neither lnmux's nor any node's.
func TestBlindedInvoiceShape(t *testing.T) {
	h := newHarness(t, 2, nil)
	inv, dec := h.blindedInvoice(10_000, time.Hour)
	if len(dec.RouteHints) != 0 || dec.PaymentAddr.IsSome() {
		t.Fatalf("blinded invoice with hints %d or a payment address", len(dec.RouteHints))
	}
	if len(dec.BlindedPaymentPaths) != len(h.nodes) {
		t.Fatalf("%d paths for %d nodes", len(dec.BlindedPaymentPaths), len(h.nodes))
	}
	seen := map[domain.NodeKey]bool{}
	for _, p := range dec.BlindedPaymentPaths {
		var intro domain.NodeKey
		copy(intro[:], p.Hops[0].BlindedNodePub.SerializeCompressed())
		seen[intro] = true
		// The node, lnmux's dummy hop, lnmux.
		if len(p.Hops) != 3 {
			t.Errorf("path of %d hops, want 3", len(p.Hops))
		}
		if p.FeeBaseMsat != 1000 || p.FeeRate != 100 || p.CltvExpiryDelta != 40+uint16(h.mux.cfg.FinalCLTVDelta)+blockPadding {
			t.Errorf("pay info %d %d %d", p.FeeBaseMsat, p.FeeRate, p.CltvExpiryDelta)
		}
		for _, bh := range p.Hops[1:] {
			if domain.NodeKey(bh.BlindedNodePub.SerializeCompressed()) == h.mux.pubKey {
				t.Error("a blinded hop is lnmux's real key")
			}
		}
	}
	for _, n := range h.nodes {
		if !seen[n.key] {
			t.Errorf("no path through node %s", n.key)
		}
	}
	payee := domain.NodeKey(dec.Destination.SerializeCompressed())
	if payee == h.mux.pubKey || seen[payee] {
		t.Fatal("the invoice is signed by lnmux's or a node's key")
	}
	if !dec.Features.HasFeature(lnwire.RouteBlindingOptional) || !dec.Features.HasFeature(lnwire.MPPOptional) {
		t.Fatalf("features %v", dec.Features)
	}
	if dec.MinFinalCLTVExpiry() != zpay32.DefaultAssumedFinalCLTVDelta { // no field in the invoice
		t.Fatalf("min final cltv field %d", dec.MinFinalCLTVExpiry())
	}
	if *dec.PaymentHash != inv.Hash || *dec.MilliSat != 10_000 {
		t.Fatal("hash or amount")
	}
	// Stateless: a second invoice's paths differ (another hash, another
	// session key), and nothing was stored.
	_, dec2 := h.blindedInvoice(10_000, time.Hour)
	if dec2.BlindedPaymentPaths[0].FirstEphemeralBlindingPoint.IsEqual(dec.BlindedPaymentPaths[0].FirstEphemeralBlindingPoint) {
		t.Fatal("two invoices share a path key")
	}
	if n, _ := h.store.List(context.Background(), 0, 10); len(n) != 0 {
		t.Fatal("an invoice was stored")
	}
}

// TestBlindedPathKeyAgreesWithLnd: the path key lnmux recomputes is the
// one lnd's introduction node sends, and the introduction node forwards to
// lnmux's node id with the fee and CLTV delta of the path.
func TestBlindedPathKeyAgreesWithLnd(t *testing.T) {
	h := newHarness(t, 2, nil)
	inv, dec := h.blindedInvoice(10_000, time.Hour)
	for _, n := range h.nodes {
		s, intro := h.buildBlinded(dec, blindedPart{node: n, amount: 6_000, total: 10_000})
		if intro.err != nil {
			t.Fatalf("introduction node refuses: %v", intro.err)
		}
		want, err := h.mux.blinder.pathKey(inv.Hash, n.key)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := intro.fwd.NextBlinding.UnwrapOr(intro.fwd.NextBlinding.Zero()), intro.fwd.NextBlinding.IsSome()
		if !ok || !got.Val.IsEqual(want) {
			t.Fatal("lnmux's path key differs from the one lnd's introduction node sends")
		}
		if *s.htlc.OutgoingNodeID != h.mux.pubKey {
			t.Fatal("introduction node forwards elsewhere than lnmux")
		}
		if s.htlc.Forward.OutgoingAmount != 6_000 {
			t.Fatalf("forwarded %d, want the payer's 6000", s.htlc.Forward.OutgoingAmount)
		}
		if s.htlc.Forward.IncomingExpiry-s.htlc.Forward.OutgoingExpiry != 40 {
			t.Fatal("cltv delta of the relay")
		}
	}
}

// TestBlindedMultiPartAcrossNodes: two parts through two introduction
// nodes make one set, settled like any.
func TestBlindedMultiPartAcrossNodes(t *testing.T) {
	h := newHarness(t, 2, nil)
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv, dec := h.blindedInvoice(10_000, time.Hour)
	sa, _ := h.buildBlinded(dec, blindedPart{node: a, amount: 6_000, total: 10_000, htlcID: 1})
	h.send(sa)
	a.none(t)
	sb, _ := h.buildBlinded(dec, blindedPart{node: b, amount: 4_000, total: 10_000, htlcID: 1})
	h.send(sb)
	ev := nextAccepted(t, acc)
	if ev.Amount != 10_000 || ev.Hash != inv.Hash {
		t.Fatalf("accepted %+v", ev)
	}
	if err := h.mux.SettleInvoice(context.Background(), inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	ra, rb := a.next(t), b.next(t)
	if ra.Action != ports.ActionSettle || rb.Action != ports.ActionSettle || ra.Preimage != inv.Preimage {
		t.Fatalf("resolutions %s %s", ra.Action, rb.Action)
	}
	ctx := context.Background()
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: ra.Circuit, Settled: true})
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: rb.Circuit, Settled: true})
	h.quiet()
	if st, err := h.mux.WaitForFinalStatus(ctx, inv.Hash); err != nil || st != domain.StatusSettled {
		t.Fatalf("final %v %v", st, err)
	}
}

// blindedFailure decrypts a blinded HTLC's failure as the payer would if
// the introduction node passed it on (lnd's replaces it by its own
// invalid_onion_blinding, which says the same).
func (h *harness) blindedFailure(s sentHTLC, r ports.Resolution) lnwire.FailureMessage {
	h.t.Helper()
	if r.Action != ports.ActionFail {
		h.t.Fatalf("resolution is %s, want fail", r.Action)
	}
	if len(r.FailureMessage) == 0 {
		// No usable onion: a malformed code lnd's introduction node turns
		// into invalid_onion_blinding.
		if lnwire.FailCode(r.FailureCode) != lnwire.CodeInvalidOnionHmac {
			h.t.Fatalf("blinded failure with code %d", r.FailureCode)
		}
		return lnwire.NewInvalidBlinding(fn.None[[lnwire.OnionPacketSize]byte]())
	}
	// The introduction node adds its layer on the way back.
	de, err := sphinx.NewOnionErrorDecrypter(s.circuit).DecryptError(s.intro.IntermediateEncrypt(r.FailureMessage))
	if err != nil {
		h.t.Fatalf("decrypt failure: %v", err)
	}
	// From the hop after the introduction node: lnmux's first (dummy) hop.
	if de.SenderIdx != 2 {
		h.t.Fatalf("failure from hop %d of %d", de.SenderIdx, len(s.circuit.PaymentPath))
	}
	msg, err := lnwire.DecodeFailure(bytes.NewReader(de.Message), 0)
	if err != nil {
		h.t.Fatalf("decode failure: %v", err)
	}
	return msg
}

func isInvalidBlinding(m lnwire.FailureMessage) bool {
	_, ok := m.(*lnwire.FailInvalidBlinding)
	return ok
}

// TestBlindedRefusals: every failure of a blinded HTLC is
// invalid_onion_blinding: a tampered path, a path used for another
// payment hash, a path through another node, an unknown invoice, a part
// that times out, a payment of a paid invoice.
func TestBlindedRefusals(t *testing.T) {
	h := newHarness(t, 2, func(c *Config) { c.AutoSettle = true })
	a, b := h.nodes[0], h.nodes[1]
	inv, dec := h.blindedInvoice(10_000, time.Hour)
	ctx := context.Background()

	refused := func(name string, s sentHTLC, n *fakeNode) {
		t.Helper()
		h.send(s)
		if m := h.blindedFailure(s, n.next(t)); !isInvalidBlinding(m) {
			t.Errorf("%s: failure %T, want invalid_onion_blinding", name, m)
		}
	}

	// lnmux's final hop data with a bit flipped: the introduction node
	// cannot tell, lnmux's decryption fails.
	pathA := dec.BlindedPaymentPaths[0]
	if !bytes.Equal(pathA.Hops[0].BlindedNodePub.SerializeCompressed(), a.key[:]) {
		pathA = dec.BlindedPaymentPaths[1]
	}
	tamper := func(i int) *zpay32.BlindedPaymentPath {
		p := *pathA
		p.Hops = slices.Clone(pathA.Hops)
		p.Hops[i] = &sphinx.BlindedHopInfo{
			BlindedNodePub: pathA.Hops[i].BlindedNodePub,
			CipherText:     append([]byte(nil), pathA.Hops[i].CipherText...),
		}
		p.Hops[i].CipherText[3] ^= 1
		return &p
	}
	for i, name := range map[int]string{1: "tampered dummy hop", 2: "tampered final hop"} {
		s, intro := h.buildBlinded(dec, blindedPart{node: a, amount: 10_000, path: tamper(i)})
		if intro.err != nil {
			t.Fatalf("introduction node refuses a path whose hop %d was changed: %v", i, intro.err)
		}
		refused(name, s, a)
	}

	// The introduction hop's data changed: lnd's introduction node
	// refuses it itself.
	if _, intro := h.buildBlinded(dec, blindedPart{node: a, amount: 10_000, path: tamper(0)}); intro.err == nil {
		t.Error("lnd's introduction node accepted a tampered introduction hop")
	}

	// A path of this invoice used for another invoice's hash.
	other, _ := h.blindedInvoice(10_000, time.Hour)
	s, _ := h.buildBlinded(dec, blindedPart{node: a, amount: 10_000, hash: &other.Hash})
	refused("path replayed for another hash", s, a)

	// The path through a offered through b: another path key.
	s, _ = h.buildBlinded(dec, blindedPart{node: a, amount: 10_000})
	s.htlc.Circuit.Node = b.key
	refused("path through another node", s, b)

	// Paid, then paid again through the same path.
	s, _ = h.buildBlinded(dec, blindedPart{node: a, amount: 10_000})
	h.send(s)
	if r := a.next(t); r.Action != ports.ActionSettle {
		t.Fatalf("payment: %s", r.Action)
	}
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: s.htlc.Circuit, Settled: true})
	h.quiet()
	s, _ = h.buildBlinded(dec, blindedPart{node: b, amount: 10_000})
	refused("second payment of a paid invoice", s, b)
	_ = inv

	// A part that never completes its set times out.
	_, dec3 := h.blindedInvoice(10_000, time.Hour)
	s, _ = h.buildBlinded(dec3, blindedPart{node: a, amount: 4_000, total: 10_000})
	h.send(s)
	a.none(t)
	h.clock.Advance(h.mux.cfg.HoldTimeout + time.Second)
	if m := h.blindedFailure(s, a.next(t)); !isInvalidBlinding(m) {
		t.Errorf("mpp timeout: failure %T, want invalid_onion_blinding", m)
	}
}

// TestBlindedPlainOnionRefused: an onion for lnmux's real key sent as a
// node-addressed forward (not through a path lnmux made) is refused.
func TestBlindedPlainOnionRefused(t *testing.T) {
	h := newHarness(t, 1, nil)
	n := h.nodes[0]
	inv := h.invoice(10_000, time.Hour)
	s := h.build(inv, part{node: n, amount: 10_000})
	id := h.mux.pubKey
	s.htlc.OutgoingNodeID = &id
	s.htlc.OutgoingChanID = ^uint64(0)
	h.send(s)
	r := n.next(t)
	if r.Action != ports.ActionFail {
		t.Fatalf("resolution %s", r.Action)
	}
}

// TestBlindedNeedsHeight: a blinded invoice's paths are bounded from the
// chain height; without one, AddInvoice refuses rather than guess.
func TestBlindedNeedsHeight(t *testing.T) {
	h := newHarness(t, 1, nil)
	h.height = 0
	h.restart()
	_, err := h.mux.AddInvoice(context.Background(), ports.AddInvoiceRequest{Amount: 1000, Expiry: time.Hour, Blinded: true})
	if err == nil {
		t.Fatal("blinded invoice without a chain height")
	}
}

// FuzzPeelBlinded wraps arbitrary recipient data for lnmux's blinded final
// hop in a valid blinded onion (the right path key, the right encryption),
// so that what is fuzzed is the parsing and checking behind the crypto.
// Whatever lnmux accepts, lnd's own final-hop processing accepts too, with
// the same path id: lnmux is never laxer than lnd.
func FuzzPeelBlinded(f *testing.F) {
	key, _ := btcec.PrivKeyFromBytes(testIdentity)
	b, err := newBlinder(key)
	if err != nil {
		f.Fatal(err)
	}
	dec := newOnionDecoder(key)
	introKey, _ := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{7}, 32))
	var intro domain.NodeKey
	copy(intro[:], introKey.PubKey().SerializeCompressed())
	f.Add([]byte{6, 32, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
		26, 27, 28, 29, 30, 31, 32}, uint64(5000), uint32(1010), uint64(5000), false)
	f.Add([]byte{6, 32, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
		26, 27, 28, 29, 30, 31, 32, 12, 5, 0, 0, 3, 0xf2, 1}, uint64(5000), uint32(1010), uint64(9000), true)
	f.Fuzz(func(t *testing.T, plain []byte, amt uint64, expiry uint32, total uint64, mpp bool) {
		if len(plain) > 400 || amt == 0 || amt > uint64(domain.MaxMsat) || total > uint64(domain.MaxMsat) {
			return
		}
		var hash domain.PaymentHash
		hash[0] = 9
		info, err := sphinx.BuildBlindedPath(b.sessionKey(hash, intro), []*sphinx.HopInfo{
			{NodePub: introKey.PubKey(), PlainText: []byte{}},
			{NodePub: b.self, PlainText: plain},
		})
		if err != nil {
			return
		}
		last := info.Path.BlindedHops[1]
		h := &route.Hop{
			PubKeyBytes: route.NewVertex(last.BlindedNodePub), EncryptedData: last.CipherText,
			AmtToForward: lnwire.MilliSatoshi(amt), OutgoingTimeLock: expiry, TotalAmtMsat: lnwire.MilliSatoshi(total),
		}
		if mpp {
			h.MPP = record.NewMPP(lnwire.MilliSatoshi(total), [32]byte{1})
		}
		rt, err := route.NewRouteFromHops(lnwire.MilliSatoshi(amt), expiry, route.Vertex{2}, []*route.Hop{h})
		if err != nil {
			return
		}
		sp, err := rt.ToSphinxPath()
		if err != nil {
			return
		}
		session, _ := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{3}, 32))
		pkt, err := sphinx.NewOnionPacket(sp, session, hash[:], sphinx.DeterministicPacketFiller)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := pkt.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		out, fail := dec.decodeBlinded(b, buf.Bytes(), hash, intro, domain.Msat(amt), expiry) //nolint:gosec // bounded above
		if fail != domain.FailNone {
			if fail != domain.FailInvalidBlinding || !out.blinded {
				t.Fatalf("blinded HTLC failed with %s", fail)
			}
			return
		}
		// lnd's final hop, under the same path key.
		pathKey, err := b.pathKey(hash, intro)
		if err != nil {
			t.Fatal(err)
		}
		iter, err := dec.proc.ReconstructHopIterator(bytes.NewReader(buf.Bytes()), hash[:], hop.ReconstructBlindingInfo{
			BlindingKey:    tlv.SomeRecordT(tlv.NewPrimitiveRecord[lnwire.BlindingPointTlvType](pathKey)),
			IncomingAmt:    lnwire.MilliSatoshi(amt),
			IncomingExpiry: expiry,
		})
		if err != nil {
			t.Fatalf("lnmux accepted an onion lnd cannot read: %v", err)
		}
		payload, _, err := iter.HopPayload()
		if err != nil {
			t.Fatalf("lnmux accepted what lnd refuses: %v", err)
		}
		if payload.PathID() == nil || *payload.PathID() != [32]byte(out.payload.MPP.Addr) {
			t.Fatal("path id differs from lnd's")
		}
		if !out.payload.Blinded || out.payload.MPP.Total != domain.Msat(total) || out.payload.AmountToForward != domain.Msat(amt) { //nolint:gosec // bounded above
			t.Fatalf("payload %+v", out.payload)
		}
	})
}

// BenchmarkAddInvoiceBlinded: a blinded invoice of two paths: per path one
// session key, the path keys and blinded ids (sphinx.BuildBlindedPath), two
// encryptions; then the one-time signing key and the signature.
func BenchmarkAddInvoiceBlinded(b *testing.B) {
	h := newHarness(b, 2, nil)
	req := ports.AddInvoiceRequest{Amount: 20000, Expiry: 10 * time.Minute, Description: "coffee", Blinded: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.mux.AddInvoice(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTLCDecideBlinded is BenchmarkHTLCDecide (serial) for HTLCs
// through blinded paths: the path key recomputed, the onion peeled under
// it by the sphinx router, lnmux's data decrypted and checked.
func BenchmarkHTLCDecideBlinded(b *testing.B) {
	h := newHarness(b, 2, nil)
	acc := h.subscribe()
	go func() {
		for range acc {
		}
	}()
	const parts = 8
	var dec *zpay32.Invoice
	sent := make([]sentHTLC, b.N)
	for i := range sent {
		if i%parts == 0 {
			_, dec = h.blindedInvoice(parts*1000, time.Hour)
		}
		sent[i], _ = h.buildBlinded(dec, blindedPart{node: h.nodes[i%2], amount: 1000, total: parts * 1000})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range sent {
		h.send(sent[i])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "htlc/s")
}

// TestBlindedInvoiceFitsLnd: with more nodes than paths an invoice may
// carry and the longest description, lnd still decodes the invoice.
func TestBlindedInvoiceFitsLnd(t *testing.T) {
	h := newHarness(t, maxBlindedPaths+3, nil)
	res, err := h.mux.AddInvoice(context.Background(), ports.AddInvoiceRequest{Amount: 10_000, Expiry: time.Hour,
		Description: strings.Repeat("x", 639), Blinded: true})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zpay32.Decode(res.PaymentRequest, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatalf("lnd refuses an invoice of %d characters: %v", len(res.PaymentRequest), err)
	}
	if len(dec.BlindedPaymentPaths) != maxBlindedPaths {
		t.Fatalf("%d paths", len(dec.BlindedPaymentPaths))
	}
}

// TestBlindedPathIsSphinxs: the path lnmux derives with base-point
// multiplications is byte for byte the one lightning-onion's
// BuildBlindedPath makes from the same session key and data.
func TestBlindedPathIsSphinxs(t *testing.T) {
	key, _ := btcec.PrivKeyFromBytes(testIdentity)
	b, err := newBlinder(key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		introKey, _ := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{byte(i + 1)}, 32))
		intro := domain.NodeKey(introKey.PubKey().SerializeCompressed())
		terms := pathTerms{hash: domain.PaymentHash{byte(i)}, addr: domain.PaymentAddr{byte(i), 2},
			policy: domain.RoutingPolicy{FeeBase: 1000, FeeRatePPM: 100, CLTVDelta: 40}, finalCLTV: 18,
			height: 1000 + uint32(i), expiry: time.Hour, htlcMax: domain.MaxMsat}
		p, err := b.path(terms, intro)
		if err != nil {
			t.Fatal(err)
		}
		// Decrypt each hop as its node would, to get the plaintexts back.
		plain := make([][]byte, 3)
		router := sphinx.NewRouter(&sphinx.PrivKeyECDH{PrivKey: introKey}, nil)
		first, _ := btcec.ParsePubKey(p.FirstPathKey[:])
		if plain[0], err = router.DecryptBlindedHopData(first, p.Hops[0].Data); err != nil {
			t.Fatal(err)
		}
		w, _ := b.walk(terms.hash, intro)
		for j := 1; j < 3; j++ {
			hk := w.next()
			if plain[j], err = openRaw(hk.ss, p.Hops[j].Data); err != nil {
				t.Fatal(err)
			}
		}
		ref, err := sphinx.BuildBlindedPath(b.sessionKey(terms.hash, intro), []*sphinx.HopInfo{
			{NodePub: introKey.PubKey(), PlainText: plain[0]},
			{NodePub: key.PubKey(), PlainText: plain[1]},
			{NodePub: key.PubKey(), PlainText: plain[2]},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !ref.Path.BlindingPoint.IsEqual(first) {
			t.Fatal("first path key")
		}
		for j, h := range ref.Path.BlindedHops {
			if j > 0 && domain.NodeKey(h.BlindedNodePub.SerializeCompressed()) != p.Hops[j].Node {
				t.Fatalf("path %d hop %d: blinded id differs", i, j)
			}
			if !bytes.Equal(h.CipherText, p.Hops[j].Data) {
				t.Fatalf("path %d hop %d: ciphertext differs", i, j)
			}
		}
	}
}

// openRaw decrypts a hop's data without decoding it.
func openRaw(ss [32]byte, ct []byte) ([]byte, error) {
	aead, err := rhoAEAD(ss)
	if err != nil {
		return nil, err
	}
	var nonce [12]byte
	return aead.Open(nil, nonce[:], ct, nil)
}
