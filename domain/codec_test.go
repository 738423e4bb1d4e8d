package domain

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"math"
	"testing"
	"time"
)

func TestNewInvoiceCodecKeyLength(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31, 33, 64} {
		if _, err := NewInvoiceCodec(make([]byte, n)); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("key of %d bytes: err = %v, want ErrInvalidArgument", n, err)
		}
	}
	if _, err := NewInvoiceCodec(make([]byte, 32)); err != nil {
		t.Errorf("32-byte key: %v", err)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	c := newTestCodec(t, 1)
	tests := []struct {
		name  string
		meta  InvoiceMeta
		nonce [nonceLen]byte
		// want is the expiry Decode returns (second precision, UTC).
		want time.Time
	}{
		{"typical", InvoiceMeta{Amount: 150_000, Expiry: testNow.Add(time.Hour)}, testNonce(1), testNow.Add(time.Hour)},
		{"any amount", InvoiceMeta{Amount: 0, Expiry: testNow.Add(time.Hour)}, testNonce(2), testNow.Add(time.Hour)},
		{"one msat", InvoiceMeta{Amount: 1, Expiry: testNow}, testNonce(3), testNow},
		{"max amount", InvoiceMeta{Amount: MaxMsat, Expiry: testNow}, testNonce(4), testNow},
		{"min expiry", InvoiceMeta{Amount: 1000, Expiry: time.Unix(1, 0)}, testNonce(5), time.Unix(1, 0)},
		{"max expiry", InvoiceMeta{Amount: 1000, Expiry: time.Unix(maxExpiryUnix, 0)}, testNonce(6), time.Unix(maxExpiryUnix, 0)},
		{"sub-second expiry truncated", InvoiceMeta{Amount: 1000, Expiry: testNow.Add(999 * time.Millisecond)}, testNonce(7), testNow},
		{"non-UTC location", InvoiceMeta{Amount: 1000, Expiry: testNow.In(time.FixedZone("X", 5*3600))}, testNonce(8), testNow},
		{"zero nonce", InvoiceMeta{Amount: 42, Expiry: testNow}, [nonceLen]byte{}, testNow},
		{"all-ones nonce", InvoiceMeta{Amount: 42, Expiry: testNow}, [nonceLen]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, testNow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, pre := mustEncode(t, c, tt.meta, tt.nonce)
			if !bytes.Equal(addr[:nonceLen], tt.nonce[:]) {
				t.Errorf("addr nonce = %x, want %x", addr[:nonceLen], tt.nonce)
			}
			addr2, pre2 := mustEncode(t, c, tt.meta, tt.nonce)
			if addr2 != addr || pre2 != pre {
				t.Error("Encode is not deterministic for the same meta and nonce")
			}

			meta, dpre, err := c.Decode(addr)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if meta.Amount != tt.meta.Amount {
				t.Errorf("amount = %v, want %v", meta.Amount, tt.meta.Amount)
			}
			if !meta.Expiry.Equal(tt.want) || meta.Expiry.Location() != time.UTC {
				t.Errorf("expiry = %v, want %v in UTC", meta.Expiry, tt.want.UTC())
			}
			if dpre != pre {
				t.Errorf("decoded preimage %x differs from encoded %x", dpre, pre)
			}

			vmeta, vpre, err := c.Verify(addr, pre.Hash())
			if err != nil {
				t.Fatalf("Verify with the right hash: %v", err)
			}
			if vmeta != meta || vpre != pre {
				t.Errorf("Verify = %+v %x, want %+v %x", vmeta, vpre, meta, pre)
			}

			// The metadata is encrypted: amount and expiry must not be
			// readable from the address.
			if plain := plainMeta(metadataVersion, uint64(tt.meta.Amount), uint64(tt.want.Unix())); bytes.Equal(addr[nonceLen:], plain[:]) {
				t.Error("metadata stored in plain text")
			}
		})
	}
}

func TestCodecVersionByte(t *testing.T) {
	c := newTestCodec(t, 1)
	addr, _ := mustEncode(t, c, InvoiceMeta{Amount: 1000, Expiry: testNow}, testNonce(9))
	ks := c.keystream(addr[:nonceLen])
	if got := addr[nonceLen] ^ ks[0]; got != metadataVersion {
		t.Errorf("version byte = %d, want %d", got, metadataVersion)
	}
}

func TestCodecEncodeRejects(t *testing.T) {
	c := newTestCodec(t, 1)
	tests := []struct {
		name string
		meta InvoiceMeta
	}{
		{"negative amount", InvoiceMeta{Amount: -1, Expiry: testNow}},
		{"amount above max", InvoiceMeta{Amount: MaxMsat + 1, Expiry: testNow}},
		{"amount max int64", InvoiceMeta{Amount: math.MaxInt64, Expiry: testNow}},
		{"zero time", InvoiceMeta{Amount: 1000}},
		{"unix epoch", InvoiceMeta{Amount: 1000, Expiry: time.Unix(0, 0)}},
		{"before epoch", InvoiceMeta{Amount: 1000, Expiry: time.Unix(-1, 0)}},
		{"sub-second after epoch", InvoiceMeta{Amount: 1000, Expiry: time.Unix(0, 500_000_000)}},
		{"expiry beyond 56 bits", InvoiceMeta{Amount: 1000, Expiry: time.Unix(maxExpiryUnix+1, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, pre, err := c.Encode(tt.meta, testNonce(1))
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
			if addr != (PaymentAddr{}) || pre != (Preimage{}) {
				t.Error("a rejected Encode returned a non-zero address or preimage")
			}
		})
	}
}

func TestCodecDecodeRejectsMetadata(t *testing.T) {
	c := newTestCodec(t, 1)
	exp := uint64(testNow.Unix())
	tests := []struct {
		name    string
		plain   [metaLen]byte
		wantErr error
	}{
		{"valid control row", plainMeta(metadataVersion, 1000, exp), nil},
		{"valid max amount and expiry", plainMeta(metadataVersion, uint64(MaxMsat), maxExpiryUnix), nil},
		{"version 0", plainMeta(0, 1000, exp), ErrUnknownPaymentAddr},
		{"version 4", plainMeta(4, 1000, exp), ErrUnknownPaymentAddr},
		{"version 255", plainMeta(255, 1000, exp), ErrUnknownPaymentAddr},
		{"amount above max", plainMeta(metadataVersion, uint64(MaxMsat)+1, exp), ErrUnknownPaymentAddr},
		{"amount all ones", plainMeta(metadataVersion, math.MaxUint64, exp), ErrUnknownPaymentAddr},
		{"zero expiry", plainMeta(metadataVersion, 1000, 0), ErrUnknownPaymentAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := seal(c, testNonce(3), tt.plain)
			meta, pre, err := c.Decode(addr)
			if !errIs(err, tt.wantErr) {
				t.Fatalf("Decode err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && (meta != InvoiceMeta{} || pre != Preimage{}) {
				t.Error("a failed Decode returned metadata or a preimage")
			}
		})
	}
}

func TestInvoiceMetaExpired(t *testing.T) {
	m := InvoiceMeta{Expiry: testNow}
	tests := []struct {
		now  time.Time
		want bool
	}{
		{testNow.Add(-time.Second), false},
		{testNow.Add(-time.Nanosecond), false},
		{testNow, true},
		{testNow.Add(time.Second), true},
	}
	for _, tt := range tests {
		if got := m.Expired(tt.now); got != tt.want {
			t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}
}

func TestVerify(t *testing.T) {
	c := newTestCodec(t, 1)
	meta := InvoiceMeta{Amount: 5000, Expiry: testNow}
	addr, pre := mustEncode(t, c, meta, testNonce(10))
	flip := pre.Hash()
	flip[31] ^= 1
	tests := []struct {
		name    string
		hash    PaymentHash
		wantErr error
	}{
		{"right hash", pre.Hash(), nil},
		{"hash with one bit flipped", flip, ErrUnknownPaymentAddr},
		{"preimage instead of hash", PaymentHash(pre), ErrUnknownPaymentAddr},
		{"zero hash", PaymentHash{}, ErrUnknownPaymentAddr},
		{"hash of another invoice", func() PaymentHash {
			_, p := mustEncode(t, c, meta, testNonce(11))
			return p.Hash()
		}(), ErrUnknownPaymentAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotMeta, gotPre, err := c.Verify(addr, tt.hash)
			if !errIs(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if gotMeta != (InvoiceMeta{}) || gotPre != (Preimage{}) {
					t.Error("a failed Verify leaked metadata or the preimage")
				}
				return
			}
			if gotMeta.Amount != meta.Amount || !gotMeta.Expiry.Equal(meta.Expiry) || gotPre != pre {
				t.Errorf("Verify = %+v %x, want %+v %x", gotMeta, gotPre, meta, pre)
			}
		})
	}
}

// TestVerifyTamperedAddr flips every bit and XORs every non-zero value into
// every byte of the address: none of those addresses may verify against the
// original payment hash.
func TestVerifyTamperedAddr(t *testing.T) {
	c := newTestCodec(t, 1)
	metas := []InvoiceMeta{
		{Amount: 100_000, Expiry: testNow.Add(time.Hour)},
		{Amount: 0, Expiry: testNow.Add(time.Hour)},
		{Amount: MaxMsat, Expiry: time.Unix(maxExpiryUnix, 0)},
	}
	for i, meta := range metas {
		addr, pre := mustEncode(t, c, meta, testNonce(uint64(100+i)))
		hash := pre.Hash()
		for pos := range len(addr) {
			for x := 1; x < 256; x++ {
				tampered := addr
				tampered[pos] ^= byte(x)
				if _, _, err := c.Verify(tampered, hash); !errors.Is(err, ErrUnknownPaymentAddr) {
					t.Fatalf("meta %d: addr with byte %d ^ %#02x verified (err = %v)", i, pos, x, err)
				}
				if _, p, err := c.Decode(tampered); err == nil && p == pre {
					t.Fatalf("meta %d: addr with byte %d ^ %#02x decodes to the original preimage", i, pos, x)
				}
			}
		}
	}
}

// TestCodecKeysIsolated checks that an invoice of one identity key never
// verifies under another, including the addresses that the other key happens
// to decrypt into plausible metadata.
func TestCodecKeysIsolated(t *testing.T) {
	a := newTestCodec(t, 1)
	oneBit := testKey(1)
	oneBit[0] ^= 1
	others := map[string][]byte{
		"different key":   testKey(2),
		"one bit differs": oneBit,
	}
	meta := InvoiceMeta{Amount: 1000, Expiry: testNow.Add(time.Hour)}
	for name, key := range others {
		t.Run(name, func(t *testing.T) {
			b, err := NewInvoiceCodec(key)
			if err != nil {
				t.Fatal(err)
			}
			decodable := 0
			for i := uint64(0); i < 1<<20 && decodable < 3; i++ {
				addr, pre := mustEncode(t, a, meta, testNonce(i))
				if _, _, err := b.Verify(addr, pre.Hash()); !errors.Is(err, ErrUnknownPaymentAddr) {
					t.Fatalf("nonce %d: invoice of key A verified under key B (err = %v)", i, err)
				}
				if _, p, err := b.Decode(addr); err == nil {
					decodable++
					if p == pre {
						t.Fatalf("nonce %d: key B derived key A's preimage", i)
					}
				}
				if i < 1000 {
					addrB, preB := mustEncode(t, b, meta, testNonce(i))
					if addrB == addr || preB == pre {
						t.Fatalf("nonce %d: keys A and B produced the same address or preimage", i)
					}
				}
			}
			if decodable == 0 {
				t.Fatal("found no address of key A that key B decodes; the test did not cover that case")
			}
		})
	}
}

func TestCodecSubkeys(t *testing.T) {
	key := testKey(7)
	c, err := NewInvoiceCodec(key)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.metaKey) != 32 || len(c.preimageKey) != 32 {
		t.Fatalf("subkey lengths = %d, %d, want 32", len(c.metaKey), len(c.preimageKey))
	}
	if bytes.Equal(c.metaKey, key) || bytes.Equal(c.preimageKey, key) {
		t.Error("a subkey equals the identity key")
	}
	if bytes.Equal(c.metaKey, c.preimageKey) {
		t.Error("metadata and preimage subkeys are equal")
	}

	// Derivation is deterministic and depends on the identity key.
	c2, _ := NewInvoiceCodec(testKey(7))
	if !bytes.Equal(c.metaKey, c2.metaKey) || !bytes.Equal(c.preimageKey, c2.preimageKey) {
		t.Error("subkeys differ for the same identity key")
	}
	c3, _ := NewInvoiceCodec(testKey(8))
	if bytes.Equal(c.metaKey, c3.metaKey) || bytes.Equal(c.preimageKey, c3.preimageKey) {
		t.Error("subkeys equal for different identity keys")
	}

	// The raw identity key is never the MAC key of the preimage or keystream.
	addr, pre := mustEncode(t, c, InvoiceMeta{Amount: 1, Expiry: testNow}, testNonce(1))
	m := hmac.New(sha256.New, key)
	m.Write(addr[:])
	if bytes.Equal(m.Sum(nil), pre[:]) {
		t.Error("preimage is HMAC(identity key, addr)")
	}
	m = hmac.New(sha256.New, key)
	m.Write(addr[:nonceLen])
	if bytes.Equal(m.Sum(nil)[:metaLen], c.keystream(addr[:nonceLen])) {
		t.Error("keystream is HMAC(identity key, nonce)")
	}

	// The codec keeps no reference to the caller's key buffer.
	for i := range key {
		key[i] = 0
	}
	addr2, pre2 := mustEncode(t, c, InvoiceMeta{Amount: 1, Expiry: testNow}, testNonce(1))
	if addr2 != addr || pre2 != pre {
		t.Error("zeroing the caller's identity key changed the codec's output")
	}
}
