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

// RecordCancel implements ports.InvoiceStore, as the SQL store does: a
// repeated record is merged into the stored one (permanent stays
// permanent; the later expiry, the first CancelledAt and the union of the
// HTLCs, each with its later height, are kept), and the first permanent
// record of a hash appends a "cancelled" event to the event log.
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
	wasPermanent := false
	for k, cur := range s.cancels {
		if k.hash == c.Hash && cur.Permanent {
			wasPermanent = true
		}
	}
	k := cancelKey{c.Hash, c.SetID}
	cur, ok := s.cancels[k]
	if !ok {
		cur = domain.CancelRecord{Hash: c.Hash, SetID: c.SetID, Expiry: dbTime(c.Expiry), CancelledAt: dbTime(c.CancelledAt)}
	}
	cur.Permanent = cur.Permanent || c.Permanent
	if e := dbTime(c.Expiry); e.After(cur.Expiry) {
		cur.Expiry = e
	}
	cur.HTLCs = mergeHTLCs(cur.HTLCs, c.HTLCs)
	s.cancels[k] = cur
	if c.Permanent && !wasPermanent {
		s.logCancel(c)
	}
	return nil
}

// mergeHTLCs is the union of have and add by circuit, each with its later
// height, in circuit order.
func mergeHTLCs(have, add []domain.CancelledHTLC) []domain.CancelledHTLC {
	out := slices.Clone(have)
	for _, h := range add {
		i := slices.IndexFunc(out, func(o domain.CancelledHTLC) bool { return o.Circuit == h.Circuit })
		if i < 0 {
			out = append(out, h)
			continue
		}
		out[i].Until = max(out[i].Until, h.Until)
	}
	slices.SortFunc(out, func(a, b domain.CancelledHTLC) int { return a.Circuit.Compare(b.Circuit) })
	return out
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
