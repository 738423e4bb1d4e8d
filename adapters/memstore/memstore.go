// Package memstore is an in-memory ports.InvoiceStore and ports.Leader: the
// store of the app's tests and simulation. It runs the same contract suite
// as the SQL store (ports/storetest), so that what the app is tested against
// behaves as the real stores do. Nothing survives the process: lnmuxd never
// uses it.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Store is an in-memory ports.InvoiceStore. It is safe for concurrent use.
type Store struct {
	mu   sync.Mutex
	seq  uint64
	invs map[domain.PaymentHash]domain.Invoice
	// owner is the invoice each stored HTLC belongs to.
	owner map[domain.CircuitKey]domain.PaymentHash
	// rootKey is the macaroon root key id (rootkey.go).
	rootKey rootKey
	// events is the event log, in cursor order (eventlog.go); eventSeq
	// the last cursor drawn.
	events   []ports.InvoiceEvent
	eventSeq uint64
	// cancels are the recorded cancels (cancel.go).
	cancels map[cancelKey]domain.CancelRecord
}

var (
	_ ports.InvoiceStore    = (*Store)(nil)
	_ ports.InvoiceEventLog = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		invs:  make(map[domain.PaymentHash]domain.Invoice),
		owner: make(map[domain.CircuitKey]domain.PaymentHash),
	}
}

// Forget drops an invoice, its HTLCs and its events, as if it had never
// been stored. No real store can do that; it lets a memory measurement
// leave out what the "database" holds (the app's memory tests).
func (s *Store) Forget(h domain.PaymentHash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, htlc := range s.invs[h].HTLCs {
		delete(s.owner, htlc.Circuit)
	}
	delete(s.invs, h)
	s.forgetEvents(h)
}

// RequestSettle implements ports.InvoiceStore.
func (s *Store) RequestSettle(ctx context.Context, inv domain.Invoice) (domain.Invoice, error) {
	if err := inv.CheckSettleRequest(); err != nil {
		return domain.Invoice{}, err
	}
	if err := ctx.Err(); err != nil {
		return domain.Invoice{}, fmt.Errorf("request settle: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.invs[inv.Hash]; ok {
		if cur.SetID != inv.SetID {
			return domain.Invoice{}, fmt.Errorf("%w: invoice %s is stored with set %s, not %s", domain.ErrConflict, inv.Hash, cur.SetID, inv.SetID)
		}
		return clone(cur), nil
	}
	if err := s.cancelledSettle(inv); err != nil {
		return domain.Invoice{}, err
	}
	for _, h := range inv.HTLCs {
		if _, taken := s.owner[h.Circuit]; taken {
			return domain.Invoice{}, fmt.Errorf("%w: an htlc of invoice %s is stored with another invoice", domain.ErrConflict, inv.Hash)
		}
	}
	s.seq++
	inv = normalise(inv)
	inv.Sequence = s.seq
	s.invs[inv.Hash] = inv
	for _, h := range inv.HTLCs {
		s.owner[h.Circuit] = inv.Hash
	}
	s.logEvent(inv)
	return clone(inv), nil
}

// Get implements ports.InvoiceStore.
func (s *Store) Get(ctx context.Context, h domain.PaymentHash) (domain.Invoice, error) {
	if err := ctx.Err(); err != nil {
		return domain.Invoice{}, fmt.Errorf("get invoice: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invs[h]
	if !ok {
		return domain.Invoice{}, notFound(h)
	}
	return clone(inv), nil
}

func notFound(h domain.PaymentHash) error { return fmt.Errorf("%w: %s", domain.ErrInvoiceNotFound, h) }

// Update implements ports.InvoiceStore. As in the SQL store only the
// statuses and FinalizedAt may change; fn's error is returned as is.
func (s *Store) Update(ctx context.Context, h domain.PaymentHash, fn func(*domain.Invoice) error) (domain.Invoice, error) {
	if err := ctx.Err(); err != nil {
		return domain.Invoice{}, fmt.Errorf("update invoice: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before, ok := s.invs[h]
	if !ok {
		return domain.Invoice{}, notFound(h)
	}
	after := clone(before)
	if err := fn(&after); err != nil {
		return domain.Invoice{}, err
	}
	after = normalise(after)
	if err := domain.CheckUpdate(before, after); err != nil {
		return domain.Invoice{}, err
	}
	s.invs[h] = after
	if after.Status != before.Status {
		s.logEvent(after)
	}
	return clone(after), nil
}

// ListPending implements ports.InvoiceStore.
func (s *Store) ListPending(ctx context.Context) ([]domain.Invoice, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list pending invoices: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Invoice
	for _, inv := range s.bySequence() {
		if inv.Status == domain.StatusSettleRequested {
			out = append(out, clone(inv))
		}
	}
	return out, nil
}

// ListUnexpired implements ports.InvoiceStore.
func (s *Store) ListUnexpired(ctx context.Context, t time.Time) ([]ports.StoredExpiry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list unexpired invoices: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ports.StoredExpiry
	for _, inv := range s.bySequence() {
		if inv.Expiry.After(t) {
			out = append(out, ports.StoredExpiry{Hash: inv.Hash, Expiry: inv.Expiry})
		}
	}
	return out, nil
}

// List implements ports.InvoiceStore. A negative limit is
// domain.ErrInvalidArgument.
func (s *Store) List(ctx context.Context, from uint64, limit int) ([]domain.Invoice, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", domain.ErrInvalidArgument, limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []domain.Invoice{}
	for _, inv := range s.bySequence() {
		if len(out) == limit {
			break
		}
		if inv.Sequence >= from && inv.Sequence <= math.MaxInt64 {
			out = append(out, clone(inv))
		}
	}
	return out, nil
}

// bySequence returns the stored invoices in sequence order. s.mu is held.
func (s *Store) bySequence() []domain.Invoice {
	out := make([]domain.Invoice, 0, len(s.invs))
	for _, inv := range s.invs {
		out = append(out, inv)
	}
	slices.SortFunc(out, func(a, b domain.Invoice) int { return cmp.Compare(a.Sequence, b.Sequence) })
	return out
}

// normalise gives an invoice the shape the SQL store gives it back: times
// in UTC to the microsecond (Postgres' precision), HTLCs in circuit order.
func normalise(inv domain.Invoice) domain.Invoice {
	inv = clone(inv)
	inv.Expiry = dbTime(inv.Expiry)
	inv.SettleRequestedAt = dbTime(inv.SettleRequestedAt)
	if !inv.FinalizedAt.IsZero() {
		inv.FinalizedAt = dbTime(inv.FinalizedAt)
	}
	slices.SortFunc(inv.HTLCs, func(a, b domain.SettledHTLC) int { return a.Circuit.Compare(b.Circuit) })
	return inv
}

func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func clone(inv domain.Invoice) domain.Invoice {
	inv.HTLCs = slices.Clone(inv.HTLCs)
	return inv
}
