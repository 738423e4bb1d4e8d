package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/deployments/regtest"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// TestBlindedInvoice pays lnmux's blinded invoices (AddInvoice{blinded:
// true}, issue 21) from an unmodified lnd on regtest: the invoice's shape as
// lnd's own decoder reads it; Carol paying through Alice only, through Bob
// only, in parts across both, and through Bob while Alice is down; tampered
// and replayed paths and a second payment of a paid invoice refused with
// invalid_onion_blinding from the introduction node; the application's
// settle and cancel, followed to SETTLED. Every wait is bounded; nothing
// depends on how often Carol's lnd retries.
func TestBlindedInvoice(t *testing.T) {
	cluster := regtest.StartT(t, regtest.Options{AliceChannelSat: channelSat, BobChannelSat: channelSat, Logf: t.Logf})
	aliceChan := chanID(t, cluster, cluster.Alice)
	bobChan := chanID(t, cluster, cluster.Bob)
	alice, bob := cluster.Alice.PubKey, cluster.Bob.PubKey
	env := &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: t.TempDir(), cluster: cluster}
	// A short route-hint grace: Alice stopped is left out of new invoices
	// at once (the last scenario).
	d := env.start(t, daemonOpts{hintGrace: 3 * time.Second})
	acc := d.accepted(t)
	lnmuxKey := hex.EncodeToString(d.info(t).PubKey)
	defer func() {
		if !cluster.Alice.Running() {
			if err := cluster.Start(context.Background(), cluster.Alice); err != nil {
				t.Errorf("restart alice: %v", err)
			}
		}
	}()

	// paid keeps a settled invoice for the second-payment scenario.
	var paid *lnmuxpb.AddInvoiceResponse

	t.Run("invoice: a blinded path per node, no hints, no payment address, an ephemeral payee key", func(t *testing.T) {
		inv := d.addBlindedInvoice(t, 20_000, 600)
		dec := decodeInvoice(t, inv.PaymentRequest)
		if got := hex.EncodeToString(dec.PaymentHash[:]); got != hex.EncodeToString(inv.Hash) {
			t.Fatalf("payment hash %s, want %x", got, inv.Hash)
		}
		if dec.MilliSat == nil || *dec.MilliSat != 20_000 {
			t.Fatalf("amount %v, want 20000 msat", dec.MilliSat)
		}
		if len(dec.RouteHints) != 0 {
			t.Fatalf("%d route hints, want none", len(dec.RouteHints))
		}
		if dec.PaymentAddr.IsSome() {
			t.Fatal("payment address (s) present, want none")
		}
		if got := introsOf(t, dec); !sameSet(got, []string{alice, bob}) {
			t.Fatalf("introduction nodes %v, want alice and bob", short(got))
		}
		t.Logf("invoice features %v", featureBits(dec.Features))
		for i, p := range dec.BlindedPaymentPaths {
			t.Logf("path %d: intro %s, %d hops, fee %d msat + %d ppm, cltv delta %d, htlc %d..%d msat, features %v",
				i, hex.EncodeToString(p.Hops[0].BlindedNodePub.SerializeCompressed())[:8], len(p.Hops),
				p.FeeBaseMsat, p.FeeRate, p.CltvExpiryDelta, p.HTLCMinMsat, p.HTLCMaxMsat, featureBits(p.Features))
			if len(p.Hops) < 2 {
				t.Fatalf("path %d has %d hops: the introduction node alone would be the payee", i, len(p.Hops))
			}
			for j, h := range p.Hops[1:] {
				if k := hex.EncodeToString(h.BlindedNodePub.SerializeCompressed()); k == lnmuxKey {
					t.Fatalf("path %d hop %d is lnmux's own key, not blinded", i, j+1)
				}
			}
			// The virtual channel's policy (lnmuxdEnv.config).
			if p.FeeBaseMsat != 100 || p.FeeRate != 1000 {
				t.Fatalf("path %d fee %d msat + %d ppm, want the routing policy's 100 + 1000", i, p.FeeBaseMsat, p.FeeRate)
			}
		}
		payee := hex.EncodeToString(dec.Destination.SerializeCompressed())
		for _, k := range []string{lnmuxKey, alice, bob, cluster.Carol.PubKey} {
			if payee == k {
				t.Fatalf("the payee key recovered from the signature is %s, a known key", k[:8])
			}
		}
		// lnd's own decoder reads it the same way.
		pr, err := cluster.Carol.Client.DecodePayReq(t.Context(), &lnrpc.PayReqString{PayReq: inv.PaymentRequest})
		if err != nil {
			t.Fatalf("lnd decodepayreq: %v", err)
		}
		// lnd reports an absent payment address as 32 zero bytes.
		if len(pr.BlindedPaths) != 2 || len(pr.RouteHints) != 0 || slices.ContainsFunc(pr.PaymentAddr, func(b byte) bool { return b != 0 }) ||
			pr.Destination != payee {
			t.Fatalf("lnd decodes %d blinded paths, %d hints, addr %x, payee %s", len(pr.BlindedPaths), len(pr.RouteHints), pr.PaymentAddr, pr.Destination)
		}
		// A second invoice is signed with another key.
		if other := decodeInvoice(t, d.addBlindedInvoice(t, 20_000, 600).PaymentRequest); other.Destination.IsEqual(dec.Destination) {
			t.Fatal("two invoices signed with the same payee key")
		}
	})

	for _, via := range []struct {
		name string
		node *regtest.Node
		chID uint64
	}{{"alice", cluster.Alice, aliceChan}, {"bob", cluster.Bob, bobChan}} {
		t.Run("paid through "+via.name+" only", func(t *testing.T) {
			inv := d.addBlindedInvoice(t, 10_000_000, 600)
			// The first hop decides the blinded path: Carol's only
			// channels go to the introduction nodes
			// (routing/pathfind.go, OutgoingChannelIDs).
			p := d.payAndSettle1(t, cluster, acc, inv, func(r *routerrpc.SendPaymentRequest) {
				r.OutgoingChanIds = []uint64{via.chID}
			})
			for _, h := range succeeded(p) {
				if hop := h.Route.Hops[0].PubKey; hop != via.node.PubKey {
					t.Fatalf("a part went through %s, want %s", hop[:8], via.name)
				}
				if last := h.Route.Hops[len(h.Route.Hops)-1].PubKey; last == lnmuxKey {
					t.Fatal("Carol's route names lnmux's own key")
				}
			}
			if got := d.settledHTLCNodes(t, inv.Hash); !slices.Equal(got, []string{via.node.PubKey}) {
				t.Fatalf("lnmux's HTLCs through %v, want %s only", short(got), via.name)
			}
			paid = inv
		})
	}

	t.Run("multi-part across alice and bob", func(t *testing.T) {
		// Larger than either channel can carry: lnd must split it.
		inv := d.addBlindedInvoice(t, mppSat*1000, 600)
		if got := introsOf(t, decodeInvoice(t, inv.PaymentRequest)); !sameSet(got, []string{alice, bob}) {
			t.Fatalf("introduction nodes %v, want alice and bob", short(got))
		}
		p := d.payAndSettle1(t, cluster, acc, inv)
		firstHops := map[string]bool{}
		for _, h := range succeeded(p) {
			firstHops[h.Route.Hops[0].PubKey] = true
		}
		if !firstHops[alice] || !firstHops[bob] {
			t.Fatalf("Carol's settled parts went through %v, want both nodes", firstHops)
		}
		if got := d.settledHTLCNodes(t, inv.Hash); !sameSet(got, []string{alice, bob}) {
			t.Fatalf("lnmux's settled set came through %v, want alice and bob", short(got))
		}
		if l := d.lookup(t, inv.Hash); l.Invoice.GetAmountPaidMsat() < mppSat*1000 || len(l.Htlcs) < 2 {
			t.Fatalf("stored: paid %d msat in %d HTLCs", l.Invoice.GetAmountPaidMsat(), len(l.Htlcs))
		}
	})

	t.Run("tampered path refused by the introduction node", func(t *testing.T) {
		inv := d.addBlindedInvoice(t, 1_000_000, 600)
		// The last hop of every path, then (when the paths are longer
		// than [introduction node, lnmux]) the first hop after the
		// introduction node: both are lnmux's to decrypt.
		hops := []int{-1}
		if n := len(decodeInvoice(t, inv.PaymentRequest).BlindedPaymentPaths[0].Hops); n > 2 {
			hops = append(hops, 1)
		}
		for _, at := range hops {
			dec := decodeInvoice(t, inv.PaymentRequest)
			for _, p := range dec.BlindedPaymentPaths {
				h := p.Hops[(at+len(p.Hops))%len(p.Hops)]
				ct := bytes.Clone(h.CipherText)
				ct[len(ct)/2] ^= 0x01
				h.CipherText = ct
			}
			t.Logf("hop %d of every path tampered (-1: the last)", at)
			p, err := cluster.PayInvoice(t.Context(), reencode(t, dec))
			if err != nil {
				t.Fatal(err)
			}
			requireBlindingFailure(t, cluster, p)
			if l := d.lookup(t, inv.Hash); l.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_OPEN_OR_UNKNOWN {
				t.Fatalf("lnmux after the tampered payment: %v, want nothing held", l.State)
			}
			// Carol's lnd penalised the paths' blinded hops, which
			// the next copy shares.
			resetMissionControl(t, cluster)
		}
		// The invoice as lnmux made it pays: the tampering was refused,
		// nothing else.
		d.payAndSettle1(t, cluster, acc, inv)
	})

	t.Run("paths replayed from another invoice refused", func(t *testing.T) {
		inv := d.addBlindedInvoice(t, 1_000_000, 600)
		other := d.addBlindedInvoice(t, 1_000_000, 600)
		dec := decodeInvoice(t, inv.PaymentRequest)
		dec.BlindedPaymentPaths = decodeInvoice(t, other.PaymentRequest).BlindedPaymentPaths
		p, err := cluster.PayInvoice(t.Context(), reencode(t, dec))
		if err != nil {
			t.Fatal(err)
		}
		requireBlindingFailure(t, cluster, p)
		for _, h := range [][]byte{inv.Hash, other.Hash} {
			if l := d.lookup(t, h); l.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_OPEN_OR_UNKNOWN {
				t.Fatalf("lnmux after the replay: %x is %v, want nothing held", h, l.State)
			}
		}
	})

	t.Run("a paid invoice paid again is refused and not paid twice", func(t *testing.T) {
		if paid == nil {
			t.Skip("no invoice was paid")
		}
		before := d.lookup(t, paid.Hash)
		if before.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_STORED || before.Invoice.GetStatus() != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("paid invoice: %v", before)
		}
		// Carol's lnd refuses to pay a hash it paid: forget that payment.
		if _, err := cluster.Carol.Client.DeletePayment(t.Context(), &lnrpc.DeletePaymentRequest{PaymentHash: paid.Hash}); err != nil {
			t.Fatalf("delete Carol's payment: %v", err)
		}
		p, err := cluster.PayInvoice(t.Context(), paid.PaymentRequest)
		if err != nil {
			t.Fatal(err)
		}
		requireBlindingFailure(t, cluster, p)
		after := d.lookup(t, paid.Hash)
		if after.Invoice.GetStatus() != lnmuxpb.InvoiceStatus_SETTLED || after.Invoice.GetAmountPaidMsat() != before.Invoice.GetAmountPaidMsat() ||
			len(after.Htlcs) != len(before.Htlcs) {
			t.Fatalf("after the second payment: %v paid %d msat in %d HTLCs, before %d msat in %d",
				after.Invoice.GetStatus(), after.Invoice.GetAmountPaidMsat(), len(after.Htlcs),
				before.Invoice.GetAmountPaidMsat(), len(before.Htlcs))
		}
	})
	// The refusals above end Carol's payments without penalising a node
	// (routing/result_interpretation.go, FailInvalidBlinding at the
	// introduction node next to the payee); forget them anyway.
	resetMissionControl(t, cluster)

	t.Run("settle: accepted, settle requested, settled", func(t *testing.T) {
		inv := d.addBlindedInvoice(t, 1_000_000, 600)
		states := d.invoiceStates(t, inv.Hash)
		pay := payAsync(t, cluster, inv.PaymentRequest)
		ev := acceptedOrDone(t, acc, pay, inv.Hash)
		if l := d.lookup(t, inv.Hash); l.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_ACCEPTED || !bytes.Equal(l.SetId, ev.SetId) {
			t.Fatalf("lookup of the accepted set: %v", l)
		}
		first := nextState(t, states)
		if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
			t.Fatal(err)
		}
		p := <-pay
		if p.Status != lnrpc.Payment_SUCCEEDED || !bytes.Equal(p.Preimage[:], inv.Preimage) {
			t.Fatalf("payment %v %v, preimage %x", p.Status, p.FailureReason, p.Preimage)
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
		if l := d.lookup(t, inv.Hash); l.Invoice.GetStatus() != lnmuxpb.InvoiceStatus_SETTLED || len(l.Htlcs) == 0 {
			t.Fatalf("stored: %v", l)
		}
	})

	t.Run("cancel fails Carol's payment", func(t *testing.T) {
		inv := d.addBlindedInvoice(t, 1_000_000, 600)
		states := d.invoiceStates(t, inv.Hash)
		pay := payAsync(t, cluster, inv.PaymentRequest)
		ev := acceptedOrDone(t, acc, pay, inv.Hash)
		if s := nextState(t, states); s != lnmuxpb.SubscribeSingleInvoiceResponse_STATE_ACCEPTED {
			t.Fatalf("first state %v", s)
		}
		p := cancelUntilDone(t, d, acc, pay, inv.Hash, ev.SetId)
		if p.Status != lnrpc.Payment_FAILED {
			t.Fatalf("payment %v after the cancel", p.Status)
		}
		requireBlindingFailure(t, cluster, p)
		if s := nextState(t, states); s != lnmuxpb.SubscribeSingleInvoiceResponse_STATE_CANCELLED {
			t.Fatalf("state after the cancel %v, want cancelled", s)
		}
		if l := d.lookup(t, inv.Hash); l.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_OPEN_OR_UNKNOWN {
			t.Fatalf("lnmux after the cancel: %v", l.State)
		}
	})

	t.Run("alice stopped: a new invoice has bob's path alone and is paid through him", func(t *testing.T) {
		if err := cluster.Stop(cluster.Alice); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if !cluster.Alice.Running() {
				if err := cluster.Start(context.Background(), cluster.Alice); err != nil {
					t.Errorf("restart alice: %v", err)
				}
			}
		}()
		d.waitHints(t, "alice left out as unreachable", func(n map[string]*lnmuxpb.NodeInfo) bool {
			return !n[alice].GetConnected() && n[alice].GetHintStatus() == lnmuxpb.NodeInfo_HINT_STATUS_UNREACHABLE &&
				n[bob].GetHintStatus() == lnmuxpb.NodeInfo_HINT_STATUS_INCLUDED
		})
		inv := d.addBlindedInvoice(t, 1_000_000, 600)
		if got := introsOf(t, decodeInvoice(t, inv.PaymentRequest)); !slices.Equal(got, []string{bob}) {
			t.Fatalf("introduction nodes %v, want bob alone", short(got))
		}
		p := d.payAndSettle1(t, cluster, acc, inv)
		for _, h := range succeeded(p) {
			if hop := h.Route.Hops[0].PubKey; hop != bob {
				t.Fatalf("a part went through %s, want bob", hop[:8])
			}
		}
		if got := d.settledHTLCNodes(t, inv.Hash); !slices.Equal(got, []string{bob}) {
			t.Fatalf("lnmux's HTLCs through %v, want bob", short(got))
		}
		if err := cluster.Start(t.Context(), cluster.Alice); err != nil {
			t.Fatal(err)
		}
		d.waitNode(t, alice, true)
	})
}

// addBlindedInvoice asks lnmuxd for a blinded invoice.
func (d *daemon) addBlindedInvoice(t *testing.T, amtMsat, expirySecs int64) *lnmuxpb.AddInvoiceResponse {
	t.Helper()
	res, err := d.client.AddInvoice(t.Context(), connect.NewRequest(&lnmuxpb.AddInvoiceRequest{
		AmtMsat: amtMsat, ExpirySecs: expirySecs, Description: "e2e blinded", Blinded: true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg
}

// payAndSettle1 has Carol pay inv, settles its accepted set and waits
// until Carol's payment succeeded with the invoice's preimage and lnmux
// reports the invoice SETTLED.
func (d *daemon) payAndSettle1(t *testing.T, c *regtest.Cluster, acc <-chan *lnmuxpb.SubscribeInvoiceAcceptedResponse,
	inv *lnmuxpb.AddInvoiceResponse, mods ...func(*routerrpc.SendPaymentRequest),
) *regtest.Payment {
	t.Helper()
	pay := payAsync(t, c, inv.PaymentRequest, mods...)
	ev := acceptedOrDone(t, acc, pay, inv.Hash)
	if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
		t.Fatal(err)
	}
	p := <-pay
	if p.Status != lnrpc.Payment_SUCCEEDED || !bytes.Equal(p.Preimage[:], inv.Preimage) {
		t.Fatalf("payment %v %v (last failure %v from hop %d), preimage %x", p.Status, p.FailureReason, p.FailureCode, p.FailureSourceIndex, p.Preimage)
	}
	if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
		t.Fatalf("final %v", got)
	}
	var via []string
	for _, h := range succeeded(p) {
		via = append(via, h.Route.Hops[0].PubKey)
	}
	t.Logf("paid in %d parts (%d attempts) through %v", len(via), len(p.Raw.GetHtlcs()), short(via))
	return p
}

// acceptedOrDone waits for the accepted event of hash, failing the test at
// once if Carol's payment ends first (then nothing will be accepted).
func acceptedOrDone(t *testing.T, acc <-chan *lnmuxpb.SubscribeInvoiceAcceptedResponse, pay <-chan *regtest.Payment,
	hash []byte,
) *lnmuxpb.SubscribeInvoiceAcceptedResponse {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case ev, ok := <-acc:
			if !ok {
				t.Fatal("accepted stream ended")
			}
			if bytes.Equal(ev.Hash, hash) {
				return ev
			}
		case p := <-pay:
			t.Fatalf("Carol's payment ended before lnmux accepted a set: %v %v (last failure %v from hop %d, %d attempts)",
				p.Status, p.FailureReason, p.FailureCode, p.FailureSourceIndex, len(p.Raw.GetHtlcs()))
		case <-timeout:
			t.Fatalf("no accepted event for %x", hash)
		}
	}
}

// cancelUntilDone cancels the accepted set setID, and any set of hash
// accepted after it, until Carol's payment is final. Carol's lnd ends the
// payment at the first invalid_onion_blinding from an introduction node
// next to the payee, but the test does not count on it.
func cancelUntilDone(t *testing.T, d *daemon, acc <-chan *lnmuxpb.SubscribeInvoiceAcceptedResponse,
	pay <-chan *regtest.Payment, hash, setID []byte,
) *regtest.Payment {
	t.Helper()
	timeout := time.After(waitLong)
	for sets := 1; ; sets++ {
		t.Logf("cancelling set %d of the payment", sets)
		if _, err := d.client.CancelInvoice(t.Context(), connect.NewRequest(&lnmuxpb.CancelInvoiceRequest{Hash: hash, SetId: setID})); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		for setID = nil; setID == nil; {
			select {
			case p := <-pay:
				return p
			case ev, ok := <-acc:
				if !ok {
					t.Fatal("accepted stream ended")
				}
				if bytes.Equal(ev.Hash, hash) {
					setID = ev.SetId
				}
			case <-timeout:
				t.Fatal("Carol's payment not final after the cancel")
			}
		}
	}
}

// requireBlindingFailure checks that Carol's payment failed and that every
// failed attempt was failed with invalid_onion_blinding by its
// introduction node (Alice or Bob, the route's first hop: source index 1).
func requireBlindingFailure(t *testing.T, c *regtest.Cluster, p *regtest.Payment) {
	t.Helper()
	if p.Status != lnrpc.Payment_FAILED {
		t.Fatalf("payment %v, want failed", p.Status)
	}
	attempts := 0
	for _, h := range p.Raw.GetHtlcs() {
		if h.Status != lnrpc.HTLCAttempt_FAILED {
			t.Fatalf("attempt %d is %v", h.AttemptId, h.Status)
		}
		attempts++
		intro := h.Route.GetHops()[0].GetPubKey()
		if f := h.Failure; f.GetCode() != lnrpc.Failure_INVALID_ONION_BLINDING || f.GetFailureSourceIndex() != 1 ||
			(intro != c.Alice.PubKey && intro != c.Bob.PubKey) || len(h.Route.Hops[0].BlindingPoint) == 0 {
			t.Fatalf("attempt %d through %s: failure %v from hop %d, want invalid_onion_blinding from the introduction node",
				h.AttemptId, intro[:min(8, len(intro))], f.GetCode(), f.GetFailureSourceIndex())
		}
	}
	if attempts == 0 {
		t.Fatalf("payment failed (%v) before any HTLC was sent", p.FailureReason)
	}
	t.Logf("Carol's payment failed (%v) after %d attempts, each refused with invalid_onion_blinding by its introduction node", p.FailureReason, attempts)
}

// featureBits lists a feature vector's set bits.
func featureBits(f *lnwire.FeatureVector) []int {
	if f == nil {
		return nil
	}
	var bits []int
	for b := range f.Features() {
		bits = append(bits, int(b))
	}
	slices.Sort(bits)
	return bits
}

func resetMissionControl(t *testing.T, c *regtest.Cluster) {
	t.Helper()
	if _, err := c.Carol.Router.ResetMissionControl(t.Context(), &routerrpc.ResetMissionControlRequest{}); err != nil {
		t.Fatal(err)
	}
}

// succeeded lists the payment's settled attempts.
func succeeded(p *regtest.Payment) []*lnrpc.HTLCAttempt {
	var out []*lnrpc.HTLCAttempt
	for _, h := range p.Raw.GetHtlcs() {
		if h.Status == lnrpc.HTLCAttempt_SUCCEEDED {
			out = append(out, h)
		}
	}
	return out
}

// settledHTLCNodes lists, sorted and without repeats, the nodes through
// which the stored HTLCs of a settled invoice came; every one must be
// settled.
func (d *daemon) settledHTLCNodes(t *testing.T, hash []byte) []string {
	t.Helper()
	l := d.lookup(t, hash)
	if l.Invoice.GetStatus() != lnmuxpb.InvoiceStatus_SETTLED || len(l.Htlcs) == 0 {
		t.Fatalf("stored invoice %v with %d HTLCs, want settled", l.Invoice.GetStatus(), len(l.Htlcs))
	}
	var nodes []string
	for _, h := range l.Htlcs {
		if h.Status != lnmuxpb.StoredHtlc_HTLC_STATUS_SETTLED {
			t.Fatalf("stored HTLC %d/%d is %v", h.ChanId, h.HtlcId, h.Status)
		}
		nodes = append(nodes, hex.EncodeToString(h.NodePubKey))
	}
	slices.Sort(nodes)
	return slices.Compact(nodes)
}

// decodeInvoice decodes a regtest BOLT11 invoice with lnd's zpay32.
func decodeInvoice(t *testing.T, payreq string) *zpay32.Invoice {
	t.Helper()
	inv, err := zpay32.Decode(payreq, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatalf("zpay32 decode: %v", err)
	}
	return inv
}

// introsOf lists the introduction nodes of an invoice's blinded paths, in
// order.
func introsOf(t *testing.T, inv *zpay32.Invoice) []string {
	t.Helper()
	var out []string
	for i, p := range inv.BlindedPaymentPaths {
		if len(p.Hops) == 0 || p.Hops[0].BlindedNodePub == nil {
			t.Fatalf("path %d has no introduction node", i)
		}
		out = append(out, hex.EncodeToString(p.Hops[0].BlindedNodePub.SerializeCompressed()))
	}
	return out
}

// reencode signs a decoded invoice again with a fresh key, as anyone can
// (a blinded invoice's payee key says nothing).
func reencode(t *testing.T, inv *zpay32.Invoice) string {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	inv.Destination = nil
	s, err := inv.Encode(zpay32.MessageSigner{SignCompact: func(msg []byte) ([]byte, error) {
		return ecdsa.SignCompact(key, chainhash.HashB(msg), true), nil
	}})
	if err != nil {
		t.Fatalf("zpay32 encode: %v", err)
	}
	return s
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
