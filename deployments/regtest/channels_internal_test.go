package regtest

import (
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnrpc"
)

// TestChannelPointForms checks that the two forms lnd gives a channel point
// in (OpenChannelSync's reversed txid bytes, ListChannels' "txid:index")
// name the same outpoint, and that ForceClose's parsing refuses a bad one.
func TestChannelPointForms(t *testing.T) {
	const txid = "2c682d5762f7e37510f7892a22eaec6e97e8e162d2354bfc71eab628e5e6736b"
	h, err := chainhash.NewHashFromStr(txid)
	if err != nil {
		t.Fatal(err)
	}
	got, err := channelPoint(&lnrpc.ChannelPoint{FundingTxid: &lnrpc.ChannelPoint_FundingTxidBytes{FundingTxidBytes: h[:]}, OutputIndex: 3})
	if err != nil || got != txid+":3" {
		t.Fatalf("channelPoint = %q, %v", got, err)
	}
	cp, err := parseChannelPoint(got)
	if err != nil || cp.GetFundingTxidStr() != txid || cp.OutputIndex != 3 {
		t.Fatalf("parseChannelPoint(%q) = %v, %v", got, cp, err)
	}
	for _, bad := range []string{"", txid, ":1", txid + ":x", txid + ":4294967296"} {
		if _, err := parseChannelPoint(bad); err == nil {
			t.Errorf("parseChannelPoint(%q) accepted", bad)
		}
	}
}
