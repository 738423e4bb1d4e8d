package connectrpc

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// maxBatchInvoices bounds BatchAddInvoice: 100 requests with the longest
// descriptions stay within maxRequestBytes, and one call holds a handler
// for about 100 signatures (a few milliseconds).
const maxBatchInvoices = 100

// batchAddInvoiceRequestFromProto checks every request of the batch with
// the same rule as AddInvoice, naming the bad one by its index.
func batchAddInvoiceRequestFromProto(req *lnmuxpb.BatchAddInvoiceRequest) ([]ports.AddInvoiceRequest, error) {
	in := req.GetInvoices()
	switch {
	case len(in) == 0:
		return nil, invalid("invoices", "must hold at least one invoice")
	case len(in) > maxBatchInvoices:
		return nil, invalid("invoices", "must hold at most %d invoices, got %d", maxBatchInvoices, len(in))
	}
	out := make([]ports.AddInvoiceRequest, len(in))
	for i, r := range in {
		var err error
		if out[i], err = addInvoiceRequestFromProto(r); err != nil {
			return nil, indexed(i, err)
		}
	}
	return out, nil
}

// indexed prefixes a field error of AddInvoice with the request's place in
// the batch: "invoices[3].amt_msat: ...".
func indexed(i int, err error) error {
	if cerr, ok := errors.AsType[*connect.Error](err); ok {
		if fe, ok := errors.AsType[*fieldError](cerr.Unwrap()); ok {
			return invalid(fmt.Sprintf("invoices[%d].%s", i, fe.field), "%s", fe.msg)
		}
	}
	return err
}

// BatchAddInvoice implements lnmuxpbconnect.ServiceHandler: AddInvoice for
// each request, all checked before the first is made.
func (s *service) BatchAddInvoice(ctx context.Context, req *connect.Request[lnmuxpb.BatchAddInvoiceRequest]) (*connect.Response[lnmuxpb.BatchAddInvoiceResponse], error) {
	in, err := batchAddInvoiceRequestFromProto(req.Msg)
	if err != nil {
		return nil, err
	}
	resp := &lnmuxpb.BatchAddInvoiceResponse{Invoices: make([]*lnmuxpb.AddInvoiceResponse, 0, len(in))}
	preimages := seesPreimages(ctx)
	for _, r := range in {
		res, err := s.svc.AddInvoice(ctx, r)
		if err != nil {
			return nil, s.toConnect(ctx, req.Spec().Procedure, err)
		}
		pb := addInvoiceResultToProto(res)
		if !preimages {
			pb.Preimage = nil
		}
		resp.Invoices = append(resp.Invoices, pb)
	}
	return connect.NewResponse(resp), nil
}
