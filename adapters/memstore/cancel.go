package memstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lnmux/lnmux/domain"
)

// cancelKey names one cancel record.
type cancelKey struct {
	hash  domain.PaymentHash
	setID domain.SetID
}

// RecordCancel implements ports.InvoiceStore.
func (s *Store) RecordCancel(ctx context.Context, c domain.CancelRecord) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("record cancel: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.invs[c.Hash]; ok {
		return fmt.Errorf("%w: invoice %s is stored", domain.ErrSettleRequested, c.Hash)
	}
	if s.cancels == nil {
		s.cancels = make(map[cancelKey]domain.CancelRecord)
	}
	k := cancelKey{c.Hash, c.SetID}
	if cur, ok := s.cancels[k]; ok {
		cur.Permanent = cur.Permanent || c.Permanent
		if c.Expiry.After(cur.Expiry) {
			cur.Expiry = c.Expiry
		}
		s.cancels[k] = cur
		return nil
	}
	c.HTLCs = slices.Clone(c.HTLCs)
	s.cancels[k] = c
	return nil
}

// ListCancels implements ports.InvoiceStore.
func (s *Store) ListCancels(ctx context.Context, t time.Time) ([]domain.CancelRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list cancels: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.CancelRecord
	for _, c := range s.cancels {
		if c.Expiry.After(t) {
			c.HTLCs = slices.Clone(c.HTLCs)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b domain.CancelRecord) int {
		if c := slices.Compare(a.Hash[:], b.Hash[:]); c != 0 {
			return c
		}
		return slices.Compare(a.SetID[:], b.SetID[:])
	})
	return out, nil
}

// cancelledSettle reports why a settle of inv's set must be refused: the
// set, or the hash permanently, was cancelled. s.mu is held.
func (s *Store) cancelledSettle(inv domain.Invoice) error {
	for k, c := range s.cancels {
		if k.hash == inv.Hash && (k.setID == inv.SetID || c.Permanent) {
			return fmt.Errorf("%w: invoice %s: set %s was cancelled", domain.ErrConflict, inv.Hash, k.setID)
		}
	}
	return nil
}
