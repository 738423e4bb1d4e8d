package lndfake

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// MemStore is an in-memory ports.InvoiceStore for load runs: it keeps the
// store's contract (idempotent settle requests, conflicts, row updates)
// without the cost of a database, so that a load run measures the HTLC
// path and not the disk.
type MemStore struct {
	mu   sync.Mutex
	seq  uint64
	invs map[domain.PaymentHash]domain.Invoice
	// cancels are the recorded cancels (cancel.go).
	cancels []domain.CancelRecord
}

var _ ports.InvoiceStore = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{invs: make(map[domain.PaymentHash]domain.Invoice)} }

func clone(inv domain.Invoice) domain.Invoice {
	inv.HTLCs = slices.Clone(inv.HTLCs)
	return inv
}

// RequestSettle implements ports.InvoiceStore.
func (s *MemStore) RequestSettle(_ context.Context, inv domain.Invoice) (domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.invs[inv.Hash]; ok {
		if cur.SetID != inv.SetID {
			return domain.Invoice{}, domain.ErrConflict
		}
		return clone(cur), nil
	}
	for _, c := range s.cancels {
		if c.Hash == inv.Hash && (c.SetID == inv.SetID || c.Permanent) {
			return domain.Invoice{}, domain.ErrConflict
		}
	}
	s.seq++
	inv.Sequence = s.seq
	s.invs[inv.Hash] = clone(inv)
	return clone(inv), nil
}

// Get implements ports.InvoiceStore.
func (s *MemStore) Get(_ context.Context, h domain.PaymentHash) (domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invs[h]
	if !ok {
		return domain.Invoice{}, domain.ErrInvoiceNotFound
	}
	return clone(inv), nil
}

// Update implements ports.InvoiceStore.
func (s *MemStore) Update(_ context.Context, h domain.PaymentHash, fn func(*domain.Invoice) error) (domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invs[h]
	if !ok {
		return domain.Invoice{}, domain.ErrInvoiceNotFound
	}
	inv = clone(inv)
	if err := fn(&inv); err != nil {
		return domain.Invoice{}, err
	}
	s.invs[h] = clone(inv)
	return inv, nil
}

// ListPending implements ports.InvoiceStore.
func (s *MemStore) ListPending(context.Context) ([]domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Invoice
	for _, inv := range s.invs {
		if inv.Status == domain.StatusSettleRequested {
			out = append(out, clone(inv))
		}
	}
	return out, nil
}

// ListUnexpired implements ports.InvoiceStore.
func (s *MemStore) ListUnexpired(_ context.Context, t time.Time) ([]ports.StoredExpiry, error) {
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
func (s *MemStore) List(_ context.Context, from uint64, limit int) ([]domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Invoice
	for _, inv := range s.invs {
		if inv.Sequence >= from {
			out = append(out, clone(inv))
		}
	}
	slices.SortFunc(out, func(a, b domain.Invoice) int { return cmp.Compare(a.Sequence, b.Sequence) })
	return out[:min(len(out), limit)], nil
}

// Statuses counts the stored invoices by status.
func (s *MemStore) Statuses() map[domain.InvoiceStatus]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[domain.InvoiceStatus]int{}
	for _, inv := range s.invs {
		out[inv.Status]++
	}
	return out
}
