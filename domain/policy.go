package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// RoutingPolicy is what the virtual channel from each cluster node to lnmux
// charges. It is published in the invoices' route hints and enforced on every
// HTLC: the node forwards amount + fee and expiry + delta.
type RoutingPolicy struct {
	FeeBase    Msat
	FeeRatePPM uint32
	CLTVDelta  uint16
}

// Validate rejects policies lnd could not express in a hop hint.
func (p RoutingPolicy) Validate() error {
	switch {
	case p.FeeBase < 0 || p.FeeBase > 1<<32-1:
		return fmt.Errorf("%w: feeBaseMsat must fit in 32 bits", ErrInvalidArgument)
	case p.FeeRatePPM > 1_000_000:
		return fmt.Errorf("%w: feeRatePpm must be at most 1000000", ErrInvalidArgument)
	case p.CLTVDelta == 0:
		return fmt.Errorf("%w: cltvDelta must be positive", ErrInvalidArgument)
	}
	return nil
}

// Fee is what the policy charges to forward amt (BOLT 7 rounding: down).
func (p RoutingPolicy) Fee(amt Msat) Msat {
	// amt*ppm overflows int64 from 92 BTC at 100%, so split amt into whole
	// millions and a remainder: q*ppm + r*ppm/1e6 is the same floor, and
	// neither product overflows for amounts up to MaxMsat and valid rates.
	ppm := int64(p.FeeRatePPM)
	q, r := int64(amt)/1_000_000, int64(amt)%1_000_000
	return p.FeeBase + Msat(q*ppm+r*ppm/1_000_000)
}

// Forward describes the hop from a cluster node to lnmux as lnd reports it
// for an intercepted HTLC.
type Forward struct {
	IncomingAmount Msat
	OutgoingAmount Msat
	IncomingExpiry uint32
	OutgoingExpiry uint32
}

// Check reports whether the forward pays the policy's fee and CLTV delta.
func (p RoutingPolicy) Check(f Forward) FailureReason {
	if f.IncomingAmount < f.OutgoingAmount || f.IncomingAmount-f.OutgoingAmount < p.Fee(f.OutgoingAmount) {
		return FailPolicyFee
	}
	if f.IncomingExpiry < f.OutgoingExpiry || f.IncomingExpiry-f.OutgoingExpiry < uint32(p.CLTVDelta) {
		return FailPolicyCLTV
	}
	return FailNone
}

// VirtualChannelID is the short channel id of the virtual channel from node
// to lnmux. Each node gets its own so that hop hints never collide; the block
// height part stays below lnd's alias range (16,000,000+).
func VirtualChannelID(node NodeKey) uint64 {
	h := sha256.Sum256(append([]byte("lnmux virtual channel"), node[:]...))
	v := binary.BigEndian.Uint64(h[:8])
	height := (v >> 40) % (1 << 23)
	return height<<40 | v&(1<<40-1)
}
