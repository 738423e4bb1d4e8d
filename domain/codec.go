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

// Layout of a payment address (docs/design.md, "Stateless invoices"):
//
//	addr[0:16]  nonce: random, or for an external-hash invoice a MAC tag
//	addr[16:32] metadata XOR keystream, keystream = HMAC(metaKey, addr[0:16])[:16]
//
// The first metadata byte is the version; it says the layout of the rest:
//
//	1 (own):           amount msat (8 bytes) ‖ expiry unix s (7 bytes)
//	2 (own, timed):    amount msat (8) ‖ expiry (5) ‖ accept timeout s (2)
//	3 (external hash): amount msat (8) ‖ expiry (5) ‖ accept timeout s (2)
//
// all big endian. Version 1 is the format lnmux always issued: invoices
// without an accept timeout still get it, byte for byte.
//
// For an own invoice (1, 2) the preimage is HMAC(preimageKey, addr), so
// changing any bit of the address changes the preimage and the HTLC's hash
// no longer matches: authenticity comes from that match, the encryption
// only keeps amount and expiry private.
//
// An external-hash invoice (3) has a payment hash the caller chose; lnmux
// never knows its preimage until the application settles with it. Its
// addr[0:16] is tag = HMAC(externalKey, metadata ‖ hash)[:16]: the tag binds
// amount, expiry, accept timeout and hash, so an HTLC for another hash, or
// an address with any bit changed, is refused as unknown.
const (
	nonceLen      = 16
	metaLen       = 16
	maxExpiryUnix = 1<<56 - 1
	// maxExpiryUnixB is the largest expiry the 5-byte field of versions 2
	// and 3 holds (the year 36812).
	maxExpiryUnixB = 1<<40 - 1

	metadataVersion = 1 // own invoice, no accept timeout
	versionOwnTimed = 2 // own invoice with an accept timeout
	versionExternal = 3 // caller-supplied payment hash
)

// MaxAcceptTimeout is the longest per-invoice accept timeout: the payment
// address holds it in 16 bits of seconds.
const MaxAcceptTimeout = (1<<16 - 1) * time.Second

// InvoiceMeta is what a stateless invoice remembers about itself.
type InvoiceMeta struct {
	// Amount is the invoice amount; zero means any amount.
	Amount Msat
	// Expiry is when the invoice stops being payable (second precision).
	Expiry time.Time
	// AcceptTimeout is how long an accepted set of this invoice waits for
	// a decision; zero means the configured default. Whole seconds, at
	// most MaxAcceptTimeout.
	AcceptTimeout time.Duration
	// External is set for an invoice whose payment hash the caller chose:
	// lnmux does not know its preimage, the application settles with it.
	External bool
}

// Expired reports whether the invoice can no longer be paid at now.
func (m InvoiceMeta) Expired(now time.Time) bool { return !now.Before(m.Expiry) }

// InvoiceCodec turns invoice metadata into payment addresses and preimages
// and back. It is safe for concurrent use.
type InvoiceCodec struct {
	metaKey     []byte
	preimageKey []byte
	// externalKey MACs the metadata and hash of external-hash invoices.
	externalKey []byte
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
	externalKey, err := hkdf.Key(sha256.New, identityKey, []byte("lnmux"), "lnmux/v1 external hash tag", 32)
	if err != nil {
		return nil, fmt.Errorf("derive external hash key: %w", err)
	}
	return &InvoiceCodec{metaKey: metaKey, preimageKey: preimageKey, externalKey: externalKey,
		originalKey: append([]byte(nil), identityKey...)}, nil
}

// Encode builds the payment address of an own invoice for meta with the
// given random nonce and returns it with the invoice's preimage. An
// external-hash invoice is EncodeExternal's.
func (c *InvoiceCodec) Encode(meta InvoiceMeta, nonce [nonceLen]byte) (PaymentAddr, Preimage, error) {
	if meta.External {
		return PaymentAddr{}, Preimage{}, fmt.Errorf("%w: an external-hash invoice needs its hash", ErrInvalidArgument)
	}
	plain, err := layout(meta)
	if err != nil {
		return PaymentAddr{}, Preimage{}, err
	}
	addr := c.seal(nonce, plain)
	return addr, c.preimage(addr), nil
}

// EncodeExternal builds the payment address of an invoice whose payment
// hash the caller chose. It is deterministic: the same metadata and hash
// give the same address.
func (c *InvoiceCodec) EncodeExternal(meta InvoiceMeta, hash PaymentHash) (PaymentAddr, error) {
	meta.External = true
	plain, err := layout(meta)
	if err != nil {
		return PaymentAddr{}, err
	}
	return c.seal(c.tag(plain, hash), plain), nil
}

// layout checks meta and lays it out as plaintext metadata.
func layout(meta InvoiceMeta) ([metaLen]byte, error) {
	var plain [metaLen]byte
	if err := checkAmount(meta.Amount); err != nil {
		return plain, err
	}
	if err := checkAcceptTimeout(meta.AcceptTimeout); err != nil {
		return plain, err
	}
	exp := meta.Expiry.Unix()
	binary.BigEndian.PutUint64(plain[1:9], uint64(meta.Amount)) //nolint:gosec // checked positive above (the amount rule of NewInvoiceTerms)
	if !meta.External && meta.AcceptTimeout == 0 {
		if exp <= 0 || exp > maxExpiryUnix {
			return [metaLen]byte{}, fmt.Errorf("%w: expiry out of range", ErrInvalidArgument)
		}
		plain[0] = metadataVersion
		var e [8]byte
		binary.BigEndian.PutUint64(e[:], uint64(exp))
		copy(plain[9:], e[1:])
		return plain, nil
	}
	if exp <= 0 || exp > maxExpiryUnixB {
		return [metaLen]byte{}, fmt.Errorf("%w: expiry out of range", ErrInvalidArgument)
	}
	plain[0] = versionOwnTimed
	if meta.External {
		plain[0] = versionExternal
	}
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(exp))
	copy(plain[9:14], e[3:])
	binary.BigEndian.PutUint16(plain[14:16], uint16(meta.AcceptTimeout/time.Second)) //nolint:gosec // checkAcceptTimeout bounds it to 16 bits
	return plain, nil
}

// checkAcceptTimeout is the accept timeout limit, shared with
// InvoiceTerms: zero (the default) or whole seconds up to MaxAcceptTimeout.
func checkAcceptTimeout(d time.Duration) error {
	switch {
	case d < 0:
		return fieldErr(FieldAcceptTimeout, "must not be negative")
	case d > MaxAcceptTimeout:
		return fieldErr(FieldAcceptTimeout, "must be at most %d seconds", int64(MaxAcceptTimeout/time.Second))
	case d%time.Second != 0:
		return fieldErr(FieldAcceptTimeout, "must be whole seconds")
	}
	return nil
}

func (c *InvoiceCodec) seal(nonce [nonceLen]byte, plain [metaLen]byte) PaymentAddr {
	var addr PaymentAddr
	copy(addr[:nonceLen], nonce[:])
	ks := c.keystream(nonce[:])
	for i := range metaLen {
		addr[nonceLen+i] = plain[i] ^ ks[i]
	}
	return addr
}

// Decode recovers the metadata of a payment address and, for an own
// invoice, its preimage (zero for an external-hash invoice). A decoded
// address is only genuine if it matches the HTLC's payment hash: use
// Verify for HTLCs.
func (c *InvoiceCodec) Decode(addr PaymentAddr) (InvoiceMeta, Preimage, error) {
	meta, _, err := c.open(addr)
	if err != nil {
		return InvoiceMeta{}, Preimage{}, err
	}
	if meta.External {
		return meta, Preimage{}, nil
	}
	return meta, c.preimage(addr), nil
}

func (c *InvoiceCodec) open(addr PaymentAddr) (InvoiceMeta, [metaLen]byte, error) {
	ks := c.keystream(addr[:nonceLen])
	var plain [metaLen]byte
	for i := range metaLen {
		plain[i] = addr[nonceLen+i] ^ ks[i]
	}
	amt := binary.BigEndian.Uint64(plain[1:9])
	var e [8]byte
	var timeout uint16
	switch plain[0] {
	case metadataVersion:
		copy(e[1:], plain[9:])
	case versionOwnTimed, versionExternal:
		copy(e[3:], plain[9:14])
		timeout = binary.BigEndian.Uint16(plain[14:16])
		if timeout == 0 && plain[0] == versionOwnTimed {
			// Encode writes version 1 for an own invoice without one.
			return InvoiceMeta{}, plain, ErrUnknownPaymentAddr
		}
	default:
		return InvoiceMeta{}, plain, ErrUnknownPaymentAddr
	}
	exp := binary.BigEndian.Uint64(e[:])
	if amt > uint64(MaxMsat) || exp == 0 {
		return InvoiceMeta{}, plain, ErrUnknownPaymentAddr
	}
	meta := InvoiceMeta{
		Amount:        Msat(amt),                      //nolint:gosec // amt ≤ MaxMsat is checked above
		Expiry:        time.Unix(int64(exp), 0).UTC(), //nolint:gosec // exp has at most 56 bits
		AcceptTimeout: time.Duration(timeout) * time.Second,
		External:      plain[0] == versionExternal,
	}
	return meta, plain, nil
}

// Verify decodes addr and checks, in constant time, that it belongs to
// hash: an own invoice's preimage must hash to it, an external-hash
// invoice's tag must MAC its metadata with it. An address the original
// lnmux issued with the same identity key is accepted too
// (codec_original.go). Any failure is ErrUnknownPaymentAddr. The preimage
// returned is zero for an external-hash invoice.
func (c *InvoiceCodec) Verify(addr PaymentAddr, hash PaymentHash) (InvoiceMeta, Preimage, error) {
	meta, plain, err := c.open(addr)
	if err == nil {
		if meta.External {
			tag := c.tag(plain, hash)
			if subtle.ConstantTimeCompare(tag[:], addr[:nonceLen]) == 1 {
				return meta, Preimage{}, nil
			}
		} else {
			preimage := c.preimage(addr)
			got := preimage.Hash()
			if subtle.ConstantTimeCompare(got[:], hash[:]) == 1 {
				return meta, preimage, nil
			}
		}
	}
	return c.verifyOriginal(addr, hash)
}

// tag is an external-hash invoice's MAC of its metadata and hash.
func (c *InvoiceCodec) tag(plain [metaLen]byte, hash PaymentHash) [nonceLen]byte {
	m := hmac.New(sha256.New, c.externalKey)
	m.Write(plain[:])
	m.Write(hash[:])
	var t [nonceLen]byte
	copy(t[:], m.Sum(nil))
	return t
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
