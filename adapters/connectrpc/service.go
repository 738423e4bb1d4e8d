package connectrpc

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// service implements the generated handler interface over ports.Service:
// validate and convert the request, call the port, convert the result, map
// the error.
type service struct {
	svc ports.Service
	log *slog.Logger
	// draining is done once the Handler drains.
	draining context.Context
}

var _ lnmuxpbconnect.ServiceHandler = (*service)(nil)

// untilDrained derives the context of a long-lived call, cancelled when the
// handler drains. Once draining, it refuses the call.
func (s *service) untilDrained(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.draining.Err() != nil {
		return nil, nil, connect.NewError(connect.CodeUnavailable, errDraining)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.draining, cancel)
	return ctx, func() { stop(); cancel() }, nil
}

// GetInfo implements lnmuxpbconnect.ServiceHandler.
func (s *service) GetInfo(ctx context.Context, _ *connect.Request[lnmuxpb.GetInfoRequest]) (*connect.Response[lnmuxpb.GetInfoResponse], error) {
	resp := infoToProto(s.svc.Info(ctx))
	if !seesNodeErrors(ctx) {
		for _, n := range resp.GetNodes() {
			if n.LastError != "" {
				n.LastError = genericNodeError
			}
		}
	}
	return connect.NewResponse(resp), nil
}

// AddInvoice implements lnmuxpbconnect.ServiceHandler.
func (s *service) AddInvoice(ctx context.Context, req *connect.Request[lnmuxpb.AddInvoiceRequest]) (*connect.Response[lnmuxpb.AddInvoiceResponse], error) {
	in, err := addInvoiceRequestFromProto(req.Msg)
	if err != nil {
		return nil, err
	}
	res, err := s.svc.AddInvoice(ctx, in)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	resp := addInvoiceResultToProto(res)
	if !seesPreimages(ctx) {
		resp.Preimage = nil
	}
	return connect.NewResponse(resp), nil
}

// SubscribeInvoiceAccepted implements lnmuxpbconnect.ServiceHandler.
func (s *service) SubscribeInvoiceAccepted(ctx context.Context, req *connect.Request[lnmuxpb.SubscribeInvoiceAcceptedRequest], stream *connect.ServerStream[lnmuxpb.SubscribeInvoiceAcceptedResponse]) error {
	ctx, done, err := s.untilDrained(ctx)
	if err != nil {
		return err
	}
	defer done()
	err = s.svc.SubscribeAccepted(ctx, func(ev ports.AcceptedEvent) error {
		return stream.Send(acceptedToProto(ev))
	})
	return s.toConnect(ctx, req.Spec().Procedure, err)
}

// WaitForInvoiceFinalStatus implements lnmuxpbconnect.ServiceHandler.
func (s *service) WaitForInvoiceFinalStatus(ctx context.Context, req *connect.Request[lnmuxpb.WaitForInvoiceFinalStatusRequest]) (*connect.Response[lnmuxpb.WaitForInvoiceFinalStatusResponse], error) {
	hash, err := paymentHashFromProto(req.Msg.GetHash())
	if err != nil {
		return nil, err
	}
	ctx, done, err := s.untilDrained(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	st, err := s.svc.WaitForFinalStatus(ctx, hash)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	pb, err := finalStatusToProto(st)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&lnmuxpb.WaitForInvoiceFinalStatusResponse{InvoiceStatus: pb}), nil
}

// SettleInvoice implements lnmuxpbconnect.ServiceHandler.
func (s *service) SettleInvoice(ctx context.Context, req *connect.Request[lnmuxpb.SettleInvoiceRequest]) (*connect.Response[lnmuxpb.SettleInvoiceResponse], error) {
	hash, setID, err := hashAndSetIDFromProto(req.Msg.GetHash(), req.Msg.GetSetId())
	if err != nil {
		return nil, err
	}
	preimage, err := preimageFromProto(req.Msg.GetPreimage())
	if err != nil {
		return nil, err
	}
	if preimage == (domain.Preimage{}) {
		err = s.svc.SettleInvoice(ctx, hash, setID)
	} else {
		err = s.svc.SettleInvoiceWithPreimage(ctx, hash, setID, preimage)
	}
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&lnmuxpb.SettleInvoiceResponse{}), nil
}

// CancelInvoice implements lnmuxpbconnect.ServiceHandler. With permanent
// the set id may be left out (if given it must be well formed, and is not
// otherwise used): every set of the hash is failed.
func (s *service) CancelInvoice(ctx context.Context, req *connect.Request[lnmuxpb.CancelInvoiceRequest]) (*connect.Response[lnmuxpb.CancelInvoiceResponse], error) {
	if req.Msg.GetPermanent() {
		hash, err := paymentHashFromProto(req.Msg.GetHash())
		if err != nil {
			return nil, err
		}
		if len(req.Msg.GetSetId()) > 0 {
			if _, err := setIDFromProto(req.Msg.GetSetId()); err != nil {
				return nil, err
			}
		}
		if err := s.svc.CancelInvoicePermanently(ctx, hash); err != nil {
			return nil, s.toConnect(ctx, req.Spec().Procedure, err)
		}
		return connect.NewResponse(&lnmuxpb.CancelInvoiceResponse{}), nil
	}
	hash, setID, err := hashAndSetIDFromProto(req.Msg.GetHash(), req.Msg.GetSetId())
	if err != nil {
		return nil, err
	}
	if err := s.svc.CancelInvoice(ctx, hash, setID); err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&lnmuxpb.CancelInvoiceResponse{}), nil
}

// ListInvoices implements lnmuxpbconnect.ServiceHandler.
func (s *service) ListInvoices(ctx context.Context, req *connect.Request[lnmuxpb.ListInvoicesRequest]) (*connect.Response[lnmuxpb.ListInvoicesResponse], error) {
	limit, err := listLimitFromProto(req.Msg.GetMaxInvoicesCount())
	if err != nil {
		return nil, err
	}
	invs, err := s.svc.ListInvoices(ctx, req.Msg.GetSequenceStart(), limit)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	resp, err := invoicesToProto(invs)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	if !seesPreimages(ctx) {
		for _, inv := range resp.GetInvoice() {
			inv.Preimage = nil
		}
	}
	return connect.NewResponse(resp), nil
}

// SubscribeSingleInvoice implements lnmuxpbconnect.ServiceHandler.
func (s *service) SubscribeSingleInvoice(ctx context.Context, req *connect.Request[lnmuxpb.SubscribeSingleInvoiceRequest], stream *connect.ServerStream[lnmuxpb.SubscribeSingleInvoiceResponse]) error {
	hash, err := paymentHashFromProto(req.Msg.GetHash())
	if err != nil {
		return err
	}
	ctx, done, err := s.untilDrained(ctx)
	if err != nil {
		return err
	}
	defer done()
	err = s.svc.SubscribeInvoice(ctx, hash, func(u ports.InvoiceUpdate) error {
		pb, ok, err := invoiceUpdateToProto(u)
		if err != nil || !ok {
			return err
		}
		return stream.Send(pb)
	})
	return s.toConnect(ctx, req.Spec().Procedure, err)
}
