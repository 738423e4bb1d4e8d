package connectrpc

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/app"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// TestBatchAddInvoiceMakesEachInvoiceInOrder: with the real application,
// a batch answers one distinct invoice per request, in request order, each
// one lnd decodes to the amount asked for.
func TestBatchAddInvoiceMakesEachInvoiceInOrder(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux, err := app.New(app.Config{IdentityKey: bytes.Repeat([]byte{7}, 32)}, nil, nil, app.SystemClock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(mux, log, WithoutTelemetry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL)

	const n = maxBatchInvoices
	req := &lnmuxpb.BatchAddInvoiceRequest{}
	for i := range n {
		req.Invoices = append(req.Invoices, &lnmuxpb.AddInvoiceRequest{AmtMsat: int64(1000 * (i + 1)), ExpirySecs: 600})
	}
	resp, err := client.BatchAddInvoice(t.Context(), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("BatchAddInvoice of %d invoices: %v", n, err)
	}
	got := resp.Msg.GetInvoices()
	if len(got) != n {
		t.Fatalf("got %d invoices, want %d", len(got), n)
	}
	seen := make(map[string]bool)
	for i, inv := range got {
		if seen[string(inv.GetHash())] {
			t.Fatalf("invoice %d repeats the hash of an earlier one", i)
		}
		seen[string(inv.GetHash())] = true
		dec, err := zpay32.Decode(inv.GetPaymentRequest(), &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatalf("invoice %d: lnd cannot decode %s: %v", i, inv.GetPaymentRequest(), err)
		}
		if want := int64(1000 * (i + 1)); dec.MilliSat == nil || int64(*dec.MilliSat) != want {
			t.Errorf("invoice %d: amount %v, want %d msat (request order)", i, dec.MilliSat, want)
		}
		if !bytes.Equal(dec.PaymentHash[:], inv.GetHash()) {
			t.Errorf("invoice %d: payment request's hash differs from the response's", i)
		}
	}
}
