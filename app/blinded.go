package app

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	sphinx "github.com/lightningnetwork/lightning-onion"
	"github.com/lightningnetwork/lnd/htlcswitch/hop"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/record"
	"github.com/lightningnetwork/lnd/tlv"

	"github.com/lnmux/lnmux/domain"
)

// Blinded receive (docs/blinded.md).
//
// A blinded invoice has one blinded path per cluster node: the node is the
// introduction point and lnmux the final hop. The session key of each path
// is derived from the identity key, the payment hash and the introduction
// node, never drawn at random: lnd's interceptor does not pass on the path
// key (blinding point) the introduction node sends with the HTLC, so lnmux
// recomputes it from what the interceptor does give, the hash and the node
// that intercepted the HTLC. Nothing is stored, as for plain invoices.

// blockPadding is added to a blinded path's CLTV delta, as lnd does for
// its own blinded invoices (routing.BlockPadding): with blinded paths the
// payer adds no final CLTV of its own, so the recipient leaves room for
// blocks mined while the payment is in flight.
const blockPadding = 3

// minPathBlocks is the least a path's max_cltv_expiry allows beyond the
// height at creation. lnd allows twice the invoice expiry in blocks; short
// invoices would otherwise get paths that expire within a few blocks.
const minPathBlocks = 144

// blinder builds lnmux's blinded paths and recomputes their path keys.
type blinder struct {
	// secret derives the paths' session keys; derived from the identity
	// key under its own label.
	secret []byte
	self   *btcec.PublicKey
	selfID domain.NodeKey
}

func newBlinder(key *btcec.PrivateKey) (*blinder, error) {
	secret, err := hkdf.Key(sha256.New, key.Serialize(), []byte("lnmux"), "lnmux/v1 blinded path session key", 32)
	if err != nil {
		return nil, fmt.Errorf("derive blinded path key: %w", err)
	}
	b := &blinder{secret: secret, self: key.PubKey()}
	copy(b.selfID[:], b.self.SerializeCompressed())
	return b, nil
}

// sessionKey is the session key (e0) of the path for hash through intro.
func (b *blinder) sessionKey(hash domain.PaymentHash, intro domain.NodeKey) *btcec.PrivateKey {
	for ctr := byte(0); ; ctr++ {
		m := hmac.New(sha256.New, b.secret)
		m.Write(hash[:])
		m.Write(intro[:])
		m.Write([]byte{ctr})
		var s btcec.ModNScalar
		// A value at or above the group order (probability about 2^-128)
		// takes the next counter rather than a biased reduction.
		if overflow := s.SetByteSlice(m.Sum(nil)); !overflow && !s.IsZero() {
			return btcec.PrivKeyFromScalar(&s)
		}
	}
}

// pathKey is the path key (E1) lnmux receives with an HTLC of the path for
// hash through intro: what the introduction node computes from the first
// path key and its own key (BOLT 4, route blinding).
func (b *blinder) pathKey(hash domain.PaymentHash, intro domain.NodeKey) (*btcec.PublicKey, error) {
	introKey, err := btcec.ParsePubKey(intro[:])
	if err != nil {
		return nil, fmt.Errorf("introduction node key: %w", err)
	}
	next, err := sphinx.NextEphemeralPriv(&sphinx.PrivKeyECDH{PrivKey: b.sessionKey(hash, intro)}, introKey)
	if err != nil {
		return nil, fmt.Errorf("path key: %w", err)
	}
	return next.PubKey(), nil
}

// pathTerms are the parameters of one invoice's paths.
type pathTerms struct {
	hash domain.PaymentHash
	// addr is the invoice's payment address: lnmux's path_id.
	addr   domain.PaymentAddr
	policy domain.RoutingPolicy
	// finalCLTV is lnmux's min_final_cltv_expiry_delta.
	finalCLTV uint32
	// height is the chain height at creation; expiry the invoice's.
	height uint32
	expiry time.Duration
	// htlcMax bounds one HTLC of the path.
	htlcMax domain.Msat
}

// path builds the blinded path of an invoice through intro.
func (b *blinder) path(t pathTerms, intro domain.NodeKey) (domain.BlindedPath, error) {
	introKey, err := btcec.ParsePubKey(intro[:])
	if err != nil {
		return domain.BlindedPath{}, fmt.Errorf("%w: introduction node key: %v", domain.ErrInvalidArgument, err) //nolint:errorlint // the sentinel classifies
	}
	// Twice the invoice's expiry in ten-minute blocks (NewInvoiceTerms
	// bounds the expiry to a year).
	blocks := max(2*uint32((t.expiry+10*time.Minute-1)/(10*time.Minute)), minPathBlocks) //nolint:gosec // at most about 105,000
	finalDelta := t.finalCLTV + blockPadding
	maxExpiry := t.height + blocks + finalDelta
	const htlcMin = 1

	final, err := record.EncodeBlindedRouteData(record.NewFinalHopBlindedRouteData(
		&record.PaymentConstraints{MaxCltvExpiry: maxExpiry, HtlcMinimumMsat: htlcMin}, t.addr[:]))
	if err != nil {
		return domain.BlindedPath{}, fmt.Errorf("encode final hop data: %w", err)
	}
	relay := record.PaymentRelayInfo{
		CltvExpiryDelta: t.policy.CLTVDelta,
		FeeRate:         t.policy.FeeRatePPM,
		BaseFee:         lnwire.MilliSatoshi(t.policy.FeeBase), //nolint:gosec // RoutingPolicy.Validate keeps it within 32 bits
	}
	introData, err := record.EncodeBlindedRouteData(&record.BlindedRouteData{
		NextNodeID: tlv.SomeRecordT(tlv.NewPrimitiveRecord[tlv.TlvType4](b.self)),
		RelayInfo:  tlv.SomeRecordT(tlv.NewRecordT[tlv.TlvType10](relay)),
		Constraints: tlv.SomeRecordT(tlv.NewRecordT[tlv.TlvType12](record.PaymentConstraints{
			MaxCltvExpiry:   maxExpiry + uint32(t.policy.CLTVDelta),
			HtlcMinimumMsat: htlcMin,
		})),
	})
	if err != nil {
		return domain.BlindedPath{}, fmt.Errorf("encode introduction hop data: %w", err)
	}
	info, err := sphinx.BuildBlindedPath(b.sessionKey(t.hash, intro), []*sphinx.HopInfo{
		{NodePub: introKey, PlainText: introData},
		{NodePub: b.self, PlainText: final},
	})
	if err != nil {
		return domain.BlindedPath{}, fmt.Errorf("build blinded path: %w", err)
	}
	p := domain.BlindedPath{
		FeeBase:   uint32(t.policy.FeeBase), //nolint:gosec // as above
		FeePPM:    t.policy.FeeRatePPM,
		CLTVDelta: t.policy.CLTVDelta + uint16(finalDelta), //nolint:gosec // small deltas (config bounds)
		HTLCMin:   htlcMin,
		HTLCMax:   uint64(t.htlcMax), //nolint:gosec // positive
	}
	copy(p.FirstPathKey[:], info.Path.BlindingPoint.SerializeCompressed())
	for i, h := range info.Path.BlindedHops {
		var hop domain.BlindedHop
		if i == 0 {
			// The introduction node is named by its real key (the
			// payer must find it), as lnd's own paths do.
			hop.Node = intro
		} else {
			copy(hop.Node[:], h.BlindedNodePub.SerializeCompressed())
		}
		hop.Data = h.CipherText
		p.Hops = append(p.Hops, hop)
	}
	return p, nil
}

// errNotBlindedFinal: a blinded payload that is not a final hop's for lnmux.
var errNotBlindedFinal = errors.New("not a blinded final hop for lnmux")

// blindedOnion is what a blinded HTLC's failure is encrypted with.
type blindedOnion struct {
	ephemeralKey *btcec.PublicKey
	pathKey      *btcec.PublicKey
}

// decodeBlinded peels an HTLC that came through one of lnmux's blinded
// paths: the onion is for lnmux's blinded id, under the path key the
// introduction node derived. amt and expiry are the HTLC's at lnmux (the
// node's outgoing ones), against which the path's constraints are checked.
//
// Every failure of a blinded HTLC is invalid_onion_blinding (BOLT 4): the
// reason returned here is FailInvalidBlinding, whatever went wrong.
func (d *onionDecoder) decodeBlinded(b *blinder, onion []byte, hash domain.PaymentHash, intro domain.NodeKey,
	amt domain.Msat, expiry uint32) (decodedOnion, domain.FailureReason) {

	fail := func(out decodedOnion) (decodedOnion, domain.FailureReason) {
		out.blinded = true
		return out, domain.FailInvalidBlinding
	}
	pathKey, err := b.pathKey(hash, intro)
	if err != nil {
		return fail(decodedOnion{})
	}
	var pkt sphinx.OnionPacket
	if err := pkt.Decode(bytes.NewReader(onion)); err != nil {
		return fail(decodedOnion{})
	}
	processed, err := d.router.ReconstructOnionPacket(&pkt, hash[:], sphinx.WithBlindingPoint(pathKey))
	if err != nil {
		// A path made for another hash, or through another node, gives
		// another path key: the onion does not decrypt, and lnmux shares
		// no secret with the payer to encrypt a failure with.
		return fail(decodedOnion{})
	}
	out := decodedOnion{blinded: true, ephemeralKey: pkt.EphemeralKey, pathKey: pathKey, proc: d.proc}
	if processed.Action != sphinx.ExitNode || processed.Payload.Type != sphinx.PayloadTLV {
		return fail(out)
	}
	payload, err := d.blindedPayload(processed.Payload.Payload, pathKey, amt, expiry)
	if err != nil {
		return fail(out)
	}
	out.payload = payload
	return out, domain.FailNone
}

// blindedPayload checks the sender's payload and lnmux's own encrypted data
// of a blinded final hop with lnd's parsers and validators.
func (d *onionDecoder) blindedPayload(raw []byte, pathKey *btcec.PublicKey, amt domain.Msat,
	expiry uint32) (domain.FinalHop, error) {

	payload, parsed, err := hop.ParseTLVPayload(bytes.NewReader(raw))
	if err != nil {
		return domain.FinalHop{}, err
	}
	// BOLT 4: a blinded final hop has amount, CLTV, total and encrypted
	// data; the path key came with the HTLC, not in the payload.
	if err := hop.ValidateTLVPayload(parsed, true, true); err != nil {
		return domain.FinalHop{}, err
	}
	if payload.MultiPath() != nil || payload.AMPRecord() != nil || payload.EncryptedData() == nil ||
		payload.TotalAmtMsat() == 0 {
		return domain.FinalHop{}, errNotBlindedFinal
	}
	plain, err := d.router.DecryptBlindedHopData(pathKey, payload.EncryptedData())
	if err != nil {
		return domain.FinalHop{}, err
	}
	data, err := record.DecodeBlindedRouteData(bytes.NewReader(plain))
	if err != nil {
		return domain.FinalHop{}, err
	}
	//nolint:gosec // HTLC amounts are positive
	if err := hop.ValidateBlindedRouteData(data, lnwire.MilliSatoshi(amt), expiry); err != nil {
		return domain.FinalHop{}, err
	}
	// lnmux's own data of a final hop names no next hop and has its
	// 32-byte path id: anything else was not made by lnmux for lnmux.
	if data.NextNodeID.IsSome() || data.ShortChannelID.IsSome() || data.RelayInfo.IsSome() {
		return domain.FinalHop{}, errNotBlindedFinal
	}
	var addr domain.PaymentAddr
	ok := false
	data.PathID.WhenSome(func(r tlv.RecordT[tlv.TlvType6, []byte]) {
		ok = len(r.Val) == len(addr)
		copy(addr[:], r.Val)
	})
	if !ok {
		return domain.FinalHop{}, errNotBlindedFinal
	}
	fwd := payload.ForwardingInfo()
	return domain.FinalHop{
		AmountToForward: onionMsat(uint64(fwd.AmountToForward)),
		OutgoingCLTV:    fwd.OutgoingCLTV,
		MPP:             &domain.MPP{Total: onionMsat(uint64(payload.TotalAmtMsat())), Addr: addr},
		Blinded:         true,
	}, nil
}

// blindedEncrypter derives the error encrypter of a blinded HTLC: the
// shared secret is with lnmux's blinded id.
func (d *onionDecoder) blindedEncrypter(o blindedOnion) (hop.ErrorEncrypter, error) {
	enc, err := sphinx.NewOnionErrorEncrypter(d.router, o.ephemeralKey, sphinx.WithBlindingPoint(o.pathKey))
	if err != nil {
		return nil, err
	}
	return &hop.SphinxErrorEncrypter{OnionErrorEncrypter: enc, EphemeralKey: o.ephemeralKey}, nil
}
