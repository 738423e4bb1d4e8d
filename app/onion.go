package app

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	sphinx "github.com/lightningnetwork/lightning-onion"
	"github.com/lightningnetwork/lnd/htlcswitch/hop"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// onionDecoder peels lnmux's layer of an HTLC's onion with the identity key.
//
// It uses lnd's reconstruct path, which skips sphinx replay detection: lnd
// re-offers the same HTLC (same onion) after every interceptor reconnect and
// restart, and lnmux recognises those replays by circuit key instead. A
// replayed onion on a new HTLC would have to lock the same payment hash
// again, which only pays lnmux more.
type onionDecoder struct {
	proc *hop.OnionProcessor
}

func newOnionDecoder(key *btcec.PrivateKey) *onionDecoder {
	router := sphinx.NewRouter(&sphinx.PrivKeyECDH{PrivKey: key}, sphinx.NewMemoryReplayLog())
	return &onionDecoder{proc: hop.NewOnionProcessor(router)}
}

// decodedOnion is lnmux's final-hop payload and the means to answer the
// sender with an encrypted failure.
type decodedOnion struct {
	payload domain.FinalHop
	enc     hop.ErrorEncrypter
}

// decode returns the payload, or the failure to answer with. The encrypter is
// set whenever the onion could be decrypted, even if the payload is bad.
func (d *onionDecoder) decode(onion []byte, hash domain.PaymentHash, f domain.Forward) (decodedOnion, domain.FailureReason) {
	it, err := d.proc.ReconstructHopIterator(bytes.NewReader(onion), hash[:], hop.ReconstructBlindingInfo{
		IncomingAmt:    lnwire.MilliSatoshi(f.OutgoingAmount),
		IncomingExpiry: f.OutgoingExpiry,
	})
	if err != nil {
		return decodedOnion{}, sphinxFailure(err)
	}
	enc, code := it.ExtractErrorEncrypter(d.proc.ExtractErrorEncrypter, false)
	if code != lnwire.CodeNone {
		return decodedOnion{}, domain.FailInvalidOnionKey
	}
	out := decodedOnion{enc: enc}
	payload, _, err := it.HopPayload()
	if err != nil {
		return out, domain.FailInvalidPayload
	}
	fwd := payload.ForwardingInfo()
	if !fwd.IsExit() {
		return out, domain.FailNotFinalHop
	}
	out.payload = domain.FinalHop{
		AmountToForward: domain.Msat(fwd.AmountToForward),
		OutgoingCLTV:    fwd.OutgoingCLTV,
	}
	if mpp := payload.MultiPath(); mpp != nil {
		out.payload.MPP = &domain.MPP{Total: domain.Msat(mpp.TotalMsat()), Addr: mpp.PaymentAddr()}
	}
	return out, domain.FailNone
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
func failureResolution(c domain.CircuitKey, reason domain.FailureReason, enc hop.ErrorEncrypter,
	fc domain.FailureContext) (ports.Resolution, error) {

	if code, ok := reason.MalformedCode(); ok || enc == nil {
		if !ok {
			code = lnwire.CodeInvalidOnionHmac
		}
		return ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureCode: uint16(code)}, nil
	}
	msg, err := enc.EncryptFirstHop(reason.Message(fc))
	if err != nil {
		return ports.Resolution{}, fmt.Errorf("encrypt failure: %w", err)
	}
	return ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureMessage: msg}, nil
}
