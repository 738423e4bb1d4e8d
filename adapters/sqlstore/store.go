package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

var (
	_ ports.InvoiceStore = (*Store)(nil)
	_ ports.Leader       = (*Leader)(nil)
)

// Store is the ports.InvoiceStore on Postgres or SQLite.
type Store struct {
	c *conn
	// epoch is the leader epoch every write must find (Fence); 0 leaves
	// writes unfenced.
	epoch atomic.Uint64
	// settles is the group committer of RequestSettle.
	settles *committer
	// afterInvoiceInsert, if set, runs inside a settle batch's transaction
	// once its invoice rows are inserted, for each of them (tests hold the
	// transaction open).
	afterInvoiceInsert func(domain.PaymentHash)
	// afterEventAppend, if set, runs inside a write transaction once it
	// appended to the event log, for each change (tests hold it open).
	afterEventAppend func(domain.PaymentHash, domain.InvoiceStatus)
	// sweepChunk, if positive, replaces defaultSweepChunk (tests).
	sweepChunk int
}

// Open connects to the database described by cfg and checks that its schema
// is exactly the one this build expects; otherwise it fails with
// ErrSchemaNotInitialized, ErrSchemaOutdated or ErrSchemaTooNew, whose
// messages tell the operator what to run.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	c, err := connect(ctx, cfg, sqliteBusyStep)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, c); err != nil {
		_ = c.close()
		return nil, err
	}
	s := &Store{c: c}
	s.settles = newCommitter(s, c.cfg.MaxSettleBatch)
	return s, nil
}

// Fence makes every later write of the store (RequestSettle, Update) check,
// in its own transaction, that the leader table still holds epoch, the one
// of this process's Lease, and fail with domain.ErrNotLeader otherwise
// (docs/store.md, "Leader fencing"). Call it before the store writes
// anything; without it writes are not fenced.
func (s *Store) Fence(epoch uint64) { s.epoch.Store(epoch) }

// Close stops the settle committer and closes the database connections.
// Leaders acquired through the store hold their own and stay held.
func (s *Store) Close() error {
	s.settles.close()
	return s.c.close()
}

// CheckSchema fails unless every migration of this build, and no other, is
// applied. Open runs it; a long-running process may repeat it.
func (s *Store) CheckSchema(ctx context.Context) error { return checkSchema(ctx, s.c) }

// sqliteBusyStep is the store's SQLite busy_timeout: how long one attempt
// waits for another process's write lock before retryBusy, which honours
// the context, tries again.
const sqliteBusyStep = 50 * time.Millisecond

// retryBusy runs fn again while SQLite reports the database busy, until
// Config.LockTimeout has passed or ctx is done. SQLite's own busy wait
// ignores the context, so it is kept to sqliteBusyStep. fn must be safe to
// repeat after failing with SQLITE_BUSY.
func (s *Store) retryBusy(ctx context.Context, fn func() error) error {
	if s.c.dialect() != DriverSQLite {
		return fn()
	}
	deadline := time.Now().Add(s.c.cfg.LockTimeout)
	for {
		err := fn()
		if !isSQLiteBusy(err) || errors.Is(err, domain.ErrOutcomeUnknown) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
	}
}

// readOnly runs fn in a transaction that sees one snapshot, so that an
// invoice and its HTLCs are read consistently.
func (s *Store) readOnly(ctx context.Context, fn func(tx *gorm.DB) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.c.dialect() == DriverPostgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return s.retryBusy(ctx, func() error { return s.c.db.WithContext(ctx).Transaction(fn, opts) })
}

// write runs fn in a read-write transaction after the fencing check, and
// commits unless fn fails. An error at or after COMMIT wraps
// domain.ErrOutcomeUnknown: the transaction may be durable although the
// call failed (docs/store.md, "Ambiguous commits"). Any other error means
// nothing was written. fn's error is returned as is.
func (s *Store) write(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var tx *gorm.DB
	// SQLite takes the write lock at BEGIN (IMMEDIATE): only BEGIN can
	// find the database busy.
	err := s.retryBusy(ctx, func() error {
		tx = s.c.db.WithContext(ctx).Begin()
		return tx.Error
	})
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			// On a broken connection the server rolls back itself.
			_ = tx.Rollback().Error
		}
	}()
	if err := s.checkEpoch(tx); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		// Done before COMMIT was sent: certainly not committed.
		return err
	}
	committed = true
	if err := tx.Commit().Error; err != nil {
		return fmt.Errorf("%w: commit: %w", domain.ErrOutcomeUnknown, err)
	}
	return nil
}

// checkEpoch refuses the transaction unless the leader table holds the
// store's epoch. On Postgres the row is read FOR SHARE: concurrent writes of
// this process do not wait for each other, but a new leader's epoch
// increment waits until they commit, and once it committed they read its
// epoch. On SQLite the write lock, taken at BEGIN, does the same.
func (s *Store) checkEpoch(tx *gorm.DB) error {
	want := s.epoch.Load()
	if want == 0 {
		return nil
	}
	q := "SELECT epoch FROM leader WHERE id = 1"
	if s.c.dialect() == DriverPostgres {
		q += " FOR SHARE"
	}
	var epochs []int64
	if err := tx.Raw(q).Scan(&epochs).Error; err != nil {
		return err
	}
	if len(epochs) != 1 || uint64(epochs[0]) != want { //nolint:gosec // sequence numbers and epochs are positive bigints
		got := "none"
		if len(epochs) == 1 {
			got = strconv.FormatInt(epochs[0], 10)
		}
		return fmt.Errorf("%w: this process leads epoch %d, the database is at epoch %s", domain.ErrNotLeader, want, got)
	}
	return nil
}

// sequenceLockKey is taken (pg_advisory_xact_lock) by every transaction
// that inserts an invoice, right before the insert draws its sequence number,
// and held until it commits: numbers then become visible in increasing
// order, so that a client paging ListInvoices from the last number it saw
// plus one never skips an invoice whose transaction committed late
// (docs/store.md, "Sequence numbers").
const sequenceLockKey int64 = 0x6c6e6d7578_02 // "lnmux", 2

// RequestSettle implements ports.InvoiceStore. The request joins the next
// batch of the store's committer (docs/store.md, "Group commit") and the
// call returns once the transaction holding it has committed, or failed.
// If ctx ends before a batch took the request, nothing was written and the
// error wraps ctx's; once taken, the outcome is not known until the batch
// ends, so the error wraps domain.ErrOutcomeUnknown and ctx's.
func (s *Store) RequestSettle(ctx context.Context, inv domain.Invoice) (domain.Invoice, error) {
	if err := inv.CheckSettleRequest(); err != nil {
		return domain.Invoice{}, err
	}
	if err := ctx.Err(); err != nil {
		return domain.Invoice{}, s.wrap(ctx, "request settle", err)
	}
	r := &pendingSettle{ctx: ctx, inv: inv, done: make(chan struct{})}
	if err := s.settles.enqueue(r); err != nil {
		return domain.Invoice{}, s.wrap(ctx, "request settle", err)
	}
	select {
	case <-r.done:
		return r.out, r.err
	case <-ctx.Done():
	}
	if s.settles.abandon(r) {
		return domain.Invoice{}, s.wrap(ctx, "request settle", fmt.Errorf("invoice %s not taken into a batch yet: %w", inv.Hash, ctx.Err()))
	}
	select {
	case <-r.done:
		return r.out, r.err
	default:
	}
	return domain.Invoice{}, fmt.Errorf("%w: request settle of invoice %s: the call ended while its batch's transaction ran: %w",
		domain.ErrOutcomeUnknown, inv.Hash, ctx.Err())
}

func sameSet(stored, req domain.Invoice) (domain.Invoice, error) {
	if stored.SetID != req.SetID {
		return domain.Invoice{}, fmt.Errorf("%w: invoice %s is stored with set %s, not %s", domain.ErrConflict, req.Hash, stored.SetID, req.SetID)
	}
	return stored, nil
}

// Get implements ports.InvoiceStore.
func (s *Store) Get(ctx context.Context, hash domain.PaymentHash) (domain.Invoice, error) {
	var inv domain.Invoice
	err := s.readOnly(ctx, func(tx *gorm.DB) error {
		var found bool
		var err error
		inv, found, err = findInvoice(tx, hash, false)
		if err == nil && !found {
			err = notFound(hash)
		}
		return err
	})
	if err != nil {
		return domain.Invoice{}, s.wrap(ctx, "get invoice", err)
	}
	return inv, nil
}

func notFound(hash domain.PaymentHash) error {
	return fmt.Errorf("%w: %s", domain.ErrInvoiceNotFound, hash)
}

// findInvoice reads an invoice and its HTLCs; lock takes the row lock
// first, so that the HTLCs are read after any concurrent Update committed.
func findInvoice(tx *gorm.DB, hash domain.PaymentHash, lock bool) (domain.Invoice, bool, error) {
	q := tx.Where("hash = ?", hash[:])
	if lock {
		// SQLite ignores the clause: its write transaction, begun
		// IMMEDIATE, already excludes every other writer.
		q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	var rows []invoiceRow
	if err := q.Limit(1).Find(&rows).Error; err != nil {
		return domain.Invoice{}, false, err
	}
	if len(rows) == 0 {
		return domain.Invoice{}, false, nil
	}
	invs, err := withHTLCs(tx, rows)
	if err != nil {
		return domain.Invoice{}, false, err
	}
	return invs[0], true, nil
}

// Update implements ports.InvoiceStore. Only the status, FinalizedAt and
// the HTLC statuses can change; fn changing anything else is refused with
// domain.ErrInvalidArgument. An error of fn is returned as is. fn must not
// call the store: on SQLite the transaction holds its only connection.
func (s *Store) Update(ctx context.Context, hash domain.PaymentHash, fn func(*domain.Invoice) error) (domain.Invoice, error) {
	var out domain.Invoice
	var fnErr error
	err := s.write(ctx, func(tx *gorm.DB) error {
		before, found, err := findInvoice(tx, hash, true)
		if err != nil {
			return err
		}
		if !found {
			return notFound(hash)
		}
		after := before
		after.HTLCs = append([]domain.SettledHTLC(nil), before.HTLCs...)
		if fnErr = fn(&after); fnErr != nil {
			return fnErr
		}
		if err := domain.CheckUpdate(before, after); err != nil {
			return err
		}
		if err := persistUpdate(tx, before, after); err != nil {
			return err
		}
		row, htlcs := fromDomain(after)
		row.SequenceNumber = int64(before.Sequence) //nolint:gosec // the sequence number came from the bigserial column
		out, err = toDomain(row, htlcs)
		if err != nil || after.Status == before.Status {
			return err
		}
		// The status change is recorded in its own transaction, staged for
		// the event log (eventlog.go): no lock, so finals commit side by
		// side.
		return s.stageChange(tx, out)
	})
	if fnErr != nil {
		return domain.Invoice{}, fnErr
	}
	if err != nil {
		return domain.Invoice{}, s.wrap(ctx, "update invoice", err)
	}
	return out, nil
}

func htlcsByCircuit(inv domain.Invoice) map[domain.CircuitKey]domain.SettledHTLC {
	m := make(map[domain.CircuitKey]domain.SettledHTLC, len(inv.HTLCs))
	for _, h := range inv.HTLCs {
		m[h.Circuit] = h
	}
	return m
}

func persistUpdate(tx *gorm.DB, before, after domain.Invoice) error {
	row, _ := fromDomain(after)
	if after.Status != before.Status || !after.FinalizedAt.Equal(before.FinalizedAt) {
		err := tx.Model(&invoiceRow{}).Where("hash = ?", row.Hash).
			Updates(map[string]any{"status": row.Status, "finalized_at": row.FinalizedAt}).Error
		if err != nil {
			return err
		}
	}
	prev := htlcsByCircuit(before)
	for _, h := range after.HTLCs {
		if h.Status == prev[h.Circuit].Status {
			continue
		}
		hr := htlcFromDomain(after.Hash, h)
		err := tx.Model(&htlcRow{}).
			Where("node_pubkey = ? AND chan_id = ? AND htlc_id = ?", hr.NodePubkey, hr.ChanID, hr.HTLCID).
			Update("status", hr.Status).Error
		if err != nil {
			return err
		}
	}
	return nil
}

// ListPending implements ports.InvoiceStore.
func (s *Store) ListPending(ctx context.Context) ([]domain.Invoice, error) {
	var out []domain.Invoice
	err := s.readOnly(ctx, func(tx *gorm.DB) error {
		var rows []invoiceRow
		err := tx.Where("status = ?", domain.StatusSettleRequested.String()).
			Order("sequence_number").Find(&rows).Error
		if err != nil {
			return err
		}
		out, err = withHTLCs(tx, rows)
		return err
	})
	if err != nil {
		return nil, s.wrap(ctx, "list pending invoices", err)
	}
	return out, nil
}

// ListUnexpired implements ports.InvoiceStore.
func (s *Store) ListUnexpired(ctx context.Context, t time.Time) ([]ports.StoredExpiry, error) {
	var rows []struct {
		Hash   []byte
		Expiry time.Time
	}
	err := s.readOnly(ctx, func(tx *gorm.DB) error {
		return tx.Model(&invoiceRow{}).Select("hash", "expiry").
			Where("expiry > ?", t.UTC()).Order("sequence_number").Find(&rows).Error
	})
	if err != nil {
		return nil, s.wrap(ctx, "list unexpired invoices", err)
	}
	out := make([]ports.StoredExpiry, len(rows))
	for i, r := range rows {
		if err := copyExact(out[i].Hash[:], r.Hash, "hash"); err != nil {
			return nil, s.wrap(ctx, "list unexpired invoices", err)
		}
		out[i].Expiry = r.Expiry.UTC()
	}
	return out, nil
}

// List implements ports.InvoiceStore. A negative limit is
// domain.ErrInvalidArgument; zero returns nothing.
func (s *Store) List(ctx context.Context, from uint64, limit int) ([]domain.Invoice, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", domain.ErrInvalidArgument, limit)
	}
	// Sequence numbers are positive int64s: none is above MaxInt64.
	if limit == 0 || from > math.MaxInt64 {
		return []domain.Invoice{}, nil
	}
	var out []domain.Invoice
	err := s.readOnly(ctx, func(tx *gorm.DB) error {
		var rows []invoiceRow
		//nolint:gosec // from ≤ MaxInt64 is checked above
		err := tx.Where("sequence_number >= ?", int64(from)).
			Order("sequence_number").Limit(limit).Find(&rows).Error
		if err != nil {
			return err
		}
		out, err = withHTLCs(tx, rows)
		return err
	})
	if err != nil {
		return nil, s.wrap(ctx, "list invoices", err)
	}
	return out, nil
}

// htlcQueryChunk keeps IN lists well below the bind parameter limits of
// both databases (SQLite: 32766, Postgres: 65535).
const htlcQueryChunk = 500

// withHTLCs loads the HTLCs of the invoice rows and converts them, in the
// order of rows.
func withHTLCs(tx *gorm.DB, rows []invoiceRow) ([]domain.Invoice, error) {
	byHash := make(map[string][]htlcRow, len(rows))
	for start := 0; start < len(rows); start += htlcQueryChunk {
		chunk := rows[start:min(start+htlcQueryChunk, len(rows))]
		hashes := make([][]byte, len(chunk))
		for i, r := range chunk {
			hashes[i] = r.Hash
		}
		var htlcs []htlcRow
		if err := tx.Where("invoice_hash IN ?", hashes).Find(&htlcs).Error; err != nil {
			return nil, err
		}
		for _, h := range htlcs {
			byHash[string(h.InvoiceHash)] = append(byHash[string(h.InvoiceHash)], h)
		}
	}
	out := make([]domain.Invoice, len(rows))
	for i, r := range rows {
		inv, err := toDomain(r, byHash[string(r.Hash)])
		if err != nil {
			return nil, err
		}
		out[i] = inv
	}
	return out, nil
}

// wrap leaves domain errors as they are and adds context to the others.
// An error caused by ctx ending (the driver reports a cancelled statement or
// a closed connection) also wraps ctx's error, so that callers can tell.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	for _, d := range []error{domain.ErrInvoiceNotFound, domain.ErrConflict, domain.ErrInvalidArgument, domain.ErrNotLeader, domain.ErrSettleRequested} {
		if errors.Is(err, d) {
			return err
		}
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", err, cerr)
	}
	return s.c.wrap(op, err)
}
