package domain

import (
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValueStrings(t *testing.T) {
	if got := Msat(1500).String(); got != "1500 msat" {
		t.Errorf("Msat.String = %q", got)
	}
	if got := Msat(-1).String(); got != "-1 msat" {
		t.Errorf("Msat(-1).String = %q", got)
	}
	var h PaymentHash
	h[0], h[31] = 0xab, 0x01
	if got := h.String(); got != "ab"+strings.Repeat("00", 30)+"01" {
		t.Errorf("PaymentHash.String = %q", got)
	}
	if got := (PaymentAddr{0xff}).String(); len(got) != 64 || got[:2] != "ff" {
		t.Errorf("PaymentAddr.String = %q", got)
	}
	if got := (SetID{0x10}).String(); len(got) != 64 || got[:2] != "10" {
		t.Errorf("SetID.String = %q", got)
	}
	c := CircuitKey{Node: NodeKey{0x02, 0xaa, 0xbb, 0xcc, 0xdd}, Chan: 7, HTLC: 9}
	if got := c.String(); got != "02aabbcc:7:9" {
		t.Errorf("CircuitKey.String = %q", got)
	}
}

func TestPreimageHash(t *testing.T) {
	p := Preimage{1, 2, 3}
	if got, want := p.Hash(), PaymentHash(sha256.Sum256(p[:])); got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
}

func TestParseNodeKey(t *testing.T) {
	valid02 := "02" + strings.Repeat("ab", 32)
	valid03 := "03" + strings.Repeat("01", 32)
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"02 prefix", valid02, false},
		{"03 prefix", valid03, false},
		{"upper case hex", strings.ToUpper(valid02), false},
		{"empty", "", true},
		{"uncompressed prefix 04", "04" + strings.Repeat("ab", 32), true},
		{"prefix 00", "00" + strings.Repeat("ab", 32), true},
		{"one byte short", valid02[:64], true},
		{"one byte long", valid02 + "00", true},
		{"odd length", valid02 + "0", true},
		{"not hex", "02" + strings.Repeat("zz", 32), true},
		{"0x prefix", "0x" + valid02, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseNodeKey(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("err = %v, want ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := k.String(); got != strings.ToLower(tt.in) {
				t.Errorf("round trip = %q, want %q", got, strings.ToLower(tt.in))
			}
		})
	}
}

func TestCircuitKeyCompare(t *testing.T) {
	a, b := NodeKey{2, 1}, NodeKey{2, 2}
	tests := []struct {
		name string
		x, y CircuitKey
		want int
	}{
		{"equal", CircuitKey{a, 1, 1}, CircuitKey{a, 1, 1}, 0},
		{"node first", CircuitKey{a, 9, 9}, CircuitKey{b, 1, 1}, -1},
		{"chan before htlc", CircuitKey{a, 1, 9}, CircuitKey{a, 2, 1}, -1},
		{"htlc", CircuitKey{a, 1, 1}, CircuitKey{a, 1, 2}, -1},
		{"chan greater", CircuitKey{a, 3, 0}, CircuitKey{a, 2, 5}, 1},
		{"htlc greater", CircuitKey{a, 1, 3}, CircuitKey{a, 1, 2}, 1},
		{"max values", CircuitKey{a, ^uint64(0), ^uint64(0)}, CircuitKey{a, ^uint64(0), ^uint64(0) - 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.x.Compare(tt.y); got != tt.want {
				t.Errorf("x.Compare(y) = %d, want %d", got, tt.want)
			}
			if got := tt.y.Compare(tt.x); got != -tt.want {
				t.Errorf("y.Compare(x) = %d, want %d", got, -tt.want)
			}
		})
	}
}

func TestNewSetIDOrderIndependent(t *testing.T) {
	keys := []CircuitKey{
		{testNode(1), 5, 7},
		{testNode(2), 5, 7},
		{testNode(1), 5, 8},
		{testNode(1), 6, 0},
	}
	want := NewSetID(keys)
	perm := slices.Clone(keys)
	n := 0
	var permute func(k int)
	permute = func(k int) {
		if k == len(perm) {
			n++
			if got := NewSetID(perm); got != want {
				t.Errorf("order %v: id %s, want %s", perm, got, want)
			}
			return
		}
		for i := k; i < len(perm); i++ {
			perm[k], perm[i] = perm[i], perm[k]
			permute(k + 1)
			perm[k], perm[i] = perm[i], perm[k]
		}
	}
	permute(0)
	if n != 24 {
		t.Fatalf("checked %d orders, want 24", n)
	}

	// NewSetID must not reorder the caller's slice.
	in := []CircuitKey{keys[3], keys[0]}
	NewSetID(in)
	if in[0] != keys[3] || in[1] != keys[0] {
		t.Error("NewSetID sorted the caller's slice")
	}
}

func TestNewSetIDDistinct(t *testing.T) {
	n1, n2 := testNode(1), testNode(2)
	sets := map[string][]CircuitKey{
		"empty":                     nil,
		"one":                       {{n1, 5, 7}},
		"same ids other node":       {{n2, 5, 7}},
		"chan and htlc swapped":     {{n1, 7, 5}},
		"other htlc":                {{n1, 5, 8}},
		"two nodes same ids":        {{n1, 5, 7}, {n2, 5, 7}},
		"two parts one node":        {{n1, 5, 7}, {n1, 5, 8}},
		"three parts":               {{n1, 5, 7}, {n1, 5, 8}, {n2, 5, 7}},
		"zero key":                  {{}},
		"chan bytes into htlc":      {{n1, 0, 5<<32 | 7}},
		"single part other channel": {{n1, 6, 7}},
	}
	seen := map[SetID]string{}
	for name, keys := range sets {
		id := NewSetID(keys)
		if other, ok := seen[id]; ok {
			t.Errorf("sets %q and %q have the same id %s", name, other, id)
		}
		seen[id] = name
	}
}
