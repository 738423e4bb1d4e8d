package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lnmux/lnmux/deployments/regtest"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// TestSwapHoldInvoice is a swap's flow on real lnd (docs/api.md, "Swap
// invoices"): the application makes an invoice for a payment hash it
// chose, Carol pays it in parts through both Alice and Bob, and the
// application learns the preimage only after the set is accepted (as a
// swap server does when the on-chain side is claimed). lnmux's own accept
// timeout is 5 s; the invoice asks for 10 minutes. A wrong preimage is
// refused and changes nothing; the right one settles the payment, and
// Carol gets it.
func TestSwapHoldInvoice(t *testing.T) {
	cluster := regtest.StartT(t, regtest.Options{AliceChannelSat: channelSat, BobChannelSat: channelSat, Logf: t.Logf})
	aliceChan := chanID(t, cluster, cluster.Alice)
	bobChan := chanID(t, cluster, cluster.Bob)
	env := &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: t.TempDir(), cluster: cluster}
	d := env.start(t, daemonOpts{acceptTimeout: 5 * time.Second})
	acc := d.accepted(t)

	// The swap server's secret: lnmux never sees it until settlement.
	var preimage [32]byte
	if _, err := rand.Read(preimage[:]); err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(preimage[:])
	res, err := d.client.AddInvoice(t.Context(), connect.NewRequest(&lnmuxpb.AddInvoiceRequest{
		AmtMsat: mppSat * 1000, ExpirySecs: 600, Description: "swap", PaymentHash: hash[:], AcceptTimeoutSecs: 600,
	}))
	if err != nil {
		t.Fatal(err)
	}
	inv := res.Msg
	if !bytes.Equal(inv.Hash, hash[:]) || len(inv.Preimage) != 0 {
		t.Fatalf("invoice hash %x preimage %x, want the caller's hash and no preimage", inv.Hash, inv.Preimage)
	}
	dec, err := cluster.Carol.Client.DecodePayReq(t.Context(), &lnrpc.PayReqString{PayReq: inv.PaymentRequest})
	if err != nil || dec.PaymentHash != hex.EncodeToString(hash[:]) {
		t.Fatalf("decoded hash %s (err %v), want %x", dec.GetPaymentHash(), err, hash)
	}

	// Each channel is smaller than the amount: the payment must use both.
	pay := payAsync(t, cluster, inv.PaymentRequest)
	ev := nextAcceptedFor(t, acc, hash[:])
	accepted := d.lookup(t, hash[:])
	if accepted.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_ACCEPTED || accepted.Parts < 2 ||
		accepted.AcceptDeadline < time.Now().Add(5*time.Minute).Unix() {
		t.Fatalf("accepted: %v, want a deadline about 10 minutes away", accepted)
	}

	// Not yet known: settling without the preimage or with a wrong one is
	// refused, nothing is stored, the set stays accepted.
	for _, p := range [][]byte{nil, make([]byte, 32), bytes.Repeat([]byte{7}, 32)} {
		_, err := d.client.SettleInvoice(t.Context(), connect.NewRequest(&lnmuxpb.SettleInvoiceRequest{Hash: hash[:], SetId: ev.SetId, Preimage: p}))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("settle with preimage %x: %v, want invalid_argument", p, err)
		}
	}
	// Past lnmux's own 5 s accept timeout: the invoice's 10 minutes hold.
	time.Sleep(6 * time.Second)
	if l := d.lookup(t, hash[:]); l.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_ACCEPTED || !bytes.Equal(l.SetId, ev.SetId) {
		t.Fatalf("after refused settles and 6 s: %v", l)
	}

	// The preimage becomes known: settle with it.
	if _, err := d.client.SettleInvoice(t.Context(), connect.NewRequest(&lnmuxpb.SettleInvoiceRequest{Hash: hash[:], SetId: ev.SetId, Preimage: preimage[:]})); err != nil {
		t.Fatal(err)
	}
	p := <-pay
	if p.Status != lnrpc.Payment_SUCCEEDED || p.Preimage != preimage {
		t.Fatalf("payment %v %v, preimage %x", p.Status, p.FailureReason, p.Preimage)
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
	if got := d.waitFinal(t, hash[:]); got != lnmuxpb.InvoiceStatus_SETTLED {
		t.Fatalf("final %v", got)
	}
	if l := d.lookup(t, hash[:]); l.Invoice == nil || !bytes.Equal(l.Invoice.Preimage, preimage[:]) || l.Invoice.Status != lnmuxpb.InvoiceStatus_SETTLED {
		t.Fatalf("stored: %v", l)
	}
}
