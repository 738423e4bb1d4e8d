package domain

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// originalAddr builds a payment address and preimage by the original
// lnmux's published rules.
func originalAddr(key []byte, random byte, expiry time.Time, amt uint64) (PaymentAddr, Preimage) {
	var a PaymentAddr
	copy(a[:16], bytes.Repeat([]byte{random}, 16))
	binary.BigEndian.PutUint64(a[16:24], uint64(expiry.Unix()))
	binary.BigEndian.PutUint64(a[24:32], amt)
	m := hmac.New(sha256.New, key)
	m.Write(a[:])
	var p Preimage
	copy(p[:], m.Sum(nil))
	return a, p
}

func TestVerifyOriginalAddress(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	c, err := NewInvoiceCodec(key)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Unix(1_800_000_000, 0).UTC()
	for _, amt := range []uint64{0, 1, 20_000, uint64(MaxMsat)} {
		addr, pre := originalAddr(key, 9, exp, amt)
		meta, got, err := c.Verify(addr, pre.Hash())
		if err != nil || got != pre || meta.Amount != Msat(amt) || !meta.Expiry.Equal(exp) {
			t.Errorf("amount %d: %+v %x %v", amt, meta, got, err)
		}
	}

	addr, pre := originalAddr(key, 9, exp, 1000)
	tampered := addr
	tampered[31]++ // a higher amount would give another preimage
	other, otherPre := originalAddr(bytes.Repeat([]byte{8}, 32), 9, exp, 1000)
	tooMuch, tooMuchPre := originalAddr(key, 9, exp, uint64(MaxMsat)+1)
	noExpiry, noExpiryPre := originalAddr(key, 9, time.Unix(0, 0), 1000)
	for name, tc := range map[string]struct {
		addr PaymentAddr
		hash PaymentHash
	}{
		"tampered":       {tampered, pre.Hash()},
		"other key":      {other, otherPre.Hash()},
		"other hash":     {addr, PaymentHash{1}},
		"amount too big": {tooMuch, tooMuchPre.Hash()},
		"no expiry":      {noExpiry, noExpiryPre.Hash()},
	} {
		if _, _, err := c.Verify(tc.addr, tc.hash); !errors.Is(err, ErrUnknownPaymentAddr) {
			t.Errorf("%s: %v, want ErrUnknownPaymentAddr", name, err)
		}
	}

	// lnmux's own addresses are not the original's: Encode never issues one
	// whose preimage is the original's MAC.
	own, ownPre, err := c.Encode(InvoiceMeta{Amount: 5, Expiry: exp}, [nonceLen]byte{3})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.verifyOriginal(own, ownPre.Hash()); err == nil {
		t.Error("an address lnmux issued verifies as the original's")
	}
}

func TestOriginalVirtualChannelID(t *testing.T) {
	var k NodeKey
	k[0] = 0x02
	copy(k[25:], []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08})
	if got, want := OriginalVirtualChannelID(k), uint64(0x8102030405060708); got != want {
		t.Errorf("got %x, want %x", got, want)
	}
	k[25] = 0xff
	if got := OriginalVirtualChannelID(k); got != 0xff02030405060708 {
		t.Errorf("top bit already set: %x", got)
	}
	if OriginalVirtualChannelID(k) == VirtualChannelID(k) {
		t.Error("the original's and lnmux's ids coincide")
	}
}
