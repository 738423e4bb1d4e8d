package domain

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
)

func testSigner(key *btcec.PrivateKey) CompactSigner {
	return func(d [32]byte) ([]byte, error) { return ecdsa.SignCompact(key, d[:], true), nil }
}

// TestBOLT11DecodesWithLnd checks every field of lnmux's encoder against
// lnd's decoder, over networks, amount multipliers, descriptions and hints.
func TestBOLT11DecodesWithLnd(t *testing.T) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	nets := []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.RegressionNetParams,
		&chaincfg.SigNetParams, &chaincfg.SimNetParams}
	amounts := []Msat{0, 1, 10, 100, 1000, 20000, 100_000, 123_456_789, 100_000_000, 100_000_000_000, 250_000_000_000, MaxMsat}
	descHash := [32]byte{1, 2, 3}
	for ni, net := range nets {
		for ai, amt := range amounts {
			var hints []HopHint
			for i := range ai % 4 {
				k, _ := btcec.NewPrivateKey()
				var nk NodeKey
				copy(nk[:], k.PubKey().SerializeCompressed())
				hints = append(hints, HopHint{Node: nk, ChanID: VirtualChannelID(nk), FeeBase: uint32(1000 * i),
					FeePPM: uint32(ai * 7), CLTVDelta: uint16(40 + i)})
			}
			minCLTV := uint32(18 + ai*7)
			tmpl, err := NewBOLT11Template(net.Bech32HRPSegwit+map[bool]string{true: "s"}[net.Name == "signet"], hints,
				[]int{8, 14, 17}, minCLTV)
			if err != nil {
				t.Fatal(err)
			}
			expiry := time.Duration(1+ai*97) * time.Second
			var desc string
			var hash []byte
			switch ai % 3 {
			case 0:
				desc = "coffee ☕ " + string(bytes.Repeat([]byte{'x'}, ai*50))
			case 1:
				hash = descHash[:]
			}
			f := BOLT11Fields{
				Timestamp: time.Unix(1_700_000_000+int64(ai*ni), 0),
				Terms:     mustTerms(t, amt, expiry, desc, hash),
			}
			rand.Read(f.Hash[:])
			rand.Read(f.PaymentAddr[:])
			payreq, err := tmpl.Encode(f, testSigner(key))
			if err != nil {
				t.Fatal(err)
			}
			dec, err := zpay32.Decode(payreq, net)
			if err != nil {
				t.Fatalf("%s %d: lnd cannot decode %s: %v", net.Name, amt, payreq, err)
			}
			if !dec.Destination.IsEqual(key.PubKey()) {
				t.Fatalf("%s: destination differs", payreq)
			}
			if *dec.PaymentHash != f.Hash || dec.PaymentAddr.UnwrapOr([32]byte{}) != f.PaymentAddr {
				t.Fatal("hash or payment address differs")
			}
			switch {
			case amt == 0 && dec.MilliSat != nil:
				t.Fatal("amount set on any-amount invoice")
			case amt > 0 && (dec.MilliSat == nil || *dec.MilliSat != lnwire.MilliSatoshi(amt)):
				t.Fatalf("amount %d decoded as %v", amt, dec.MilliSat)
			}
			if !dec.Timestamp.Equal(f.Timestamp) || dec.Expiry() != expiry || dec.MinFinalCLTVExpiry() != uint64(minCLTV) {
				t.Fatalf("time fields differ: %v %v %d", dec.Timestamp, dec.Expiry(), dec.MinFinalCLTVExpiry())
			}
			if hash != nil {
				if dec.DescriptionHash == nil || *dec.DescriptionHash != descHash {
					t.Fatal("description hash differs")
				}
			} else if dec.Description == nil || *dec.Description != desc {
				t.Fatal("description differs")
			}
			for _, bit := range []lnwire.FeatureBit{lnwire.TLVOnionPayloadRequired, lnwire.PaymentAddrRequired, lnwire.MPPOptional} {
				if !dec.Features.HasFeature(bit) {
					t.Fatalf("feature %d missing", bit)
				}
			}
			if len(dec.RouteHints) != len(hints) {
				t.Fatalf("%d route hints, want %d", len(dec.RouteHints), len(hints))
			}
			for i, rh := range dec.RouteHints {
				h := hints[i]
				got := rh[0]
				if len(rh) != 1 || !bytes.Equal(got.NodeID.SerializeCompressed(), h.Node[:]) || got.ChannelID != h.ChanID ||
					got.FeeBaseMSat != h.FeeBase || got.FeeProportionalMillionths != h.FeePPM || got.CLTVExpiryDelta != h.CLTVDelta {
					t.Fatalf("hint %d: %+v, want %+v", i, got, h)
				}
			}
		}
	}
}

func TestEncodeAmountIsShortest(t *testing.T) {
	for _, tc := range []struct {
		msat Msat
		want string
	}{
		{1, "10p"}, {10, "100p"}, {100, "1n"}, {20000, "200n"}, {100_000, "1u"}, {150_000, "1500n"},
		{100_000_000, "1m"}, {100_000_000_000, "1"}, {2_500_000_000_000, "25"}, {123, "1230p"},
	} {
		if got := encodeAmount(tc.msat); got != tc.want {
			t.Errorf("encodeAmount(%d) = %s, want %s", tc.msat, got, tc.want)
		}
	}
}

func TestWordConversionsRoundTrip(t *testing.T) {
	for n := range 80 {
		b := make([]byte, n)
		rand.Read(b)
		words := bytesToWords(nil, b)
		back := wordsToBytes(nil, words)
		if !bytes.Equal(back[:n], b) {
			t.Fatalf("round trip of %d bytes", n)
		}
		v, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		w := uintWords(v.Uint64())
		var got uint64
		for _, x := range w {
			got = got<<5 | uint64(x)
		}
		if got != v.Uint64() || (len(w) > 1 && w[0] == 0) {
			t.Fatalf("uintWords(%d) = %v", v, w)
		}
	}
}

// TestBOLT11RejectsBadInput: the encoder refuses what it cannot encode.
// The terms' limits are NewInvoiceTerms' (TestNewInvoiceTerms); the
// encoder only refuses terms that did not come from it.
func TestBOLT11RejectsBadInput(t *testing.T) {
	tmpl, _ := NewBOLT11Template("bcrt", nil, []int{8}, 40)
	key, _ := btcec.NewPrivateKey()
	terms := mustTerms(t, 0, time.Minute, "", nil)
	ok := BOLT11Fields{Timestamp: time.Unix(1_700_000_000, 0), Terms: terms}
	for name, f := range map[string]BOLT11Fields{
		"zero terms":         {Timestamp: ok.Timestamp},
		"old timestamp":      {Timestamp: time.Unix(-1, 0), Terms: terms},
		"timestamp too late": {Timestamp: time.Unix(1<<35, 0), Terms: terms},
	} {
		if _, err := tmpl.Encode(f, testSigner(key)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := tmpl.Encode(ok, func([32]byte) ([]byte, error) { return make([]byte, 65), nil }); err == nil {
		t.Error("bad signature header accepted")
	}
}

func BenchmarkBOLT11Encode(b *testing.B) {
	key, _ := btcec.NewPrivateKey()
	var hints []HopHint
	for range 2 {
		k, _ := btcec.NewPrivateKey()
		var nk NodeKey
		copy(nk[:], k.PubKey().SerializeCompressed())
		hints = append(hints, HopHint{Node: nk, ChanID: VirtualChannelID(nk), CLTVDelta: 40})
	}
	tmpl, _ := NewBOLT11Template("bcrt", hints, []int{8, 14, 17}, 40)
	f := BOLT11Fields{Timestamp: time.Unix(1_700_000_000, 0), Terms: mustTerms(b, 20000, 10*time.Minute, "coffee", nil)}
	nosign := func([32]byte) ([]byte, error) { s := make([]byte, 65); s[0] = 31; return s, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tmpl.Encode(f, nosign); err != nil {
			b.Fatal(err)
		}
	}
	_ = key
}
