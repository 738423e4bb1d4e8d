package domain

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

func testHash(i byte) PaymentHash { return sha256.Sum256([]byte{'h', i}) }

func mustEncodeExternal(tb testing.TB, c *InvoiceCodec, meta InvoiceMeta, hash PaymentHash) PaymentAddr {
	tb.Helper()
	addr, err := c.EncodeExternal(meta, hash)
	if err != nil {
		tb.Fatalf("EncodeExternal(%+v): %v", meta, err)
	}
	return addr
}

func TestCodecExternalRoundTrip(t *testing.T) {
	c := newTestCodec(t, 1)
	for _, tt := range []InvoiceMeta{
		{Amount: 150_000, Expiry: testNow.Add(time.Hour)},
		{Amount: 0, Expiry: testNow, AcceptTimeout: time.Hour},
		{Amount: MaxMsat, Expiry: time.Unix(maxExpiryUnixB, 0), AcceptTimeout: MaxAcceptTimeout},
		{Amount: 1, Expiry: time.Unix(1, 0), AcceptTimeout: time.Second},
	} {
		hash := testHash(1)
		addr := mustEncodeExternal(t, c, tt, hash)
		if again := mustEncodeExternal(t, c, tt, hash); again != addr {
			t.Error("EncodeExternal is not deterministic")
		}
		want := InvoiceMeta{Amount: tt.Amount, Expiry: tt.Expiry.UTC(), AcceptTimeout: tt.AcceptTimeout, External: true}
		meta, pre, err := c.Verify(addr, hash)
		if err != nil {
			t.Fatalf("Verify with the invoice's hash: %v", err)
		}
		if meta != want || pre != (Preimage{}) {
			t.Errorf("Verify = %+v %x, want %+v and no preimage", meta, pre, want)
		}
		if dmeta, dpre, err := c.Decode(addr); err != nil || dmeta != want || dpre != (Preimage{}) {
			t.Errorf("Decode = %+v %x %v, want %+v", dmeta, dpre, err, want)
		}
		// Another hash is another invoice, unknown to lnmux.
		if _, _, err := c.Verify(addr, testHash(2)); !errors.Is(err, ErrUnknownPaymentAddr) {
			t.Errorf("Verify with another hash: err = %v, want ErrUnknownPaymentAddr", err)
		}
		// Every bit is bound: amount, expiry, timeout and the tag.
		for bit := range 256 {
			tampered := addr
			tampered[bit/8] ^= 1 << (bit % 8)
			if _, _, err := c.Verify(tampered, hash); !errors.Is(err, ErrUnknownPaymentAddr) {
				t.Fatalf("bit %d flipped: err = %v, want ErrUnknownPaymentAddr", bit, err)
			}
		}
		// Another identity key knows nothing of it.
		if _, _, err := newTestCodec(t, 2).Verify(addr, hash); !errors.Is(err, ErrUnknownPaymentAddr) {
			t.Errorf("another key verified it: err = %v", err)
		}
	}
}

// Each term is bound: changing one changes the address.
func TestCodecExternalBindsTerms(t *testing.T) {
	c := newTestCodec(t, 1)
	base := InvoiceMeta{Amount: 1000, Expiry: testNow, AcceptTimeout: time.Minute}
	seen := map[PaymentAddr]string{}
	for name, m := range map[string]struct {
		meta InvoiceMeta
		hash PaymentHash
	}{
		"base":    {base, testHash(1)},
		"hash":    {base, testHash(2)},
		"amount":  {InvoiceMeta{Amount: 1001, Expiry: base.Expiry, AcceptTimeout: base.AcceptTimeout}, testHash(1)},
		"expiry":  {InvoiceMeta{Amount: 1000, Expiry: base.Expiry.Add(time.Second), AcceptTimeout: base.AcceptTimeout}, testHash(1)},
		"timeout": {InvoiceMeta{Amount: 1000, Expiry: base.Expiry, AcceptTimeout: 2 * time.Minute}, testHash(1)},
		"default": {InvoiceMeta{Amount: 1000, Expiry: base.Expiry}, testHash(1)},
	} {
		addr := mustEncodeExternal(t, c, m.meta, m.hash)
		if other, ok := seen[addr]; ok {
			t.Errorf("%s and %s share an address", name, other)
		}
		seen[addr] = name
	}
}

func TestCodecOwnWithAcceptTimeout(t *testing.T) {
	c := newTestCodec(t, 1)
	meta := InvoiceMeta{Amount: 5000, Expiry: testNow, AcceptTimeout: 90 * time.Minute}
	addr, pre := mustEncode(t, c, meta, testNonce(1))
	ks := c.keystream(addr[:nonceLen])
	if v := addr[nonceLen] ^ ks[0]; v != versionOwnTimed {
		t.Errorf("version = %d, want %d", v, versionOwnTimed)
	}
	got, vpre, err := c.Verify(addr, pre.Hash())
	if err != nil || vpre != pre || got != meta {
		t.Fatalf("Verify = %+v %v, want %+v", got, err, meta)
	}
	// Without a timeout the address is the version 1 one, byte for byte.
	plain1, pre1 := mustEncode(t, c, InvoiceMeta{Amount: 5000, Expiry: testNow}, testNonce(1))
	if v := plain1[nonceLen] ^ ks[0]; v != metadataVersion || pre1 == pre {
		t.Errorf("version = %d, want %d", v, metadataVersion)
	}
	// A timed layout with a zero timeout is never issued: refused.
	p := plainMeta(versionOwnTimed, 1000, 0)
	p[12] = 1 // an expiry in the 5-byte field, timeout bytes zero
	if _, _, err := c.Decode(seal(c, testNonce(2), p)); !errors.Is(err, ErrUnknownPaymentAddr) {
		t.Errorf("timed layout with zero timeout: err = %v", err)
	}
}

func TestCodecExternalRejects(t *testing.T) {
	c := newTestCodec(t, 1)
	for name, meta := range map[string]InvoiceMeta{
		"negative timeout":      {Amount: 1, Expiry: testNow, AcceptTimeout: -time.Second},
		"timeout too long":      {Amount: 1, Expiry: testNow, AcceptTimeout: MaxAcceptTimeout + time.Second},
		"fractional timeout":    {Amount: 1, Expiry: testNow, AcceptTimeout: 1500 * time.Millisecond},
		"expiry beyond 40 bits": {Amount: 1, Expiry: time.Unix(maxExpiryUnixB+1, 0)},
		"zero expiry":           {Amount: 1},
		"negative amount":       {Amount: -1, Expiry: testNow},
	} {
		if _, err := c.EncodeExternal(meta, testHash(1)); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: EncodeExternal err = %v, want ErrInvalidArgument", name, err)
		}
		if meta.AcceptTimeout != 0 || name == "expiry beyond 40 bits" {
			if meta.AcceptTimeout == 0 {
				meta.AcceptTimeout = time.Second
			}
			if _, _, err := c.Encode(meta, testNonce(1)); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s: Encode err = %v, want ErrInvalidArgument", name, err)
			}
		}
	}
	if _, _, err := c.Encode(InvoiceMeta{Amount: 1, Expiry: testNow, External: true}, testNonce(1)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Encode of an external-hash meta: err = %v", err)
	}
}

// FuzzTamperExternal: an external-hash address with any bit changed, or
// asked about with any other hash, is unknown.
func FuzzTamperExternal(f *testing.F) {
	c := newTestCodec(f, 1)
	f.Add(uint64(100_000), int64(1_750_000_000), uint16(60), []byte("hash"), []byte{1}, []byte{})
	f.Add(uint64(0), int64(1), uint16(0), []byte{}, append(make([]byte, 31), 0x80), []byte("other"))
	f.Add(uint64(MaxMsat), int64(maxExpiryUnixB), uint16(0xffff), []byte{0xff}, append(make([]byte, 16), 0x01), []byte{})
	f.Fuzz(func(t *testing.T, amount uint64, expiry int64, timeout uint16, hashSeed, maskBytes, otherSeed []byte) {
		meta := InvoiceMeta{
			Amount:        Msat(amount % (uint64(MaxMsat) + 1)),
			Expiry:        time.Unix(1+int64(uint64(expiry)%maxExpiryUnixB), 0),
			AcceptTimeout: time.Duration(timeout) * time.Second,
		}
		hash := sha256.Sum256(hashSeed)
		addr, err := c.EncodeExternal(meta, hash)
		if err != nil {
			t.Fatalf("EncodeExternal(%+v): %v", meta, err)
		}
		if m, _, err := c.Verify(addr, hash); err != nil || !m.External || m.AcceptTimeout != meta.AcceptTimeout || m.Amount != meta.Amount {
			t.Fatalf("Verify = %+v, %v", m, err)
		}
		var mask PaymentAddr
		copy(mask[:], maskBytes)
		if mask != (PaymentAddr{}) {
			tampered := addr
			for i := range tampered {
				tampered[i] ^= mask[i]
			}
			if _, _, err := c.Verify(tampered, hash); !errors.Is(err, ErrUnknownPaymentAddr) {
				t.Fatalf("address ^ %s verified (err = %v)", mask, err)
			}
		}
		if other := sha256.Sum256(append([]byte{1}, otherSeed...)); other != hash {
			if _, _, err := c.Verify(addr, other); !errors.Is(err, ErrUnknownPaymentAddr) {
				t.Fatalf("verified with another hash (err = %v)", err)
			}
		}
	})
}
