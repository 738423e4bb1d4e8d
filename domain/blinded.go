package domain

import (
	"encoding/binary"
	"fmt"
)

// Blinded payment paths in BOLT11 invoices (docs/blinded.md).
//
// A blinded invoice carries, instead of route hints and a payment secret,
// one tagged field 20 per path: lnd's encoding (bLIP 39), which lnd's payer
// reads (zpay32/blinded_path.go in lnd):
//
//	fee_base_msat u32 ‖ fee_proportional_millionths u32 ‖ cltv_expiry_delta u16 ‖
//	htlc_minimum_msat u64 ‖ htlc_maximum_msat u64 ‖ features (u16 length ‖ bytes) ‖
//	first path key (33 bytes) ‖ number of hops u8 ‖
//	per hop: blinded node id (33 bytes) ‖ BigSize length ‖ encrypted recipient data
//
// all big endian. The introduction node's "blinded" id is its real key.

// BlindedPathMaxHops is the most hops lnd's decoder accepts in one path.
const BlindedPathMaxHops = 7

// BlindedHopMaxData is the longest encrypted data lnd's decoder accepts
// in a hop.
const BlindedHopMaxData = 535

// blindedFieldMaxBytes is the most a BOLT11 tagged field holds: its length
// is ten bits of 5-bit words (1023 words, 639 whole bytes).
const blindedFieldMaxBytes = 1023 * 5 / 8

// BlindedHop is one hop of a blinded path: the blinded node id (the real
// one for the introduction node) and the data only that node can decrypt.
type BlindedHop struct {
	Node NodeKey
	Data []byte
}

// BlindedPath is what a payer needs to pay through one blinded path: the
// path's aggregate routing policy (its "pay info"), the first path key and
// the hops.
type BlindedPath struct {
	FeeBase   uint32
	FeePPM    uint32
	CLTVDelta uint16
	HTLCMin   uint64
	HTLCMax   uint64
	// FirstPathKey is the blinding point the payer gives the introduction
	// node (E0).
	FirstPathKey NodeKey
	Hops         []BlindedHop
}

// appendBytes appends the path in the layout above (with an empty
// feature vector).
func (p BlindedPath) appendBytes(dst []byte) ([]byte, error) {
	switch {
	case len(p.Hops) == 0 || len(p.Hops) > BlindedPathMaxHops:
		return nil, fmt.Errorf("%w: blinded path of %d hops (1 to %d)", ErrInvalidArgument, len(p.Hops), BlindedPathMaxHops)
	case p.HTLCMax < p.HTLCMin:
		return nil, fmt.Errorf("%w: blinded path htlc maximum below its minimum", ErrInvalidArgument)
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, p.FeeBase)
	dst = binary.BigEndian.AppendUint32(dst, p.FeePPM)
	dst = binary.BigEndian.AppendUint16(dst, p.CLTVDelta)
	dst = binary.BigEndian.AppendUint64(dst, p.HTLCMin)
	dst = binary.BigEndian.AppendUint64(dst, p.HTLCMax)
	dst = binary.BigEndian.AppendUint16(dst, 0) // no features
	dst = append(dst, p.FirstPathKey[:]...)
	dst = append(dst, byte(len(p.Hops))) //nolint:gosec // at most BlindedPathMaxHops (checked above)
	for _, h := range p.Hops {
		if len(h.Data) > BlindedHopMaxData {
			return nil, fmt.Errorf("%w: blinded hop data of %d bytes", ErrInvalidArgument, len(h.Data))
		}
		dst = append(dst, h.Node[:]...)
		// BigSize (BOLT 1): one byte below 0xfd, else 0xfd and two bytes.
		if n := len(h.Data); n < 0xfd {
			dst = append(dst, byte(n))
		} else {
			dst = binary.BigEndian.AppendUint16(append(dst, 0xfd), uint16(n)) //nolint:gosec // bounded just above
		}
		dst = append(dst, h.Data...)
	}
	if n := len(dst) - start; n > blindedFieldMaxBytes {
		return nil, fmt.Errorf("%w: blinded path of %d bytes exceeds a BOLT11 field (%d)", ErrInvalidArgument, n, blindedFieldMaxBytes)
	}
	return dst, nil
}
