package app

import (
	"context"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// lnmuxBlindedWants makes blinded invoices with lnmux's own code path
// (Mux.AddInvoice with Blinded) and states what each must say: the request's
// terms, and for the paths and features what lnd's decoder reads, so that
// the readers below must agree with lnd byte for byte.
func lnmuxBlindedWants(t *testing.T) []foreignWant {
	t.Helper()
	h := newHarness(t, 3, nil)
	descHash := sha256.Sum256([]byte("a long description"))
	reqs := []ports.AddInvoiceRequest{
		{Amount: 20_000, Description: "blinded through every node ☕", Expiry: 10 * time.Minute, Blinded: true},
		{Amount: 123_456_789, Description: "", Expiry: 24 * time.Hour, Blinded: true},
		{Amount: 0, Description: "any amount", Expiry: time.Hour, Blinded: true},
		{Amount: 7_000, DescriptionHash: &descHash, Expiry: time.Hour, Blinded: true},
	}
	var ws []foreignWant
	payees := map[string]bool{string(h.mux.pubKey[:]): true}
	for _, req := range reqs {
		res, err := h.mux.AddInvoice(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := zpay32.Decode(res.PaymentRequest, &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatalf("lnd's decoder: %v", err)
		}
		w := foreignWant{
			invoice: res.PaymentRequest, network: "bcrt", amountMsat: uint64(req.Amount),
			timestamp: dec.Timestamp, hash: res.Hash, description: req.Description, descriptionHash: req.DescriptionHash,
			expiry: req.Expiry, payee: dec.Destination.SerializeCompressed(), paths: dec.BlindedPaymentPaths,
		}
		for b := range dec.Features.Features() {
			w.features = append(w.features, int(b))
		}
		// A throwaway payee per invoice: neither lnmux's key nor an
		// earlier invoice's (docs/blinded.md).
		if payees[string(w.payee)] {
			t.Fatalf("invoice signed by lnmux's key or a reused one: %x", w.payee)
		}
		payees[string(w.payee)] = true
		intros := make([]domain.NodeKey, 0, len(w.paths))
		for _, p := range w.paths {
			intros = append(intros, domain.NodeKey(p.Hops[0].BlindedNodePub.SerializeCompressed()))
		}
		for _, n := range h.nodes {
			if !slices.Contains(intros, n.key) {
				t.Fatalf("no path through node %s", n.key)
			}
		}
		ws = append(ws, w)
	}
	return ws
}

// TestForeignReaderLnmuxBlinded: the independent reader reads lnmux's
// blinded invoices and agrees with the request and with lnd's decoder on
// every field, including every path byte.
func TestForeignReaderLnmuxBlinded(t *testing.T) {
	for _, w := range lnmuxBlindedWants(t) {
		got := checkForeign(t, w)
		for i, p := range got.Paths {
			if len(p.Hops) != 3 || len(p.Features) != 0 {
				t.Errorf("path %d: %d hops, features %x; want 3 hops (node, dummy, lnmux) and none", i, len(p.Hops), p.Features)
			}
		}
	}
}

// TestJSDecoderLnmuxBlinded: bitcoinjs' bolt11 reads lnmux's blinded
// invoices: the payee it recovers is the throwaway key, and field 20's
// bytes are the paths lnd reads.
func TestJSDecoderLnmuxBlinded(t *testing.T) {
	ws := lnmuxBlindedWants(t)
	invoices := make([]string, len(ws))
	for i, w := range ws {
		invoices[i] = w.invoice
	}
	for i, got := range runJSDecoder(t, invoices) {
		checkJS(t, ws[i], got)
	}
}
