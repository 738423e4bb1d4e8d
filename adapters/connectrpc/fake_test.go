package connectrpc

import (
	"context"
	"sync"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// fakeService is a hand-written ports.Service: it returns canned results,
// records its arguments and fails every call with err when err is set.
type fakeService struct {
	mu    sync.Mutex
	calls []string

	// err fails every call (streams after sending their events).
	err error
	// panicMsg, when set, makes Info panic.
	panicMsg string
	// block makes subscriptions and WaitForFinalStatus wait for ctx after
	// sending their events; they return ctx.Err().
	block bool

	info     ports.Info
	addRes   ports.AddInvoiceResult
	accepted []ports.AcceptedEvent
	updates  []ports.InvoiceUpdate
	final    domain.InvoiceStatus
	invoices []domain.Invoice
	lookup   ports.InvoiceLookup
	events   []ports.InvoiceEvent

	// Recorded arguments.
	addReq    ports.AddInvoiceRequest
	hash      domain.PaymentHash
	setID     domain.SetID
	preimage  domain.Preimage
	listFrom  uint64
	listLimit int
	after     uint64
}

var _ ports.Service = (*fakeService)(nil)

func (f *fakeService) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fakeService) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeService) wait(ctx context.Context, err error) error {
	if !f.block {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeService) Info(context.Context) ports.Info {
	_ = f.record("Info")
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	return f.info
}

func (f *fakeService) AddInvoice(_ context.Context, req ports.AddInvoiceRequest) (ports.AddInvoiceResult, error) {
	err := f.record("AddInvoice")
	f.mu.Lock()
	f.addReq = req
	f.mu.Unlock()
	if err != nil {
		return ports.AddInvoiceResult{}, err
	}
	return f.addRes, nil
}

func (f *fakeService) SubscribeAccepted(ctx context.Context, send func(ports.AcceptedEvent) error) error {
	err := f.record("SubscribeAccepted")
	for _, ev := range f.accepted {
		if err := send(ev); err != nil {
			return err
		}
	}
	return f.wait(ctx, err)
}

func (f *fakeService) SubscribeInvoice(ctx context.Context, hash domain.PaymentHash, send func(ports.InvoiceUpdate) error) error {
	err := f.record("SubscribeInvoice")
	f.mu.Lock()
	f.hash = hash
	f.mu.Unlock()
	for _, u := range f.updates {
		if err := send(u); err != nil {
			return err
		}
	}
	return f.wait(ctx, err)
}

func (f *fakeService) WaitForFinalStatus(ctx context.Context, hash domain.PaymentHash) (domain.InvoiceStatus, error) {
	err := f.record("WaitForFinalStatus")
	f.mu.Lock()
	f.hash = hash
	f.mu.Unlock()
	if err := f.wait(ctx, err); err != nil {
		return 0, err
	}
	return f.final, nil
}

func (f *fakeService) SettleInvoice(_ context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	err := f.record("SettleInvoice")
	f.mu.Lock()
	f.hash, f.setID = hash, setID
	f.mu.Unlock()
	return err
}

func (f *fakeService) SettleInvoiceWithPreimage(_ context.Context, hash domain.PaymentHash, setID domain.SetID, preimage domain.Preimage) error {
	err := f.record("SettleInvoiceWithPreimage")
	f.mu.Lock()
	f.hash, f.setID, f.preimage = hash, setID, preimage
	f.mu.Unlock()
	return err
}

func (f *fakeService) CancelInvoice(_ context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	err := f.record("CancelInvoice")
	f.mu.Lock()
	f.hash, f.setID = hash, setID
	f.mu.Unlock()
	return err
}

func (f *fakeService) CancelInvoicePermanently(_ context.Context, hash domain.PaymentHash) error {
	err := f.record("CancelInvoicePermanently")
	f.mu.Lock()
	f.hash, f.setID = hash, domain.SetID{}
	f.mu.Unlock()
	return err
}

func (f *fakeService) ListInvoices(_ context.Context, from uint64, limit int) ([]domain.Invoice, error) {
	err := f.record("ListInvoices")
	f.mu.Lock()
	f.listFrom, f.listLimit = from, limit
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.invoices, nil
}

func (f *fakeService) LookupInvoice(_ context.Context, hash domain.PaymentHash) (ports.InvoiceLookup, error) {
	err := f.record("LookupInvoice")
	f.mu.Lock()
	f.hash = hash
	f.mu.Unlock()
	if err != nil {
		return ports.InvoiceLookup{}, err
	}
	return f.lookup, nil
}

func (f *fakeService) SubscribeInvoiceEvents(ctx context.Context, after uint64, send func(ports.InvoiceEvent) error) error {
	err := f.record("SubscribeInvoiceEvents")
	f.mu.Lock()
	f.after = after
	f.mu.Unlock()
	for _, ev := range f.events {
		if err := send(ev); err != nil {
			return err
		}
	}
	return f.wait(ctx, err)
}
