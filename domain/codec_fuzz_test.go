package domain

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

// FuzzDecode decodes arbitrary addresses: Decode must never panic, fail only
// with ErrUnknownPaymentAddr, and whatever it accepts must be an address
// Encode produces from the decoded metadata.
func FuzzDecode(f *testing.F) {
	c := newTestCodec(f, 1)
	valid, _ := mustEncode(f, c, InvoiceMeta{Amount: 1000, Expiry: testNow}, testNonce(1))
	anyAmount, _ := mustEncode(f, c, InvoiceMeta{Amount: 0, Expiry: time.Unix(maxExpiryUnix, 0)}, testNonce(2))
	maxAmount, _ := mustEncode(f, c, InvoiceMeta{Amount: MaxMsat, Expiry: time.Unix(1, 0)}, testNonce(3))
	f.Add(valid[:])
	f.Add(anyAmount[:])
	f.Add(maxAmount[:])
	f.Add(make([]byte, 32))
	timed, _ := mustEncode(f, c, InvoiceMeta{Amount: 1000, Expiry: testNow, AcceptTimeout: time.Hour}, testNonce(7))
	f.Add(timed[:])
	external, err := c.EncodeExternal(InvoiceMeta{Amount: 1000, Expiry: testNow, AcceptTimeout: time.Hour}, PaymentHash{1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(external[:])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	for i, plain := range [][metaLen]byte{
		plainMeta(4, 1000, 1),                            // wrong version
		plainMeta(metadataVersion, uint64(MaxMsat)+1, 1), // amount too large
		plainMeta(metadataVersion, 1, 0),                 // zero expiry
	} {
		addr := seal(c, testNonce(uint64(4+i)), plain)
		f.Add(addr[:])
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		// Only the first 32 bytes matter; shorter inputs are zero-padded.
		var addr PaymentAddr
		copy(addr[:], data)

		meta, pre, err := c.Decode(addr)
		if err != nil {
			if !errors.Is(err, ErrUnknownPaymentAddr) {
				t.Fatalf("Decode err = %v, want ErrUnknownPaymentAddr", err)
			}
			if _, _, verr := c.Verify(addr, pre.Hash()); verr == nil {
				t.Fatal("Verify accepted an address Decode rejects")
			}
			return
		}
		if meta.Amount < 0 || meta.Amount > MaxMsat {
			t.Fatalf("decoded amount %d out of range", meta.Amount)
		}
		if e := meta.Expiry.Unix(); e <= 0 || e > maxExpiryUnix || meta.Expiry.Location() != time.UTC {
			t.Fatalf("decoded expiry %v out of range", meta.Expiry)
		}
		if meta.AcceptTimeout < 0 || meta.AcceptTimeout > MaxAcceptTimeout || meta.AcceptTimeout%time.Second != 0 {
			t.Fatalf("decoded accept timeout %v out of range", meta.AcceptTimeout)
		}
		if meta.External {
			// Only the hash the tag was made with verifies: arbitrary
			// data is no external-hash invoice for any hash tried.
			if pre != (Preimage{}) {
				t.Fatal("an external-hash address decoded with a preimage")
			}
			for _, h := range []PaymentHash{{}, sha256.Sum256(data), sha256.Sum256(addr[:])} {
				if m, _, err := c.Verify(addr, h); err == nil && m.External {
					t.Fatalf("arbitrary external-hash address verified for hash %x", h)
				}
			}
			return
		}
		var nonce [nonceLen]byte
		copy(nonce[:], addr[:nonceLen])
		again, pre2, err := c.Encode(meta, nonce)
		if err != nil {
			t.Fatalf("Encode of decoded metadata %+v: %v", meta, err)
		}
		if again != addr || pre2 != pre {
			t.Fatalf("Encode(Decode(addr)) = %s, want %s", again, addr)
		}
		if _, _, err := c.Verify(addr, pre.Hash()); err != nil {
			t.Fatalf("Verify with the decoded preimage's hash: %v", err)
		}
	})
}

// FuzzTamper encodes an invoice and XORs a non-zero mask into its address:
// the result must never verify against the original payment hash.
func FuzzTamper(f *testing.F) {
	c := newTestCodec(f, 1)
	bit := func(i int) []byte { m := make([]byte, 32); m[i/8] = 1 << (i % 8); return m }
	f.Add(uint64(100_000), int64(1_750_000_000), []byte("nonce-0123456789"), bit(0))
	f.Add(uint64(0), int64(1), []byte{}, bit(255))
	f.Add(uint64(MaxMsat), int64(maxExpiryUnix), []byte{0xff}, bit(128))
	f.Add(uint64(1), int64(1_750_000_000), []byte("n"), bit(127))
	f.Add(uint64(5000), int64(1_750_000_000), []byte("full"), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(uint64(5000), int64(1_750_000_000), []byte("meta"), append(make([]byte, 16), 0x01)) // version byte

	f.Fuzz(func(t *testing.T, amount uint64, expiry int64, nonceBytes, maskBytes []byte) {
		meta := InvoiceMeta{
			Amount: Msat(amount % (uint64(MaxMsat) + 1)),
			Expiry: time.Unix(1+int64(uint64(expiry)%maxExpiryUnix), 0),
		}
		var nonce [nonceLen]byte
		copy(nonce[:], nonceBytes)
		var mask PaymentAddr
		copy(mask[:], maskBytes)
		if mask == (PaymentAddr{}) {
			return // the brief is a non-zero mask
		}

		addr, pre, err := c.Encode(meta, nonce)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", meta, err)
		}
		tampered := addr
		for i := range tampered {
			tampered[i] ^= mask[i]
		}
		if _, _, err := c.Verify(tampered, pre.Hash()); !errors.Is(err, ErrUnknownPaymentAddr) {
			t.Fatalf("address ^ %s verified against the original hash (err = %v)", mask, err)
		}
		if _, p, err := c.Decode(tampered); err == nil && p == pre {
			t.Fatalf("address ^ %s decodes to the original preimage", mask)
		}
	})
}
