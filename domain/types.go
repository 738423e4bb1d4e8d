// Package domain holds lnmux's value types and rules: the stateless invoice
// codec, HTLC sets and their state machine, the invoice lifecycle, the
// routing policy of the virtual channels and failure reasons. It performs no
// I/O, starts no goroutines and reads no clock: time is always a parameter.
package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
)

// Msat is an amount in millisatoshis.
type Msat int64

// String formats the amount with its unit.
func (m Msat) String() string { return fmt.Sprintf("%d msat", int64(m)) }

// MaxMsat bounds every amount lnmux accepts: 21 million BTC.
const MaxMsat Msat = 21_000_000 * 100_000_000 * 1000

// PaymentHash is sha256(preimage).
type PaymentHash [32]byte

// String returns the hash in hex.
func (h PaymentHash) String() string { return hex.EncodeToString(h[:]) }

// Preimage is the secret whose hash locks an HTLC.
type Preimage [32]byte

// Hash returns sha256 of the preimage.
func (p Preimage) Hash() PaymentHash { return sha256.Sum256(p[:]) }

// PaymentAddr is the BOLT11 payment secret ('s' field) echoed by the payer in
// the MPP record. lnmux stores the invoice's encrypted metadata in it.
type PaymentAddr [32]byte

// String returns the address in hex.
func (a PaymentAddr) String() string { return hex.EncodeToString(a[:]) }

// SetID identifies one complete set of HTLCs paying an invoice.
type SetID [32]byte

// String returns the set id in hex.
func (s SetID) String() string { return hex.EncodeToString(s[:]) }

// NodeKey is the 33-byte compressed public key of a cluster LND node.
type NodeKey [33]byte

// String returns the key in hex.
func (k NodeKey) String() string { return hex.EncodeToString(k[:]) }

// ParseNodeKey parses a hex-encoded 33-byte compressed public key.
func ParseNodeKey(s string) (NodeKey, error) {
	var k NodeKey
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) || (b[0] != 2 && b[0] != 3) {
		return k, fmt.Errorf("%w: node key must be 66 hex characters of a compressed public key", ErrInvalidArgument)
	}
	copy(k[:], b)
	return k, nil
}

// CircuitKey identifies an HTLC. Channel and HTLC ids are only unique per
// node, so the node is part of the key.
type CircuitKey struct {
	Node NodeKey
	Chan uint64
	HTLC uint64
}

// String formats the key as node:chan:htlc with a shortened node key.
func (c CircuitKey) String() string {
	return fmt.Sprintf("%x:%d:%d", c.Node[:4], c.Chan, c.HTLC)
}

func (c CircuitKey) bytes() []byte {
	b := make([]byte, 0, 33+16)
	b = append(b, c.Node[:]...)
	b = binary.BigEndian.AppendUint64(b, c.Chan)
	return binary.BigEndian.AppendUint64(b, c.HTLC)
}

// Compare orders circuit keys by node, channel, then HTLC id.
func (c CircuitKey) Compare(o CircuitKey) int {
	if r := bytes.Compare(c.Node[:], o.Node[:]); r != 0 {
		return r
	}
	if c.Chan != o.Chan {
		if c.Chan < o.Chan {
			return -1
		}
		return 1
	}
	switch {
	case c.HTLC < o.HTLC:
		return -1
	case c.HTLC > o.HTLC:
		return 1
	}
	return 0
}

// NewSetID derives the deterministic id of a set from its circuit keys:
// sha256 over the sorted keys, so the same HTLCs always give the same id,
// whatever order they arrived in.
func NewSetID(keys []CircuitKey) SetID {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, CircuitKey.Compare)
	h := sha256.New()
	for _, k := range sorted {
		h.Write(k.bytes())
	}
	var id SetID
	copy(id[:], h.Sum(nil))
	return id
}
