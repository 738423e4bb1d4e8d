package app

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lnmux/lnmux/ports"
)

// BenchmarkAddInvoice measures stateless invoice creation in-process: nonce,
// metadata encryption, preimage MAC, BOLT11 encoding and one signature.
func BenchmarkAddInvoice(b *testing.B) {
	h := newHarness(b, 2, nil)
	req := ports.AddInvoiceRequest{Amount: 20000, Expiry: 10 * time.Minute, Description: "coffee"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.mux.AddInvoice(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignCompact is the reference for BenchmarkAddInvoice: the one
// signature an invoice cannot do without.
func BenchmarkSignCompact(b *testing.B) {
	key, _ := btcec.PrivKeyFromBytes(testIdentity)
	msg := chainhash.HashB([]byte("lnmux"))
	b.ReportAllocs()
	for b.Loop() {
		_ = ecdsa.SignCompact(key, msg, true)
	}
}

// BenchmarkHTLCDecide measures the HTLC path from interception to accepted
// event: onion decryption with the identity key,
// stateless invoice check, set bookkeeping and the event. Onions are built
// before the timer starts.
func BenchmarkHTLCDecide(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			h := newHarness(b, 2, nil)
			acc := h.subscribe()
			go func() {
				for range acc {
				}
			}()
			// Sets of 8 parts over both nodes: every 8th HTLC completes a
			// set and publishes an accepted event.
			const parts = 8
			var inv ports.AddInvoiceResult
			sent := make([]sentHTLC, b.N)
			for i := range sent {
				if i%parts == 0 {
					inv = h.invoice(parts*1000, time.Hour)
				}
				sent[i] = h.build(inv, part{node: h.nodes[i%2], amount: 1000, total: parts * 1000})
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						h.send(sent[next.Add(1)-1])
					}
				})
			} else {
				for i := range sent {
					h.send(sent[i])
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "htlc/s")
		})
	}
}
