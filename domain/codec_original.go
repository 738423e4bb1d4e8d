package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"time"
)

// Payment addresses of the original lnmux (bottlepay/lnmux), which lnmux
// accepts so that invoices made before an operator switched stay payable
// with the same identity key, but never issues (docs/compatibility.md):
//
//	addr[0:16]  random
//	addr[16:24] expiry, unix seconds, big endian, in plain text
//	addr[24:32] amount msat, big endian, in plain text
//
// preimage = HMAC-SHA256(identity private key, addr).

// verifyOriginal checks addr as an original lnmux payment address for hash.
// Any failure is ErrUnknownPaymentAddr.
func (c *InvoiceCodec) verifyOriginal(addr PaymentAddr, hash PaymentHash) (InvoiceMeta, Preimage, error) {
	m := hmac.New(sha256.New, c.originalKey)
	m.Write(addr[:])
	var p Preimage
	copy(p[:], m.Sum(nil))
	got := p.Hash()
	if subtle.ConstantTimeCompare(got[:], hash[:]) != 1 {
		return InvoiceMeta{}, Preimage{}, ErrUnknownPaymentAddr
	}
	exp := binary.BigEndian.Uint64(addr[16:24])
	amt := binary.BigEndian.Uint64(addr[24:32])
	if amt > uint64(MaxMsat) || exp == 0 || exp > maxExpiryUnix {
		return InvoiceMeta{}, Preimage{}, ErrUnknownPaymentAddr
	}
	return InvoiceMeta{Amount: Msat(amt), Expiry: time.Unix(int64(exp), 0).UTC()}, p, nil
}

// OriginalVirtualChannelID is the short channel id the original lnmux put
// in its route hint through node: the last 8 bytes of the node's key with
// the top bit set, a block height no real channel has. HTLCs of invoices
// made by the original arrive on it.
func OriginalVirtualChannelID(node NodeKey) uint64 {
	return binary.BigEndian.Uint64(node[len(node)-8:]) | 1<<63
}
