package regtest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lnmux/lnmux/deployments/regtest"
)

// TestClusterUp brings the cluster up and checks what the lnmux tests rely
// on. It needs the lnd/btcd binaries: the first run builds them (5–12 min);
// run `bash deployments/regtest/build.sh` beforehand to keep go test's
// default timeout.
func TestClusterUp(t *testing.T) {
	began := time.Now()
	c := regtest.StartT(t, regtest.Options{})
	t.Logf("bring-up: %s", time.Since(began).Round(time.Millisecond))
	ctx := t.Context()

	for _, n := range []*regtest.Node{c.Alice, c.Bob} {
		info, err := n.Client.GetInfo(ctx, &lnrpc.GetInfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !info.RequireHtlcInterceptor || !info.StoreFinalHtlcResolutions {
			t.Errorf("%s: require_htlc_interceptor=%v store_final_htlc_resolutions=%v, want both true",
				n.Name, info.RequireHtlcInterceptor, info.StoreFinalHtlcResolutions)
		}
		if !info.SyncedToChain || info.NumActiveChannels != 1 {
			t.Errorf("%s: synced=%v active channels=%d", n.Name, info.SyncedToChain, info.NumActiveChannels)
		}
	}
	info, err := c.Carol.Client.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.RequireHtlcInterceptor || info.NumActiveChannels != 2 {
		t.Errorf("carol: require_htlc_interceptor=%v active channels=%d", info.RequireHtlcInterceptor, info.NumActiveChannels)
	}
	for _, peer := range []*regtest.Node{c.Alice, c.Bob} {
		ch, err := c.Channel(ctx, peer)
		if err != nil {
			t.Fatal(err)
		}
		if !ch.Active || ch.Capacity != 1_000_000 {
			t.Errorf("carol→%s: active=%v capacity=%d", peer.Name, ch.Active, ch.Capacity)
		}
	}

	// Carol pays Alice's own invoice: lnd does not intercept it, so this is
	// the latency baseline for payments through lnmux.
	for i := range 3 {
		inv, err := c.Alice.Client.AddInvoice(ctx, &lnrpc.Invoice{Value: 10_000, Memo: "baseline"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			out, err := c.Lncli(ctx, c.Carol, "decodepayreq", inv.PaymentRequest)
			if err != nil {
				t.Fatal(err)
			}
			var dec struct {
				Destination string `json:"destination"`
				NumSatoshis string `json:"num_satoshis"`
			}
			if err := json.Unmarshal(out, &dec); err != nil || dec.Destination != c.Alice.PubKey || dec.NumSatoshis != "10000" {
				t.Errorf("decodepayreq: %v %s", err, out)
			}
		}
		sent := time.Now()
		p, err := c.PayInvoice(ctx, inv.PaymentRequest)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != lnrpc.Payment_SUCCEEDED {
			t.Fatalf("payment %s: %v (code %v)", p.Status, p.FailureReason, p.FailureCode)
		}
		if h := sha256.Sum256(p.Preimage[:]); !bytes.Equal(h[:], inv.RHash) {
			t.Errorf("preimage %x does not hash to %x", p.Preimage, inv.RHash)
		}
		t.Logf("carol→alice own invoice #%d: %s", i+1, time.Since(sent).Round(time.Millisecond))
	}

	// MineBlocks reaches every node.
	h, err := c.MineBlocks(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Btcctl(ctx, "getblockcount")
	if err != nil || strings.TrimSpace(string(out)) != strconv.FormatInt(h, 10) {
		t.Errorf("btcctl getblockcount = %q, %v; want %d", out, err, h)
	}
	for _, n := range c.Nodes() {
		info, err := n.Client.GetInfo(ctx, &lnrpc.GetInfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if int64(info.BlockHeight) != h {
			t.Errorf("%s at height %d, want %d", n.Name, info.BlockHeight, h)
		}
	}
}
