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

// The event log (docs/store.md, "The event log"). Every change of a stored
// invoice's status is recorded in the transaction that makes it:
//
//   - a settle batch, which holds the sequence lock anyway, appends its
//     settle requests to invoice_events directly;
//   - a status-changing Update does not take the lock (final statuses would
//     otherwise commit one at a time): it stages the change in
//     invoice_changes, and a sweep moves staged changes into the log, many
//     in one transaction under the lock. ListEvents sweeps before it reads.
//
// Only holders of the sequence lock (Postgres; SQLite's write lock) insert
// into invoice_events, and they hold it until COMMIT, so cursors become
// visible in increasing order: a reader that saw cursor n never sees a
// lower one appear later.

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

// changeRow is a row of invoice_changes: a committed change waiting for
// its cursor.
type changeRow struct {
	ID              int64     `gorm:"column:id;primaryKey;autoIncrement"`
	Hash            []byte    `gorm:"column:hash"`
	Status          string    `gorm:"column:status"`
	SetID           []byte    `gorm:"column:set_id"`
	AmountMsat      int64     `gorm:"column:amount_msat"`
	AmountPaidMsat  int64     `gorm:"column:amount_paid_msat"`
	InvoiceSequence int64     `gorm:"column:invoice_sequence"`
	CreatedAt       time.Time `gorm:"column:created_at"`
}

func (changeRow) TableName() string { return "invoice_changes" }

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

// appendEvents inserts rows into the log, in the order given. The
// transaction must hold the sequence lock.
func (s *Store) appendEvents(tx *gorm.DB, rows []eventRow) error {
	for start := 0; start < len(rows); start += eventInsertChunk {
		chunk := rows[start:min(start+eventInsertChunk, len(rows))]
		if err := tx.Omit("sequence").Create(&chunk).Error; err != nil {
			return fmt.Errorf("append to the event log: %w", err)
		}
	}
	if s.afterEventAppend != nil {
		for _, r := range rows {
			st, _ := domain.ParseInvoiceStatus(r.Status)
			s.afterEventAppend(domain.PaymentHash(r.Hash), st)
		}
	}
	return nil
}

// logSettleRequests appends the settle requests a batch inserted, in
// sequence order; settleBatch holds the sequence lock.
func (s *Store) logSettleRequests(tx *gorm.DB, invs []domain.Invoice) error {
	slices.SortFunc(invs, func(a, b domain.Invoice) int {
		switch {
		case a.Sequence < b.Sequence:
			return -1
		case a.Sequence > b.Sequence:
			return 1
		}
		return 0
	})
	rows := make([]eventRow, len(invs))
	for i, inv := range invs {
		rows[i] = eventOf(inv)
	}
	return s.appendEvents(tx, rows)
}

// stageChange records a status change of an Update for the next sweep, in
// the Update's transaction. It takes no lock.
func (s *Store) stageChange(tx *gorm.DB, inv domain.Invoice) error {
	ev := eventOf(inv)
	row := changeRow{
		Hash: ev.Hash, Status: ev.Status, SetID: ev.SetID, AmountMsat: ev.AmountMsat,
		AmountPaidMsat: ev.AmountPaidMsat, InvoiceSequence: ev.InvoiceSequence, CreatedAt: ev.CreatedAt,
	}
	if err := tx.Omit("id").Create(&row).Error; err != nil {
		return fmt.Errorf("stage the change for the event log: %w", err)
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

// defaultSweepChunk bounds the staged changes one sweep transaction moves.
const defaultSweepChunk = 1000

// sweep moves the staged changes into the log, oldest stage first, in
// transactions that hold the sequence lock, until none is left. It is not
// fenced: it only numbers changes that committed, so any process may run
// it, and repeating it (after a failed COMMIT, say) moves nothing twice.
func (s *Store) sweep(ctx context.Context) error {
	chunk := s.sweepChunk
	if chunk <= 0 {
		chunk = defaultSweepChunk
	}
	for {
		var moved int
		err := s.retryBusy(ctx, func() error {
			moved = 0
			return s.c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				if err := s.lockSequence(tx); err != nil {
					return err
				}
				var staged []changeRow
				if err := tx.Order("id").Limit(chunk).Find(&staged).Error; err != nil {
					return err
				}
				if len(staged) == 0 {
					return nil
				}
				rows := make([]eventRow, len(staged))
				ids := make([]int64, len(staged))
				for i, c := range staged {
					rows[i] = eventRow{
						Hash: c.Hash, Status: c.Status, SetID: c.SetID, AmountMsat: c.AmountMsat,
						AmountPaidMsat: c.AmountPaidMsat, InvoiceSequence: c.InvoiceSequence, CreatedAt: c.CreatedAt,
					}
					ids[i] = c.ID
				}
				if err := s.appendEvents(tx, rows); err != nil {
					return err
				}
				// By id, not by range: on Postgres a lower id may commit
				// after a higher one was read.
				if err := tx.Where("id IN ?", ids).Delete(&changeRow{}).Error; err != nil {
					return err
				}
				moved = len(staged)
				return nil
			})
		})
		if err != nil {
			return err
		}
		if moved < chunk {
			return nil
		}
	}
}

// hasStaged reports whether a change waits for a sweep.
func (s *Store) hasStaged(ctx context.Context) (bool, error) {
	var ids []int64
	err := s.retryBusy(ctx, func() error {
		ids = ids[:0]
		return s.c.db.WithContext(ctx).Model(&changeRow{}).Limit(1).Pluck("id", &ids).Error
	})
	return len(ids) > 0, err
}

// ListEvents implements ports.InvoiceEventLog: it sweeps the staged
// changes into the log, then reads the log.
func (s *Store) ListEvents(ctx context.Context, after uint64, limit int) ([]ports.InvoiceEvent, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", domain.ErrInvalidArgument, limit)
	}
	// Cursors are positive int64s: none is above MaxInt64.
	if limit == 0 || after >= math.MaxInt64 {
		return []ports.InvoiceEvent{}, nil
	}
	staged, err := s.hasStaged(ctx)
	if err == nil && staged {
		err = s.sweep(ctx)
	}
	if err != nil {
		return nil, s.wrap(ctx, "sweep the event log", err)
	}
	return s.readEvents(ctx, after, limit)
}

// readEvents reads the log after a cursor, without sweeping.
func (s *Store) readEvents(ctx context.Context, after uint64, limit int) ([]ports.InvoiceEvent, error) {
	var rows []eventRow
	err := s.readOnly(ctx, func(tx *gorm.DB) error {
		//nolint:gosec // after < MaxInt64 is checked by ListEvents
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
