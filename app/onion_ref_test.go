package app

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2"
	sphinx "github.com/lightningnetwork/lightning-onion"
	"github.com/lightningnetwork/lnd/htlcswitch/hop"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/record"
	"github.com/lightningnetwork/lnd/tlv"

	"github.com/lnmux/lnmux/domain"
)

// This file holds the reference the onion tests compare lnmux's peel
// (app/onion.go) with, and the generator of onions they feed both. The
// reference is lnd's own code: the sphinx router peels the layer (ECDH, MAC,
// decryption) and lnd's hop package parses and validates the final-hop
// payload as lnd's link does for a sender's payload (hop.ValidateTLVPayload).

// anyBadOnion stands for "one of the three BADONION reasons" where the
// reference does not say which: a packet that does not even decode. lnd's
// link answers those with invalid_onion_key, lnmux with invalid_onion_hmac;
// both tell the sender the onion was malformed.
const anyBadOnion = domain.FailureReason(255)

// peelResult is what a peel decided: the reason (FailNone: accepted) and,
// when accepted, the final-hop payload.
type peelResult struct {
	reason  domain.FailureReason
	payload domain.FinalHop
}

func (r peelResult) String() string {
	if r.reason != domain.FailNone {
		if r.reason == anyBadOnion {
			return "rejected: a BADONION reason"
		}
		return "rejected: " + r.reason.String()
	}
	mpp := "no mpp"
	if m := r.payload.MPP; m != nil {
		mpp = fmt.Sprintf("mpp total %d addr %x", m.Total, m.Addr[:4])
	}
	return fmt.Sprintf("accepted: amount %d, cltv %d, %s", r.payload.AmountToForward, r.payload.OutgoingCLTV, mpp)
}

// lnmuxPeel runs the code under test.
func lnmuxPeel(d *onionDecoder, onion []byte, hash domain.PaymentHash) peelResult {
	out, reason := d.decode(onion, hash)
	if reason != domain.FailNone {
		return peelResult{reason: reason}
	}
	return peelResult{payload: out.payload}
}

// referencePeel peels the onion with lnd's sphinx router and validates the
// payload with lnd's hop package. lnmux is the recipient of no blinded
// route, so a payload carrying route-blinding data is invalid for it.
func referencePeel(router *sphinx.Router, onion []byte, hash domain.PaymentHash) peelResult {
	var pkt sphinx.OnionPacket
	if err := pkt.Decode(bytes.NewReader(onion)); err != nil {
		switch {
		case errors.Is(err, sphinx.ErrInvalidOnionVersion):
			return peelResult{reason: domain.FailInvalidOnionVersion}
		case errors.Is(err, sphinx.ErrInvalidOnionKey):
			return peelResult{reason: domain.FailInvalidOnionKey}
		}
		return peelResult{reason: anyBadOnion}
	}
	processed, err := router.ReconstructOnionPacket(&pkt, hash[:], sphinx.WithTLVPayloadOnly())
	switch {
	case errors.Is(err, sphinx.ErrInvalidOnionVersion):
		return peelResult{reason: domain.FailInvalidOnionVersion}
	case errors.Is(err, sphinx.ErrInvalidOnionKey):
		return peelResult{reason: domain.FailInvalidOnionKey}
	case errors.Is(err, sphinx.ErrInvalidOnionHMAC):
		return peelResult{reason: domain.FailInvalidOnionHMAC}
	case err != nil:
		// The MAC held: what failed is the framing of the hop payload.
		return peelResult{reason: domain.FailInvalidPayload}
	case processed.Action != sphinx.ExitNode:
		return peelResult{reason: domain.FailNotFinalHop}
	}
	payload, parsed, err := hop.ParseTLVPayload(bytes.NewReader(processed.Payload.Payload))
	if err != nil {
		return peelResult{reason: domain.FailInvalidPayload}
	}
	if err := hop.ValidateTLVPayload(parsed, true, false); err != nil {
		return peelResult{reason: domain.FailInvalidPayload}
	}
	if payload.EncryptedData() != nil || payload.BlindingPoint() != nil {
		return peelResult{reason: domain.FailInvalidPayload}
	}
	fwd := payload.ForwardingInfo()
	out := peelResult{payload: domain.FinalHop{AmountToForward: onionMsat(uint64(fwd.AmountToForward)), OutgoingCLTV: fwd.OutgoingCLTV}}
	if mpp := payload.MultiPath(); mpp != nil {
		out.payload.MPP = &domain.MPP{Total: onionMsat(uint64(mpp.TotalMsat())), Addr: mpp.PaymentAddr()}
	}
	return out
}

// agree reports whether the two peels decided the same.
func agree(got, want peelResult) bool {
	if want.reason == anyBadOnion {
		switch got.reason { //nolint:exhaustive // only the BADONION reasons agree with lnd's "some bad onion"
		case domain.FailInvalidOnionVersion, domain.FailInvalidOnionHMAC, domain.FailInvalidOnionKey:
			return true
		}
		return false
	}
	if got.reason != want.reason || got.payload.AmountToForward != want.payload.AmountToForward ||
		got.payload.OutgoingCLTV != want.payload.OutgoingCLTV {
		return false
	}
	if (got.payload.MPP == nil) != (want.payload.MPP == nil) {
		return false
	}
	return got.payload.MPP == nil || *got.payload.MPP == *want.payload.MPP
}

// peelFixture is lnmux's identity key as both peels use it.
type peelFixture struct {
	key    *btcec.PrivateKey
	lnmux  *onionDecoder
	router *sphinx.Router
}

func newPeelFixture(seed uint64) peelFixture {
	key := keyFromRand(rand.New(rand.NewPCG(seed, 0x6f6e696f6e)))
	return peelFixture{
		key:    key,
		lnmux:  newOnionDecoder(key),
		router: sphinx.NewRouter(&sphinx.PrivKeyECDH{PrivKey: key}, sphinx.NewNoOpReplayLog()),
	}
}

func keyFromRand(r *rand.Rand) *btcec.PrivateKey {
	var b [32]byte
	for {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if k, _ := btcec.PrivKeyFromBytes(b[:]); !k.Key.IsZero() {
			return k
		}
	}
}

// finalPayload describes the TLV payload a sender puts in lnmux's layer.
// raw, if set, is sent as it is instead of an encoding of the fields.
type finalPayload struct {
	amount    *uint64
	cltv      *uint32
	mpp       *record.MPP
	metadata  []byte
	nextHop   *uint64
	amp       *record.AMP
	encrypted []byte
	blinding  *btcec.PublicKey
	// extra are further records by type: odd or even, in the standard range
	// or custom (>= 65536).
	extra map[uint64][]byte
	raw   []byte
}

func (p finalPayload) encode() ([]byte, error) {
	if p.raw != nil {
		return p.raw, nil
	}
	var recs []tlv.Record
	if p.amount != nil {
		recs = append(recs, record.NewAmtToFwdRecord(p.amount))
	}
	if p.cltv != nil {
		recs = append(recs, record.NewLockTimeRecord(p.cltv))
	}
	if p.nextHop != nil {
		recs = append(recs, record.NewNextHopIDRecord(p.nextHop))
	}
	if p.mpp != nil {
		recs = append(recs, p.mpp.Record())
	}
	if p.encrypted != nil {
		recs = append(recs, record.NewEncryptedDataRecord(&p.encrypted))
	}
	if p.blinding != nil {
		recs = append(recs, record.NewBlindingPointRecord(&p.blinding))
	}
	if p.amp != nil {
		recs = append(recs, p.amp.Record())
	}
	if p.metadata != nil {
		recs = append(recs, record.NewMetadataRecord(&p.metadata))
	}
	for _, typ := range slices.Sorted(mapsKeys(p.extra)) {
		v := p.extra[typ]
		recs = append(recs, tlv.MakePrimitiveRecord(tlv.Type(typ), &v))
	}
	tlv.SortRecords(recs)
	stream, err := tlv.NewStream(recs...)
	if err != nil {
		return nil, fmt.Errorf("tlv stream: %w", err)
	}
	var buf bytes.Buffer
	if err := stream.Encode(&buf); err != nil {
		return nil, fmt.Errorf("encode tlv payload: %w", err)
	}
	return buf.Bytes(), nil
}

func mapsKeys(m map[uint64][]byte) func(func(uint64) bool) {
	return func(yield func(uint64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// knownTypes are the final-hop TLV types lnd's parser knows; extra records
// avoid them so that each record appears once.
var knownTypes = []uint64{2, 4, 6, 8, 10, 12, 14, 16, 18}

// randomPayload draws a final-hop payload: mostly one a real sender would
// send (amount, CLTV, MPP, sometimes metadata and odd custom records), else
// one with a record lnmux must refuse or one of random bytes.
func randomPayload(r *rand.Rand) finalPayload {
	amt := r.Uint64N(1 << 40)
	if r.IntN(10) == 0 {
		amt = r.Uint64() // any width
	}
	cltv := r.Uint32()
	p := finalPayload{amount: &amt, cltv: &cltv}
	if r.IntN(8) != 0 {
		var addr [32]byte
		fill(r, addr[:])
		p.mpp = record.NewMPP(lnwire.MilliSatoshi(r.Uint64N(1<<41)), addr)
	}
	if r.IntN(4) == 0 {
		p.metadata = randBytes(r, r.IntN(64))
	}
	if r.IntN(4) == 0 {
		p.extra = map[uint64][]byte{}
		for range 1 + r.IntN(3) {
			typ := record.CustomTypeStart + r.Uint64N(1<<20)
			if r.IntN(3) == 0 {
				typ = 19 + r.Uint64N(1000) // standard range, not a known type
			}
			if !slices.Contains(knownTypes, typ) {
				p.extra[typ] = randBytes(r, r.IntN(32))
			}
		}
	}
	switch r.IntN(12) {
	case 0:
		p.amount = nil
	case 1:
		p.cltv = nil
	case 2:
		cid := r.Uint64()
		p.nextHop = &cid
	case 3:
		var root, set [32]byte
		fill(r, root[:])
		fill(r, set[:])
		p.amp = record.NewAMP(root, set, r.Uint32())
	case 4:
		p.encrypted = randBytes(r, 1+r.IntN(40))
		if r.IntN(2) == 0 {
			p.blinding = keyFromRand(r).PubKey()
		}
	case 5:
		p.raw = randBytes(r, r.IntN(80))
	}
	return p
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	fill(r, b)
	return b
}

// intermediatePayload is what a forwarding hop gets.
func intermediatePayload(r *rand.Rand) finalPayload {
	amt, cltv, cid := r.Uint64N(1<<40), r.Uint32(), r.Uint64()
	return finalPayload{amount: &amt, cltv: &cltv, nextHop: &cid}
}

// onionCase is a generated onion for lnmux.
type onionCase struct {
	onion []byte
	hash  domain.PaymentHash
	// what describes how it was made, for failure messages.
	what string
}

// randomOnion builds an onion whose layer for lnmux carries payload: a route
// of 0–3 hops before lnmux (peeled here with their own sphinx routers, as
// lnd does before the interceptor sees the HTLC) and, sometimes, hops after
// lnmux (lnmux is then not the final hop).
func randomOnion(r *rand.Rand, lnmux *btcec.PublicKey, payload finalPayload) (onionCase, error) {
	before, after := r.IntN(4), 0
	if r.IntN(10) == 0 {
		after = 1 + r.IntN(2)
	}
	return buildOnion(r, lnmux, payload, before, after)
}

// buildOnion builds an onion with the given numbers of hops before and
// after lnmux; keys, payment hash and the other hops' payloads are random.
func buildOnion(r *rand.Rand, lnmux *btcec.PublicKey, payload finalPayload, before, after int) (onionCase, error) {
	var hash domain.PaymentHash
	fill(r, hash[:])

	var path sphinx.PaymentPath
	var routers []*sphinx.Router
	i := 0
	add := func(pub *btcec.PublicKey, p finalPayload) error {
		raw, err := p.encode()
		if err != nil {
			return err
		}
		hp, err := sphinx.NewTLVHopPayload(raw)
		if err != nil {
			return fmt.Errorf("hop payload: %w", err)
		}
		path[i] = sphinx.OnionHop{NodePub: *pub, HopPayload: hp}
		i++
		return nil
	}
	for range before {
		k := keyFromRand(r)
		routers = append(routers, sphinx.NewRouter(&sphinx.PrivKeyECDH{PrivKey: k}, sphinx.NewNoOpReplayLog()))
		if err := add(k.PubKey(), intermediatePayload(r)); err != nil {
			return onionCase{}, err
		}
	}
	if err := add(lnmux, payload); err != nil {
		return onionCase{}, err
	}
	for range after {
		if err := add(keyFromRand(r).PubKey(), intermediatePayload(r)); err != nil {
			return onionCase{}, err
		}
	}
	pkt, err := sphinx.NewOnionPacket(&path, keyFromRand(r), hash[:], sphinx.DeterministicPacketFiller)
	if err != nil {
		return onionCase{}, fmt.Errorf("new onion packet (%d hops): %w", i, err)
	}
	for n, router := range routers {
		processed, err := router.ReconstructOnionPacket(pkt, hash[:])
		if err != nil {
			return onionCase{}, fmt.Errorf("hop %d peels the onion: %w", n, err)
		}
		pkt = processed.NextPacket
	}
	var buf bytes.Buffer
	if err := pkt.Encode(&buf); err != nil {
		return onionCase{}, fmt.Errorf("encode onion: %w", err)
	}
	return onionCase{onion: buf.Bytes(), hash: hash, what: fmt.Sprintf("%d hops before lnmux, %d after", before, after)}, nil
}

// mutate damages an onion the way a faulty or hostile peer might.
func mutate(r *rand.Rand, c onionCase) onionCase {
	out := onionCase{onion: slices.Clone(c.onion), hash: c.hash}
	switch r.IntN(6) {
	case 0:
		pos := r.IntN(len(out.onion))
		out.onion[pos] ^= 1 << r.IntN(8)
		out.what = fmt.Sprintf("bit flipped at byte %d", pos)
	case 1:
		n := r.IntN(len(out.onion))
		out.onion = out.onion[:n]
		out.what = fmt.Sprintf("truncated to %d bytes", n)
	case 2:
		out.onion = append(out.onion, randBytes(r, 1+r.IntN(40))...)
		out.what = "trailing bytes"
	case 3:
		out.onion[0] = byte(1 + r.IntN(255))
		out.what = fmt.Sprintf("version %d", out.onion[0])
	case 4:
		copy(out.onion[1:34], randBytes(r, 33))
		out.what = "random ephemeral key"
	default:
		out.hash[r.IntN(32)] ^= 1 << r.IntN(8)
		out.what = "other payment hash"
	}
	out.what = c.what + ", " + out.what
	return out
}
