package app

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"

	"github.com/btcsuite/btcd/btcec/v2"
	sphinx "github.com/lightningnetwork/lightning-onion"
	"github.com/lightningnetwork/lnd/fn/v2"
	"github.com/lightningnetwork/lnd/htlcswitch/hop"
	"github.com/lightningnetwork/lnd/lnwire"
	"golang.org/x/crypto/chacha20"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// onionDecoder peels lnmux's layer of an HTLC's onion with the identity key.
//
// lnmux is always the final hop, so it peels the layer itself (BOLT 4) with
// one ECDH, where lnd's router also blinds the ephemeral key for a next hop
// and derives the error encrypter with a second ECDH. The error encrypter is
// only derived when an HTLC must be failed.
//
// There is no sphinx replay log: lnd re-offers the same HTLC (same onion)
// after every interceptor reconnect and restart, and lnmux recognises those
// replays by circuit key. A replayed onion on a new HTLC must lock the same
// payment hash again, which only pays lnmux more.
type onionDecoder struct {
	ecdh   *sphinx.PrivKeyECDH
	router *sphinx.Router
	proc   *hop.OnionProcessor
	// blinder derives the keys of a blinded HTLC's failure.
	blinder *blinder
}

func newOnionDecoder(key *btcec.PrivateKey) *onionDecoder {
	ecdh := &sphinx.PrivKeyECDH{PrivKey: key}
	router := sphinx.NewRouter(ecdh, sphinx.NewMemoryReplayLog())
	return &onionDecoder{ecdh: ecdh, router: router, proc: hop.NewOnionProcessor(router)}
}

// decodedOnion is lnmux's final-hop payload and the means to answer the
// sender with an encrypted failure.
type decodedOnion struct {
	payload domain.FinalHop
	// ephemeralKey is set once the packet parsed; the error encrypter is
	// derived from it on demand.
	ephemeralKey *btcec.PublicKey
	proc         *hop.OnionProcessor
	// blinded: the HTLC came through a blinded path (blinded.go); its
	// failures are invalid_onion_blinding. hash and intro name the path.
	blinded bool
	hash    domain.PaymentHash
	intro   domain.NodeKey
}

// failureKey is what the machine keeps with the HTLC to fail it later
// (core.Offer.Onion): the onion's ephemeral key, or for a blinded HTLC a
// blindedOnion (whose keys may be nil when the onion did not parse).
func (o decodedOnion) failureKey() any {
	if o.blinded {
		return blindedOnion{ephemeralKey: o.ephemeralKey, hash: o.hash, intro: o.intro}
	}
	if o.ephemeralKey == nil {
		return nil
	}
	return o.ephemeralKey
}

// encrypter derives the error encrypter for the sender of the onion.
func (o decodedOnion) encrypter() (hop.ErrorEncrypter, lnwire.FailCode) {
	if o.ephemeralKey == nil || o.proc == nil {
		return nil, lnwire.CodeInvalidOnionKey
	}
	return o.proc.ExtractErrorEncrypter(o.ephemeralKey)
}

// decode returns the payload, or the failure to answer with.
func (d *onionDecoder) decode(onion []byte, hash domain.PaymentHash) (decodedOnion, domain.FailureReason) {
	var pkt sphinx.OnionPacket
	if err := pkt.Decode(bytes.NewReader(onion)); err != nil {
		return decodedOnion{}, sphinxFailure(err)
	}
	ss, err := d.ecdh.ECDH(pkt.EphemeralKey)
	if err != nil {
		return decodedOnion{}, domain.FailInvalidOnionKey
	}
	mac := hmac.New(sha256.New, onionKey("mu", ss[:]))
	mac.Write(pkt.RoutingInfo)
	mac.Write(hash[:])
	if !hmac.Equal(mac.Sum(nil), pkt.HeaderMAC[:]) {
		return decodedOnion{}, domain.FailInvalidOnionHMAC
	}
	out := decodedOnion{ephemeralKey: pkt.EphemeralKey, proc: d.proc}

	// Only this hop's payload is needed, and it lies within the routing
	// info: no padding has to be decrypted.
	var nonce [chacha20.NonceSize]byte
	stream, err := chacha20.NewUnauthenticatedCipher(onionKey("rho", ss[:]), nonce[:])
	if err != nil {
		return out, domain.FailInvalidOnionKey
	}
	plain := make([]byte, len(pkt.RoutingInfo))
	stream.XORKeyStream(plain, pkt.RoutingInfo)
	hp, err := sphinx.DecodeHopPayload(bytes.NewReader(plain), true)
	if err != nil {
		return out, domain.FailInvalidPayload
	}
	if hp.HMAC != [sphinx.HMACSize]byte{} {
		// A next hop follows: lnmux has no channels to forward on.
		return out, domain.FailNotFinalHop
	}
	payload, parsed, err := hop.ParseTLVPayload(bytes.NewReader(hp.Payload))
	if err != nil {
		return out, domain.FailInvalidPayload
	}
	// BOLT 4: a final hop fails a payload that lacks a record it needs,
	// carries one it must not have, or an unknown even ("required") record.
	if err := hop.ValidateTLVPayload(parsed, true, false); err != nil {
		return out, domain.FailInvalidPayload
	}
	// An onion for lnmux's own (unblinded) key: no blinded path ends
	// there (lnmux's paths end at its blinded id, blinded.go), so a
	// payload with recipient data is not lnmux's.
	if payload.EncryptedData() != nil || payload.BlindingPoint() != nil {
		return out, domain.FailInvalidPayload
	}
	fwd := payload.ForwardingInfo()
	out.payload = domain.FinalHop{
		AmountToForward: onionMsat(uint64(fwd.AmountToForward)),
		OutgoingCLTV:    fwd.OutgoingCLTV,
	}
	if mpp := payload.MultiPath(); mpp != nil {
		out.payload.MPP = &domain.MPP{Total: onionMsat(uint64(mpp.TotalMsat())), Addr: mpp.PaymentAddr()}
	}
	return out, domain.FailNone
}

// onionMsat converts an amount the payer wrote into the onion. The payer
// may write any 64-bit value: one beyond what domain.Msat holds saturates,
// so that it stays larger than every real amount and the domain's checks
// (docs/design.md, "Checks") refuse it, where a plain conversion would turn
// it negative and pass "amount to forward ≤ HTLC amount".
func onionMsat(v uint64) domain.Msat {
	if v > math.MaxInt64 {
		return domain.Msat(math.MaxInt64)
	}
	return domain.Msat(v)
}

// onionKey derives a BOLT 4 key (mu, rho, ...) from the shared secret.
func onionKey(keyType string, ss []byte) []byte {
	m := hmac.New(sha256.New, []byte(keyType))
	m.Write(ss)
	return m.Sum(nil)
}

func sphinxFailure(err error) domain.FailureReason {
	switch {
	case errors.Is(err, sphinx.ErrInvalidOnionVersion):
		return domain.FailInvalidOnionVersion
	case errors.Is(err, sphinx.ErrInvalidOnionKey):
		return domain.FailInvalidOnionKey
	}
	// A packet that does not even parse is as good as one with a bad MAC.
	return domain.FailInvalidOnionHMAC
}

// failureResolution builds the FAIL answer for an HTLC: an encrypted BOLT 4
// message when the onion could be decrypted, a malformed code otherwise.
// key is the HTLC's decodedOnion.failureKey.
func (d *onionDecoder) failureResolution(c domain.CircuitKey, reason domain.FailureReason, key any,
	fc domain.FailureContext) (ports.Resolution, error) {

	malformed := func(code lnwire.FailCode) ports.Resolution {
		return ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureCode: uint16(code)}
	}
	onion := decodedOnion{proc: d.proc}
	switch k := key.(type) {
	case blindedOnion:
		// Inside a blinded route every failure is invalid_onion_blinding
		// (BOLT 4). lnd's interceptor cannot send the malformed-HTLC
		// message BOLT 4 asks of a node after the introduction point, and
		// needs none: lnd's introduction node replaces any failure of a
		// blinded forward by its own invalid_onion_blinding (lnd's
		// htlcswitch/link.go, sendIncomingHTLCFailureMsg). lnmux sends
		// the message the payer would read, encrypted for it; with no
		// usable onion, a malformed code lnd accepts from an interceptor
		// (it would end the stream on invalid_onion_blinding itself).
		if k.ephemeralKey == nil || d.blinder == nil {
			return malformed(lnwire.CodeInvalidOnionHmac), nil
		}
		enc, err := d.blinder.blindedEncrypter(k)
		if err != nil {
			return malformed(lnwire.CodeInvalidOnionHmac), nil //nolint:nilerr // an unusable key is what the malformed code says
		}
		msg, err := enc.EncryptFirstHop(lnwire.NewInvalidBlinding(fn.None[[lnwire.OnionPacketSize]byte]()))
		if err != nil {
			return ports.Resolution{}, fmt.Errorf("encrypt failure: %w", err)
		}
		return ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureMessage: msg}, nil
	case *btcec.PublicKey:
		onion.ephemeralKey = k
	}
	if code, ok := malformedCode(reason); ok {
		return malformed(code), nil
	}
	enc, code := onion.encrypter()
	if code != lnwire.CodeNone {
		return malformed(code), nil
	}
	msg, err := enc.EncryptFirstHop(failureMessage(reason, fc))
	if err != nil {
		return ports.Resolution{}, fmt.Errorf("encrypt failure: %w", err)
	}
	return ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureMessage: msg}, nil
}
