package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/deployments/regtest"
	"github.com/lnmux/lnmux/domain"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// TestRouteHintsFollowNodeHealth: new invoices hint the nodes that can take
// the payment, most inbound liquidity first (docs/route-hints.md). Alice
// stopped for longer than the grace loses her hint, so Carol pays through
// Bob at the first attempt; back, she gets it again; stopped for a moment,
// she keeps it. Every wait polls GetInfo within a bound; nothing is
// asserted about how long anything takes.
func TestRouteHintsFollowNodeHealth(t *testing.T) {
	const aliceSat, bobSat = 600_000, 300_000
	cluster := regtest.StartT(t, regtest.Options{AliceChannelSat: aliceSat, BobChannelSat: bobSat, Logf: t.Logf})
	env := &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: t.TempDir(), cluster: cluster}
	alice, bob := cluster.Alice.PubKey, cluster.Bob.PubKey
	restartAlice := func() {
		if !cluster.Alice.Running() {
			if err := cluster.Start(context.Background(), cluster.Alice); err != nil {
				t.Errorf("restart alice: %v", err)
			}
		}
	}
	defer restartAlice()

	// A short grace: the first daemon drops Alice's hint soon after she
	// stops.
	d := env.start(t, daemonOpts{autoSettle: true, hintGrace: 3 * time.Second})

	t.Run("liquidity from lnd orders and filters the hints", func(t *testing.T) {
		var want map[string]int64
		d.waitHints(t, "inbound liquidity measured as lnd reports it", func(n map[string]*lnmuxpb.NodeInfo) bool {
			want = map[string]int64{alice: inboundOf(t, cluster.Alice), bob: inboundOf(t, cluster.Bob)}
			return n[alice].GetInboundKnown() && n[alice].GetInboundMsat() == want[alice] &&
				n[bob].GetInboundKnown() && n[bob].GetInboundMsat() == want[bob] &&
				n[alice].GetHintStatus() == lnmuxpb.NodeInfo_HINT_STATUS_INCLUDED &&
				n[bob].GetHintStatus() == lnmuxpb.NodeInfo_HINT_STATUS_INCLUDED
		})
		if want[alice] <= want[bob] || want[bob] <= 0 {
			t.Fatalf("inbound alice %d, bob %d: the channels should give alice more", want[alice], want[bob])
		}
		// Amounts in msat; the virtual channel's fee (100 msat + 1000 ppm)
		// comes on top of each.
		for _, c := range []struct {
			name  string
			msat  int64
			hints []string
		}{
			{"both can take it: most inbound first", 1_000_000, []string{alice, bob}},
			{"only alice can take it", (want[bob] + want[alice]) / 2, []string{alice}},
			{"neither alone, together they can (multi-part)", want[alice] + want[bob]/2, []string{alice, bob}},
		} {
			if got := hintedBy(t, d.addInvoice(t, c.msat, 600).PaymentRequest); !slices.Equal(got, c.hints) {
				t.Errorf("%s: hints %v, want %v", c.name, short(got), short(c.hints))
			}
		}
	})

	t.Run("alice stopped past the grace: only bob's hint, paid at the first attempt", func(t *testing.T) {
		if err := cluster.Stop(cluster.Alice); err != nil {
			t.Fatal(err)
		}
		d.waitHints(t, "alice left out as unreachable", func(n map[string]*lnmuxpb.NodeInfo) bool {
			return !n[alice].GetConnected() && n[alice].GetHintStatus() == lnmuxpb.NodeInfo_HINT_STATUS_UNREACHABLE &&
				n[bob].GetHintStatus() == lnmuxpb.NodeInfo_HINT_STATUS_INCLUDED
		})
		inv := d.addInvoice(t, 50_000_000, 600)
		if got := hintedBy(t, inv.PaymentRequest); !slices.Equal(got, []string{bob}) {
			t.Fatalf("hints %v, want bob's alone", short(got))
		}
		p := <-payAsync(t, cluster, inv.PaymentRequest)
		if p.Status != lnrpc.Payment_SUCCEEDED || len(p.Raw.GetHtlcs()) != 1 {
			t.Fatalf("payment %v %v after %d attempts, want success at the first", p.Status, p.FailureReason, len(p.Raw.GetHtlcs()))
		}
		if hop := p.Raw.Htlcs[0].Route.Hops[0].PubKey; hop != bob {
			t.Fatalf("paid through %s, want bob", hop)
		}
	})

	t.Run("alice back: her hint returns", func(t *testing.T) {
		if err := cluster.Start(t.Context(), cluster.Alice); err != nil {
			t.Fatal(err)
		}
		// Her channel with Carol is active again once Carol reconnects:
		// until then she has no inbound (and is left out for that).
		d.waitHints(t, "alice included again", func(n map[string]*lnmuxpb.NodeInfo) bool {
			return n[alice].GetConnected() && n[alice].GetHintStatus() == lnmuxpb.NodeInfo_HINT_STATUS_INCLUDED &&
				n[alice].GetInboundMsat() > 0
		})
		if got := hintedBy(t, d.addInvoice(t, 1_000_000, 600).PaymentRequest); !slices.Equal(got, []string{alice, bob}) {
			t.Fatalf("hints %v, want alice and bob", short(got))
		}
	})

	// A long grace: nothing this test does lasts as long, so Alice must
	// keep her hint while she is away.
	d.stop()
	d = env.start(t, daemonOpts{autoSettle: true, hintGrace: time.Hour})

	t.Run("alice stopped for a moment: her hint stays", func(t *testing.T) {
		d.waitHints(t, "both included", func(n map[string]*lnmuxpb.NodeInfo) bool {
			return n[alice].GetHintStatus() == lnmuxpb.NodeInfo_HINT_STATUS_INCLUDED && n[alice].GetInboundMsat() > 0 &&
				n[bob].GetHintStatus() == lnmuxpb.NodeInfo_HINT_STATUS_INCLUDED
		})
		if err := cluster.Stop(cluster.Alice); err != nil {
			t.Fatal(err)
		}
		d.waitNode(t, alice, false)
		if st := d.nodeInfo(t)[alice].GetHintStatus(); st != lnmuxpb.NodeInfo_HINT_STATUS_INCLUDED {
			t.Fatalf("alice away: hint status %v, want included", st)
		}
		if got := hintedBy(t, d.addInvoice(t, 1_000_000, 600).PaymentRequest); !slices.Equal(got, []string{alice, bob}) {
			t.Fatalf("alice away: hints %v, want alice and bob", short(got))
		}
		if err := cluster.Start(t.Context(), cluster.Alice); err != nil {
			t.Fatal(err)
		}
		d.waitNode(t, alice, true)
		// Back before the grace: the same invoices as before.
		d.waitHints(t, "alice included", func(n map[string]*lnmuxpb.NodeInfo) bool {
			return n[alice].GetHintStatus() == lnmuxpb.NodeInfo_HINT_STATUS_INCLUDED && n[alice].GetInboundMsat() > 0
		})
		if got := hintedBy(t, d.addInvoice(t, 1_000_000, 600).PaymentRequest); !slices.Equal(got, []string{alice, bob}) {
			t.Fatalf("alice back: hints %v, want alice and bob", short(got))
		}
	})
}

// inboundOf is what n's active channels can receive: the remote balances
// above the remote reserves, in msat. The cluster is idle with every
// channel active, so it is what lnmux's own measurement finds.
func inboundOf(t *testing.T, n *regtest.Node) int64 {
	t.Helper()
	res, err := n.Client.ListChannels(t.Context(), &lnrpc.ListChannelsRequest{ActiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var sat int64
	for _, c := range res.Channels {
		sat += max(c.RemoteBalance-int64(c.GetRemoteConstraints().GetChanReserveSat()), 0) //nolint:gosec // a reserve is small
	}
	return sat * 1000
}

// nodeInfo is GetInfo's nodes by hex key.
func (d *daemon) nodeInfo(t *testing.T) map[string]*lnmuxpb.NodeInfo {
	t.Helper()
	out := map[string]*lnmuxpb.NodeInfo{}
	for _, n := range d.info(t).Nodes {
		out[hex.EncodeToString(n.PubKey)] = n
	}
	return out
}

// waitHints polls GetInfo until cond holds, for at most waitLong.
func (d *daemon) waitHints(t *testing.T, what string, cond func(map[string]*lnmuxpb.NodeInfo) bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	var last map[string]*lnmuxpb.NodeInfo
	for time.Now().Before(deadline) {
		if last = d.nodeInfo(t); cond(last) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	var b strings.Builder
	for k, n := range last {
		fmt.Fprintf(&b, "\n  %s: connected=%v interceptor=%v inbound=%d known=%v hint=%v", k[:8], n.Connected, n.InterceptorActive,
			n.InboundMsat, n.InboundKnown, n.HintStatus)
	}
	t.Fatalf("not within %s: %s; last GetInfo:%s", waitLong, what, b.String())
}

// hintedBy lists the nodes of an invoice's route hints, in order, checking
// that each is a single hop over the node's virtual channel.
func hintedBy(t *testing.T, payreq string) []string {
	t.Helper()
	inv, err := zpay32.Decode(payreq, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rh := range inv.RouteHints {
		if len(rh) != 1 {
			t.Fatalf("route hint of %d hops", len(rh))
		}
		var k domain.NodeKey
		copy(k[:], rh[0].NodeID.SerializeCompressed())
		if rh[0].ChannelID != domain.VirtualChannelID(k) {
			t.Fatalf("hint through channel %d, not %s's virtual channel", rh[0].ChannelID, k)
		}
		out = append(out, k.String())
	}
	return out
}

// short abbreviates keys for messages.
func short(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k[:8]
	}
	return out
}
