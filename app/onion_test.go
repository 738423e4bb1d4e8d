package app

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/lnmux/lnmux/domain"
)

// TestPeelAgreesWithLnd feeds lnmux's peel and lnd's (sphinx router and hop
// payload validation, see onion_ref_test.go) the same onions: valid ones
// built with sphinx.NewOnionPacket for random routes ending at lnmux, with
// random final-hop payloads, and damaged copies of them. Both must accept
// or reject alike, for the same reason, and decode the same fields.
func TestPeelAgreesWithLnd(t *testing.T) {
	const seed = 1
	n := 1000
	if testing.Short() {
		n = 200
	}
	fx := newPeelFixture(seed)
	r := rand.New(rand.NewPCG(seed, 2))
	counts := map[string]int{}
	for i := range n {
		c, err := randomOnion(r, fx.key.PubKey(), randomPayload(r))
		if err != nil {
			t.Fatalf("case %d: build onion: %v", i, err)
		}
		for _, tc := range []onionCase{c, mutate(r, c)} {
			got := lnmuxPeel(fx.lnmux, tc.onion, tc.hash)
			want := referencePeel(fx.router, tc.onion, tc.hash)
			if !agree(got, want) {
				t.Fatalf("case %d (%s): lnmux %s; lnd %s", i, tc.what, got, want)
			}
			counts[want.String()[:8]]++
		}
	}
	// The generator must reach both outcomes, or the test proves little.
	if counts["accepted"] < n/4 || counts["rejected"] < n/4 {
		t.Errorf("outcomes %v over %d onions: want at least %d of each", counts, 2*n, n/4)
	}
}

// TestPeelRejectsWhatLndRejects pins the payloads on which lnmux's peel
// once differed from lnd's: a final hop must refuse an unknown even
// ("required") record and route-blinding data, since lnmux understands the
// one and is the recipient of no blinded route.
func TestPeelRejectsWhatLndRejects(t *testing.T) {
	fx := newPeelFixture(7)
	r := rand.New(rand.NewPCG(7, 7))
	amt, cltv := uint64(1000), uint32(500)
	tests := []struct {
		name    string
		payload finalPayload
	}{
		{name: "unknown even record in the standard range", payload: finalPayload{amount: &amt, cltv: &cltv, extra: map[uint64][]byte{438: {1}}}},
		{name: "encrypted recipient data without blinding point", payload: finalPayload{amount: &amt, cltv: &cltv, encrypted: []byte{1, 2, 3}}},
		{name: "encrypted recipient data with blinding point", payload: finalPayload{amount: &amt, cltv: &cltv, encrypted: []byte{1, 2, 3}, blinding: fx.key.PubKey()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := buildOnion(r, fx.key.PubKey(), tt.payload, 1, 0)
			if err != nil {
				t.Fatalf("build onion: %v", err)
			}
			want := referencePeel(fx.router, c.onion, c.hash)
			if want.reason == domain.FailNone {
				// lnd's final-hop path must reject it; otherwise this
				// case does not test what its name says.
				t.Fatalf("lnd %s (%s), want a rejection", want, c.what)
			}
			if got := lnmuxPeel(fx.lnmux, c.onion, c.hash); !agree(got, want) {
				t.Errorf("lnmux %s (%s); lnd %s", got, c.what, want)
			}
		})
	}
}

// FuzzPeelOnion gives lnmux's peel arbitrary bytes and payment hashes. It
// must not panic, and it must decide as lnd does. Seeds are valid onions
// for the fuzzer's key; most mutations then fail the MAC.
func FuzzPeelOnion(f *testing.F) {
	fx := newPeelFixture(3)
	r := rand.New(rand.NewPCG(3, 3))
	for range 8 {
		c, err := randomOnion(r, fx.key.PubKey(), randomPayload(r))
		if err != nil {
			f.Fatalf("seed onion: %v", err)
		}
		f.Add(c.onion, c.hash[:])
	}
	f.Fuzz(func(t *testing.T, onion, hashBytes []byte) {
		var hash domain.PaymentHash
		copy(hash[:], hashBytes)
		checkPeel(t, fx, onion, hash, "arbitrary bytes")
	})
}

// FuzzPeelPayload wraps arbitrary final-hop payload bytes in a valid onion
// to lnmux, so that the TLV parsing behind the MAC is what is fuzzed.
func FuzzPeelPayload(f *testing.F) {
	fx := newPeelFixture(4)
	r := rand.New(rand.NewPCG(4, 4))
	for range 8 {
		raw, err := randomPayload(r).encode()
		if err != nil {
			f.Fatalf("seed payload: %v", err)
		}
		f.Add(raw, uint64(0))
	}
	f.Fuzz(func(t *testing.T, payload []byte, routeSeed uint64) {
		if len(payload) > 1200 {
			return // more than fits in the onion with the other hops' payloads
		}
		c, err := randomOnion(rand.New(rand.NewPCG(routeSeed, 0)), fx.key.PubKey(), finalPayload{raw: payload})
		if err != nil {
			return // sphinx refuses to build it (too large for the route)
		}
		checkPeel(t, fx, c.onion, c.hash, c.what)
	})
}

func checkPeel(t *testing.T, fx peelFixture, onion []byte, hash domain.PaymentHash, what string) {
	t.Helper()
	orig := bytes.Clone(onion)
	got := lnmuxPeel(fx.lnmux, onion, hash)
	if !bytes.Equal(onion, orig) {
		t.Fatalf("lnmux's peel modified the onion bytes it was given (%s)", what)
	}
	want := referencePeel(fx.router, onion, hash)
	if !agree(got, want) {
		t.Fatalf("%s: lnmux %s; lnd %s", what, got, want)
	}
}
