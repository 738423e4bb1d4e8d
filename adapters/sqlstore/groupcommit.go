package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/lnmux/lnmux/domain"
)

// Group commit (docs/store.md, "Group commit"). Settle requests that insert
// an invoice commit one transaction at a time (the sequence lock), so each
// costs a full COMMIT, a WAL flush and on Postgres with synchronous_commit
// the wait for it. The committer therefore stores every request that
// arrived while the previous transaction committed in one transaction:
// under load a batch grows to the number of waiting callers, alone a
// request commits at once.

// defaultMaxSettleBatch bounds the invoices of one transaction: enough for
// the throughput goal, small enough that the bulk INSERTs stay far below
// the bind parameter limits of both databases.
const defaultMaxSettleBatch = 128

// htlcInsertChunk bounds the HTLC rows of one INSERT (6 parameters each).
const htlcInsertChunk = 1000

var (
	// errStoreClosed fails requests that find the store closed.
	errStoreClosed = errors.New("store closed")
	// errBulkInsert fails the transaction of a batch whose bulk insert
	// failed; the batch is then stored one request at a time.
	errBulkInsert = errors.New("bulk insert of a settle batch failed")
)

// pendingSettle is one RequestSettle call waiting for its batch.
type pendingSettle struct {
	ctx context.Context
	inv domain.Invoice
	// claimed is set by the committer when it takes the request into a
	// batch, abandoned by the caller when its context ends before that;
	// both under committer.mu. A claimed request may be committed.
	claimed, abandoned bool
	// done is closed once out and err are final.
	done chan struct{}
	out  domain.Invoice
	err  error

	// Set while the batch runs: inserted says the request's rows are in
	// the batch's transaction (they commit with it); found that the hash
	// was stored already, or the set recorded as cancelled (cancel.go),
	// and out/err are what the read found.
	inserted, found bool
}

// committer gathers settle requests into batches and commits each batch in
// one transaction, on one goroutine.
type committer struct {
	s   *Store
	max int

	mu     sync.Mutex
	queue  []*pendingSettle
	closed bool
	// held makes take return nothing (tests gather a batch: hold).
	held bool

	// batches and settles count the transactions run and the requests
	// they held, for the mean batch size (benchmarks, tests).
	batches, settles atomic.Int64
	// oneByOne counts batches whose bulk insert failed and that were run
	// again inserting request by request.
	oneByOne atomic.Int64

	wake    chan struct{} // capacity 1: "the queue is not empty"
	base    context.Context
	cancel  context.CancelFunc
	stopped chan struct{}
}

func newCommitter(s *Store, max int) *committer {
	base, cancel := context.WithCancel(context.Background())
	c := &committer{s: s, max: max, wake: make(chan struct{}, 1), base: base, cancel: cancel, stopped: make(chan struct{})}
	go c.run()
	return c
}

// enqueue hands r to the committer.
func (c *committer) enqueue(r *pendingSettle) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errStoreClosed
	}
	c.queue = append(c.queue, r)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// abandon withdraws r if no batch has taken it yet; it reports whether it
// did. Otherwise r is, or was, in a transaction that may commit.
func (c *committer) abandon(r *pendingSettle) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.claimed {
		return false
	}
	r.abandoned = true
	return true
}

// hold makes the committer leave the queue alone until the returned
// function is called: the requests queued meanwhile form the next batch
// (tests).
func (c *committer) hold() (release func()) {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
	return sync.OnceFunc(func() {
		c.mu.Lock()
		c.held = false
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	})
}

// queued counts the requests waiting for a batch (tests).
func (c *committer) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.queue {
		if !r.abandoned {
			n++
		}
	}
	return n
}

// close stops the committer: a batch in flight is cancelled (its callers
// learn the outcome as on any failure) and queued requests fail.
func (c *committer) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	queue := c.queue
	c.queue = nil
	c.mu.Unlock()
	c.cancel()
	<-c.stopped
	for _, r := range queue {
		r.finish(domain.Invoice{}, fmt.Errorf("request settle of %s: %w", r.inv.Hash, errStoreClosed))
	}
}

func (c *committer) run() {
	defer close(c.stopped)
	for {
		select {
		case <-c.base.Done():
			return
		case <-c.wake:
		}
		for {
			batch := c.take()
			if len(batch) == 0 {
				break
			}
			c.commit(batch)
		}
	}
}

// take removes the next batch from the queue, oldest first. A request for
// a hash, or with an HTLC, that the batch holds already waits for the next
// batch: within a transaction every invoice and HTLC is then new to the
// others, and a later request sees the earlier one's committed row.
func (c *committer) take() []*pendingSettle {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		return nil
	}
	var batch, rest []*pendingSettle
	hashes := map[domain.PaymentHash]bool{}
	circuits := map[domain.CircuitKey]bool{}
	for _, r := range c.queue {
		if r.abandoned {
			continue
		}
		if len(batch) == c.max || hashes[r.inv.Hash] || anyCircuit(r.inv, circuits) {
			rest = append(rest, r)
			continue
		}
		r.claimed = true
		batch = append(batch, r)
		hashes[r.inv.Hash] = true
		for _, h := range r.inv.HTLCs {
			circuits[h.Circuit] = true
		}
	}
	c.queue = rest
	return batch
}

func anyCircuit(inv domain.Invoice, set map[domain.CircuitKey]bool) bool {
	for _, h := range inv.HTLCs {
		if set[h.Circuit] {
			return true
		}
	}
	return false
}

func (r *pendingSettle) finish(out domain.Invoice, err error) {
	r.out, r.err = out, err
	close(r.done)
}

// batchContext is the context of one batch's transaction: no single
// caller's cancellation ends it, but it ends when the last caller has given
// up, at the latest of the callers' deadlines, or when the store closes.
func (c *committer) batchContext(batch []*pendingSettle) (context.Context, func()) {
	ctx, cancel := context.WithCancel(c.base)
	var latest time.Time
	bounded := true
	for _, r := range batch {
		d, ok := r.ctx.Deadline()
		if !ok {
			bounded = false
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	cancelDeadline := func() {}
	if bounded {
		ctx, cancelDeadline = context.WithDeadline(ctx, latest)
	}
	var live atomic.Int64
	live.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, r := range batch {
		stops[i] = context.AfterFunc(r.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancelDeadline()
		cancel()
	}
}

// commit runs one batch and answers each of its callers.
func (c *committer) commit(batch []*pendingSettle) {
	ctx, release := c.batchContext(batch)
	defer release()
	c.batches.Add(1)
	c.settles.Add(int64(len(batch)))
	s := c.s
	err := s.write(ctx, func(tx *gorm.DB) error { return s.settleBatch(tx, batch, false) })
	if errors.Is(err, errBulkInsert) {
		// Rolled back: nothing of the batch was written. Again, each
		// insert in a savepoint of its own, so that the bad one fails
		// alone.
		c.oneByOne.Add(1)
		err = s.write(ctx, func(tx *gorm.DB) error { return s.settleBatch(tx, batch, true) })
	}
	for _, r := range batch {
		switch {
		case err == nil, r.found:
			// A stored invoice was read before COMMIT: what the read
			// found holds whether or not the read-only rest committed.
			r.finish(r.out, r.wrapErr(s))
		case errors.Is(err, domain.ErrOutcomeUnknown) && r.inserted:
			r.finish(domain.Invoice{}, s.wrap(r.ctx, "request settle", fmt.Errorf("invoice %s, in a batch of %d: %w", r.inv.Hash, len(batch), err)))
		case errors.Is(err, domain.ErrOutcomeUnknown):
			// Nothing of this request was in the transaction: its own
			// answer (a conflict, an insert rolled back) stands.
			r.finish(r.out, r.wrapErr(s))
		default:
			// Failed before COMMIT: nothing was written.
			r.finish(domain.Invoice{}, s.wrap(r.ctx, "request settle", fmt.Errorf("invoice %s, in a batch of %d: %w", r.inv.Hash, len(batch), err)))
		}
	}
}

func (r *pendingSettle) wrapErr(s *Store) error {
	if r.err == nil {
		return nil
	}
	return s.wrap(r.ctx, "request settle", r.err)
}

// settleBatch is the transaction of one batch, after the fencing check: it
// takes the sequence lock, reads which hashes are stored already (their
// requests are answered from the row: idempotent, or ErrConflict) and
// which sets are recorded as cancelled (ErrConflict), and
// inserts the others: in bulk, failing with errBulkInsert if that fails,
// or oneByOne, each in a savepoint. It fails only for what fails the whole
// batch; a request's own failure is its err.
func (s *Store) settleBatch(tx *gorm.DB, batch []*pendingSettle, oneByOne bool) error {
	for _, r := range batch {
		r.out, r.err, r.found, r.inserted = domain.Invoice{}, nil, false, false
	}
	if s.c.dialect() == DriverPostgres {
		// Before the read: writers of every process are serial from here
		// to COMMIT, so a hash read as missing stays missing until the
		// insert. SQLite's write lock, taken at BEGIN, does the same.
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", sequenceLockKey).Error; err != nil {
			return err
		}
	}
	hashes := make([][]byte, len(batch))
	for i, r := range batch {
		hashes[i] = r.inv.Hash[:]
	}
	stored, err := findInvoices(tx, hashes)
	if err != nil {
		return err
	}
	var fresh []*pendingSettle
	for _, r := range batch {
		if inv, ok := stored[r.inv.Hash]; ok {
			r.found = true
			r.out, r.err = sameSet(inv, r.inv)
			continue
		}
		fresh = append(fresh, r)
	}
	if len(fresh) == 0 {
		return nil
	}
	// A set recorded as cancelled, or a hash cancelled permanently, is not
	// stored (cancel.go). Read under the lock like the hashes, so the
	// answer holds whatever becomes of the transaction.
	refused, err := cancelledSets(tx, fresh)
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		kept := fresh[:0]
		for _, r := range fresh {
			if rerr, ok := refused[r]; ok {
				r.found, r.err = true, rerr
				continue
			}
			kept = append(kept, r)
		}
		fresh = kept
		if len(fresh) == 0 {
			return nil
		}
	}
	if !oneByOne {
		if err := s.insertInvoices(tx, fresh); err != nil {
			return fmt.Errorf("%w: %w", errBulkInsert, err)
		}
		return nil
	}
	return s.insertOneByOne(tx, fresh)
}

// insertOneByOne inserts each request of fresh in a savepoint of its own,
// so that one bad request (an HTLC stored with another invoice) fails
// alone.
func (s *Store) insertOneByOne(tx *gorm.DB, fresh []*pendingSettle) error {
	for _, r := range fresh {
		if err := tx.SavePoint("settle_one").Error; err != nil {
			return err
		}
		err := s.insertInvoices(tx, []*pendingSettle{r})
		if err == nil {
			if err := tx.Exec("RELEASE SAVEPOINT settle_one").Error; err != nil {
				return err
			}
			continue
		}
		r.out, r.inserted = domain.Invoice{}, false
		if rerr := tx.RollbackTo("settle_one").Error; rerr != nil {
			return rerr
		}
		r.err = err
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			// The hash was read as missing under the lock: the duplicate
			// is one of the HTLCs.
			r.err = fmt.Errorf("%w: an htlc of invoice %s is stored with another invoice", domain.ErrConflict, r.inv.Hash)
		}
	}
	return nil
}

// insertInvoices inserts the rows of rs and sets their out and inserted.
// The invoices go in one INSERT that returns each one's sequence number
// with its hash (a multi-row RETURNING need not list rows in VALUES order),
// the HTLCs in as few as the parameter limits allow.
func (s *Store) insertInvoices(tx *gorm.DB, rs []*pendingSettle) error {
	pg := s.c.dialect() == DriverPostgres
	var q strings.Builder
	q.WriteString("INSERT INTO invoices (hash, preimage, amount_msat, amount_paid_msat, set_id, status, expiry, settle_requested_at, finalized_at) VALUES ")
	args := make([]any, 0, 9*len(rs))
	var htlcs []htlcRow
	for i, r := range rs {
		row, hs := fromDomain(r.inv)
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for j := range 9 {
			if j > 0 {
				q.WriteString(", ")
			}
			if pg {
				q.WriteString("$" + strconv.Itoa(len(args)+j+1))
			} else {
				q.WriteByte('?')
			}
		}
		q.WriteByte(')')
		var finalized any
		if row.FinalizedAt != nil {
			finalized = *row.FinalizedAt
		}
		args = append(args, row.Hash, row.Preimage, row.AmountMsat, row.AmountPaidMsat, row.SetID, row.Status,
			row.Expiry, row.SettleRequestedAt, finalized)
		htlcs = append(htlcs, hs...)
	}
	q.WriteString(" RETURNING hash, sequence_number")
	bySeq, err := queryReturning(tx, q.String(), args)
	if err != nil {
		return err
	}
	if s.afterInvoiceInsert != nil {
		for _, r := range rs {
			s.afterInvoiceInsert(r.inv.Hash)
		}
	}
	for start := 0; start < len(htlcs); start += htlcInsertChunk {
		chunk := htlcs[start:min(start+htlcInsertChunk, len(htlcs))]
		if err := tx.Create(&chunk).Error; err != nil {
			return err
		}
	}
	logged := make([]domain.Invoice, 0, len(rs))
	for _, r := range rs {
		row, hs := fromDomain(r.inv)
		seq, ok := bySeq[string(row.Hash)]
		if !ok {
			return fmt.Errorf("insert of invoice %s returned no sequence number", r.inv.Hash)
		}
		row.SequenceNumber = seq
		out, err := toDomain(row, hs)
		if err != nil {
			return err
		}
		r.out, r.err, r.inserted = out, nil, true
		logged = append(logged, out)
	}
	// The settle requests enter the event log in the same transaction, in
	// sequence order, under the sequence lock settleBatch took (eventlog.go).
	return s.logSettleRequests(tx, logged)
}

// queryReturning runs the invoices INSERT on the transaction's connection
// itself, with the dialect's placeholders in q (gorm would expand the byte
// slices among args into lists), and returns the sequence number of each
// hash. Errors are translated as gorm translates them.
func queryReturning(tx *gorm.DB, q string, args []any) (map[string]int64, error) {
	translate := func(err error) error {
		if tr, ok := tx.Dialector.(gorm.ErrorTranslator); ok {
			return tr.Translate(err)
		}
		return err
	}
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]int64{}
	for rows.Next() {
		var hash []byte
		var seq int64
		if err := rows.Scan(&hash, &seq); err != nil {
			return nil, err
		}
		out[string(hash)] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// findInvoices reads the stored invoices among hashes, with their HTLCs.
func findInvoices(tx *gorm.DB, hashes [][]byte) (map[domain.PaymentHash]domain.Invoice, error) {
	var rows []invoiceRow
	if err := tx.Where("hash IN ?", hashes).Find(&rows).Error; err != nil {
		return nil, err
	}
	invs, err := withHTLCs(tx, rows)
	if err != nil {
		return nil, err
	}
	out := make(map[domain.PaymentHash]domain.Invoice, len(invs))
	for _, inv := range invs {
		out[inv.Hash] = inv
	}
	return out, nil
}
