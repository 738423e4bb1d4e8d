package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
)

// BOLT11 encoding of lnmux's invoices.
//
// Everything but a handful of fields (timestamp, hash, payment secret,
// description, expiry, amount) is the same for every invoice of one lnmux,
// so the route hints, features and CLTV field are encoded once, in the
// template. An invoice then costs little more than its one signature.

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// BOLT11 tagged field types.
const (
	tagPaymentHash     = 1
	tagRouteHint       = 3
	tagFeatures        = 5
	tagExpiry          = 6
	tagDescription     = 13
	tagPaymentSecret   = 16
	tagDescriptionHash = 23
	tagMinFinalCLTV    = 24
	tagBlindedPath     = 20
)

// HopHint is one hop of a route hint: the virtual channel from a cluster
// node to lnmux.
type HopHint struct {
	Node      NodeKey
	ChanID    uint64
	FeeBase   uint32
	FeePPM    uint32
	CLTVDelta uint16
}

// BOLT11Template encodes the invoices of one lnmux.
type BOLT11Template struct {
	hrpPrefix string
	fixed     []byte // 5-bit words of the fields common to every invoice
	// blinded: the invoices carry blinded paths (BOLT11Fields.Blinded)
	// and no payment secret (NewBlindedBOLT11Template).
	blinded bool
}

// NewBOLT11Template prepares invoices for a network's bech32 prefix ("bc",
// "tb", "bcrt", "tbs", "sb"), one single-hop route hint per node, the given
// feature bits and min_final_cltv_expiry_delta.
func NewBOLT11Template(netHRP string, hints []HopHint, featureBits []int, minFinalCLTV uint32) (*BOLT11Template, error) {
	if netHRP == "" {
		return nil, fmt.Errorf("%w: empty network prefix", ErrInvalidArgument)
	}
	t := &BOLT11Template{hrpPrefix: "ln" + netHRP}
	t.fixed = appendTag(t.fixed, tagMinFinalCLTV, uintWords(uint64(minFinalCLTV)))
	t.fixed = appendTag(t.fixed, tagFeatures, featureWords(featureBits))
	for _, h := range hints {
		var hop [51]byte
		copy(hop[:33], h.Node[:])
		binary.BigEndian.PutUint64(hop[33:41], h.ChanID)
		binary.BigEndian.PutUint32(hop[41:45], h.FeeBase)
		binary.BigEndian.PutUint32(hop[45:49], h.FeePPM)
		binary.BigEndian.PutUint16(hop[49:51], h.CLTVDelta)
		t.fixed = appendTag(t.fixed, tagRouteHint, bytesToWords(nil, hop[:]))
	}
	return t, nil
}

// NewBlindedBOLT11Template prepares blinded invoices (docs/blinded.md): the
// feature bits only. Like lnd's own blinded invoices they have no route
// hints (lnd's decoder refuses hints beside blinded paths), no payment
// secret (it travels in the paths' encrypted data) and no
// min_final_cltv_expiry_delta (each path's CLTV delta includes it).
func NewBlindedBOLT11Template(netHRP string, featureBits []int) (*BOLT11Template, error) {
	if netHRP == "" {
		return nil, fmt.Errorf("%w: empty network prefix", ErrInvalidArgument)
	}
	t := &BOLT11Template{hrpPrefix: "ln" + netHRP, blinded: true}
	t.fixed = appendTag(t.fixed, tagFeatures, featureWords(featureBits))
	return t, nil
}

// Blinded reports whether the template makes blinded invoices.
func (t *BOLT11Template) Blinded() bool { return t.blinded }

// BOLT11Fields are the per-invoice fields. Amount, description and expiry
// come from Terms, which NewInvoiceTerms checked (invoiceterms.go).
type BOLT11Fields struct {
	Timestamp time.Time
	Terms     InvoiceTerms
	Hash      PaymentHash
	// PaymentAddr is the payment secret of a plain invoice; a blinded
	// invoice's is in its paths' encrypted data, not in the invoice.
	PaymentAddr PaymentAddr
	// Blinded are a blinded invoice's paths (at least one); none for a
	// plain invoice.
	Blinded []BlindedPath
}

// CompactSigner signs a 32-byte digest and returns btcec's compact
// signature: a header byte (27 + 4 + recovery id) then r and s.
type CompactSigner func(digest [32]byte) ([]byte, error)

// Encode builds and signs the payment request.
func (t *BOLT11Template) Encode(f BOLT11Fields, sign CompactSigner) (string, error) {
	ts := f.Timestamp.Unix()
	switch {
	case ts < 0 || ts >= 1<<35:
		return "", fmt.Errorf("%w: timestamp out of range", ErrInvalidArgument)
	case !f.Terms.Valid():
		return "", fmt.Errorf("%w: invoice terms not made by NewInvoiceTerms", ErrInvalidArgument)
	case t.blinded != (len(f.Blinded) > 0):
		return "", fmt.Errorf("%w: a blinded template needs blinded paths, a plain one none", ErrInvalidArgument)
	}
	var paths [][]byte
	for _, p := range f.Blinded {
		b, err := p.appendBytes(nil)
		if err != nil {
			return "", err
		}
		paths = append(paths, b)
	}
	terms := f.Terms
	hrp := t.hrpPrefix
	if terms.amount > 0 {
		hrp += encodeAmount(terms.amount)
	}

	data := make([]byte, 0, 7+2*55+len(terms.description)*8/5+8+len(t.fixed)+104+6)
	for i := 6; i >= 0; i-- {
		data = append(data, byte(ts>>(5*i))&31) //nolint:gosec // the low bits are the point: a 5-bit group
	}
	data = appendTag(data, tagPaymentHash, bytesToWords(nil, f.Hash[:]))
	if !t.blinded {
		data = appendTag(data, tagPaymentSecret, bytesToWords(nil, f.PaymentAddr[:]))
	}
	if terms.hasDescHash {
		data = appendTag(data, tagDescriptionHash, bytesToWords(nil, terms.descriptionHash[:]))
	} else {
		data = appendTag(data, tagDescription, bytesToWords(nil, []byte(terms.description)))
	}
	data = appendTag(data, tagExpiry, uintWords(uint64(terms.expiry/time.Second))) //nolint:gosec // NewInvoiceTerms keeps the expiry positive and bounded
	data = append(data, t.fixed...)
	for _, p := range paths {
		data = appendTag(data, tagBlindedPath, bytesToWords(nil, p))
	}

	// The signature covers the hrp and the data part regrouped into bytes.
	msg := make([]byte, 0, len(hrp)+len(data)*5/8+1)
	msg = append(msg, hrp...)
	msg = wordsToBytes(msg, data)
	sig, err := sign(sha256.Sum256(msg))
	if err != nil {
		return "", fmt.Errorf("sign invoice: %w", err)
	}
	if len(sig) != 65 || sig[0] < 31 || sig[0] > 34 {
		return "", fmt.Errorf("%w: not a compressed-key compact signature", ErrInvalidArgument)
	}
	var raw [65]byte
	copy(raw[:64], sig[1:])
	raw[64] = sig[0] - 31
	data = bytesToWords(data, raw[:])

	out := make([]byte, 0, len(hrp)+1+len(data)+6)
	out = append(out, hrp...)
	out = append(out, '1')
	for _, w := range data {
		out = append(out, bech32Charset[w])
	}
	for _, w := range bech32Checksum(hrp, data) {
		out = append(out, bech32Charset[w])
	}
	return string(out), nil
}

// encodeAmount writes the amount with the largest multiplier that divides
// it, which is also the shortest form.
func encodeAmount(m Msat) string {
	const msatPerBTC = 100_000_000_000
	v := uint64(m) //nolint:gosec // Encode passes 0 < m ≤ MaxMsat only
	switch {
	case v%msatPerBTC == 0:
		return strconv.FormatUint(v/msatPerBTC, 10)
	case v%100_000_000 == 0:
		return strconv.FormatUint(v/100_000_000, 10) + "m"
	case v%100_000 == 0:
		return strconv.FormatUint(v/100_000, 10) + "u"
	case v%100 == 0:
		return strconv.FormatUint(v/100, 10) + "n"
	}
	return strconv.FormatUint(v*10, 10) + "p"
}

// appendTag appends a tagged field: type, 10-bit length, data words.
func appendTag(dst []byte, tag byte, words []byte) []byte {
	n := len(words)
	return append(append(dst, tag, byte(n>>5)&31, byte(n)&31), words...) //nolint:gosec // the low bits are the point: a 5-bit group
}

// uintWords is v in big-endian 5-bit words, without leading zero words
// (one word for zero).
func uintWords(v uint64) []byte {
	var buf [13]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte(v & 31)
		v >>= 5
		if v == 0 {
			break
		}
	}
	return append([]byte(nil), buf[i:]...)
}

// featureWords is the feature bit vector in big-endian 5-bit words.
func featureWords(bits []int) []byte {
	if len(bits) == 0 {
		return nil
	}
	maxBit := 0
	for _, b := range bits {
		maxBit = max(maxBit, b)
	}
	words := make([]byte, maxBit/5+1)
	for _, b := range bits {
		words[len(words)-1-b/5] |= 1 << (b % 5)
	}
	return words
}

// bytesToWords regroups bytes into 5-bit words, zero-padding the last one.
func bytesToWords(dst, b []byte) []byte { return regroup(dst, b, 8, 5) }

// wordsToBytes regroups 5-bit words into bytes, zero-padding the last one.
func wordsToBytes(dst, words []byte) []byte { return regroup(dst, words, 5, 8) }

// regroup appends the bits of in, taken from bits at a time, to dst in
// groups of to bits, zero-padding the last group.
func regroup(dst, in []byte, from, to uint) []byte {
	var acc uint32
	var bits uint
	mask := uint32(1)<<to - 1
	for _, c := range in {
		acc = acc<<from | uint32(c)
		bits += from
		for bits >= to {
			bits -= to
			dst = append(dst, byte(acc>>bits&mask)) //nolint:gosec // masked to the group width (at most 8 bits)
		}
	}
	if bits > 0 {
		dst = append(dst, byte(acc<<(to-bits)&mask)) //nolint:gosec // masked to the group width (at most 8 bits)
	}
	return dst
}

// polymodTable[top] is the XOR of the BIP 173 generators selected by the
// five bits shifted out of the checksum state.
var polymodTable = func() (t [32]uint32) {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	for top := range t {
		for i, g := range gen {
			if top>>i&1 == 1 {
				t[top] ^= g
			}
		}
	}
	return t
}()

func bech32Polymod(v uint32, w byte) uint32 {
	return (v&0x1ffffff)<<5 ^ uint32(w) ^ polymodTable[v>>25]
}

// bech32Checksum is the six checksum words of BIP 173 (not bech32m).
func bech32Checksum(hrp string, data []byte) [6]byte {
	v := uint32(1)
	for i := range len(hrp) {
		v = bech32Polymod(v, hrp[i]>>5)
	}
	v = bech32Polymod(v, 0)
	for i := range len(hrp) {
		v = bech32Polymod(v, hrp[i]&31)
	}
	for _, w := range data {
		v = bech32Polymod(v, w)
	}
	for range 6 {
		v = bech32Polymod(v, 0)
	}
	v ^= 1
	var out [6]byte
	for i := range 6 {
		out[i] = byte(v>>(5*(5-i))) & 31 //nolint:gosec // the low bits are the point: a 5-bit group
	}
	return out
}
