package sqlstore

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// The event log (docs/store.md, "The event log"): every change of a stored
// invoice's status appends one row to invoice_events in the transaction
// that makes it. Cursors are drawn under the sequence lock on Postgres (and
// under SQLite's write lock), held until COMMIT, so they become visible in
// increasing order and a reader that saw cursor n never sees a lower one
// appear later.

var _ ports.InvoiceEventLog = (*Store)(nil)

// eventRow is a row of invoice_events.
type eventRow struct {
	// Sequence is left out of INSERTs: the database assigns it.
	Sequence        int64     `gorm:"column:sequence;primaryKey;autoIncrement"`
	Hash            []byte    `gorm:"column:hash"`
	Status          string    `gorm:"column:status"`
	SetID           []byte    `gorm:"column:set_id"`
	AmountMsat      int64     `gorm:"column:amount_msat"`
	AmountPaidMsat  int64     `gorm:"column:amount_paid_msat"`
	InvoiceSequence int64     `gorm:"column:invoice_sequence"`
	CreatedAt       time.Time `gorm:"column:created_at"`
}

func (eventRow) TableName() string { return "invoice_events" }

// eventOf is the log entry of inv's current status: its settle request, or
// its final status.
func eventOf(inv domain.Invoice) eventRow {
	at := inv.SettleRequestedAt
	if inv.Status != domain.StatusSettleRequested && !inv.FinalizedAt.IsZero() {
		at = inv.FinalizedAt
	}
	return eventRow{
		Hash:            inv.Hash[:],
		Status:          inv.Status.String(),
		SetID:           inv.SetID[:],
		AmountMsat:      int64(inv.Amount),
		AmountPaidMsat:  int64(inv.AmountPaid),
		InvoiceSequence: int64(inv.Sequence), //nolint:gosec // the sequence number came from the bigint column
		CreatedAt:       dbTime(at),
	}
}

// eventInsertChunk bounds the rows of one INSERT (7 parameters each).
const eventInsertChunk = 1000

// appendEvents inserts the log entries of invs, in the order given. The
// transaction must hold the sequence lock on Postgres.
func (s *Store) appendEvents(tx *gorm.DB, invs []domain.Invoice) error {
	rows := make([]eventRow, len(invs))
	for i, inv := range invs {
		rows[i] = eventOf(inv)
	}
	for start := 0; start < len(rows); start += eventInsertChunk {
		chunk := rows[start:min(start+eventInsertChunk, len(rows))]
		if err := tx.Omit("sequence").Create(&chunk).Error; err != nil {
			return fmt.Errorf("append to the event log: %w", err)
		}
	}
	if s.afterEventAppend != nil {
		for _, inv := range invs {
			s.afterEventAppend(inv.Hash, inv.Status)
		}
	}
	return nil
}

// lockSequence takes the sequence lock (Postgres) for the rest of the
// transaction; SQLite's write lock, taken at BEGIN, plays its part.
func (s *Store) lockSequence(tx *gorm.DB) error {
	if s.c.dialect() != DriverPostgres {
		return nil
	}
	return tx.Exec("SELECT pg_advisory_xact_lock(?)", sequenceLockKey).Error
}

// ListEvents implements ports.InvoiceEventLog.
func (s *Store) ListEvents(ctx context.Context, after uint64, limit int) ([]ports.InvoiceEvent, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", domain.ErrInvalidArgument, limit)
	}
	// Cursors are positive int64s: none is above MaxInt64.
	if limit == 0 || after >= math.MaxInt64 {
		return []ports.InvoiceEvent{}, nil
	}
	var rows []eventRow
	err := s.readOnly(ctx, func(tx *gorm.DB) error {
		//nolint:gosec // after < MaxInt64 is checked above
		return tx.Where("sequence > ?", int64(after)).Order("sequence").Limit(limit).Find(&rows).Error
	})
	if err != nil {
		return nil, s.wrap(ctx, "list events", err)
	}
	out := make([]ports.InvoiceEvent, 0, len(rows))
	for _, r := range rows {
		ev, err := eventToPort(r)
		if err != nil {
			return nil, s.wrap(ctx, "list events", err)
		}
		out = append(out, ev)
	}
	return out, nil
}

func eventToPort(r eventRow) (ports.InvoiceEvent, error) {
	var ev ports.InvoiceEvent
	if err := copyExact(ev.Hash[:], r.Hash, "hash"); err != nil {
		return ev, err
	}
	if r.SetID != nil {
		if err := copyExact(ev.SetID[:], r.SetID, "set_id"); err != nil {
			return ev, err
		}
	}
	st, err := domain.ParseInvoiceStatus(r.Status)
	if err != nil {
		return ev, fmt.Errorf("corrupt event row %d: %w", r.Sequence, err)
	}
	ev.Cursor = uint64(r.Sequence) //nolint:gosec // cursors are positive bigints
	ev.Status = st
	ev.Amount = domain.Msat(r.AmountMsat)
	ev.AmountPaid = domain.Msat(r.AmountPaidMsat)
	ev.Sequence = uint64(r.InvoiceSequence) //nolint:gosec // sequence numbers are positive bigints
	ev.At = r.CreatedAt.UTC()
	return ev, nil
}

// sortBySequence orders invoices by their sequence numbers, the order in
// which a batch logs its settle requests.
func sortBySequence(invs []domain.Invoice) {
	slices.SortFunc(invs, func(a, b domain.Invoice) int {
		switch {
		case a.Sequence < b.Sequence:
			return -1
		case a.Sequence > b.Sequence:
			return 1
		}
		return 0
	})
}
