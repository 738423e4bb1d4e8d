package app

import (
	"math"
	"testing"

	"github.com/lnmux/lnmux/domain"
)

// An onion's amounts are the payer's words: one beyond int64 must not wrap
// to a negative amount, which would pass "amount to forward ≤ HTLC amount"
// and the MPP total's lower bound.
func TestOnionAmountsSaturateInsteadOfWrapping(t *testing.T) {
	tests := []struct {
		name string
		wire uint64
		want domain.Msat
	}{
		{name: "zero", wire: 0, want: 0},
		{name: "an ordinary amount", wire: 10_000, want: 10_000},
		{name: "the largest int64", wire: math.MaxInt64, want: math.MaxInt64},
		{name: "just beyond int64", wire: math.MaxInt64 + 1, want: math.MaxInt64},
		{name: "the largest uint64", wire: math.MaxUint64, want: math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := onionMsat(tt.wire); got != tt.want {
				t.Errorf("onionMsat(%d) = %d, want %d", tt.wire, got, tt.want)
			}
		})
	}
}
