package domain

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"time"
)

// Layout of a payment address:
//
//	addr[0:16]  random nonce
//	addr[16:32] metadata XOR keystream, keystream = HMAC(metaKey, nonce)[:16]
//
// metadata: version (1 byte) ‖ amount msat (8 bytes, big endian) ‖ expiry
// unix seconds (7 bytes, big endian).
//
// The preimage is HMAC(preimageKey, addr), so changing any bit of the address
// changes the preimage and the HTLC's hash no longer matches. The encryption
// only keeps amount and expiry private; authenticity comes from that match.
const (
	nonceLen        = 16
	metaLen         = 16
	metadataVersion = 1
	maxExpiryUnix   = 1<<56 - 1
)

// InvoiceMeta is what a stateless invoice remembers about itself.
type InvoiceMeta struct {
	// Amount is the invoice amount; zero means any amount.
	Amount Msat
	// Expiry is when the invoice stops being payable (second precision).
	Expiry time.Time
}

// Expired reports whether the invoice can no longer be paid at now.
func (m InvoiceMeta) Expired(now time.Time) bool { return !now.Before(m.Expiry) }

// InvoiceCodec turns invoice metadata into payment addresses and preimages
// and back. It is safe for concurrent use.
type InvoiceCodec struct {
	metaKey     []byte
	preimageKey []byte
	// originalKey is the identity key itself, the original lnmux's MAC key:
	// only to verify the addresses it issued (codec_original.go).
	originalKey []byte
}

// NewInvoiceCodec derives the codec's subkeys from the 32-byte identity key.
// The identity key itself is never used as a MAC key.
func NewInvoiceCodec(identityKey []byte) (*InvoiceCodec, error) {
	// Only the length matters here: the key is HKDF input. Whether it is a
	// usable private key is ValidateIdentityKey's question (app.New asks it).
	if len(identityKey) != IdentityKeyLen {
		return nil, fmt.Errorf("%w: identity key must be %d bytes", ErrInvalidArgument, IdentityKeyLen)
	}
	metaKey, err := hkdf.Key(sha256.New, identityKey, []byte("lnmux"), "lnmux/v1 invoice metadata", 32)
	if err != nil {
		return nil, fmt.Errorf("derive metadata key: %w", err)
	}
	preimageKey, err := hkdf.Key(sha256.New, identityKey, []byte("lnmux"), "lnmux/v1 preimage", 32)
	if err != nil {
		return nil, fmt.Errorf("derive preimage key: %w", err)
	}
	return &InvoiceCodec{metaKey: metaKey, preimageKey: preimageKey, originalKey: append([]byte(nil), identityKey...)}, nil
}

// Encode builds the payment address for meta with the given random nonce and
// returns it with the invoice's preimage.
func (c *InvoiceCodec) Encode(meta InvoiceMeta, nonce [nonceLen]byte) (PaymentAddr, Preimage, error) {
	var addr PaymentAddr
	if err := checkAmount(meta.Amount); err != nil {
		return addr, Preimage{}, err
	}
	exp := meta.Expiry.Unix()
	if exp <= 0 || exp > maxExpiryUnix {
		return addr, Preimage{}, fmt.Errorf("%w: expiry out of range", ErrInvalidArgument)
	}
	var plain [metaLen]byte
	plain[0] = metadataVersion
	binary.BigEndian.PutUint64(plain[1:9], uint64(meta.Amount)) //nolint:gosec // checked positive above (the amount rule of NewInvoiceTerms)
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(exp))
	copy(plain[9:], e[1:])

	copy(addr[:nonceLen], nonce[:])
	ks := c.keystream(nonce[:])
	for i := range metaLen {
		addr[nonceLen+i] = plain[i] ^ ks[i]
	}
	return addr, c.preimage(addr), nil
}

// Decode recovers the metadata and preimage of a payment address. A decoded
// address is only genuine if the preimage hashes to the HTLC's payment hash:
// use Verify for HTLCs.
func (c *InvoiceCodec) Decode(addr PaymentAddr) (InvoiceMeta, Preimage, error) {
	ks := c.keystream(addr[:nonceLen])
	var plain [metaLen]byte
	for i := range metaLen {
		plain[i] = addr[nonceLen+i] ^ ks[i]
	}
	if plain[0] != metadataVersion {
		return InvoiceMeta{}, Preimage{}, ErrUnknownPaymentAddr
	}
	amt := binary.BigEndian.Uint64(plain[1:9])
	var e [8]byte
	copy(e[1:], plain[9:])
	exp := binary.BigEndian.Uint64(e[:])
	if amt > uint64(MaxMsat) || exp == 0 {
		return InvoiceMeta{}, Preimage{}, ErrUnknownPaymentAddr
	}
	meta := InvoiceMeta{Amount: Msat(amt), Expiry: time.Unix(int64(exp), 0).UTC()} //nolint:gosec // amt ≤ MaxMsat is checked above; exp has 56 bits
	return meta, c.preimage(addr), nil
}

// Verify decodes addr and checks, in constant time, that its preimage hashes
// to hash. An address the original lnmux issued with the same identity key
// is accepted too (codec_original.go). Any failure is ErrUnknownPaymentAddr.
func (c *InvoiceCodec) Verify(addr PaymentAddr, hash PaymentHash) (InvoiceMeta, Preimage, error) {
	meta, preimage, err := c.Decode(addr)
	if err == nil {
		got := preimage.Hash()
		if subtle.ConstantTimeCompare(got[:], hash[:]) == 1 {
			return meta, preimage, nil
		}
	}
	return c.verifyOriginal(addr, hash)
}

func (c *InvoiceCodec) keystream(nonce []byte) []byte {
	m := hmac.New(sha256.New, c.metaKey)
	m.Write(nonce)
	return m.Sum(nil)[:metaLen]
}

func (c *InvoiceCodec) preimage(addr PaymentAddr) Preimage {
	m := hmac.New(sha256.New, c.preimageKey)
	m.Write(addr[:])
	var p Preimage
	copy(p[:], m.Sum(nil))
	return p
}
