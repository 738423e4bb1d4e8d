package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Invoice limits enforced whatever the caller.
const (
	maxDescriptionLen = 639 // bytes that fit a BOLT11 'd' field
	maxInvoiceExpiry  = 365 * 24 * time.Hour
)

// invoiceFactory creates stateless BOLT11 invoices: one encryption, two MACs
// and one signature, no I/O.
type invoiceFactory struct {
	key            *btcec.PrivateKey
	codec          *domain.InvoiceCodec
	net            *chaincfg.Params
	hints          [][]zpay32.HopHint
	features       *lnwire.FeatureVector
	finalCLTVDelta uint64
	clock          ports.Clock
}

func newInvoiceFactory(key *btcec.PrivateKey, codec *domain.InvoiceCodec, net *chaincfg.Params,
	nodes []domain.NodeKey, policy domain.RoutingPolicy, finalCLTVDelta uint32, clock ports.Clock) (*invoiceFactory, error) {

	f := &invoiceFactory{
		key:            key,
		codec:          codec,
		net:            net,
		finalCLTVDelta: uint64(finalCLTVDelta),
		clock:          clock,
		features: lnwire.NewFeatureVector(lnwire.NewRawFeatureVector(
			lnwire.TLVOnionPayloadRequired,
			lnwire.PaymentAddrRequired,
			lnwire.MPPOptional,
		), lnwire.Features),
	}
	for _, n := range nodes {
		pub, err := btcec.ParsePubKey(n[:])
		if err != nil {
			return nil, fmt.Errorf("%w: node key %s: %v", domain.ErrInvalidArgument, n, err)
		}
		f.hints = append(f.hints, []zpay32.HopHint{{
			NodeID:                    pub,
			ChannelID:                 domain.VirtualChannelID(n),
			FeeBaseMSat:               uint32(policy.FeeBase),
			FeeProportionalMillionths: policy.FeeRatePPM,
			CLTVExpiryDelta:           policy.CLTVDelta,
		}})
	}
	return f, nil
}

func (f *invoiceFactory) create(_ context.Context, req ports.AddInvoiceRequest) (ports.AddInvoiceResult, error) {
	switch {
	case req.Amount < 0 || req.Amount > domain.MaxMsat:
		return ports.AddInvoiceResult{}, fmt.Errorf("%w: amount out of range", domain.ErrInvalidArgument)
	case req.Expiry < time.Second || req.Expiry > maxInvoiceExpiry:
		return ports.AddInvoiceResult{}, fmt.Errorf("%w: expiry must be between 1s and 1 year", domain.ErrInvalidArgument)
	case len(req.Description) > maxDescriptionLen:
		return ports.AddInvoiceResult{}, fmt.Errorf("%w: description longer than %d bytes", domain.ErrInvalidArgument, maxDescriptionLen)
	case req.Description != "" && req.DescriptionHash != nil:
		return ports.AddInvoiceResult{}, fmt.Errorf("%w: description and description hash are exclusive", domain.ErrInvalidArgument)
	}
	// BOLT11 timestamps and expiries have second precision; the metadata
	// must name the same instant the invoice does.
	now := f.clock.Now().Truncate(time.Second)
	expiry := req.Expiry.Truncate(time.Second)
	meta := domain.InvoiceMeta{Amount: req.Amount, Expiry: now.Add(expiry)}

	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return ports.AddInvoiceResult{}, fmt.Errorf("read nonce: %w", err)
	}
	addr, preimage, err := f.codec.Encode(meta, nonce)
	if err != nil {
		return ports.AddInvoiceResult{}, err
	}
	hash := preimage.Hash()

	opts := make([]func(*zpay32.Invoice), 0, 6+len(f.hints))
	opts = append(opts,
		zpay32.Expiry(expiry),
		zpay32.CLTVExpiry(f.finalCLTVDelta),
		zpay32.PaymentAddr(addr),
		zpay32.Features(f.features),
	)
	if req.Amount > 0 {
		opts = append(opts, zpay32.Amount(lnwire.MilliSatoshi(req.Amount)))
	}
	if req.DescriptionHash != nil {
		opts = append(opts, zpay32.DescriptionHash(*req.DescriptionHash))
	} else {
		opts = append(opts, zpay32.Description(req.Description))
	}
	for _, h := range f.hints {
		opts = append(opts, zpay32.RouteHint(h))
	}
	inv, err := zpay32.NewInvoice(f.net, hash, now, opts...)
	if err != nil {
		return ports.AddInvoiceResult{}, fmt.Errorf("build invoice: %w", err)
	}
	payreq, err := inv.Encode(zpay32.MessageSigner{SignCompact: f.sign})
	if err != nil {
		return ports.AddInvoiceResult{}, fmt.Errorf("encode invoice: %w", err)
	}
	return ports.AddInvoiceResult{
		PaymentRequest: payreq,
		Hash:           hash,
		Preimage:       preimage,
		PaymentAddr:    addr,
		ExpiresAt:      meta.Expiry,
	}, nil
}

func (f *invoiceFactory) sign(msg []byte) ([]byte, error) {
	return ecdsa.SignCompact(f.key, chainhash.HashB(msg), true), nil
}
