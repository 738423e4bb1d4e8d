// Package memstore is an in-memory ports.InvoiceStore: the store of the
// app's tests and simulation. It runs the same contract suite as the SQL
// store (ports/storetest), so that what the app is tested against behaves as
// the real stores do. Nothing survives the process: lnmuxd never uses it.
package memstore

import (
	"context"
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
}

var _ ports.InvoiceStore = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{invs: make(map[domain.PaymentHash]domain.Invoice)} }

func cloneInvoice(inv domain.Invoice) domain.Invoice {
	inv.HTLCs = slices.Clone(inv.HTLCs)
	return inv
}

// RequestSettle implements ports.InvoiceStore.
func (s *Store) RequestSettle(_ context.Context, inv domain.Invoice) (domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.invs[inv.Hash]; ok {
		if cur.SetID != inv.SetID {
			return domain.Invoice{}, domain.ErrConflict
		}
		return cloneInvoice(cur), nil
	}
	s.seq++
	inv.Sequence = s.seq
	s.invs[inv.Hash] = cloneInvoice(inv)
	return cloneInvoice(inv), nil
}

// Get implements ports.InvoiceStore.
func (s *Store) Get(_ context.Context, h domain.PaymentHash) (domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invs[h]
	if !ok {
		return domain.Invoice{}, domain.ErrInvoiceNotFound
	}
	return cloneInvoice(inv), nil
}

// Update implements ports.InvoiceStore.
func (s *Store) Update(_ context.Context, h domain.PaymentHash, fn func(*domain.Invoice) error) (domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invs[h]
	if !ok {
		return domain.Invoice{}, domain.ErrInvoiceNotFound
	}
	inv = cloneInvoice(inv)
	if err := fn(&inv); err != nil {
		return domain.Invoice{}, err
	}
	s.invs[h] = cloneInvoice(inv)
	return inv, nil
}

// ListPending implements ports.InvoiceStore.
func (s *Store) ListPending(context.Context) ([]domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Invoice
	for _, inv := range s.invs {
		if inv.Status == domain.StatusSettleRequested {
			out = append(out, cloneInvoice(inv))
		}
	}
	return out, nil
}

// ListUnexpired implements ports.InvoiceStore.
func (s *Store) ListUnexpired(_ context.Context, t time.Time) ([]ports.StoredExpiry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ports.StoredExpiry
	for h, inv := range s.invs {
		if inv.Expiry.After(t) {
			out = append(out, ports.StoredExpiry{Hash: h, Expiry: inv.Expiry})
		}
	}
	return out, nil
}

// List implements ports.InvoiceStore.
func (s *Store) List(_ context.Context, from uint64, limit int) ([]domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Invoice
	for _, inv := range s.invs {
		if inv.Sequence >= from {
			out = append(out, cloneInvoice(inv))
		}
	}
	slices.SortFunc(out, func(a, b domain.Invoice) int { return int(a.Sequence) - int(b.Sequence) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
