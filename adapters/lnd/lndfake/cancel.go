package lndfake

import (
	"context"
	"slices"
	"time"

	"github.com/lnmux/lnmux/domain"
)

// RecordCancel implements ports.InvoiceStore.
func (s *MemStore) RecordCancel(_ context.Context, c domain.CancelRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.invs[c.Hash]; ok {
		return domain.ErrSettleRequested
	}
	for i, cur := range s.cancels {
		if cur.Hash == c.Hash && cur.SetID == c.SetID {
			// The same cancel again: permanent stays permanent.
			s.cancels[i].Permanent = cur.Permanent || c.Permanent
			return nil
		}
	}
	c.HTLCs = slices.Clone(c.HTLCs)
	s.cancels = append(s.cancels, c)
	return nil
}

// ListCancels implements ports.InvoiceStore.
func (s *MemStore) ListCancels(_ context.Context, t time.Time) ([]domain.CancelRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.CancelRecord
	for _, c := range s.cancels {
		if c.Expiry.After(t) {
			out = append(out, c)
		}
	}
	return out, nil
}
