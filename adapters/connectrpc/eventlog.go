package connectrpc

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// LookupInvoice and SubscribeInvoiceEvents (docs/api.md). Both read
// invoices: permission invoices:read (readonly, admin); a preimage only for
// a caller that may settle, as in ListInvoices.

// LookupInvoice implements lnmuxpbconnect.ServiceHandler.
func (s *service) LookupInvoice(ctx context.Context, req *connect.Request[lnmuxpb.LookupInvoiceRequest]) (*connect.Response[lnmuxpb.LookupInvoiceResponse], error) {
	hash, err := paymentHashFromProto(req.Msg.GetHash())
	if err != nil {
		return nil, err
	}
	l, err := s.svc.LookupInvoice(ctx, hash)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	resp, err := lookupToProto(l)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	if resp.GetInvoice() != nil && !seesPreimages(ctx) {
		resp.Invoice.Preimage = nil
	}
	return connect.NewResponse(resp), nil
}

// SubscribeInvoiceEvents implements lnmuxpbconnect.ServiceHandler. A
// subscriber that fell behind is ended with UNAVAILABLE and a message
// naming the cursor to resume from (the last stored event sent).
func (s *service) SubscribeInvoiceEvents(ctx context.Context, req *connect.Request[lnmuxpb.SubscribeInvoiceEventsRequest], stream *connect.ServerStream[lnmuxpb.SubscribeInvoiceEventsResponse]) error {
	ctx, done, err := s.untilDrained(ctx)
	if err != nil {
		return err
	}
	defer done()
	cursor := req.Msg.GetFromSequence()
	err = s.svc.SubscribeInvoiceEvents(ctx, cursor, func(ev ports.InvoiceEvent) error {
		pb, err := invoiceEventToProto(ev)
		if err != nil {
			return err
		}
		if err := stream.Send(pb); err != nil {
			return err
		}
		if ev.Cursor != 0 {
			cursor = ev.Cursor
		}
		return nil
	})
	if errors.Is(err, ports.ErrSubscriberLagged) {
		return connect.NewError(connect.CodeUnavailable,
			fmt.Errorf("subscriber fell behind and was dropped: subscribe again with from_sequence %d", cursor))
	}
	return s.toConnect(ctx, req.Spec().Procedure, err)
}

func lookupToProto(l ports.InvoiceLookup) (*lnmuxpb.LookupInvoiceResponse, error) {
	resp := &lnmuxpb.LookupInvoiceResponse{Hash: l.Hash[:]}
	switch l.State {
	case ports.LookupOpenOrUnknown:
		resp.State = lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_OPEN_OR_UNKNOWN
		return resp, nil
	case ports.LookupCollecting:
		resp.State = lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_COLLECTING
	case ports.LookupAccepted:
		resp.State = lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_ACCEPTED
	case ports.LookupSettling:
		resp.State = lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_SETTLING
	case ports.LookupStored:
		inv, err := invoiceToProto(l.Invoice)
		if err != nil {
			return nil, err
		}
		resp.State = lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_STORED
		resp.Invoice = inv
		resp.SetId = setIDToProto(l.Invoice.SetID)
		for _, h := range l.Invoice.HTLCs {
			st, err := htlcStatusToProto(h.Status)
			if err != nil {
				return nil, err
			}
			resp.Htlcs = append(resp.Htlcs, &lnmuxpb.StoredHtlc{
				NodePubKey: h.Circuit.Node[:], ChanId: h.Circuit.Chan, HtlcId: h.Circuit.HTLC,
				AmountMsat: int64(h.Amount), Status: st,
			})
		}
		return resp, nil
	default:
		return nil, fmt.Errorf("lookup of %s: state %s has no API representation", l.Hash, l.State)
	}
	resp.SetId = setIDToProto(l.SetID)
	resp.AmountMsat = int64(l.Amount)
	resp.TotalMsat = int64(l.Total)
	resp.HeldMsat = int64(l.Held)
	resp.Parts = uint32(min(l.Parts, int(^uint32(0)))) //nolint:gosec // bounded just before
	resp.AcceptDeadline = unix(l.AcceptDeadline)
	return resp, nil
}

func htlcStatusToProto(s domain.HTLCStatus) (lnmuxpb.StoredHtlc_HtlcStatus, error) {
	switch s {
	case domain.HTLCPending:
		return lnmuxpb.StoredHtlc_HTLC_STATUS_PENDING, nil
	case domain.HTLCSettled:
		return lnmuxpb.StoredHtlc_HTLC_STATUS_SETTLED, nil
	case domain.HTLCFailed:
		return lnmuxpb.StoredHtlc_HTLC_STATUS_FAILED, nil
	}
	return 0, fmt.Errorf("htlc status %s has no API representation", s)
}

func invoiceEventToProto(ev ports.InvoiceEvent) (*lnmuxpb.SubscribeInvoiceEventsResponse, error) {
	pb := &lnmuxpb.SubscribeInvoiceEventsResponse{
		Sequence:              ev.Cursor,
		Hash:                  ev.Hash[:],
		SetId:                 setIDToProto(ev.SetID),
		AmountMsat:            int64(ev.Amount),
		AmountPaidMsat:        int64(ev.AmountPaid),
		InvoiceSequenceNumber: ev.Sequence,
		At:                    unix(ev.At),
	}
	switch ev.Status { //nolint:exhaustive // the others are no event of the log: refused below
	case domain.StatusAccepted:
		pb.Type = lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_ACCEPTED
	case domain.StatusSettleRequested:
		pb.Type = lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_SETTLE_REQUESTED
	case domain.StatusSettled:
		pb.Type = lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_SETTLED
	case domain.StatusFailed:
		pb.Type = lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_FAILED
	case domain.StatusCancelled:
		// A permanent cancel: no invoice, so no amounts or sequence.
		pb.Type = lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_CANCELLED
	default:
		return nil, fmt.Errorf("event %d of invoice %s: status %s has no API representation", ev.Cursor, ev.Hash, ev.Status)
	}
	return pb, nil
}
