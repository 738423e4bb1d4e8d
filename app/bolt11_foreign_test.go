package app

// An independent BOLT11 reader for the blinded-invoice tests
// (docs/blinded.md, "Readers other than lnd"). It is written from BOLT 11
// and from the field-20 layout lnd reads (zpay32/blinded_path.go, bLIP 39)
// and shares no code with lnmux's encoder (domain/bolt11.go) nor with lnd's
// zpay32: a blinded invoice is only checked for real when a reader other
// than the two that write and pay it agrees on every field. It is strict
// where BOLT 11 leaves room (exact field lengths, zero padding, a path that
// fills its field exactly), so that a layout slip shows here first.
//
// Only the standard library and btcec (key parsing and signature
// recovery) are used.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
)

// foreignInvoice is what the reader found in an invoice.
type foreignInvoice struct {
	HRP     string
	Network string // "bc", "tb", "tbs", "bcrt" or "sb"
	// AmountMsat is meaningful when HasAmount.
	AmountMsat uint64
	HasAmount  bool
	Timestamp  uint64
	// Payee is the compressed key recovered from the signature (or the
	// `n` field's key, which the signature then verifies against).
	Payee []byte

	PaymentHash     []byte
	Description     *string
	DescriptionHash []byte
	Expiry          *uint64
	MinFinalCLTV    *uint64
	PaymentSecret   []byte
	PayeeField      []byte
	Metadata        []byte
	RouteHints      int
	FallbackAddrs   int
	// Features are the bits set in the `9` field.
	Features map[int]bool
	Paths    []foreignPath
	// Tags lists every field's type in invoice order.
	Tags []int
}

// foreignPath is one tagged field 20 (a blinded payment path).
type foreignPath struct {
	FeeBaseMsat  uint32
	FeePPM       uint32
	CLTVDelta    uint16
	HTLCMinMsat  uint64
	HTLCMaxMsat  uint64
	Features     []byte
	FirstPathKey []byte
	Hops         []foreignHop
	// Raw is the field's data regrouped into bytes.
	Raw []byte
}

type foreignHop struct {
	// Node is the hop's node id: the real one for the introduction
	// node, a blinded one after it.
	Node []byte
	Data []byte
}

const (
	foreignCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	// foreignSigWords: a 64-byte signature and its recovery id, 520 bits.
	foreignSigWords = 104
	foreignTSWords  = 7
)

// foreignNetworks are BOLT 11's currency prefixes, longest first so that
// "bcrt" is not read as "bc" followed by an amount.
var foreignNetworks = []string{"bcrt", "tbs", "bc", "tb", "sb"}

// foreignDecode reads a BOLT11 invoice.
func foreignDecode(s string) (*foreignInvoice, error) {
	hrp, data, err := foreignBech32(s)
	if err != nil {
		return nil, err
	}
	inv := &foreignInvoice{HRP: hrp, Features: map[int]bool{}}
	if err := inv.readHRP(hrp); err != nil {
		return nil, err
	}
	if len(data) < foreignTSWords+foreignSigWords {
		return nil, fmt.Errorf("data part of %d words is too short", len(data))
	}
	body, sigWords := data[:len(data)-foreignSigWords], data[len(data)-foreignSigWords:]
	inv.Timestamp = foreignUint(body[:foreignTSWords])
	if err := inv.readFields(body[foreignTSWords:]); err != nil {
		return nil, err
	}
	if err := inv.recoverPayee(hrp, body, sigWords); err != nil {
		return nil, err
	}
	return inv, nil
}

// foreignBech32 checks the bech32 checksum (BIP 173; BOLT 11 has no length
// limit) and returns the human-readable part and the 5-bit words.
func foreignBech32(s string) (string, []byte, error) {
	lower := strings.ToLower(s)
	if lower != s && strings.ToUpper(s) != s {
		return "", nil, errors.New("mixed case")
	}
	sep := strings.LastIndexByte(lower, '1')
	if sep < 1 || sep+7 > len(lower) {
		return "", nil, errors.New("no separator, or a checksum too short")
	}
	hrp := lower[:sep]
	for i := range len(hrp) {
		if hrp[i] < 33 || hrp[i] > 126 {
			return "", nil, fmt.Errorf("character %d of the prefix out of range", i)
		}
	}
	words := make([]byte, 0, len(lower)-sep-1)
	for i := sep + 1; i < len(lower); i++ {
		v := strings.IndexByte(foreignCharset, lower[i])
		if v < 0 {
			return "", nil, fmt.Errorf("character %q is not bech32", lower[i])
		}
		words = append(words, byte(v))
	}
	values := make([]byte, 0, 2*len(hrp)+1+len(words))
	for i := range len(hrp) {
		values = append(values, hrp[i]>>5)
	}
	values = append(values, 0)
	for i := range len(hrp) {
		values = append(values, hrp[i]&31)
	}
	values = append(values, words...)
	if foreignPolymod(values) != 1 {
		return "", nil, errors.New("bad checksum")
	}
	return hrp, words[:len(words)-6], nil
}

func foreignPolymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := range 5 {
			if (top>>i)&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

// readHRP reads "ln" + currency + optional amount and multiplier.
func (inv *foreignInvoice) readHRP(hrp string) error {
	rest, ok := strings.CutPrefix(hrp, "ln")
	if !ok {
		return errors.New(`prefix is not "ln"`)
	}
	for _, n := range foreignNetworks {
		if amt, ok := strings.CutPrefix(rest, n); ok {
			inv.Network = n
			return inv.readAmount(amt)
		}
	}
	return fmt.Errorf("unknown currency in %q", hrp)
}

func (inv *foreignInvoice) readAmount(a string) error {
	if a == "" {
		return nil
	}
	// Millisatoshi per unit of each multiplier: 1 BTC is 10^11 msat.
	per := map[byte]uint64{'m': 100_000_000, 'u': 100_000, 'n': 100}
	digits, mult := a, byte(0)
	if last := a[len(a)-1]; last < '0' || last > '9' {
		digits, mult = a[:len(a)-1], last
	}
	if digits == "" || (len(digits) > 1 && digits[0] == '0') {
		return fmt.Errorf("amount %q: no digits, or a leading zero", a)
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return fmt.Errorf("amount %q: %w", a, err)
	}
	switch {
	case mult == 0:
		inv.AmountMsat = n * 100_000_000_000
	case mult == 'p':
		// A pico-bitcoin is a tenth of a millisatoshi.
		if n%10 != 0 {
			return fmt.Errorf("amount %q is not a whole millisatoshi", a)
		}
		inv.AmountMsat = n / 10
	case per[mult] != 0:
		inv.AmountMsat = n * per[mult]
	default:
		return fmt.Errorf("amount %q: unknown multiplier", a)
	}
	inv.HasAmount = true
	return nil
}

// readFields reads the tagged fields: type (one word), data length (two
// words), data.
func (inv *foreignInvoice) readFields(w []byte) error {
	for len(w) > 0 {
		if len(w) < 3 {
			return errors.New("truncated field header")
		}
		tag, n := int(w[0]), int(w[1])<<5|int(w[2])
		if len(w) < 3+n {
			return fmt.Errorf("field %d of %d words overruns the invoice", tag, n)
		}
		d := w[3 : 3+n]
		w = w[3+n:]
		inv.Tags = append(inv.Tags, tag)
		if err := inv.readField(tag, d); err != nil {
			return fmt.Errorf("field %d: %w", tag, err)
		}
	}
	return nil
}

func (inv *foreignInvoice) readField(tag int, d []byte) error {
	var err error
	switch tag {
	case 1: // p: payment hash
		if len(d) == 52 && inv.PaymentHash == nil {
			inv.PaymentHash, err = foreignBytes(d)
		}
	case 16: // s: payment secret
		if len(d) == 52 && inv.PaymentSecret == nil {
			inv.PaymentSecret, err = foreignBytes(d)
		}
	case 23: // h: description hash
		if len(d) == 52 && inv.DescriptionHash == nil {
			inv.DescriptionHash, err = foreignBytes(d)
		}
	case 19: // n: payee key
		if len(d) == 53 && inv.PayeeField == nil {
			inv.PayeeField, err = foreignBytes(d)
		}
	case 13: // d: description
		var b []byte
		if b, err = foreignBytes(d); err == nil {
			if !utf8.Valid(b) {
				return errors.New("description is not UTF-8")
			}
			desc := string(b)
			inv.Description = &desc
		}
	case 6: // x: expiry seconds
		v := foreignUint(d)
		inv.Expiry = &v
	case 24: // c: min_final_cltv_expiry_delta
		v := foreignUint(d)
		inv.MinFinalCLTV = &v
	case 27: // m: payment metadata
		inv.Metadata, err = foreignBytes(d)
	case 3: // r: route hint
		inv.RouteHints++
	case 9: // f: fallback address
		inv.FallbackAddrs++
	case 5: // 9: features, big endian, bit 0 the last word's lowest
		for i := range len(d) * 5 {
			if d[len(d)-1-i/5]>>(i%5)&1 == 1 {
				inv.Features[i] = true
			}
		}
	case 20: // blinded payment path
		var p foreignPath
		if p, err = foreignReadPath(d); err == nil {
			inv.Paths = append(inv.Paths, p)
		}
	}
	return err
}

// foreignBytes regroups 5-bit words into bytes; the bits left over (fewer
// than eight) must be zero padding.
func foreignBytes(w []byte) ([]byte, error) {
	var acc uint32
	var bits uint
	out := make([]byte, 0, len(w)*5/8)
	for _, v := range w {
		if v > 31 {
			return nil, errors.New("word out of range")
		}
		acc = acc<<5 | uint32(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
			acc &= 1<<bits - 1
		}
	}
	if acc != 0 {
		return nil, errors.New("non-zero padding")
	}
	return out, nil
}

// foreignUint reads words as one big-endian number.
func foreignUint(w []byte) uint64 {
	var v uint64
	for _, x := range w {
		v = v<<5 | uint64(x)
	}
	return v
}

// foreignReadPath reads a field 20 in lnd's layout (zpay32/blinded_path.go):
// fee base u32, fee rate u32, CLTV delta u16, htlc minimum u64, htlc maximum
// u64, features (u16 length, bytes), first path key (33 bytes), hop count
// u8, then per hop its node id (33 bytes), a BigSize length and the
// encrypted data. The path must fill the field exactly.
func foreignReadPath(words []byte) (foreignPath, error) {
	var p foreignPath
	// The field carries whole bytes: fewer than five bits of zero padding.
	if len(words)*5%8 >= 5 {
		return p, fmt.Errorf("%d words are not a whole number of bytes", len(words))
	}
	raw, err := foreignBytes(words)
	if err != nil {
		return p, err
	}
	p.Raw = raw
	r := foreignReader{b: raw}
	p.FeeBaseMsat = uint32(r.uint(4))
	p.FeePPM = uint32(r.uint(4))
	p.CLTVDelta = uint16(r.uint(2))
	p.HTLCMinMsat = r.uint(8)
	p.HTLCMaxMsat = r.uint(8)
	p.Features = r.bytes(int(r.uint(2)))
	p.FirstPathKey = r.key()
	hops := int(r.uint(1))
	if r.err == nil && hops == 0 {
		return p, errors.New("a path without hops")
	}
	for range hops {
		node := r.key()
		data := r.bytes(int(r.bigSize()))
		p.Hops = append(p.Hops, foreignHop{Node: node, Data: data})
	}
	if r.err != nil {
		return p, r.err
	}
	if len(r.b) != 0 {
		return p, fmt.Errorf("%d bytes left after the path", len(r.b))
	}
	return p, nil
}

// foreignReader consumes big-endian values; the first shortfall sticks.
type foreignReader struct {
	b   []byte
	err error
}

func (r *foreignReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("%d bytes wanted, %d left", n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *foreignReader) uint(n int) uint64 {
	var v uint64
	for _, x := range r.bytes(n) {
		v = v<<8 | uint64(x)
	}
	return v
}

// key reads a compressed point and checks that it is on the curve.
func (r *foreignReader) key() []byte {
	k := r.bytes(33)
	if r.err == nil {
		if _, err := btcec.ParsePubKey(k); err != nil {
			r.err = fmt.Errorf("not a point: %w", err)
		}
	}
	return k
}

// bigSize reads BOLT 1's BigSize, refusing non-minimal encodings.
func (r *foreignReader) bigSize() uint64 {
	first := r.uint(1)
	var v, low uint64
	switch first {
	case 0xfd:
		v, low = r.uint(2), 0xfd
	case 0xfe:
		v, low = r.uint(4), 0x10000
	case 0xff:
		v, low = r.uint(8), 0x100000000
	default:
		return first
	}
	if r.err == nil && v < low {
		r.err = fmt.Errorf("non-minimal BigSize %d", v)
	}
	return v
}

// recoverPayee checks the signature over sha256(hrp ‖ data regrouped into
// bytes) and recovers the payee's key from it.
func (inv *foreignInvoice) recoverPayee(hrp string, body, sigWords []byte) error {
	sig, err := foreignBytes(sigWords)
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	if len(sig) != 65 {
		return fmt.Errorf("signature of %d bytes", len(sig))
	}
	if sig[64] > 3 {
		return fmt.Errorf("recovery id %d", sig[64])
	}
	// The data part is padded with zero bits to whole bytes for signing;
	// unlike a field, that padding is part of the message.
	msg := []byte(hrp)
	var acc uint32
	var bits uint
	for _, v := range body {
		acc = acc<<5 | uint32(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			msg = append(msg, byte(acc>>bits))
			acc &= 1<<bits - 1
		}
	}
	if bits > 0 {
		msg = append(msg, byte(acc<<(8-bits)))
	}
	digest := sha256.Sum256(msg)
	compact := append([]byte{27 + 4 + sig[64]}, sig[:64]...)
	key, _, err := ecdsa.RecoverCompact(compact, digest[:])
	if err != nil {
		return fmt.Errorf("signature recovery: %w", err)
	}
	inv.Payee = key.SerializeCompressed()
	if inv.PayeeField != nil && string(inv.PayeeField) != string(inv.Payee) {
		return errors.New("the signature is not the n field's key")
	}
	return nil
}
