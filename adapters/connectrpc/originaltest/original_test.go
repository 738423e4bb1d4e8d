package originaltest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/adapters/connectrpc"
	_ "github.com/lnmux/lnmux/adapters/connectrpc/originaltest/coexist"
	"github.com/lnmux/lnmux/adapters/connectrpc/originaltest/lnmuxrpc"
	"github.com/lnmux/lnmux/adapters/connectrpc/originaltest/lnmuxrpc/lnmuxrpcconnect"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// app is a stateful ports.Service with the lifecycle of the real one
// (accepted → settle requested → settled | failed, idempotent settle,
// cancel refused after a settle request, paging by sequence number); the
// test plays the payer and lnd through pay and finalize.
type app struct {
	mu       sync.Mutex
	open     map[domain.PaymentHash]domain.Msat
	accepted map[domain.PaymentHash]domain.SetID
	stored   map[domain.PaymentHash]*domain.Invoice
	final    map[domain.PaymentHash]chan struct{}
	preimage map[domain.PaymentHash]domain.Preimage
	subs     []chan ports.AcceptedEvent
	seq      uint64
	now      time.Time
}

var _ ports.Service = (*app)(nil)

var (
	lnmuxKey = domain.NodeKey{0x02, 0x11, 0x22}
	nodeKey  = domain.NodeKey{0x03, 0x33, 0x44}
)

func newApp() *app {
	return &app{
		open:     make(map[domain.PaymentHash]domain.Msat),
		accepted: make(map[domain.PaymentHash]domain.SetID),
		stored:   make(map[domain.PaymentHash]*domain.Invoice),
		final:    make(map[domain.PaymentHash]chan struct{}),
		preimage: make(map[domain.PaymentHash]domain.Preimage),
		now:      time.Unix(1_700_000_000, 0),
	}
}

func (a *app) Info(context.Context) ports.Info {
	return ports.Info{
		PubKey: lnmuxKey, Network: "regtest", AutoSettle: false,
		Nodes: []ports.NodeStatus{{Node: nodeKey, Connected: true, InterceptorActive: true, Height: 500}},
	}
}

func (a *app) AddInvoice(_ context.Context, req ports.AddInvoiceRequest) (ports.AddInvoiceResult, error) {
	var p domain.Preimage
	_, _ = rand.Read(p[:])
	a.mu.Lock()
	defer a.mu.Unlock()
	a.open[p.Hash()] = req.Amount
	a.preimage[p.Hash()] = p
	return ports.AddInvoiceResult{
		PaymentRequest: "lnbcrt1fake", Hash: p.Hash(), Preimage: p, ExpiresAt: a.now.Add(req.Expiry),
	}, nil
}

// pay completes an HTLC set for the invoice and announces it.
func (a *app) pay(h domain.PaymentHash) domain.SetID {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := domain.SetID(sha256.Sum256(append([]byte("set"), h[:]...)))
	a.accepted[h] = id
	for _, s := range a.subs {
		s <- ports.AcceptedEvent{Hash: h, SetID: id, Amount: a.open[h]}
	}
	return id
}

func (a *app) SubscribeAccepted(ctx context.Context, send func(ports.AcceptedEvent) error) error {
	ch := make(chan ports.AcceptedEvent, 16)
	a.mu.Lock()
	for h, id := range a.accepted {
		ch <- ports.AcceptedEvent{Hash: h, SetID: id}
	}
	a.subs = append(a.subs, ch)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.subs = slices.DeleteFunc(a.subs, func(c chan ports.AcceptedEvent) bool { return c == ch })
		a.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-ch:
			if err := send(ev); err != nil {
				return err
			}
		}
	}
}

func (a *app) SubscribeInvoice(ctx context.Context, _ domain.PaymentHash, _ func(ports.InvoiceUpdate) error) error {
	<-ctx.Done()
	return ctx.Err()
}

func (a *app) SettleInvoiceWithPreimage(ctx context.Context, h domain.PaymentHash, id domain.SetID, _ domain.Preimage) error {
	return a.SettleInvoice(ctx, h, id)
}

func (a *app) SettleInvoice(_ context.Context, h domain.PaymentHash, id domain.SetID) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if inv, ok := a.stored[h]; ok {
		if inv.SetID != id {
			return domain.ErrSetNotFound
		}
		return nil
	}
	if a.accepted[h] != id {
		return domain.ErrSetNotFound
	}
	delete(a.accepted, h)
	a.seq++
	a.stored[h] = &domain.Invoice{
		Hash: h, Preimage: a.preimage[h], Amount: a.open[h], AmountPaid: a.open[h], SetID: id,
		Status: domain.StatusSettleRequested, SettleRequestedAt: a.now, Sequence: a.seq,
	}
	a.final[h] = make(chan struct{})
	return nil
}

// finalize records lnd's final word on a settle-requested invoice.
func (a *app) finalize(h domain.PaymentHash, st domain.InvoiceStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	inv := a.stored[h]
	inv.Status, inv.FinalizedAt = st, a.now.Add(time.Minute)
	close(a.final[h])
}

func (a *app) CancelInvoice(_ context.Context, h domain.PaymentHash, id domain.SetID) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.stored[h]; ok {
		return domain.ErrSettleRequested
	}
	if a.accepted[h] != id {
		return domain.ErrSetNotFound
	}
	delete(a.accepted, h)
	return nil
}

// CancelInvoicePermanently is not part of the original API; the original
// client cannot reach it.
func (a *app) CancelInvoicePermanently(context.Context, domain.PaymentHash) error {
	return errors.New("not part of the original API")
}

func (a *app) WaitForFinalStatus(ctx context.Context, h domain.PaymentHash) (domain.InvoiceStatus, error) {
	a.mu.Lock()
	done, ok := a.final[h]
	a.mu.Unlock()
	if !ok {
		return 0, domain.ErrInvoiceNotFound
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-done:
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stored[h].Status, nil
}

func (a *app) ListInvoices(_ context.Context, from uint64, limit int) ([]domain.Invoice, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []domain.Invoice
	for _, inv := range a.stored {
		if inv.Sequence >= from {
			out = append(out, *inv)
		}
	}
	slices.SortFunc(out, func(x, y domain.Invoice) int { return int(x.Sequence) - int(y.Sequence) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// LookupInvoice and SubscribeInvoiceEvents are not in the original API.
func (a *app) LookupInvoice(context.Context, domain.PaymentHash) (ports.InvoiceLookup, error) {
	return ports.InvoiceLookup{}, errors.New("not in the original API")
}

func (a *app) SubscribeInvoiceEvents(context.Context, uint64, func(ports.InvoiceEvent) error) error {
	return errors.New("not in the original API")
}

func h2c(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestOriginalClient runs every RPC of the original API, through a client
// generated from the original lnmux.proto, over each protocol the port
// speaks.
func TestOriginalClient(t *testing.T) {
	t.Parallel()
	protocols := []struct {
		name   string
		client func(*testing.T, *httptest.Server) lnmuxrpcconnect.ServiceClient
	}{
		{"connect-proto", func(t *testing.T, s *httptest.Server) lnmuxrpcconnect.ServiceClient {
			return lnmuxrpcconnect.NewServiceClient(s.Client(), s.URL)
		}},
		{"connect-json", func(t *testing.T, s *httptest.Server) lnmuxrpcconnect.ServiceClient {
			return lnmuxrpcconnect.NewServiceClient(s.Client(), s.URL, connect.WithProtoJSON())
		}},
		{"grpc", func(t *testing.T, s *httptest.Server) lnmuxrpcconnect.ServiceClient {
			return lnmuxrpcconnect.NewServiceClient(h2c(t), s.URL, connect.WithGRPC())
		}},
		{"grpc-web", func(t *testing.T, s *httptest.Server) lnmuxrpcconnect.ServiceClient {
			return lnmuxrpcconnect.NewServiceClient(s.Client(), s.URL, connect.WithGRPCWeb())
		}},
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			a := newApp()
			h, err := connectrpc.NewHandler(a, slog.New(slog.DiscardHandler), connectrpc.WithoutTelemetry())
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(h)
			srv.Config = connectrpc.NewHTTPServer("", h)
			srv.Start()
			t.Cleanup(srv.Close)
			runOriginalRPCs(t, a, p.client(t, srv))
		})
	}
}

func runOriginalRPCs(t *testing.T, a *app, c lnmuxrpcconnect.ServiceClient) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	info, err := c.GetInfo(ctx, connect.NewRequest(&lnmuxrpc.GetInfoRequest{}))
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if !bytes.Equal(info.Msg.GetPubKey(), lnmuxKey[:]) || info.Msg.GetNetwork() != "regtest" ||
		len(info.Msg.GetNodes()) != 1 || !bytes.Equal(info.Msg.GetNodes()[0].GetPubKey(), nodeKey[:]) || info.Msg.GetAutoSettle() {
		t.Fatalf("GetInfo = %v", info.Msg)
	}

	// Four invoices: three will be settle-requested, one cancelled.
	var invs []*lnmuxrpc.AddInvoiceResponse
	for i := range 4 {
		res, err := c.AddInvoice(ctx, connect.NewRequest(&lnmuxrpc.AddInvoiceRequest{
			AmtMsat: int64(1000 * (i + 1)), Description: "coffee", ExpirySecs: 600,
		}))
		if err != nil {
			t.Fatalf("AddInvoice: %v", err)
		}
		if h := sha256.Sum256(res.Msg.GetPreimage()); !bytes.Equal(h[:], res.Msg.GetHash()) || res.Msg.GetPaymentRequest() == "" {
			t.Fatalf("AddInvoice = %v", res.Msg)
		}
		invs = append(invs, res.Msg)
	}
	hashOf := func(i int) domain.PaymentHash { return domain.PaymentHash(invs[i].GetHash()) }

	// The call returns with the first event's headers, and the server sends
	// nothing before an invoice is accepted: receive in the background.
	events := make(chan *lnmuxrpc.SubscribeInvoiceAcceptedResponse, len(invs))
	streamErr := make(chan error, 1)
	go func() {
		stream, err := c.SubscribeInvoiceAccepted(ctx, connect.NewRequest(&lnmuxrpc.SubscribeInvoiceAcceptedRequest{}))
		if err != nil {
			streamErr <- err
			return
		}
		defer func() { _ = stream.Close() }()
		for stream.Receive() {
			events <- stream.Msg()
		}
		streamErr <- stream.Err()
	}()
	waitSubscribed(t, a)
	sets := make(map[domain.PaymentHash][]byte)
	for i := range invs {
		want := a.pay(hashOf(i))
		var ev *lnmuxrpc.SubscribeInvoiceAcceptedResponse
		select {
		case ev = <-events:
		case err := <-streamErr:
			t.Fatalf("SubscribeInvoiceAccepted ended: %v", err)
		}
		if !bytes.Equal(ev.GetHash(), invs[i].GetHash()) || !bytes.Equal(ev.GetSetId(), want[:]) {
			t.Fatalf("accepted %d = %v", i, ev)
		}
		sets[hashOf(i)] = ev.GetSetId()
	}

	settle := func(i int) error {
		_, err := c.SettleInvoice(ctx, connect.NewRequest(&lnmuxrpc.SettleInvoiceRequest{Hash: invs[i].GetHash(), SetId: sets[hashOf(i)]}))
		return err
	}
	cancelInv := func(i int) error {
		_, err := c.CancelInvoice(ctx, connect.NewRequest(&lnmuxrpc.CancelInvoiceRequest{Hash: invs[i].GetHash(), SetId: sets[hashOf(i)]}))
		return err
	}
	for _, i := range []int{0, 1, 2, 0} { // the second settle of 0 is idempotent
		if err := settle(i); err != nil {
			t.Fatalf("SettleInvoice %d: %v", i, err)
		}
	}
	if err := cancelInv(3); err != nil {
		t.Fatalf("CancelInvoice: %v", err)
	}
	if err := cancelInv(0); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("CancelInvoice after settle: %v, want FailedPrecondition", err)
	}
	if _, err := c.WaitForInvoiceFinalStatus(ctx, connect.NewRequest(&lnmuxrpc.WaitForInvoiceFinalStatusRequest{Hash: invs[3].GetHash()})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("WaitForInvoiceFinalStatus of a cancelled invoice: %v, want NotFound", err)
	}

	// WaitForInvoiceFinalStatus blocks until lnd's final word.
	for i, st := range map[int]domain.InvoiceStatus{0: domain.StatusSettled, 1: domain.StatusFailed} {
		got := make(chan *lnmuxrpc.WaitForInvoiceFinalStatusResponse, 1)
		errc := make(chan error, 1)
		go func() {
			res, err := c.WaitForInvoiceFinalStatus(ctx, connect.NewRequest(&lnmuxrpc.WaitForInvoiceFinalStatusRequest{Hash: invs[i].GetHash()}))
			if err != nil {
				errc <- err
				return
			}
			got <- res.Msg
		}()
		a.finalize(hashOf(i), st)
		want := map[domain.InvoiceStatus]lnmuxrpc.InvoiceStatus{domain.StatusSettled: lnmuxrpc.InvoiceStatus_SETTLED, domain.StatusFailed: lnmuxrpc.InvoiceStatus_FAILED}[st]
		select {
		case err := <-errc:
			t.Fatalf("WaitForInvoiceFinalStatus %d: %v", i, err)
		case res := <-got:
			if res.GetInvoiceStatus() != want {
				t.Fatalf("WaitForInvoiceFinalStatus %d = %v, want %v", i, res.GetInvoiceStatus(), want)
			}
		}
	}

	// ListInvoices pages with the original's field numbers: two, then one.
	page, err := c.ListInvoices(ctx, connect.NewRequest(&lnmuxrpc.ListInvoicesRequest{MaxInvoicesCount: 2, SequenceStart: 0}))
	if err != nil {
		t.Fatalf("ListInvoices: %v", err)
	}
	if got := page.Msg.GetInvoice(); len(got) != 2 || page.Msg.GetFirstSequenceNumber() != 1 || page.Msg.GetLastSequenceNumber() != 2 {
		t.Fatalf("first page = %v", page.Msg)
	}
	next, err := c.ListInvoices(ctx, connect.NewRequest(&lnmuxrpc.ListInvoicesRequest{MaxInvoicesCount: 2, SequenceStart: page.Msg.GetLastSequenceNumber() + 1}))
	if err != nil {
		t.Fatalf("ListInvoices: %v", err)
	}
	if len(next.Msg.GetInvoice()) != 1 || next.Msg.GetFirstSequenceNumber() != 3 || next.Msg.GetLastSequenceNumber() != 3 {
		t.Fatalf("second page = %v", next.Msg)
	}
	all := append(page.Msg.GetInvoice(), next.Msg.GetInvoice()...)
	wantStatus := []lnmuxrpc.InvoiceStatus{lnmuxrpc.InvoiceStatus_SETTLED, lnmuxrpc.InvoiceStatus_FAILED, lnmuxrpc.InvoiceStatus_SETTLE_REQUESTED}
	for i, inv := range all {
		if !bytes.Equal(inv.GetHash(), invs[i].GetHash()) || !bytes.Equal(inv.GetPreimage(), invs[i].GetPreimage()) ||
			inv.GetAmountMsat() != uint64(1000*(i+1)) || inv.GetStatus() != wantStatus[i] ||
			inv.GetSettleRequestedAt() != uint64(a.now.Unix()) || inv.GetSequenceNumber() != uint64(i+1) {
			t.Errorf("invoice %d = %v", i, inv)
		}
		if final := inv.GetFinalizedAt(); (i < 2) != (final == uint64(a.now.Add(time.Minute).Unix())) || (i == 2 && final != 0) {
			t.Errorf("invoice %d finalized_at = %d", i, final)
		}
	}
	// Errors keep their codes for an original client too.
	if err := settle(3); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("SettleInvoice of a cancelled set: %v, want NotFound", err)
	}
	var cerr *connect.Error
	if _, err := c.SettleInvoice(ctx, connect.NewRequest(&lnmuxrpc.SettleInvoiceRequest{Hash: []byte{1}})); !errors.As(err, &cerr) || cerr.Code() != connect.CodeInvalidArgument {
		t.Fatalf("SettleInvoice with a short hash: %v, want InvalidArgument", err)
	}
}

func waitSubscribed(t *testing.T, a *app) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		a.mu.Lock()
		n := len(a.subs)
		a.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("SubscribeInvoiceAccepted never reached the service")
}
