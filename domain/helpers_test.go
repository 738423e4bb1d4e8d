package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// testNow is the fixed "current time" of the domain tests: the domain reads
// no clock, so every test passes time explicitly.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testKey returns a deterministic 32-byte identity key.
func testKey(seed byte) []byte { return bytes.Repeat([]byte{seed}, 32) }

func newTestCodec(tb testing.TB, seed byte) *InvoiceCodec {
	tb.Helper()
	c, err := NewInvoiceCodec(testKey(seed))
	if err != nil {
		tb.Fatalf("NewInvoiceCodec: %v", err)
	}
	return c
}

// testNonce returns a nonce derived from i, so loops get distinct nonces.
func testNonce(i uint64) [nonceLen]byte {
	var n [nonceLen]byte
	binary.BigEndian.PutUint64(n[:8], i)
	binary.BigEndian.PutUint64(n[8:], ^i)
	return n
}

func mustEncode(tb testing.TB, c *InvoiceCodec, meta InvoiceMeta, nonce [nonceLen]byte) (PaymentAddr, Preimage) {
	tb.Helper()
	addr, pre, err := c.Encode(meta, nonce)
	if err != nil {
		tb.Fatalf("Encode(%+v): %v", meta, err)
	}
	return addr, pre
}

// seal builds a payment address from raw plaintext metadata with the codec's
// metadata key, to test Decode on metadata Encode refuses to produce.
func seal(c *InvoiceCodec, nonce [nonceLen]byte, plain [metaLen]byte) PaymentAddr {
	var addr PaymentAddr
	copy(addr[:nonceLen], nonce[:])
	ks := c.keystream(nonce[:])
	for i := range metaLen {
		addr[nonceLen+i] = plain[i] ^ ks[i]
	}
	return addr
}

// plainMeta lays out metadata as the codec does, with any version, amount and
// expiry, including invalid ones.
func plainMeta(version byte, amount uint64, expiry uint64) [metaLen]byte {
	var p [metaLen]byte
	p[0] = version
	binary.BigEndian.PutUint64(p[1:9], amount)
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], expiry)
	copy(p[9:], e[1:])
	return p
}

// testNode returns a distinct compressed-looking node key per i.
func testNode(i uint64) NodeKey {
	var k NodeKey
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, i))
	k[0] = 2 + h[0]&1
	copy(k[1:], h[:])
	return k
}

// errIs is errors.Is, except that a nil target wants a nil error.
func errIs(err, target error) bool {
	if target == nil {
		return err == nil
	}
	return err != nil && errors.Is(err, target)
}

// check is one observed value and the value the test wants.
type check struct {
	name      string
	got, want any
}

// expect reports every check whose value differs, naming it, so that a
// failure says what was expected and what was got. It returns whether all
// held, for callers that must stop.
func expect(t testing.TB, when string, checks ...check) bool {
	t.Helper()
	ok := true
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %s = %v, want %v", when, c.name, c.got, c.want)
			ok = false
		}
	}
	return ok
}
