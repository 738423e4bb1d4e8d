package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// invoiceFactory creates stateless BOLT11 invoices: one encryption, two MACs
// and one signature, no I/O. Its route hints follow the nodes' health
// (hints.go, docs/route-hints.md).
type invoiceFactory struct {
	key   *btcec.PrivateKey
	codec *domain.InvoiceCodec
	hints *hintBook
	clock ports.Clock
	// entropy makes the invoices' nonces; nil means crypto/rand.
	entropy io.Reader
	// workers run create's encoding and signature (invoiceworkers.go).
	workers invoiceWorkers

	// Blinded invoices (docs/blinded.md).
	blinder   *blinder
	blindTmpl *domain.BOLT11Template
	policy    domain.RoutingPolicy
	finalCLTV uint32
	// height is the chain height as the nodes last reported it; zero
	// while none has.
	height func() uint32
}

func newInvoiceFactory(key *btcec.PrivateKey, codec *domain.InvoiceCodec, net *chaincfg.Params,
	nodes []domain.NodeKey, policy domain.RoutingPolicy, finalCLTVDelta uint32, hintGrace time.Duration,
	clock ports.Clock) (*invoiceFactory, error) {

	hops := make(map[domain.NodeKey]domain.HopHint, len(nodes))
	for _, n := range nodes {
		if _, err := btcec.ParsePubKey(n[:]); err != nil {
			return nil, fmt.Errorf("%w: node key %s: %v", domain.ErrInvalidArgument, n, err) //nolint:errorlint // the sentinel classifies; the cause is text so that errors.Is on it cannot reclassify
		}
		hops[n] = domain.HopHint{
			Node:      n,
			ChanID:    domain.VirtualChannelID(n),
			FeeBase:   uint32(policy.FeeBase), //nolint:gosec // RoutingPolicy.Validate bounds FeeBase to 32 bits
			FeePPM:    policy.FeeRatePPM,
			CLTVDelta: policy.CLTVDelta,
		}
	}
	// Signet shares testnet's segwit prefix; BOLT11 tells them apart.
	hrp := net.Bech32HRPSegwit
	if net.Name == chaincfg.SigNetParams.Name {
		hrp = "tbs"
	}
	features := []int{int(lnwire.TLVOnionPayloadRequired), int(lnwire.PaymentAddrRequired), int(lnwire.MPPOptional)}
	build := func(keys []domain.NodeKey) (*domain.BOLT11Template, error) {
		hints := make([]domain.HopHint, len(keys))
		for i, k := range keys {
			hints[i] = hops[k]
		}
		return domain.NewBOLT11Template(hrp, hints, features, finalCLTVDelta)
	}
	book, err := newHintBook(nodes, clock, hintGrace, policy.Fee, build)
	if err != nil {
		return nil, err
	}
	// Blinded invoices have the bits of lnd's own (rpcserver.go,
	// GenInvoiceFeatures with blind): the payment secret optional (it is
	// the path id, not in the invoice), MPP, route blinding, and bLIP 39's
	// blinded-paths field required, so that a payer that cannot read the
	// paths refuses the invoice rather than find no route.
	blindTmpl, err := domain.NewBlindedBOLT11Template(hrp, []int{int(lnwire.TLVOnionPayloadRequired),
		int(lnwire.PaymentAddrOptional), int(lnwire.MPPOptional), int(lnwire.RouteBlindingOptional),
		int(lnwire.Bolt11BlindedPathsRequired)})
	if err != nil {
		return nil, err
	}
	return &invoiceFactory{key: key, codec: codec, hints: book, clock: clock,
		blindTmpl: blindTmpl, policy: policy, finalCLTV: finalCLTVDelta}, nil
}

// nodeChanged takes a node's new status into the route hints of the next
// invoices.
func (f *invoiceFactory) nodeChanged(s ports.NodeStatus) error { return f.hints.update(s) }

// hintStatus is whether new invoices hint node.
func (f *invoiceFactory) hintStatus(node domain.NodeKey) ports.HintStatus {
	return f.hints.status(node)
}

// create makes an invoice on one of the factory's workers (see
// invoiceWorkers for why).
func (f *invoiceFactory) create(ctx context.Context, req ports.AddInvoiceRequest) (ports.AddInvoiceResult, error) {
	return f.workers.run(ctx, func() (ports.AddInvoiceResult, error) { return f.createNow(req) })
}

// createNow checks the request, encrypts the metadata, derives the
// preimage and encodes and signs the invoice.
func (f *invoiceFactory) createNow(req ports.AddInvoiceRequest) (ports.AddInvoiceResult, error) {
	var descHash []byte
	if req.DescriptionHash != nil {
		descHash = req.DescriptionHash[:]
	}
	terms, err := domain.NewInvoiceTerms(req.Amount, req.Expiry, req.Description, descHash)
	if err != nil {
		return ports.AddInvoiceResult{}, err
	}
	if terms, err = terms.WithAcceptTimeout(req.AcceptTimeout); err != nil {
		return ports.AddInvoiceResult{}, err
	}
	// BOLT11 timestamps and expiries have second precision (the terms'
	// expiry is whole seconds); the metadata must name the same instant the
	// invoice does.
	now := f.clock.Now().Truncate(time.Second)
	meta := domain.InvoiceMeta{Amount: terms.Amount(), Expiry: now.Add(terms.Expiry()), AcceptTimeout: terms.AcceptTimeout()}

	var (
		addr     domain.PaymentAddr
		preimage domain.Preimage
		hash     domain.PaymentHash
	)
	if req.PaymentHash != nil {
		// The caller's hash: the address binds it with the terms, and
		// the preimage is the application's to give at settlement.
		hash = *req.PaymentHash
		if addr, err = f.codec.EncodeExternal(meta, hash); err != nil {
			return ports.AddInvoiceResult{}, err
		}
	} else {
		var nonce [16]byte
		entropy := f.entropy
		if entropy == nil {
			entropy = rand.Reader
		}
		if _, err := io.ReadFull(entropy, nonce[:]); err != nil {
			return ports.AddInvoiceResult{}, fmt.Errorf("read nonce: %w", err)
		}
		if addr, preimage, err = f.codec.Encode(meta, nonce); err != nil {
			return ports.AddInvoiceResult{}, err
		}
		hash = preimage.Hash()
	}
	fields := domain.BOLT11Fields{Timestamp: now, Terms: terms, Hash: hash, PaymentAddr: addr}
	var payreq string
	if req.Blinded {
		payreq, err = f.encodeBlinded(fields, terms)
	} else {
		payreq, err = f.hints.template(terms.Amount()).Encode(fields, f.sign)
	}
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

func (f *invoiceFactory) sign(digest [32]byte) ([]byte, error) {
	return ecdsa.SignCompact(f.key, digest[:], true), nil
}

// maxBlindedPaths bounds a blinded invoice's paths: each adds about 530
// characters, and lnd's decoder refuses invoices longer than 7,089
// (zpay32/invoice.go, maxInvoiceLength). Eight paths and the longest
// description stay below.
const maxBlindedPaths = 8

// encodeBlinded encodes a blinded invoice: one path through each node the
// route hints would name, signed with a key used for this invoice only
// (docs/blinded.md).
func (f *invoiceFactory) encodeBlinded(fields domain.BOLT11Fields, terms domain.InvoiceTerms) (string, error) {
	if f.blinder == nil || f.height == nil {
		return "", fmt.Errorf("%w: blinded invoices are not set up", domain.ErrNotReady)
	}
	height := f.height()
	if height == 0 {
		// A path's max_cltv_expiry is counted from the chain height.
		return "", fmt.Errorf("%w: no node has reported the chain height yet", domain.ErrNotReady)
	}
	t := pathTerms{
		hash: fields.Hash, addr: fields.PaymentAddr, policy: f.policy, finalCLTV: f.finalCLTV,
		height: height, expiry: terms.Expiry(), htlcMax: domain.MaxMsat,
	}
	nodes := f.hints.nodesFor(terms.Amount())
	// The first maxBlindedPaths in the hint order (most inbound first).
	nodes = nodes[:min(len(nodes), maxBlindedPaths)]
	for _, n := range nodes {
		p, err := f.blinder.path(t, n)
		if err != nil {
			return "", err
		}
		fields.Blinded = append(fields.Blinded, p)
	}
	if len(fields.Blinded) == 0 {
		return "", fmt.Errorf("%w: no node to make a blinded path through", domain.ErrNotReady)
	}
	var seed [32]byte
	entropy := f.entropy
	if entropy == nil {
		entropy = rand.Reader
	}
	if _, err := io.ReadFull(entropy, seed[:]); err != nil {
		return "", fmt.Errorf("read signing key: %w", err)
	}
	var s btcec.ModNScalar
	if overflow := s.SetBytes(&seed); overflow != 0 || s.IsZero() {
		return "", fmt.Errorf("%w: drew an unusable signing key, try again", domain.ErrNotReady)
	}
	key := btcec.PrivKeyFromScalar(&s)
	defer key.Zero()
	return f.blindTmpl.Encode(fields, func(digest [32]byte) ([]byte, error) {
		return ecdsa.SignCompact(key, digest[:], true), nil
	})
}
