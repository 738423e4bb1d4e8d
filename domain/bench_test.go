package domain

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
)

func BenchmarkEncode(b *testing.B) {
	c := newTestCodec(b, 1)
	meta := InvoiceMeta{Amount: 100_000, Expiry: testNow.Add(time.Hour)}
	var i uint64
	for b.Loop() {
		if _, _, err := c.Encode(meta, testNonce(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkVerify(b *testing.B) {
	c := newTestCodec(b, 1)
	addr, pre := mustEncode(b, c, InvoiceMeta{Amount: 100_000, Expiry: testNow.Add(time.Hour)}, testNonce(1))
	hash := pre.Hash()
	for b.Loop() {
		if _, _, err := c.Verify(addr, hash); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRulesCheck(b *testing.B) {
	fx := newCheckFixture(b)
	in := fx.incoming(fxAmount, fxAmount)
	for b.Loop() {
		if _, reason := fx.rules.Check(in); reason != FailNone {
			b.Fatal(reason)
		}
	}
}

// BenchmarkHTLCSetAdd measures whole sets: a new set per iteration, filled
// until it completes (which derives the set id).
func BenchmarkHTLCSetAdd(b *testing.B) {
	for _, parts := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("parts=%d", parts), func(b *testing.B) {
			htlcs := make([]HTLC, parts)
			for i := range htlcs {
				htlcs[i] = part(testNode(uint64(i%3)), 100, uint64(i), setTotal/Msat(parts))
			}
			htlcs[parts-1].Amount += setTotal - setTotal/Msat(parts)*Msat(parts)
			for b.Loop() {
				s := newTestSet(htlcs[0])
				for _, h := range htlcs {
					s.Add(h, testNow)
				}
				if s.State() != SetAccepted {
					b.Fatalf("set %v after %d parts", s.State(), parts)
				}
			}
		})
	}
}

// BenchmarkSignCompact is the reference cost of AddInvoice: one compact
// ECDSA signature over a 32-byte hash, as zpay32 does for BOLT11.
func BenchmarkSignCompact(b *testing.B) {
	priv, _ := btcec.PrivKeyFromBytes(testKey(1))
	hash := sha256.Sum256([]byte("lnmux invoice"))
	for b.Loop() {
		if sig := ecdsa.SignCompact(priv, hash[:], true); len(sig) != 65 {
			b.Fatalf("signature of %d bytes", len(sig))
		}
	}
}
