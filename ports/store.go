package ports

import (
	"context"
	"errors"
	"time"

	"github.com/lnmux/lnmux/domain"
)

// InvoiceStore keeps the invoices whose settlement was requested.
//
// Errors of the writes (RequestSettle, Update): domain.ErrNotLeader when
// another process took the leader lock since this one's (nothing was
// written); an error wrapping domain.ErrOutcomeUnknown when the write may
// have committed all the same (read it back with Get); any other error
// means nothing was written. Every call returns once its ctx is done.
type InvoiceStore interface {
	// RequestSettle stores inv (status SettleRequested) and its HTLCs in one
	// transaction. If the hash is stored already with the same set id it
	// returns the stored invoice: the call is idempotent. With another set
	// id it fails with domain.ErrConflict.
	RequestSettle(ctx context.Context, inv domain.Invoice) (domain.Invoice, error)
	// Get returns a stored invoice with its HTLCs, or domain.ErrInvoiceNotFound.
	Get(ctx context.Context, hash domain.PaymentHash) (domain.Invoice, error)
	// Update runs fn on the stored invoice inside a transaction with the row
	// locked and stores what fn left, unless fn fails.
	Update(ctx context.Context, hash domain.PaymentHash, fn func(*domain.Invoice) error) (domain.Invoice, error)
	// ListPending returns every invoice still SettleRequested, with HTLCs.
	ListPending(ctx context.Context) ([]domain.Invoice, error)
	// ListUnexpired returns the hashes and expiries of stored invoices that
	// expire after t: the ones whose HTLCs could still arrive.
	ListUnexpired(ctx context.Context, t time.Time) ([]StoredExpiry, error)
	// List returns at most limit invoices with sequence ≥ from, in sequence
	// order, with HTLCs.
	List(ctx context.Context, from uint64, limit int) ([]domain.Invoice, error)
	// RecordCancel stores an application's cancel (fenced like the other
	// writes). It is idempotent: recording the same hash and set id again
	// succeeds and merges into the stored record (a permanent record stays
	// permanent; the later Expiry, the first CancelledAt and the union of
	// the HTLCs, each with its later Until, are kept). The first permanent
	// record of a hash appends a Cancelled event to the event log
	// (InvoiceEventLog), in the same transaction. It fails with
	// domain.ErrSettleRequested if the hash is stored (a settlement was
	// requested: nothing is recorded). Once a set id of a hash is recorded
	// as cancelled, RequestSettle of that set fails with domain.ErrConflict,
	// and once a hash is cancelled permanently, RequestSettle of any set
	// of it does.
	RecordCancel(ctx context.Context, c domain.CancelRecord) error
	// ListCancels returns the cancel records whose Expiry is after t, with
	// their HTLCs, in (hash, set id) order.
	ListCancels(ctx context.Context, t time.Time) ([]domain.CancelRecord, error)
}

// Leader guards invariant I5: one active lnmux per database.
type Leader interface {
	// Acquire blocks until this process holds the lock or ctx is done. The
	// returned lost channel closes if the lock is lost; release gives it up.
	Acquire(ctx context.Context) (lost <-chan struct{}, release func(), err error)
}

// MacaroonRootKeyStore keeps the id of the API's macaroon root key in the
// database, so that every replica reads the same one and neither a restart
// nor a lost data directory can undo a rotation (docs/authentication.md,
// "Root key"). The id never goes back. Its writes are not fenced: a
// rotation comes from a process that does not lead, and raising a counter
// that only grows cannot conflict with a leader.
type MacaroonRootKeyStore interface {
	// MacaroonRootKeyID returns the stored id; ok is false when none was
	// ever stored.
	MacaroonRootKeyID(ctx context.Context) (id uint64, ok bool, err error)
	// RaiseMacaroonRootKeyID stores max(stored, id), creating the record
	// if there is none, and returns what is stored. id above 2^63-1 fails
	// with domain.ErrInvalidArgument.
	RaiseMacaroonRootKeyID(ctx context.Context, id uint64) (uint64, error)
}

// StoredExpiry is when a stored invoice stops being payable.
type StoredExpiry struct {
	Hash   domain.PaymentHash
	Expiry time.Time
}

// InvoiceEvent is one entry of the store's event log: one change of a
// stored invoice's status (docs/api.md, "The event log"). Every change is
// appended in the transaction that makes it, so the log holds exactly the
// committed changes. The API also uses the type for the sets waiting for a
// decision, which are not stored: those have Status domain.StatusAccepted
// and Cursor 0.
type InvoiceEvent struct {
	// Cursor is the event's position in the log: positive, increasing in
	// the order the changes committed, never reused. Numbers may be
	// skipped (a transaction that rolled back).
	Cursor uint64
	Hash   domain.PaymentHash
	// Status is the invoice's status after the change: SettleRequested,
	// Settled or Failed; or Cancelled for a permanent cancel, which has no
	// invoice (Amount, AmountPaid and Sequence are zero, SetID is the
	// cancelled set or zero, At the time of the cancel).
	Status domain.InvoiceStatus
	SetID  domain.SetID
	// Amount is the invoice amount (zero: any amount), AmountPaid the sum
	// of the set.
	Amount     domain.Msat
	AmountPaid domain.Msat
	// Sequence is the invoice's sequence number (ListInvoices); 0 for an
	// accepted set.
	Sequence uint64
	// At is when the change was made: the invoice's SettleRequestedAt or
	// FinalizedAt; zero for an accepted set.
	At time.Time
}

// InvoiceEventLog is the log of stored status changes, read by cursor. The
// persistent stores implement it beside InvoiceStore (sqlstore, memstore;
// held by ports/storetest).
type InvoiceEventLog interface {
	// ListEvents returns at most limit events with a cursor above after,
	// in cursor order. The log has no holes that fill later: once a reader
	// saw cursor n, no event below n appears afterwards, also with
	// concurrent writers. A negative limit is domain.ErrInvalidArgument;
	// zero returns nothing.
	ListEvents(ctx context.Context, after uint64, limit int) ([]InvoiceEvent, error)
}

// ErrNoEventLog: the store keeps no event log (a test double).
var ErrNoEventLog = errors.New("the invoice store keeps no event log")
