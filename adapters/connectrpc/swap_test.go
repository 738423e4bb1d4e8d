package connectrpc

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/lnmux/lnmux/domain"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// TestSwapFields maps the swap invoice's fields: AddInvoice's payment_hash
// and accept_timeout_secs reach the service, an invoice without a preimage
// answers none, SettleInvoice's preimage reaches the service (and only a
// settle with one goes to SettleInvoiceWithPreimage), and the domain's
// refusal of a wrong preimage is INVALID_ARGUMENT naming the field.
func TestSwapFields(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake()
			fake.addRes.Preimage = domain.Preimage{}
			srv := newTestServer(t, fake)
			call := tr.dial(t, srv)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			hash := domain.Preimage{5}.Hash()
			got, err := call(ctx, "AddInvoice", &lnmuxpb.AddInvoiceRequest{AmtMsat: 1000, ExpirySecs: 600,
				PaymentHash: hash[:], AcceptTimeoutSecs: 3600}, newResp[lnmuxpb.AddInvoiceResponse]())
			if err != nil {
				t.Fatal(err)
			}
			if res := got[0].(*lnmuxpb.AddInvoiceResponse); len(res.GetPreimage()) != 0 {
				t.Errorf("preimage %x, want none", res.GetPreimage())
			}
			if r := fake.addReq; r.PaymentHash == nil || *r.PaymentHash != hash || r.AcceptTimeout != time.Hour {
				t.Errorf("service got %+v", r)
			}

			// Without the new fields: as before.
			if _, err := call(ctx, "AddInvoice", &lnmuxpb.AddInvoiceRequest{AmtMsat: 1000, ExpirySecs: 600},
				newResp[lnmuxpb.AddInvoiceResponse]()); err != nil {
				t.Fatal(err)
			}
			if r := fake.addReq; r.PaymentHash != nil || r.AcceptTimeout != 0 {
				t.Errorf("service got %+v, want no hash and the default timeout", r)
			}

			pre := domain.Preimage{5}
			if _, err := call(ctx, "SettleInvoice", &lnmuxpb.SettleInvoiceRequest{Hash: hash[:], SetId: testSetID[:], Preimage: pre[:]},
				newResp[lnmuxpb.SettleInvoiceResponse]()); err != nil {
				t.Fatal(err)
			}
			fake.mu.Lock()
			gotPre, calls := fake.preimage, append([]string(nil), fake.calls...)
			fake.mu.Unlock()
			if gotPre != pre || calls[len(calls)-1] != "SettleInvoiceWithPreimage" {
				t.Errorf("calls %v, preimage %x", calls, gotPre)
			}

			fake.mu.Lock()
			fake.err = domain.CheckSettlePreimage(hash, true, domain.Preimage{6})
			fake.mu.Unlock()
			_, err = call(ctx, "SettleInvoice", &lnmuxpb.SettleInvoiceRequest{Hash: hash[:], SetId: testSetID[:], Preimage: make([]byte, 32)},
				func() proto.Message { return new(lnmuxpb.SettleInvoiceResponse) })
			code, msg := codeAndMessage(err)
			if code != connect.CodeInvalidArgument || !strings.HasPrefix(msg, "preimage: ") {
				t.Errorf("got %v %q, want invalid_argument preimage: …", code, msg)
			}
		})
	}
}
