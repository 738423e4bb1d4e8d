package memstore

import (
	"context"
	"fmt"
	"sort"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// logEvent appends inv's current status to the event log, as the SQL
// store does in the transaction of the change. s.mu is held.
func (s *Store) logEvent(inv domain.Invoice) {
	at := inv.SettleRequestedAt
	if inv.Status != domain.StatusSettleRequested && !inv.FinalizedAt.IsZero() {
		at = inv.FinalizedAt
	}
	s.eventSeq++
	s.events = append(s.events, ports.InvoiceEvent{
		Cursor:     s.eventSeq,
		Hash:       inv.Hash,
		Status:     inv.Status,
		SetID:      inv.SetID,
		Amount:     inv.Amount,
		AmountPaid: inv.AmountPaid,
		Sequence:   inv.Sequence,
		At:         dbTime(at),
	})
}

// logCancel appends the permanent cancel of c's hash to the event log, as
// the SQL store does in RecordCancel's transaction. s.mu is held.
func (s *Store) logCancel(c domain.CancelRecord) {
	s.eventSeq++
	s.events = append(s.events, ports.InvoiceEvent{
		Cursor: s.eventSeq,
		Hash:   c.Hash,
		Status: domain.StatusCancelled,
		SetID:  c.SetID,
		At:     dbTime(c.CancelledAt),
	})
}

// ListEvents implements ports.InvoiceEventLog. A negative limit is
// domain.ErrInvalidArgument.
func (s *Store) ListEvents(ctx context.Context, after uint64, limit int) ([]ports.InvoiceEvent, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", domain.ErrInvalidArgument, limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].Cursor > after })
	n := min(limit, len(s.events)-i)
	return append([]ports.InvoiceEvent{}, s.events[i:i+n]...), nil
}

// forgetEvents drops the events of hash, as Forget drops the invoice. An
// invoice's first event is its settle request, so the search stops there:
// Forget right after the writes, as the memory tests do, costs little.
// s.mu is held.
func (s *Store) forgetEvents(hash domain.PaymentHash) {
	for i := len(s.events) - 1; i >= 0; i-- {
		if s.events[i].Hash != hash {
			continue
		}
		first := s.events[i].Status == domain.StatusSettleRequested
		s.events = append(s.events[:i], s.events[i+1:]...)
		if first {
			return
		}
	}
}
