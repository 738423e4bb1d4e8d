package connectrpc

import (
	"errors"
	"fmt"
	"math"
	"time"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// Request limits.
const (
	// maxExpiry bounds AddInvoice's expiry_secs (domain.NewInvoiceTerms
	// checks it).
	maxExpiry = domain.MaxInvoiceExpiry
	// maxDescriptionBytes is the longest description (checked by
	// domain.NewInvoiceTerms).
	maxDescriptionBytes = domain.MaxDescriptionLen
	// defaultListLimit is ListInvoices' page size when the request leaves
	// max_invoices_count at 0.
	defaultListLimit = 100
	// maxListLimit bounds ListInvoices' page size.
	maxListLimit = 1000
)

// hash32 parses a 32-byte request field.
func hash32(field string, b []byte) ([32]byte, error) {
	var h [32]byte
	if len(b) != len(h) {
		return h, invalid(field, "must be 32 bytes, got %d", len(b))
	}
	copy(h[:], b)
	return h, nil
}

func paymentHashFromProto(b []byte) (domain.PaymentHash, error) {
	h, err := hash32("hash", b)
	return domain.PaymentHash(h), err
}

func setIDFromProto(b []byte) (domain.SetID, error) {
	id, err := hash32("set_id", b)
	return domain.SetID(id), err
}

// hashAndSetIDFromProto parses the (hash, set_id) pair of SettleInvoice and
// CancelInvoice.
func hashAndSetIDFromProto(hash, setID []byte) (domain.PaymentHash, domain.SetID, error) {
	h, err := paymentHashFromProto(hash)
	if err != nil {
		return h, domain.SetID{}, err
	}
	id, err := setIDFromProto(setID)
	return h, id, err
}

// addInvoiceRequestFromProto validates an AddInvoice request with the
// domain's rule (domain.NewInvoiceTerms), reporting a bad field under its
// name in the API.
func addInvoiceRequestFromProto(req *lnmuxpb.AddInvoiceRequest) (ports.AddInvoiceRequest, error) {
	terms, err := domain.NewInvoiceTerms(domain.Msat(req.GetAmtMsat()), secondsToDuration(req.GetExpirySecs()),
		req.GetDescription(), req.GetDescriptionHash())
	if err != nil {
		return ports.AddInvoiceRequest{}, invalidTerms(err)
	}
	if terms, err = terms.WithAcceptTimeout(secondsToDuration(req.GetAcceptTimeoutSecs())); err != nil {
		return ports.AddInvoiceRequest{}, invalidTerms(err)
	}
	out := ports.AddInvoiceRequest{Amount: terms.Amount(), Expiry: terms.Expiry(), Description: terms.Description(),
		AcceptTimeout: terms.AcceptTimeout(), Blinded: req.GetBlinded()}
	if h, ok := terms.DescriptionHash(); ok {
		out.DescriptionHash = &h
	}
	if b := req.GetPaymentHash(); len(b) > 0 {
		h, err := hash32("payment_hash", b)
		if err != nil {
			return ports.AddInvoiceRequest{}, err
		}
		ph := domain.PaymentHash(h)
		out.PaymentHash = &ph
	}
	return out, nil
}

// preimageFromProto parses SettleInvoice's optional preimage: empty is
// the zero preimage (lnmux's own invoices). The error never echoes it.
func preimageFromProto(b []byte) (domain.Preimage, error) {
	if len(b) == 0 {
		return domain.Preimage{}, nil
	}
	p, err := hash32("preimage", b)
	return domain.Preimage(p), err
}

// addInvoiceFields names the domain's invoice terms as AddInvoiceRequest
// does.
var addInvoiceFields = map[string]string{
	domain.FieldAmount:          "amt_msat",
	domain.FieldExpiry:          "expiry_secs",
	domain.FieldDescription:     "description",
	domain.FieldDescriptionHash: "description_hash",
	domain.FieldAcceptTimeout:   "accept_timeout_secs",
}

// invalidTerms maps domain.NewInvoiceTerms' error onto INVALID_ARGUMENT
// naming the request field.
func invalidTerms(err error) error {
	if fe, ok := errors.AsType[*domain.FieldError](err); ok {
		if name, ok := addInvoiceFields[fe.Field]; ok {
			return invalid(name, "%s", fe.Reason)
		}
	}
	return connect.NewError(connect.CodeInvalidArgument, err)
}

// secondsToDuration converts expiry_secs, saturating instead of
// overflowing, so that a huge value is refused as too long rather than
// wrapped into a valid one.
func secondsToDuration(secs int64) time.Duration {
	const maxSecs = math.MaxInt64 / int64(time.Second)
	switch {
	case secs > maxSecs:
		return math.MaxInt64
	case secs < -maxSecs:
		return math.MinInt64
	}
	return time.Duration(secs) * time.Second
}

// listLimitFromProto validates ListInvoices' page size.
func listLimitFromProto(n int64) (int, error) {
	switch {
	case n == 0:
		return defaultListLimit, nil
	case n < 0 || n > maxListLimit:
		return 0, invalid("max_invoices_count", "must be between 1 and %d (0 means %d)", maxListLimit, defaultListLimit)
	}
	return int(n), nil
}

// unix converts a time to unix seconds, keeping the zero time as 0.
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// setIDToProto leaves a zero set id (no set) out.
func setIDToProto(id domain.SetID) []byte {
	if id == (domain.SetID{}) {
		return nil
	}
	return id[:]
}

func infoToProto(info ports.Info) *lnmuxpb.GetInfoResponse {
	resp := &lnmuxpb.GetInfoResponse{
		PubKey:     info.PubKey[:],
		Network:    info.Network,
		AutoSettle: info.AutoSettle,
		Nodes:      make([]*lnmuxpb.NodeInfo, 0, len(info.Nodes)),
	}
	for _, n := range info.Nodes {
		resp.Nodes = append(resp.Nodes, &lnmuxpb.NodeInfo{
			PubKey:            n.Node[:],
			Connected:         n.Connected,
			InterceptorActive: n.InterceptorActive,
			BlockHeight:       n.Height,
			LastError:         n.LastError,
			InboundMsat:       int64(n.Inbound),
			InboundKnown:      n.InboundKnown,
			HintStatus:        hintStatusToProto(n.Hint),
		})
	}
	return resp
}

func hintStatusToProto(h ports.HintStatus) lnmuxpb.NodeInfo_HintStatus {
	switch h {
	case ports.HintIncluded:
		return lnmuxpb.NodeInfo_HINT_STATUS_INCLUDED
	case ports.HintUnreachable:
		return lnmuxpb.NodeInfo_HINT_STATUS_UNREACHABLE
	case ports.HintNoInbound:
		return lnmuxpb.NodeInfo_HINT_STATUS_NO_INBOUND
	case ports.HintFallback:
		return lnmuxpb.NodeInfo_HINT_STATUS_FALLBACK
	case ports.HintUnspecified:
	}
	return lnmuxpb.NodeInfo_HINT_STATUS_UNSPECIFIED
}

func addInvoiceResultToProto(r ports.AddInvoiceResult) *lnmuxpb.AddInvoiceResponse {
	return &lnmuxpb.AddInvoiceResponse{
		PaymentRequest: r.PaymentRequest,
		Preimage:       preimageToProto(r.Preimage),
		Hash:           r.Hash[:],
		PaymentAddr:    r.PaymentAddr[:],
		ExpiresAt:      unix(r.ExpiresAt),
	}
}

// preimageToProto leaves out the zero preimage of an invoice with a
// caller-supplied hash.
func preimageToProto(p domain.Preimage) []byte {
	if p == (domain.Preimage{}) {
		return nil
	}
	return p[:]
}

func acceptedToProto(ev ports.AcceptedEvent) *lnmuxpb.SubscribeInvoiceAcceptedResponse {
	return &lnmuxpb.SubscribeInvoiceAcceptedResponse{
		Hash:  ev.Hash[:],
		SetId: ev.SetID[:],
	}
}

// finalStatusToProto converts WaitForFinalStatus' result, which must be
// final and stored.
func finalStatusToProto(s domain.InvoiceStatus) (lnmuxpb.InvoiceStatus, error) {
	if !s.IsFinal() || !s.IsStored() {
		return lnmuxpb.InvoiceStatus_UNKNOWN, fmt.Errorf("final status %s has no API representation", s)
	}
	return invoiceStatusToProto(s)
}

// invoiceStatusToProto maps a stored status to the original API's enum.
// UNKNOWN is never sent.
func invoiceStatusToProto(s domain.InvoiceStatus) (lnmuxpb.InvoiceStatus, error) {
	switch s { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case domain.StatusSettleRequested:
		return lnmuxpb.InvoiceStatus_SETTLE_REQUESTED, nil
	case domain.StatusSettled:
		return lnmuxpb.InvoiceStatus_SETTLED, nil
	case domain.StatusFailed:
		return lnmuxpb.InvoiceStatus_FAILED, nil
	}
	return lnmuxpb.InvoiceStatus_UNKNOWN, fmt.Errorf("stored invoice status %s has no API representation", s)
}

func invoiceToProto(inv domain.Invoice) (*lnmuxpb.Invoice, error) {
	st, err := invoiceStatusToProto(inv.Status)
	if err != nil {
		return nil, fmt.Errorf("invoice %s: %w", inv.Hash, err)
	}
	return &lnmuxpb.Invoice{
		Hash:              inv.Hash[:],
		Preimage:          inv.Preimage[:],
		AmountMsat:        int64(inv.Amount),
		Status:            st,
		SettleRequestedAt: unix(inv.SettleRequestedAt),
		FinalizedAt:       unix(inv.FinalizedAt),
		SequenceNumber:    inv.Sequence,
		SetId:             setIDToProto(inv.SetID),
		AmountPaidMsat:    int64(inv.AmountPaid),
	}, nil
}

func invoicesToProto(invs []domain.Invoice) (*lnmuxpb.ListInvoicesResponse, error) {
	resp := &lnmuxpb.ListInvoicesResponse{Invoice: make([]*lnmuxpb.Invoice, 0, len(invs))}
	for _, inv := range invs {
		pb, err := invoiceToProto(inv)
		if err != nil {
			return nil, err
		}
		resp.Invoice = append(resp.Invoice, pb)
	}
	if len(invs) > 0 {
		resp.FirstSequenceNumber = invs[0].Sequence
		resp.LastSequenceNumber = invs[len(invs)-1].Sequence
	}
	return resp, nil
}

// invoiceUpdateToProto converts a lifecycle step. It reports false for
// StatusOpen, which is no step the API knows: an open invoice exists nowhere.
func invoiceUpdateToProto(u ports.InvoiceUpdate) (*lnmuxpb.SubscribeSingleInvoiceResponse, bool, error) {
	var st lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState
	switch u.Status {
	case domain.StatusOpen:
		return nil, false, nil
	case domain.StatusAccepted:
		st = lnmuxpb.SubscribeSingleInvoiceResponse_STATE_ACCEPTED
	case domain.StatusSettleRequested:
		st = lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLE_REQUESTED
	case domain.StatusSettled:
		st = lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLED
	case domain.StatusFailed:
		st = lnmuxpb.SubscribeSingleInvoiceResponse_STATE_FAILED
	case domain.StatusCancelled:
		st = lnmuxpb.SubscribeSingleInvoiceResponse_STATE_CANCELLED
	case domain.StatusExpired:
		st = lnmuxpb.SubscribeSingleInvoiceResponse_STATE_EXPIRED
	default:
		return nil, false, fmt.Errorf("invoice %s: status %s has no API representation", u.Hash, u.Status)
	}
	return &lnmuxpb.SubscribeSingleInvoiceResponse{State: st, SetId: setIDToProto(u.SetID)}, true, nil
}
