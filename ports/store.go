package ports

import (
	"context"
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
