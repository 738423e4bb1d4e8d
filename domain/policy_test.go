package domain

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/lightningnetwork/lnd/lnwire"
)

func TestRoutingPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       RoutingPolicy
		wantErr bool
	}{
		{"typical", RoutingPolicy{FeeBase: 1000, FeeRatePPM: 1, CLTVDelta: 40}, false},
		{"free", RoutingPolicy{CLTVDelta: 1}, false},
		{"max values", RoutingPolicy{FeeBase: 1<<32 - 1, FeeRatePPM: 1_000_000, CLTVDelta: 65535}, false},
		{"zero value", RoutingPolicy{}, true},
		{"zero cltv delta", RoutingPolicy{FeeBase: 1, FeeRatePPM: 1}, true},
		{"negative base fee", RoutingPolicy{FeeBase: -1, CLTVDelta: 40}, true},
		{"base fee beyond 32 bits", RoutingPolicy{FeeBase: 1 << 32, CLTVDelta: 40}, true},
		{"fee rate above 100%", RoutingPolicy{FeeRatePPM: 1_000_001, CLTVDelta: 40}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr != (err != nil) {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestRoutingPolicyFee(t *testing.T) {
	tests := []struct {
		name string
		p    RoutingPolicy
		amt  Msat
		want Msat
	}{
		{"free", RoutingPolicy{}, 1_000_000, 0},
		{"base only", RoutingPolicy{FeeBase: 1000}, 1_000_000, 1000},
		{"rate only", RoutingPolicy{FeeRatePPM: 100}, 1_000_000, 100},
		{"base and rate", RoutingPolicy{FeeBase: 1000, FeeRatePPM: 100}, 100_000, 1010},
		{"rounds down", RoutingPolicy{FeeRatePPM: 1}, 999_999, 0},
		{"rounds down above one", RoutingPolicy{FeeRatePPM: 3}, 999_999, 2},
		{"exactly one", RoutingPolicy{FeeRatePPM: 1}, 1_000_000, 1},
		{"zero amount", RoutingPolicy{FeeBase: 5, FeeRatePPM: 1000}, 0, 5},
		{"100 percent", RoutingPolicy{FeeRatePPM: 1_000_000}, 123_456_789, 123_456_789},
		{"max amount 1000 ppm", RoutingPolicy{FeeRatePPM: 1000}, MaxMsat, MaxMsat / 1000},
		{"max amount 100 percent", RoutingPolicy{FeeBase: 1<<32 - 1, FeeRatePPM: 1_000_000}, MaxMsat, MaxMsat + 1<<32 - 1},
		{"max amount odd rate", RoutingPolicy{FeeRatePPM: 999_999}, MaxMsat, MaxMsat - MaxMsat/1_000_000},
		{"100 BTC 100 percent", RoutingPolicy{FeeRatePPM: 1_000_000}, 10_000_000_000_000, 10_000_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Fee(tt.amt); got != tt.want {
				t.Errorf("Fee(%d) = %d, want %d", tt.amt, got, tt.want)
			}
		})
	}
}

func TestRoutingPolicyCheck(t *testing.T) {
	p := RoutingPolicy{FeeBase: 1000, FeeRatePPM: 100, CLTVDelta: 40}
	const out = Msat(1_000_000)
	fee := p.Fee(out) // 1100
	ok := Forward{IncomingAmount: out + fee, OutgoingAmount: out, IncomingExpiry: 840, OutgoingExpiry: 800}
	tests := []struct {
		name string
		p    RoutingPolicy
		f    func(f *Forward)
		want FailureReason
	}{
		{"exact fee and delta", p, func(*Forward) {}, FailNone},
		{"fee and delta overpaid", p, func(f *Forward) { f.IncomingAmount += 1; f.IncomingExpiry += 100 }, FailNone},
		{"fee one short", p, func(f *Forward) { f.IncomingAmount-- }, FailPolicyFee},
		{"no fee at all", p, func(f *Forward) { f.IncomingAmount = f.OutgoingAmount }, FailPolicyFee},
		{"incoming below outgoing", p, func(f *Forward) { f.IncomingAmount = f.OutgoingAmount - 1 }, FailPolicyFee},
		{"delta one short", p, func(f *Forward) { f.IncomingExpiry-- }, FailPolicyCLTV},
		{"no delta", p, func(f *Forward) { f.IncomingExpiry = f.OutgoingExpiry }, FailPolicyCLTV},
		{"incoming expiry below outgoing", p, func(f *Forward) { f.IncomingExpiry = f.OutgoingExpiry - 1 }, FailPolicyCLTV},
		{"fee checked before cltv", p, func(f *Forward) { f.IncomingAmount--; f.IncomingExpiry-- }, FailPolicyFee},
		{"free policy equal amounts", RoutingPolicy{CLTVDelta: 1}, func(f *Forward) { f.IncomingAmount = f.OutgoingAmount; f.IncomingExpiry = f.OutgoingExpiry + 1 }, FailNone},
		{"large amount fee one short", RoutingPolicy{FeeRatePPM: 1_000_000, CLTVDelta: 40}, func(f *Forward) {
			f.OutgoingAmount = 10_000_000_000_000 // 100 BTC
			f.IncomingAmount = 2*f.OutgoingAmount - 1
		}, FailPolicyFee},
		{"large amount fee not paid", RoutingPolicy{FeeRatePPM: 1000, CLTVDelta: 40}, func(f *Forward) {
			f.OutgoingAmount = MaxMsat / 2
			f.IncomingAmount = f.OutgoingAmount + 1
		}, FailPolicyFee},
		{"large amount fee paid", RoutingPolicy{FeeRatePPM: 1000, CLTVDelta: 40}, func(f *Forward) {
			f.OutgoingAmount = MaxMsat / 2
			f.IncomingAmount = f.OutgoingAmount + MaxMsat/2000
		}, FailNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			tt.f(&f)
			if got := tt.p.Check(f); got != tt.want {
				t.Errorf("Check(%+v) = %v, want %v", f, got, tt.want)
			}
		})
	}
}

func TestVirtualChannelID(t *testing.T) {
	const n = 20_000
	seen := make(map[uint64]int, n)
	for i := range uint64(n) {
		node := testNode(i)
		id := VirtualChannelID(node)
		if again := VirtualChannelID(node); again != id {
			t.Fatalf("node %d: id not stable: %d then %d", i, id, again)
		}
		scid := lnwire.NewShortChanIDFromInt(id)
		if scid.BlockHeight >= 16_000_000 {
			t.Fatalf("node %d: block height %d is in lnd's alias range", i, scid.BlockHeight)
		}
		if scid.ToUint64() != id {
			t.Fatalf("node %d: id %d does not round-trip as a short channel id", i, id)
		}
		if id == 0 || id == ^uint64(0) {
			t.Fatalf("node %d: id %d is reserved", i, id)
		}
		if j, dup := seen[id]; dup {
			t.Fatalf("nodes %d and %d share virtual channel id %d", j, i, id)
		}
		seen[id] = int(i)
	}

	// Keys differing only in the parity byte or one bit still differ.
	a := testNode(1)
	b := a
	b[0] ^= 1
	c := a
	c[32] ^= 1
	if VirtualChannelID(a) == VirtualChannelID(b) || VirtualChannelID(a) == VirtualChannelID(c) {
		t.Error("near-identical node keys share a virtual channel id")
	}
}

// TestRoutingPolicyFeeExact compares Fee with exact big-integer arithmetic
// over the whole range of valid amounts and rates.
func TestRoutingPolicyFeeExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		p := RoutingPolicy{FeeBase: Msat(rng.Int64N(1 << 32)), FeeRatePPM: uint32(rng.IntN(1_000_001))}
		amt := Msat(rng.Int64N(int64(MaxMsat) + 1))
		if rng.IntN(4) == 0 {
			amt = Msat(rng.Int64N(10_000_000)) // small amounts exercise rounding
		}
		want := new(big.Int).Mul(big.NewInt(int64(amt)), big.NewInt(int64(p.FeeRatePPM)))
		want.Quo(want, big.NewInt(1_000_000))
		want.Add(want, big.NewInt(int64(p.FeeBase)))
		if got := p.Fee(amt); !want.IsInt64() || int64(got) != want.Int64() {
			t.Fatalf("%+v.Fee(%d) = %d, want %s", p, amt, got, want)
		}
	}
}
