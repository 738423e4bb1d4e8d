package connectrpc

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// fakeRole is a Role the test flips.
type fakeRole struct {
	leading atomic.Bool
	leader  string
}

func (r *fakeRole) Leading() bool  { return r.leading.Load() }
func (r *fakeRole) Leader() string { return r.leader }

func TestStandbyServesInvoicesAndInfo(t *testing.T) {
	svc := &fakeService{}
	g := LeaderOnly(svc, &fakeRole{leader: "pod-a"})
	if _, err := g.AddInvoice(t.Context(), ports.AddInvoiceRequest{}); err != nil {
		t.Errorf("AddInvoice on a standby: got %v, want it served", err)
	}
	g.Info(t.Context())
	if got := strings.Join(svc.Calls(), ","); got != "AddInvoice,Info" {
		t.Errorf("calls reaching the service: %q, want %q", got, "AddInvoice,Info")
	}
}

func TestStandbyRefusesLeaderOnlyCalls(t *testing.T) {
	svc := &fakeService{}
	g := LeaderOnly(svc, &fakeRole{leader: "pod-a (host pid 7)"})
	ctx := t.Context()
	var h domain.PaymentHash
	var s domain.SetID
	calls := []struct {
		name string
		call func() error
	}{
		{name: "SettleInvoice", call: func() error { return g.SettleInvoice(ctx, h, s) }},
		{name: "CancelInvoice", call: func() error { return g.CancelInvoice(ctx, h, s) }},
		{name: "CancelInvoicePermanently", call: func() error { return g.CancelInvoicePermanently(ctx, h) }},
		{name: "ListInvoices", call: func() error { _, err := g.ListInvoices(ctx, 0, 10); return err }},
		{name: "WaitForFinalStatus", call: func() error { _, err := g.WaitForFinalStatus(ctx, h); return err }},
		{name: "SubscribeAccepted", call: func() error {
			return g.SubscribeAccepted(ctx, func(ports.AcceptedEvent) error { return nil })
		}},
		{name: "SubscribeInvoice", call: func() error {
			return g.SubscribeInvoice(ctx, h, func(ports.InvoiceUpdate) error { return nil })
		}},
	}
	for _, c := range calls {
		err := c.call()
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s on a standby: code %v (%v), want Unavailable", c.name, connect.CodeOf(err), err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "standby") || !strings.Contains(msg, "pod-a (host pid 7)") {
			t.Errorf("%s on a standby: message %q, want it to say standby and name the leader", c.name, msg)
		}
	}
	if calls := svc.Calls(); len(calls) != 0 {
		t.Errorf("calls reaching the service from a standby: %v, want none", calls)
	}
}

func TestLeaderServesEverything(t *testing.T) {
	svc := &fakeService{}
	r := &fakeRole{}
	r.leading.Store(true)
	g := LeaderOnly(svc, r)
	if err := g.SettleInvoice(t.Context(), domain.PaymentHash{}, domain.SetID{}); err != nil {
		t.Errorf("SettleInvoice on the leader: %v, want it served", err)
	}
	if _, err := g.ListInvoices(t.Context(), 0, 5); err != nil {
		t.Errorf("ListInvoices on the leader: %v, want it served", err)
	}
}

// blockingSettle holds SettleInvoice until release closes.
type blockingSettle struct {
	fakeService
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSettle) SettleInvoice(context.Context, domain.PaymentHash, domain.SetID) error {
	close(b.entered)
	<-b.release
	return nil
}

func TestWaitWaitsForWritesInFlight(t *testing.T) {
	svc := &blockingSettle{entered: make(chan struct{}), release: make(chan struct{})}
	r := &fakeRole{}
	r.leading.Store(true)
	g := LeaderOnly(svc, r)
	settled := make(chan error, 1)
	go func() { settled <- g.SettleInvoice(context.Background(), domain.PaymentHash{}, domain.SetID{}) }()
	<-svc.entered
	r.leading.Store(false) // the hand-over starts

	waited := make(chan error, 1)
	go func() { waited <- g.Wait(context.Background()) }()
	select {
	case err := <-waited:
		t.Fatalf("Wait returned (%v) while a SettleInvoice was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(svc.release)
	if err := <-settled; err != nil {
		t.Errorf("the SettleInvoice in flight: %v, want it to complete", err)
	}
	if err := <-waited; err != nil {
		t.Errorf("Wait after the write completed: %v, want nil", err)
	}
	if err := g.Wait(context.Background()); err != nil {
		t.Errorf("Wait with nothing in flight: %v, want nil", err)
	}
}
