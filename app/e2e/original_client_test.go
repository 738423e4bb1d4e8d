package e2e

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/lightningnetwork/lnd/lnrpc"

	// Before both generated packages: they register the same proto names.
	_ "github.com/lnmux/lnmux/adapters/connectrpc/originaltest/coexist"
	"github.com/lnmux/lnmux/adapters/connectrpc/originaltest/lnmuxrpc"
	"github.com/lnmux/lnmux/adapters/connectrpc/originaltest/lnmuxrpc/lnmuxrpcconnect"
	"github.com/lnmux/lnmux/deployments/regtest"
)

// TestOriginalClient is a user of the original lnmux: a gRPC client
// generated from its published proto drives the lnmuxd process on a regtest
// cluster through every original RPC, with real payments from Carol
// (docs/compatibility.md).
func TestOriginalClient(t *testing.T) {
	cluster := regtest.StartT(t, regtest.Options{})
	env := &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: t.TempDir(), cluster: cluster}
	d := env.start(t, daemonOpts{})

	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &p}}
	c := lnmuxrpcconnect.NewServiceClient(hc, "http://"+d.addr, connect.WithGRPC())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	info, err := c.GetInfo(ctx, connect.NewRequest(&lnmuxrpc.GetInfoRequest{}))
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if len(info.Msg.Nodes) != 2 || info.Msg.Network != "regtest" || len(info.Msg.PubKey) != 33 {
		t.Fatalf("GetInfo: %+v", info.Msg)
	}

	accepted := make(chan *lnmuxrpc.SubscribeInvoiceAcceptedResponse, 16)
	// The call returns only with the first event's headers.
	go func() {
		stream, err := c.SubscribeInvoiceAccepted(ctx, connect.NewRequest(&lnmuxrpc.SubscribeInvoiceAcceptedRequest{}))
		if err != nil {
			return
		}
		for stream.Receive() {
			accepted <- stream.Msg()
		}
	}()
	waitAccepted := func(hash []byte) []byte {
		t.Helper()
		for {
			select {
			case ev := <-accepted:
				if bytes.Equal(ev.Hash, hash) {
					return ev.SetId
				}
			case <-ctx.Done():
				t.Fatal("no accepted event")
			}
		}
	}

	// Settle path.
	inv, err := c.AddInvoice(ctx, connect.NewRequest(&lnmuxrpc.AddInvoiceRequest{AmtMsat: 20_000, ExpirySecs: 600, Description: "original"}))
	if err != nil {
		t.Fatalf("AddInvoice: %v", err)
	}
	paid := payAsync(t, cluster, inv.Msg.PaymentRequest)
	setID := waitAccepted(inv.Msg.Hash)
	for range 2 { // idempotent, as the original documents
		if _, err := c.SettleInvoice(ctx, connect.NewRequest(&lnmuxrpc.SettleInvoiceRequest{Hash: inv.Msg.Hash, SetId: setID})); err != nil {
			t.Fatalf("SettleInvoice: %v", err)
		}
	}
	if pay := <-paid; pay.Status != lnrpc.Payment_SUCCEEDED || !bytes.Equal(pay.Preimage[:], inv.Msg.Preimage) {
		t.Fatalf("payment %v, preimage match %v", pay.Status, bytes.Equal(pay.Preimage[:], inv.Msg.Preimage))
	}
	final, err := c.WaitForInvoiceFinalStatus(ctx, connect.NewRequest(&lnmuxrpc.WaitForInvoiceFinalStatusRequest{Hash: inv.Msg.Hash}))
	if err != nil || final.Msg.InvoiceStatus != lnmuxrpc.InvoiceStatus_SETTLED {
		t.Fatalf("WaitForInvoiceFinalStatus: %v %v", final, err)
	}
	if _, err := c.CancelInvoice(ctx, connect.NewRequest(&lnmuxrpc.CancelInvoiceRequest{Hash: inv.Msg.Hash, SetId: setID})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("CancelInvoice after settle: %v, want FailedPrecondition", err)
	}

	// Cancel path: the payer sees the payment fail.
	inv2, err := c.AddInvoice(ctx, connect.NewRequest(&lnmuxrpc.AddInvoiceRequest{AmtMsat: 30_000, ExpirySecs: 600}))
	if err != nil {
		t.Fatalf("AddInvoice: %v", err)
	}
	paid2 := payAsync(t, cluster, inv2.Msg.PaymentRequest)
	set2 := waitAccepted(inv2.Msg.Hash)
	if _, err := c.CancelInvoice(ctx, connect.NewRequest(&lnmuxrpc.CancelInvoiceRequest{Hash: inv2.Msg.Hash, SetId: set2})); err != nil {
		t.Fatalf("CancelInvoice: %v", err)
	}
	if pay := <-paid2; pay.Status == lnrpc.Payment_SUCCEEDED {
		t.Fatal("cancelled payment succeeded")
	}

	// ListInvoices paging, with the original's field numbers.
	page, err := c.ListInvoices(ctx, connect.NewRequest(&lnmuxrpc.ListInvoicesRequest{MaxInvoicesCount: 1, SequenceStart: 1}))
	if err != nil || len(page.Msg.Invoice) != 1 {
		t.Fatalf("ListInvoices: %v %v", page, err)
	}
	got := page.Msg.Invoice[0]
	if !bytes.Equal(got.Hash, inv.Msg.Hash) || got.Status != lnmuxrpc.InvoiceStatus_SETTLED || got.AmountMsat != 20_000 ||
		!bytes.Equal(got.Preimage, inv.Msg.Preimage) {
		t.Fatalf("listed invoice %+v", got)
	}
	next, err := c.ListInvoices(ctx, connect.NewRequest(&lnmuxrpc.ListInvoicesRequest{MaxInvoicesCount: 10, SequenceStart: page.Msg.LastSequenceNumber + 1}))
	if err != nil || len(next.Msg.Invoice) != 0 {
		t.Fatalf("second page: %v %v", next, err)
	}
}
