package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"

	"github.com/lnmux/lnmux/deployments/regtest"
	"github.com/lnmux/lnmux/domain"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// Channel sizes: each smaller than the multi-part payment, so that it has to
// use both nodes.
const (
	channelSat = 250_000
	mppSat     = 350_000
)

// TestEndToEnd runs the scenarios in order on one cluster: they share its
// channels and lnmuxd's database, as a real deployment would.
func TestEndToEnd(t *testing.T) {
	start := time.Now()
	cluster := regtest.StartT(t, regtest.Options{
		AliceChannelSat: channelSat,
		BobChannelSat:   channelSat,
		Logf:            t.Logf,
	})
	t.Logf("phase: cluster up in %s", time.Since(start).Round(time.Second))
	aliceChan := chanID(t, cluster, cluster.Alice)
	bobChan := chanID(t, cluster, cluster.Bob)

	env := &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: t.TempDir(), cluster: cluster,
		otlp: startCollector(t)}
	d := env.start(t, daemonOpts{})
	acc := d.accepted(t)
	phase := time.Now()

	t.Run("invoice decodes in lnd with a hint per node", func(t *testing.T) {
		inv := d.addInvoice(t, 20_000, 600)
		out, err := cluster.Lncli(t.Context(), cluster.Carol, "decodepayreq", inv.PaymentRequest)
		if err != nil {
			t.Fatalf("decodepayreq: %v %s", err, out)
		}
		var dec struct {
			Destination string `json:"destination"`
			PaymentHash string `json:"payment_hash"`
			NumMsat     string `json:"num_msat"`
			PaymentAddr string `json:"payment_addr"`
			RouteHints  []struct {
				HopHints []struct {
					NodeID    string `json:"node_id"`
					ChanID    string `json:"chan_id"`
					FeeBase   int64  `json:"fee_base_msat"`
					FeePPM    int64  `json:"fee_proportional_millionths"`
					CLTVDelta int64  `json:"cltv_expiry_delta"`
				} `json:"hop_hints"`
			} `json:"route_hints"`
			Features map[string]struct {
				Name    string `json:"name"`
				IsKnown bool   `json:"is_known"`
			} `json:"features"`
		}
		if err := json.Unmarshal(out, &dec); err != nil {
			t.Fatalf("decodepayreq output: %v\n%s", err, out)
		}
		info := d.info(t)
		if dec.Destination != hex.EncodeToString(info.PubKey) || dec.PaymentHash != hex.EncodeToString(inv.Hash) ||
			dec.NumMsat != "20000" || dec.PaymentAddr != hex.EncodeToString(inv.PaymentAddr) {
			t.Fatalf("decoded %+v", dec)
		}
		if len(dec.RouteHints) != 2 {
			t.Fatalf("%d route hints", len(dec.RouteHints))
		}
		seen := map[string]bool{}
		for _, rh := range dec.RouteHints {
			if len(rh.HopHints) != 1 {
				t.Fatalf("hint with %d hops", len(rh.HopHints))
			}
			h := rh.HopHints[0]
			key, err := domain.ParseNodeKey(h.NodeID)
			if err != nil {
				t.Fatal(err)
			}
			if h.ChanID != strconv.FormatUint(domain.VirtualChannelID(key), 10) || h.FeeBase != 100 || h.FeePPM != 1000 || h.CLTVDelta != 40 {
				t.Fatalf("hop hint %+v", h)
			}
			seen[h.NodeID] = true
		}
		if !seen[cluster.Alice.PubKey] || !seen[cluster.Bob.PubKey] {
			t.Fatalf("hints %v, want Alice and Bob", seen)
		}
		for _, bit := range []string{"14", "17"} {
			if _, ok := dec.Features[bit]; !ok {
				t.Fatalf("feature %s (payment_addr / mpp) missing: %v", bit, dec.Features)
			}
		}
	})

	for _, via := range []struct {
		name string
		node *regtest.Node
		chID uint64
	}{{"alice", cluster.Alice, aliceChan}, {"bob", cluster.Bob, bobChan}} {
		t.Run("pay through "+via.name+" and settle", func(t *testing.T) {
			inv := d.addInvoice(t, 10_000_000, 600)
			states := d.invoiceStates(t, inv.Hash)
			pay := payAsync(t, cluster, inv.PaymentRequest, func(r *routerrpc.SendPaymentRequest) {
				r.OutgoingChanIds = []uint64{via.chID}
			})
			ev := nextAcceptedFor(t, acc, inv.Hash)
			// The subscriber hears ACCEPTED before the settle request
			// whenever its subscription was registered: lnmuxd starts
			// a subscription with the current state.
			first := nextState(t, states)
			if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
				t.Fatal(err)
			}
			p := <-pay
			if p.Status != lnrpc.Payment_SUCCEEDED || !bytes.Equal(p.Preimage[:], inv.Preimage) {
				t.Fatalf("payment %v, preimage %x", p.Status, p.Preimage)
			}
			if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
				t.Fatalf("final %v", got)
			}
			want := []lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState{
				lnmuxpb.SubscribeSingleInvoiceResponse_STATE_ACCEPTED,
				lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLE_REQUESTED,
				lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLED,
			}
			if got := append([]lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState{first}, collect(t, states)...); !slices.Equal(got, want) {
				t.Fatalf("SubscribeSingleInvoice %v, want %v", got, want)
			}
		})
	}

	t.Run("settle is idempotent, cancel after settle is refused", func(t *testing.T) {
		inv := d.addInvoice(t, 1_000_000, 600)
		pay := payAsync(t, cluster, inv.PaymentRequest)
		ev := nextAcceptedFor(t, acc, inv.Hash)
		for range 2 {
			if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
				t.Fatal(err)
			}
		}
		if p := <-pay; p.Status != lnrpc.Payment_SUCCEEDED {
			t.Fatalf("payment %v", p.Status)
		}
		// Final before "list invoices" reads it.
		if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("final %v", got)
		}
		_, err := d.client.CancelInvoice(t.Context(), connect.NewRequest(&lnmuxpb.CancelInvoiceRequest{Hash: inv.Hash, SetId: ev.SetId}))
		if connect.CodeOf(err) != connect.CodeFailedPrecondition {
			t.Fatalf("cancel after settle: %v", err)
		}
	})
	t.Run("multi-part payment across alice and bob", func(t *testing.T) {
		inv := d.addInvoice(t, mppSat*1000, 600)
		pay := payAsync(t, cluster, inv.PaymentRequest)
		ev := nextAcceptedFor(t, acc, inv.Hash)
		if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
			t.Fatal(err)
		}
		p := <-pay
		if p.Status != lnrpc.Payment_SUCCEEDED {
			t.Fatalf("payment %v %v", p.Status, p.FailureReason)
		}
		firstHops := map[uint64]bool{}
		for _, h := range p.Raw.Htlcs {
			if h.Status == lnrpc.HTLCAttempt_SUCCEEDED {
				firstHops[h.Route.Hops[0].ChanId] = true
			}
		}
		if !firstHops[aliceChan] || !firstHops[bobChan] {
			t.Fatalf("settled parts went through %v, want both nodes", firstHops)
		}
		if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("final %v", got)
		}
	})

	t.Logf("phase: payments through each node and multi-part %s", time.Since(phase).Round(time.Second))
	phase = time.Now()

	t.Run("cancel fails the payment back", func(t *testing.T) {
		inv := d.addInvoice(t, 2_000_000, 600)
		pay := payAsync(t, cluster, inv.PaymentRequest)
		ev := nextAcceptedFor(t, acc, inv.Hash)
		for range 2 { // idempotent
			if _, err := d.client.CancelInvoice(t.Context(), connect.NewRequest(&lnmuxpb.CancelInvoiceRequest{Hash: inv.Hash, SetId: ev.SetId})); err != nil {
				t.Fatal(err)
			}
		}
		p := <-pay
		if p.Status != lnrpc.Payment_FAILED || p.FailureCode != lnrpc.Failure_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS {
			t.Fatalf("payment %v / %v", p.Status, p.FailureCode)
		}
	})

	t.Run("amount below the invoice", func(t *testing.T) {
		inv := d.addInvoice(t, 2_000_000, 600)
		res := sendToRoute(t, cluster, cluster.Alice, aliceChan, inv, 1_500_000, 1_500_000)
		if res.Failure == nil || res.Failure.Code != lnrpc.Failure_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS {
			t.Fatalf("attempt %v", res)
		}
	})

	t.Run("expired invoice", func(t *testing.T) {
		inv := d.addInvoice(t, 2_000_000, 1)
		time.Sleep(2 * time.Second)
		res := sendToRoute(t, cluster, cluster.Bob, bobChan, inv, 2_000_000, 2_000_000)
		if res.Failure == nil || res.Failure.Code != lnrpc.Failure_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS {
			t.Fatalf("attempt %v", res)
		}
	})

	t.Run("incomplete multi-part payment times out", func(t *testing.T) {
		inv := d.addInvoice(t, 2_000_000, 600)
		res := sendToRoute(t, cluster, cluster.Alice, aliceChan, inv, 1_000_000, 2_000_000)
		if res.Failure == nil || res.Failure.Code != lnrpc.Failure_MPP_TIMEOUT {
			t.Fatalf("attempt %v", res)
		}
	})

	t.Run("routing fee of the virtual channel not paid", func(t *testing.T) {
		inv := d.addInvoice(t, 2_000_000, 600)
		res := sendToRouteFee(t, cluster, cluster.Bob, bobChan, inv, 2_000_000, 2_000_000, 0)
		if res.Failure == nil || res.Failure.Code != lnrpc.Failure_TEMPORARY_CHANNEL_FAILURE {
			t.Fatalf("attempt %v", res)
		}
	})
	// The deliberate failures taught Carol's mission control to avoid the
	// virtual channels (temporary_channel_failure penalises a pair); a
	// payer would forget that within the hour, the test at once.
	if _, err := cluster.Carol.Router.ResetMissionControl(t.Context(), &routerrpc.ResetMissionControlRequest{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("phase: failures %s", time.Since(phase).Round(time.Second))
	phase = time.Now()

	t.Run("alice down: paid through bob", func(t *testing.T) {
		if err := cluster.Stop(cluster.Alice); err != nil {
			t.Fatal(err)
		}
		// Alice comes back whatever happens here: later scenarios use her.
		defer func() {
			if !cluster.Alice.Running() {
				if err := cluster.Start(context.Background(), cluster.Alice); err != nil {
					t.Errorf("restart alice: %v", err)
				}
			}
		}()
		d.waitNode(t, cluster.Alice.PubKey, false)
		inv := d.addInvoice(t, 1_000_000, 600)
		pay := payAsync(t, cluster, inv.PaymentRequest)
		ev := nextAcceptedFor(t, acc, inv.Hash)
		if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
			t.Fatal(err)
		}
		if p := <-pay; p.Status != lnrpc.Payment_SUCCEEDED {
			t.Fatalf("payment %v %v", p.Status, p.FailureReason)
		}
		if err := cluster.Start(t.Context(), cluster.Alice); err != nil {
			t.Fatal(err)
		}
		d.waitNode(t, cluster.Alice.PubKey, true)
	})
	t.Logf("phase: fail-over %s", time.Since(phase).Round(time.Second))
	phase = time.Now()

	t.Run("crash after the settle commit, before lnd heard of it", func(t *testing.T) {
		d.stop()
		d = env.start(t, daemonOpts{failpoint: "crash-after-settle-commit"})
		acc = d.accepted(t)
		inv := d.addInvoice(t, 1_000_000, 600)
		pay := payAsync(t, cluster, inv.PaymentRequest, func(r *routerrpc.SendPaymentRequest) {
			r.OutgoingChanIds = []uint64{aliceChan}
		})
		ev := nextAcceptedFor(t, acc, inv.Hash)
		if err := d.settle(t, inv.Hash, ev.SetId); err == nil {
			t.Fatal("settle answered although the failpoint kills lnmuxd")
		}
		if err, ok := d.exited(waitLong); !ok || err == nil {
			t.Fatalf("lnmuxd still running or exited cleanly: %v", err)
		}
		select {
		case p := <-pay:
			t.Fatalf("payment finished while lnmuxd was down: %v", p.Status)
		case <-time.After(2 * time.Second):
		}
		d = env.start(t, daemonOpts{})
		acc = d.accepted(t)
		p := <-pay
		if p.Status != lnrpc.Payment_SUCCEEDED || !bytes.Equal(p.Preimage[:], inv.Preimage) {
			t.Fatalf("payment after restart %v", p.Status)
		}
		if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("final %v", got)
		}
	})

	t.Run("crash while a set is only accepted", func(t *testing.T) {
		inv := d.addInvoice(t, 1_000_000, 600)
		pay := payAsync(t, cluster, inv.PaymentRequest, func(r *routerrpc.SendPaymentRequest) {
			r.OutgoingChanIds = []uint64{bobChan}
		})
		before := nextAcceptedFor(t, acc, inv.Hash)
		d.kill()
		d = env.start(t, daemonOpts{})
		acc = d.accepted(t)
		after := nextAcceptedFor(t, acc, inv.Hash)
		if !bytes.Equal(before.SetId, after.SetId) {
			t.Fatal("set id changed across the restart")
		}
		if err := d.settle(t, inv.Hash, after.SetId); err != nil {
			t.Fatal(err)
		}
		if p := <-pay; p.Status != lnrpc.Payment_SUCCEEDED {
			t.Fatalf("payment %v", p.Status)
		}
		if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("final %v", got)
		}
	})
	t.Logf("phase: crash recovery %s", time.Since(phase).Round(time.Second))
	phase = time.Now()

	t.Run("auto-settle", func(t *testing.T) {
		d.stop()
		d = env.start(t, daemonOpts{autoSettle: true})
		inv := d.addInvoice(t, 1_000_000, 600)
		p, err := cluster.PayInvoice(t.Context(), inv.PaymentRequest)
		if err != nil || p.Status != lnrpc.Payment_SUCCEEDED {
			t.Fatalf("payment %v %v", p, err)
		}
		if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("final %v", got)
		}
	})

	t.Run("list invoices", func(t *testing.T) {
		res, err := d.client.ListInvoices(t.Context(), connect.NewRequest(&lnmuxpb.ListInvoicesRequest{MaxInvoicesCount: 100}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.Msg.Invoice); n < 7 {
			t.Fatalf("%d stored invoices", n)
		}
		for _, inv := range res.Msg.Invoice {
			if inv.Status != lnmuxpb.InvoiceStatus_SETTLED || inv.FinalizedAt == 0 {
				t.Fatalf("invoice %x is %v", inv.Hash, inv.Status)
			}
		}
	})

	t.Run("prometheus metrics on the instrumentation port", func(t *testing.T) {
		res, err := http.Get("http://" + d.instr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		for _, want := range []string{
			`lnmux_invoices_final_total{status="settled"}`,
			`lnmux_htlcs_resolved_total{action="settle",reason=""}`,
			`lnmux_node_connected{node="` + cluster.Alice.PubKey + `"} 1`,
			`lnmux_node_interceptor_active{node="` + cluster.Bob.PubKey + `"} 1`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("traces reach an otlp collector", func(t *testing.T) {
		inv := d.addInvoice(t, 1_000_000, 600)
		if p, err := cluster.PayInvoice(t.Context(), inv.PaymentRequest); err != nil || p.Status != lnrpc.Payment_SUCCEEDED {
			t.Fatalf("payment %v %v", p, err)
		}
		// A graceful stop flushes the span batcher.
		d.stop()
		if !env.otlp.find("lnmux.htlc", inv.Hash) {
			t.Error("no lnmux.htlc span for the payment")
		}
		if !env.otlp.find("lnmux.Service/AddInvoice", nil) {
			t.Error("no span for the AddInvoice call")
		}
		d = env.start(t, daemonOpts{autoSettle: true})
	})

	var direct time.Duration
	t.Run("payment latency against alice's own invoices", func(t *testing.T) {
		direct = measureLatency(t, cluster, d, aliceChan)
	})
	t.Run("latency of a 4-part payment across alice and bob", func(t *testing.T) {
		measureMultiPartLatency(t, cluster, d, aliceChan, bobChan, direct)
	})
	t.Logf("phase: auto-settle and latency %s", time.Since(phase).Round(time.Second))
}

// chanID is the id of Carol's channel to n.
func chanID(t *testing.T, c *regtest.Cluster, n *regtest.Node) uint64 {
	t.Helper()
	ch, err := c.Channel(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	return ch.ChanId
}

func payAsync(t *testing.T, c *regtest.Cluster, payreq string, mods ...func(*routerrpc.SendPaymentRequest)) <-chan *regtest.Payment {
	ch := make(chan *regtest.Payment, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		p, err := c.PayInvoice(ctx, payreq, mods...)
		if err != nil {
			t.Errorf("pay: %v", err)
			p = &regtest.Payment{Status: lnrpc.Payment_FAILED}
		}
		ch <- p
	}()
	return ch
}

// sendToRoute has Carol send one HTLC of amt (announcing total) to lnmux
// through via, paying the virtual channel's fee.
func sendToRoute(t *testing.T, c *regtest.Cluster, via *regtest.Node, viaChan uint64, inv *lnmuxpb.AddInvoiceResponse, amt, total int64) *lnrpc.HTLCAttempt {
	fee := int64(100) + amt*1000/1_000_000
	return sendToRouteFee(t, c, via, viaChan, inv, amt, total, fee)
}

// sendToRouteFee builds the two-hop route Carol → via → lnmux by hand, so
// that a test can send what no invoice-following payer would.
func sendToRouteFee(t *testing.T, c *regtest.Cluster, via *regtest.Node, viaChan uint64, inv *lnmuxpb.AddInvoiceResponse, amt, total, fee int64) *lnrpc.HTLCAttempt {
	t.Helper()
	route := routeVia(t, c, via, viaChan, inv, amt, total, fee)
	res, err := c.Carol.Router.SendToRouteV2(t.Context(), &routerrpc.SendToRouteRequest{PaymentHash: inv.Hash, Route: route})
	if err != nil {
		t.Fatalf("send to route: %v", err)
	}
	return res
}

// routeVia is the two-hop route Carol → via → lnmux for one part, with
// the HTLC expiring at lnmux 80 blocks from now.
func routeVia(t *testing.T, c *regtest.Cluster, via *regtest.Node, viaChan uint64, inv *lnmuxpb.AddInvoiceResponse, amt, total, fee int64) *lnrpc.Route {
	t.Helper()
	info, err := c.Carol.Client.GetInfo(t.Context(), &lnrpc.GetInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return routeExpiring(t, c, via, viaChan, inv, amt, total, fee, info.BlockHeight+80)
}

// routeExpiring is routeVia with the HTLC expiring at lnmux at height
// final (via's incoming HTLC then expires at final + 40, the virtual
// channel's CLTV delta).
func routeExpiring(t *testing.T, c *regtest.Cluster, via *regtest.Node, viaChan uint64, inv *lnmuxpb.AddInvoiceResponse, amt, total, fee int64, final uint32) *lnrpc.Route {
	t.Helper()
	viaKey, err := domain.ParseNodeKey(via.PubKey)
	if err != nil {
		t.Fatal(err)
	}
	lnmuxKey := invoiceDestination(t, c, inv.PaymentRequest)
	route := &lnrpc.Route{
		TotalTimeLock: final + 40,
		TotalAmtMsat:  amt + fee,
		Hops: []*lnrpc.Hop{
			{ChanId: viaChan, PubKey: via.PubKey, AmtToForwardMsat: amt, Expiry: final, FeeMsat: fee, TlvPayload: true},
			{ChanId: domain.VirtualChannelID(viaKey), PubKey: lnmuxKey, AmtToForwardMsat: amt, Expiry: final, TlvPayload: true,
				MppRecord: &lnrpc.MPPRecord{PaymentAddr: inv.PaymentAddr, TotalAmtMsat: total}},
		},
	}
	return route
}

func invoiceDestination(t *testing.T, c *regtest.Cluster, payreq string) string {
	t.Helper()
	dec, err := c.Carol.Client.DecodePayReq(t.Context(), &lnrpc.PayReqString{PayReq: payreq})
	if err != nil {
		t.Fatal(err)
	}
	return dec.Destination
}

// invoiceStates streams SubscribeSingleInvoice until the invoice is final.
func (d *daemon) invoiceStates(t *testing.T, hash []byte) <-chan lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
	ch := make(chan lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState, 16)
	go func() {
		defer cancel()
		defer close(ch)
		stream, err := d.client.SubscribeSingleInvoice(ctx, connect.NewRequest(&lnmuxpb.SubscribeSingleInvoiceRequest{Hash: hash}))
		if err != nil {
			return
		}
		for stream.Receive() {
			ch <- stream.Msg().State
		}
	}()
	return ch
}

// nextState returns the next state of a SubscribeSingleInvoice stream.
func nextState(t *testing.T, ch <-chan lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState) lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState {
	t.Helper()
	select {
	case s, ok := <-ch:
		if !ok {
			t.Fatal("SubscribeSingleInvoice ended")
		}
		return s
	case <-time.After(waitLong):
		t.Fatal("no state from SubscribeSingleInvoice")
		return 0
	}
}

func collect(t *testing.T, ch <-chan lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState) []lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState {
	t.Helper()
	var out []lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState
	for s := range ch {
		out = append(out, s)
	}
	return out
}

// waitNode waits until lnmuxd reports the node connected (or not).
func (d *daemon) waitNode(t *testing.T, pubKey string, up bool) {
	t.Helper()
	want, _ := hex.DecodeString(pubKey)
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		for _, n := range d.info(t).Nodes {
			if bytes.Equal(n.PubKey, want) && n.Connected == up && n.InterceptorActive == up {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("node %s never became connected=%v", pubKey, up)
}

// measureLatency compares Carol paying lnmux through Alice (auto-settle) with
// Carol paying Alice's own invoices over the same channel, interleaved in
// the same run. The figures are logged for docs/benchmarks.md; nothing is
// asserted about them.
func measureLatency(t *testing.T, c *regtest.Cluster, d *daemon, aliceChan uint64) (directMedian time.Duration) {
	const n = 10
	viaAlice := func(r *routerrpc.SendPaymentRequest) { r.OutgoingChanIds = []uint64{aliceChan} }
	var lnmux, direct []time.Duration
	for i := range n {
		inv := d.addInvoice(t, 10_000, 600)
		t0 := time.Now()
		p, err := c.PayInvoice(t.Context(), inv.PaymentRequest, viaAlice)
		if err != nil || p.Status != lnrpc.Payment_SUCCEEDED {
			t.Fatalf("lnmux payment %d: %v %v", i, p, err)
		}
		lnmux = append(lnmux, time.Since(t0))

		own, err := c.Alice.Client.AddInvoice(t.Context(), &lnrpc.Invoice{ValueMsat: 10_000, Memo: "baseline"})
		if err != nil {
			t.Fatal(err)
		}
		t0 = time.Now()
		p, err = c.PayInvoice(t.Context(), own.PaymentRequest, viaAlice)
		if err != nil || p.Status != lnrpc.Payment_SUCCEEDED {
			t.Fatalf("direct payment %d: %v %v", i, p, err)
		}
		direct = append(direct, time.Since(t0))
	}
	ml, md := median(lnmux), median(direct)
	t.Logf("LATENCY carol→lnmux via alice: median %s (min %s, max %s) over %d payments", ml, slices.Min(lnmux), slices.Max(lnmux), n)
	t.Logf("LATENCY carol→alice own invoice: median %s (min %s, max %s) over %d payments", md, slices.Min(direct), slices.Max(direct), n)
	t.Logf("LATENCY ratio lnmux/direct: %.2f", float64(ml)/float64(md))
	return md
}

// measureMultiPartLatency times payments of four parts, two through Alice
// and two through Bob, sent at once on routes built by hand (so that every
// payment has exactly four parts over both nodes): from the first send to
// the last part's success, as Carol sees it. lnmuxd (auto-settle) holds the
// first parts until the set is complete, commits it and settles all four.
// direct is the median of Alice's own single-part invoices measured just
// before, for the ratio. Nothing is asserted about the figures.
func measureMultiPartLatency(t *testing.T, c *regtest.Cluster, d *daemon, aliceChan, bobChan uint64, direct time.Duration) {
	const (
		n     = 10
		parts = 4
		part  = int64(10_000)
	)
	var took []time.Duration
	for i := range n {
		inv := d.addInvoice(t, parts*part, 600)
		fee := int64(100) + part*1000/1_000_000
		var routes []*lnrpc.Route
		for p := range parts {
			via, ch := c.Alice, aliceChan
			if p%2 == 1 {
				via, ch = c.Bob, bobChan
			}
			routes = append(routes, routeVia(t, c, via, ch, inv, part, parts*part, fee))
		}
		type result struct {
			att *lnrpc.HTLCAttempt
			err error
		}
		results := make(chan result, parts)
		t0 := time.Now()
		for _, r := range routes {
			go func() {
				att, err := c.Carol.Router.SendToRouteV2(t.Context(), &routerrpc.SendToRouteRequest{PaymentHash: inv.Hash, Route: r})
				results <- result{att, err}
			}()
		}
		for range parts {
			r := <-results
			if r.err != nil || r.att.Status != lnrpc.HTLCAttempt_SUCCEEDED {
				t.Fatalf("4-part payment %d: part %v %v", i, r.att, r.err)
			}
		}
		took = append(took, time.Since(t0))
		if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("4-part payment %d: final %v, want settled", i, got)
		}
	}
	m := median(took)
	t.Logf("LATENCY carol→lnmux 4 parts via alice and bob: median %s (min %s, max %s) over %d payments", m, slices.Min(took), slices.Max(took), n)
	if direct > 0 {
		t.Logf("LATENCY ratio lnmux 4-part/direct single-part: %.2f", float64(m)/float64(direct))
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
