package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// batchTarget calls BatchAddInvoice over raw gRPC with n copies of req; it
// counts n invoices per call.
func batchTarget(conns []*grpc.ClientConn, next *atomic.Uint64, mac string, req *lnmuxpb.AddInvoiceRequest, n int) (target, error) {
	if n > 100 {
		return target{}, fmt.Errorf("-batch %d: BatchAddInvoice takes at most 100 invoices", n)
	}
	batch := &lnmuxpb.BatchAddInvoiceRequest{}
	for range n {
		batch.Invoices = append(batch.Invoices, req)
	}
	call := func(ctx context.Context) error {
		conn := conns[next.Add(1)%uint64(len(conns))]
		ctx = metadata.AppendToOutgoingContext(ctx, "macaroon", mac)
		resp := new(lnmuxpb.BatchAddInvoiceResponse)
		if err := conn.Invoke(ctx, lnmuxpbconnect.ServiceBatchAddInvoiceProcedure, batch, resp); err != nil {
			return err
		}
		if len(resp.GetInvoices()) != n {
			return fmt.Errorf("BatchAddInvoice answered %d invoices for %d", len(resp.GetInvoices()), n)
		}
		return nil
	}
	return target{name: fmt.Sprintf("lnmuxd gRPC batch(%d)", n), per: n, call: call}, nil
}
