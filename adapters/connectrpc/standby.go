package connectrpc

import (
	"context"
	"errors"
	"sync"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Role tells whether this instance leads: holds the leader lock and
// intercepts (docs/high-availability.md). Leader names the instance that
// leads as far as this one knows ("" if not known).
type Role interface {
	Leading() bool
	Leader() string
}

// errStandby is what a standby answers to a call only the leader can serve.
var errStandby = errors.New("this lnmuxd is a standby: only the leader settles, cancels, lists and streams invoices")

// LeaderOnly wraps svc for an instance that may be a standby. Info and
// AddInvoice are served whatever the role: AddInvoice needs neither the
// database nor a node, and any instance with the same identity key creates
// invoices the leader settles. Every other call fails with Unavailable
// while role does not lead, with a message that names the leader if known,
// so that a client (or a load balancer) retries at the leader. Wait waits
// for the leader-only calls in flight.
func LeaderOnly(svc ports.Service, role Role) *Guard {
	return &Guard{svc: svc, role: role}
}

// Guard is the ports.Service LeaderOnly returns.
type Guard struct {
	svc  ports.Service
	role Role

	mu       sync.Mutex
	inFlight int
	idle     []chan struct{} // closed when inFlight drops to 0
}

var _ ports.Service = (*Guard)(nil)

// enter admits a leader-only write (SettleInvoice, CancelInvoice,
// CancelInvoicePermanently); the
// caller must call the returned func when done. The call is counted before
// the role is checked, so that a hand-over that stops leading and then
// waits (Wait) sees every write it let in.
func (g *Guard) enter() (func(), error) {
	g.mu.Lock()
	g.inFlight++
	g.mu.Unlock()
	if err := g.check(); err != nil {
		g.leave()
		return nil, err
	}
	return sync.OnceFunc(g.leave), nil
}

// check admits a leader-only read or stream, which a hand-over need not
// wait for (the server's drain ends the streams).
func (g *Guard) check() error {
	if g.role.Leading() {
		return nil
	}
	msg := errStandby.Error()
	if l := g.role.Leader(); l != "" {
		msg += "; the leader is " + l
	}
	return connect.NewError(connect.CodeUnavailable, errors.New(msg))
}

// Wait blocks until the leader-only writes in flight (SettleInvoice,
// CancelInvoice, CancelInvoicePermanently) have returned, or ctx is done.
func (g *Guard) Wait(ctx context.Context) error {
	g.mu.Lock()
	if g.inFlight == 0 {
		g.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	g.idle = append(g.idle, done)
	g.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Guard) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight--; g.inFlight == 0 {
		for _, c := range g.idle {
			close(c)
		}
		g.idle = nil
	}
}

// Info implements ports.Service on any instance.
func (g *Guard) Info(ctx context.Context) ports.Info { return g.svc.Info(ctx) }

// AddInvoice implements ports.Service on any instance.
func (g *Guard) AddInvoice(ctx context.Context, req ports.AddInvoiceRequest) (ports.AddInvoiceResult, error) {
	return g.svc.AddInvoice(ctx, req)
}

// SubscribeAccepted implements ports.Service on the leader.
func (g *Guard) SubscribeAccepted(ctx context.Context, send func(ports.AcceptedEvent) error) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.svc.SubscribeAccepted(ctx, send)
}

// SubscribeInvoice implements ports.Service on the leader.
func (g *Guard) SubscribeInvoice(ctx context.Context, hash domain.PaymentHash, send func(ports.InvoiceUpdate) error) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.svc.SubscribeInvoice(ctx, hash, send)
}

// WaitForFinalStatus implements ports.Service on the leader.
func (g *Guard) WaitForFinalStatus(ctx context.Context, hash domain.PaymentHash) (domain.InvoiceStatus, error) {
	if err := g.check(); err != nil {
		return 0, err
	}
	return g.svc.WaitForFinalStatus(ctx, hash)
}

// SettleInvoice implements ports.Service on the leader.
func (g *Guard) SettleInvoice(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	done, err := g.enter()
	if err != nil {
		return err
	}
	defer done()
	return g.svc.SettleInvoice(ctx, hash, setID)
}

// SettleInvoiceWithPreimage implements ports.Service on the leader.
func (g *Guard) SettleInvoiceWithPreimage(ctx context.Context, hash domain.PaymentHash, setID domain.SetID, preimage domain.Preimage) error {
	done, err := g.enter()
	if err != nil {
		return err
	}
	defer done()
	return g.svc.SettleInvoiceWithPreimage(ctx, hash, setID, preimage)
}

// CancelInvoice implements ports.Service on the leader.
func (g *Guard) CancelInvoice(ctx context.Context, hash domain.PaymentHash, setID domain.SetID) error {
	done, err := g.enter()
	if err != nil {
		return err
	}
	defer done()
	return g.svc.CancelInvoice(ctx, hash, setID)
}

// CancelInvoicePermanently implements ports.Service on the leader.
func (g *Guard) CancelInvoicePermanently(ctx context.Context, hash domain.PaymentHash) error {
	done, err := g.enter()
	if err != nil {
		return err
	}
	defer done()
	return g.svc.CancelInvoicePermanently(ctx, hash)
}

// ListInvoices implements ports.Service on the leader.
func (g *Guard) ListInvoices(ctx context.Context, from uint64, limit int) ([]domain.Invoice, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	return g.svc.ListInvoices(ctx, from, limit)
}

// LookupInvoice implements ports.Service on the leader: a standby's memory
// holds no set.
func (g *Guard) LookupInvoice(ctx context.Context, hash domain.PaymentHash) (ports.InvoiceLookup, error) {
	if err := g.check(); err != nil {
		return ports.InvoiceLookup{}, err
	}
	return g.svc.LookupInvoice(ctx, hash)
}

// SubscribeInvoiceEvents implements ports.Service on the leader.
func (g *Guard) SubscribeInvoiceEvents(ctx context.Context, after uint64, send func(ports.InvoiceEvent) error) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.svc.SubscribeInvoiceEvents(ctx, after, send)
}
