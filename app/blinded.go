package app

import (
	"bytes"
	"crypto/cipher"
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
	"golang.org/x/crypto/chacha20poly1305"

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
//
// Each path is [node, lnmux (dummy hop), lnmux]: lnmux peels the dummy hop
// itself. Without it the introduction node would be the hop before the
// recipient, and lnd's payer gives up the whole payment on the first
// invalid_onion_blinding from such a path (routing/result_interpretation.go,
// FailInvalidBlinding); with it, lnd penalises that path only and retries
// the payment through the other nodes' paths, as it does with route hints.

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
	key    *btcec.PrivateKey
	self   *btcec.PublicKey
	selfID domain.NodeKey
}

func newBlinder(key *btcec.PrivateKey) (*blinder, error) {
	secret, err := hkdf.Key(sha256.New, key.Serialize(), []byte("lnmux"), "lnmux/v1 blinded path session key", 32)
	if err != nil {
		return nil, fmt.Errorf("derive blinded path key: %w", err)
	}
	b := &blinder{secret: secret, key: key, self: key.PubKey()}
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

// hopKeys are lnmux's keys at one of its hops in a path: the shared secret
// of the hop's path key with lnmux's key (it decrypts lnmux's data there),
// and lnmux's blinded private key at the hop (the onion is encrypted to
// its public key).
type hopKeys struct {
	pathKey *btcec.PublicKey
	ss      [32]byte
	priv    *btcec.PrivateKey
}

// pathWalk derives lnmux's keys hop after hop along the path for a hash
// through a node. lnmux knows each hop's path private key e_i (it chose
// e0), so what a receiver computes as k·E_i with a variable-base
// multiplication is (k·e_i)·G here: one variable-base multiplication for
// the introduction node's secret, then base-point ones only (BOLT 4, route
// blinding; the same values lightning-onion's router derives, checked by
// TestBlindedPathKeyAgreesWithLnd and FuzzPeelBlinded).
type pathWalk struct {
	k *btcec.ModNScalar
	e btcec.ModNScalar // the path private key of the next hop
}

// walk starts at the hop after the introduction node.
func (b *blinder) walk(hash domain.PaymentHash, intro domain.NodeKey) (pathWalk, error) {
	w, _, _, err := b.start(hash, intro)
	return w, err
}

// start also returns the first path key E0 and the introduction node's
// shared secret, which only the path's maker needs.
func (b *blinder) start(hash domain.PaymentHash, intro domain.NodeKey) (pathWalk, *btcec.PublicKey, [32]byte, error) {
	introKey, err := btcec.ParsePubKey(intro[:])
	if err != nil {
		return pathWalk{}, nil, [32]byte{}, fmt.Errorf("introduction node key: %w", err)
	}
	e0 := b.sessionKey(hash, intro)
	ss0, err := (&sphinx.PrivKeyECDH{PrivKey: e0}).ECDH(introKey)
	if err != nil {
		return pathWalk{}, nil, [32]byte{}, fmt.Errorf("path key: %w", err)
	}
	w := pathWalk{k: &b.key.Key, e: e0.Key}
	first := e0.PubKey()
	w.advance(first, ss0)
	return w, first, ss0, nil
}

// advance moves to the next path key: e_{i+1} = e_i·SHA256(E_i ‖ ss_i).
func (w *pathWalk) advance(pathKey *btcec.PublicKey, ss [32]byte) {
	h := sha256.New()
	h.Write(pathKey.SerializeCompressed())
	h.Write(ss[:])
	var f btcec.ModNScalar
	f.SetByteSlice(h.Sum(nil))
	w.e.Mul(&f)
}

// next returns lnmux's keys at the current hop and moves on.
func (w *pathWalk) next() hopKeys {
	pathKey := btcec.PrivKeyFromScalar(&w.e).PubKey()
	var ke btcec.ModNScalar
	ke.Mul2(w.k, &w.e)
	ss := sha256.Sum256(btcec.PrivKeyFromScalar(&ke).PubKey().SerializeCompressed())
	m := hmac.New(sha256.New, []byte("blinded_node_id"))
	m.Write(ss[:])
	var f btcec.ModNScalar
	f.SetByteSlice(m.Sum(nil))
	f.Mul(w.k)
	w.advance(pathKey, ss)
	return hopKeys{pathKey: pathKey, ss: ss, priv: btcec.PrivKeyFromScalar(&f)}
}

// pathKey is the path key (E1) lnmux receives with an HTLC of the path for
// hash through intro: what the introduction node computes from the first
// path key and its own key.
func (b *blinder) pathKey(hash domain.PaymentHash, intro domain.NodeKey) (*btcec.PublicKey, error) {
	w, err := b.walk(hash, intro)
	if err != nil {
		return nil, err
	}
	return w.next().pathKey, nil
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
	// The dummy hop: lnmux again, relaying to itself for free.
	dummy, err := record.EncodeBlindedRouteData(record.NewDummyHopRouteData(b.self, record.PaymentRelayInfo{},
		record.PaymentConstraints{MaxCltvExpiry: maxExpiry, HtlcMinimumMsat: htlcMin}))
	if err != nil {
		return domain.BlindedPath{}, fmt.Errorf("encode dummy hop data: %w", err)
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
	// The same path sphinx.BuildBlindedPath makes from the session key
	// (TestBlindedPathIsSphinxs), with lnmux's hops derived as in pathWalk:
	// base-point multiplications only, past the introduction node's secret.
	w, first, ss0, err := b.start(t.hash, intro)
	if err != nil {
		return domain.BlindedPath{}, fmt.Errorf("%w: %v", domain.ErrInvalidArgument, err) //nolint:errorlint // the sentinel classifies
	}
	p := domain.BlindedPath{
		FeeBase:   uint32(t.policy.FeeBase), //nolint:gosec // as above
		FeePPM:    t.policy.FeeRatePPM,
		CLTVDelta: t.policy.CLTVDelta + uint16(finalDelta), //nolint:gosec // small deltas (config bounds)
		HTLCMin:   htlcMin,
		HTLCMax:   uint64(t.htlcMax), //nolint:gosec // positive
	}
	copy(p.FirstPathKey[:], first.SerializeCompressed())
	// The introduction node is named by its real key (the payer must find
	// it), as lnd's own paths do.
	data, err := sealData(ss0, introData)
	if err != nil {
		return domain.BlindedPath{}, err
	}
	p.Hops = append(p.Hops, domain.BlindedHop{Node: intro, Data: data})
	for _, plain := range [][]byte{dummy, final} {
		hk := w.next()
		data, err := sealData(hk.ss, plain)
		if err != nil {
			return domain.BlindedPath{}, err
		}
		hop := domain.BlindedHop{Data: data}
		copy(hop.Node[:], hk.priv.PubKey().SerializeCompressed())
		p.Hops = append(p.Hops, hop)
	}
	return p, nil
}

// errNotBlindedFinal: a blinded payload that is not a final hop's for lnmux.
var errNotBlindedFinal = errors.New("not a blinded final hop for lnmux")

// blindedOnion is what a blinded HTLC's failure is encrypted with: the
// keys are derived again from the hash and the node (blindedEncrypter).
type blindedOnion struct {
	ephemeralKey *btcec.PublicKey
	hash         domain.PaymentHash
	intro        domain.NodeKey
}

// decodeBlinded peels an HTLC that came through one of lnmux's blinded
// paths: the onion is for lnmux's blinded ids along the path for the
// hash through the node that offered it. amt and expiry are the HTLC's at
// lnmux (the node's outgoing ones), against which the path's constraints
// are checked.
//
// Every failure of a blinded HTLC is invalid_onion_blinding (BOLT 4): the
// reason returned here is FailInvalidBlinding, whatever went wrong.
func (d *onionDecoder) decodeBlinded(b *blinder, onion []byte, hash domain.PaymentHash, intro domain.NodeKey,
	amt domain.Msat, expiry uint32) (decodedOnion, domain.FailureReason) {

	fail := func(out decodedOnion) (decodedOnion, domain.FailureReason) {
		out.blinded = true
		return out, domain.FailInvalidBlinding
	}
	w, err := b.walk(hash, intro)
	if err != nil {
		return fail(decodedOnion{})
	}
	var pkt sphinx.OnionPacket
	if err := pkt.Decode(bytes.NewReader(onion)); err != nil {
		return fail(decodedOnion{})
	}
	hk := w.next()
	processed, err := peelAs(hk.priv, &pkt, hash)
	if err != nil {
		// A path made for another hash, or through another node, gives
		// other keys: the onion does not decrypt, and lnmux shares no
		// secret with the payer to encrypt a failure with.
		return fail(decodedOnion{})
	}
	// Failures are encrypted for the hop the introduction node forwarded
	// to: the first one lnmux peels.
	out := decodedOnion{blinded: true, ephemeralKey: pkt.EphemeralKey, hash: hash, intro: intro, proc: d.proc}
	for dummies := 0; ; dummies++ {
		if processed.Payload.Type != sphinx.PayloadTLV {
			return fail(out)
		}
		if processed.Action == sphinx.ExitNode {
			break
		}
		// A dummy hop of lnmux's own: its data sends the payment on to
		// lnmux itself, for free.
		if dummies == maxDummyHops || processed.NextPacket == nil {
			return fail(out)
		}
		if err := b.dummyHop(processed.Payload.Payload, hk.ss, amt, expiry); err != nil {
			return fail(out)
		}
		hk = w.next()
		if processed, err = peelAs(hk.priv, processed.NextPacket, hash); err != nil {
			return fail(out)
		}
	}
	payload, err := blindedPayload(processed.Payload.Payload, hk.ss, amt, expiry)
	if err != nil {
		return fail(out)
	}
	out.payload = payload
	return out, domain.FailNone
}

// peelAs peels one layer of the onion with lnmux's blinded key at a hop.
func peelAs(priv *btcec.PrivateKey, pkt *sphinx.OnionPacket, hash domain.PaymentHash) (*sphinx.ProcessedPacket, error) {
	return sphinx.NewRouter(&sphinx.PrivKeyECDH{PrivKey: priv}, nil).ReconstructOnionPacket(pkt, hash[:])
}

// rhoAEAD is the cipher of a hop's encrypted data (BOLT 4: ChaCha20-
// Poly1305 under HMAC("rho", ss) with a zero nonce).
func rhoAEAD(ss [32]byte) (cipher.AEAD, error) {
	m := hmac.New(sha256.New, []byte("rho"))
	m.Write(ss[:])
	return chacha20poly1305.New(m.Sum(nil))
}

// sealData encrypts a hop's data for the hop.
func sealData(ss [32]byte, plain []byte) ([]byte, error) {
	aead, err := rhoAEAD(ss)
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	return aead.Seal(nil, nonce[:], plain, nil), nil
}

// openData decrypts lnmux's encrypted data at a hop (BOLT 4: ChaCha20-
// Poly1305 under HMAC("rho", ss) with a zero nonce) and decodes it.
func openData(ss [32]byte, ciphertext []byte) (*record.BlindedRouteData, error) {
	aead, err := rhoAEAD(ss)
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	plain, err := aead.Open(nil, nonce[:], ciphertext, nil)
	if err != nil {
		return nil, err
	}
	return record.DecodeBlindedRouteData(bytes.NewReader(plain))
}

// maxDummyHops bounds the dummy hops lnmux peels in one HTLC; its paths
// have one.
const maxDummyHops = 4

// dummyHop checks a dummy hop's payload and lnmux's data in it.
func (b *blinder) dummyHop(raw []byte, ss [32]byte, amt domain.Msat, expiry uint32) error {
	payload, parsed, err := hop.ParseTLVPayload(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	// An intermediate blinded hop: encrypted data only.
	if err := hop.ValidateTLVPayload(parsed, false, true); err != nil {
		return err
	}
	if payload.EncryptedData() == nil {
		return errNotBlindedFinal
	}
	data, err := openData(ss, payload.EncryptedData())
	if err != nil {
		return err
	}
	//nolint:gosec // HTLC amounts are positive
	if err := hop.ValidateBlindedRouteData(data, lnwire.MilliSatoshi(amt), expiry); err != nil {
		return err
	}
	toSelf := false
	data.NextNodeID.WhenSome(func(r tlv.RecordT[tlv.TlvType4, *btcec.PublicKey]) { toSelf = r.Val.IsEqual(b.self) })
	free := false
	data.RelayInfo.WhenSome(func(r tlv.RecordT[tlv.TlvType10, record.PaymentRelayInfo]) {
		free = r.Val == record.PaymentRelayInfo{}
	})
	// Only what lnmux writes: on to itself, nothing taken (so the HTLC's
	// amount and expiry are the next hop's too), no path id yet.
	if !toSelf || !free || data.ShortChannelID.IsSome() || data.PathID.IsSome() || data.NextBlindingOverride.IsSome() {
		return errNotBlindedFinal
	}
	return nil
}

// blindedPayload checks the sender's payload and lnmux's own encrypted data
// of a blinded final hop with lnd's parsers and validators.
func blindedPayload(raw []byte, ss [32]byte, amt domain.Msat, expiry uint32) (domain.FinalHop, error) {

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
	data, err := openData(ss, payload.EncryptedData())
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
// shared secret is with lnmux's blinded key at the first hop it peeled.
func (b *blinder) blindedEncrypter(o blindedOnion) (hop.ErrorEncrypter, error) {
	w, err := b.walk(o.hash, o.intro)
	if err != nil {
		return nil, err
	}
	r := sphinx.NewRouter(&sphinx.PrivKeyECDH{PrivKey: w.next().priv}, nil)
	enc, err := sphinx.NewOnionErrorEncrypter(r, o.ephemeralKey)
	if err != nil {
		return nil, err
	}
	return &hop.SphinxErrorEncrypter{OnionErrorEncrypter: enc, EphemeralKey: o.ephemeralKey}, nil
}
