package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/lnmux/lnmux/domain"
)

// Adopting a database of the original lnmux (bottlepay/lnmux): its tables
// live in the schema "lnmux" and go-pg/migrations records its versions in
// lnmux.migrations; version 4 is its last schema. `migrate up` copies every
// invoice and HTLC into lnmuxd's tables (in the connection's current
// schema), keeping the original's sequence numbers so that clients paging
// with ListInvoices carry on where they were. The original's tables are left
// as they were. A settle-requested invoice comes over with its HTLCs
// pending, so lnmuxd's recovery settles them again after start and records
// lnd's final word, as for its own. docs/compatibility.md has the details.

// originalSchema is the original lnmux's Postgres schema.
const originalSchema = "lnmux"

// originalSchemaVersion is the original's last migration.
const originalSchemaVersion = 4

// adoptVersion is the migration that adopts an original database. It must
// come after every migration that shapes the invoices and htlcs tables
// as written below.
const adoptVersion = 3

// goMigrations are the migrations written in Go, by dialect. The original
// ran on Postgres only: on SQLite adoption is a no-op that keeps the two
// schema histories alike.
var goMigrations = map[string][]migration{
	DriverPostgres: {{version: adoptVersion, name: "adopt_original_lnmux", run: adoptOriginal}},
	DriverSQLite:   {{version: adoptVersion, name: "adopt_original_lnmux", run: func(*gorm.DB) error { return nil }}},
}

// ErrOriginalSchema: the original lnmux's database cannot be adopted as it
// is.
var ErrOriginalSchema = errors.New("cannot adopt the original lnmux database")

// hasOriginal reports whether the database has the original lnmux's tables.
func hasOriginal(tx *gorm.DB) (bool, error) {
	var n int64
	err := tx.Raw(`SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = ? AND tablename IN ('invoices', 'htlcs', 'migrations')`,
		originalSchema).Scan(&n).Error
	return n == 3, err
}

// initForOriginal runs Init on a Postgres database that has the original
// lnmux's schema and not yet ours, so that `migrate up` alone adopts it.
func (m *Migrator) initForOriginal(ctx context.Context) error {
	if m.c.dialect() != DriverPostgres {
		return nil
	}
	ok, err := hasMigrationsTable(ctx, m.c)
	if err != nil || ok {
		return err
	}
	orig, err := hasOriginal(m.c.db.WithContext(ctx))
	if err != nil {
		return m.c.wrap("look for the original lnmux schema", err)
	}
	if !orig {
		return nil
	}
	return m.Init(ctx)
}

type originalInvoice struct {
	Hash              []byte
	Preimage          []byte
	AmountMsat        int64
	Status            string
	SettleRequestedAt *time.Time
	FinalizedAt       *time.Time
	SequenceNum       int64
}

type originalHTLC struct {
	Hash       []byte
	Node       []byte
	ChanID     int64
	HTLCID     int64
	AmountMsat int64
	Status     string
}

// Status names of the original (its invoice_status and htlc_status enums).
var (
	originalInvoiceStatus = map[string]domain.InvoiceStatus{
		"SETTLE_REQUESTED": domain.StatusSettleRequested,
		"SETTLED":          domain.StatusSettled,
		"FAILED":           domain.StatusFailed,
	}
	originalHTLCStatus = map[string]domain.HTLCStatus{
		"SETTLE_REQUESTED": domain.HTLCPending,
		"SETTLED":          domain.HTLCSettled,
		"FAILED":           domain.HTLCFailed,
	}
)

// adoptOriginal is the adoption migration. Without an original schema it
// does nothing.
func adoptOriginal(tx *gorm.DB) error {
	orig, err := hasOriginal(tx)
	if err != nil || !orig {
		return err
	}
	var current string
	if err := tx.Raw("SELECT current_schema()").Scan(&current).Error; err != nil {
		return err
	}
	if current == originalSchema {
		return fmt.Errorf("%w: lnmuxd's tables would go into the original's schema %q (the search_path of this connection starts with it, "+
			"typically because the database user is named %q): connect with another search_path, e.g. add options=-csearch_path%%3Dpublic to the DSN",
			ErrOriginalSchema, originalSchema, originalSchema)
	}
	var version int64
	err = tx.Raw("SELECT version FROM lnmux.migrations ORDER BY id DESC LIMIT 1").Scan(&version).Error
	if err != nil {
		return fmt.Errorf("%w: read lnmux.migrations: %w", ErrOriginalSchema, err)
	}
	if version != originalSchemaVersion {
		return fmt.Errorf("%w: its schema is at version %d, adoption needs version %d: run the original's migrations to the end first",
			ErrOriginalSchema, version, originalSchemaVersion)
	}
	var ours int64
	if err := tx.Raw("SELECT count(*) FROM invoices").Scan(&ours).Error; err != nil {
		return err
	}
	if ours > 0 {
		return fmt.Errorf("%w: lnmuxd's invoices table already holds %d invoices", ErrOriginalSchema, ours)
	}

	var invs []originalInvoice
	err = tx.Raw(`SELECT hash, preimage, amount_msat, status::text AS status, settle_requested_at, finalized_at, sequence_num
FROM lnmux.invoices ORDER BY sequence_num`).Scan(&invs).Error
	if err != nil {
		return fmt.Errorf("read lnmux.invoices: %w", err)
	}
	var htlcs []originalHTLC
	err = tx.Raw(`SELECT hash, node, chan_id, htlc_id, amount_msat, status::text AS status FROM lnmux.htlcs`).Scan(&htlcs).Error
	if err != nil {
		return fmt.Errorf("read lnmux.htlcs: %w", err)
	}
	byHash := make(map[domain.PaymentHash][]originalHTLC)
	for _, h := range htlcs {
		var hash domain.PaymentHash
		if err := copyExact(hash[:], h.Hash, "lnmux.htlcs.hash"); err != nil {
			return err
		}
		byHash[hash] = append(byHash[hash], h)
	}

	now := time.Now()
	var maxSeq int64
	for _, o := range invs {
		inv, err := adoptedInvoice(o, byHash, now)
		if err != nil {
			return err
		}
		row, rows := fromDomain(inv)
		// OVERRIDING SYSTEM VALUE: the sequence number is the original's.
		err = tx.Exec(`INSERT INTO invoices (hash, preimage, amount_msat, amount_paid_msat, set_id, status, expiry,
    settle_requested_at, finalized_at, sequence_number)
OVERRIDING SYSTEM VALUE VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			bytea(row.Hash), bytea(row.Preimage), row.AmountMsat, row.AmountPaidMsat, bytea(row.SetID), row.Status, row.Expiry,
			row.SettleRequestedAt, row.FinalizedAt, o.SequenceNum).Error
		if err != nil {
			return fmt.Errorf("adopt invoice %s: %w", inv.Hash, err)
		}
		for _, h := range rows {
			err = tx.Exec(`INSERT INTO htlcs (invoice_hash, node_pubkey, chan_id, htlc_id, amount_msat, status) VALUES (?, ?, ?, ?, ?, ?)`,
				bytea(h.InvoiceHash), bytea(h.NodePubkey), h.ChanID, h.HTLCID, h.AmountMsat, h.Status).Error
			if err != nil {
				return fmt.Errorf("adopt htlc of invoice %s: %w", inv.Hash, err)
			}
		}
		maxSeq = max(maxSeq, o.SequenceNum)
	}
	if maxSeq > 0 {
		// New invoices continue after the original's.
		err = tx.Exec(`SELECT setval(pg_get_serial_sequence('invoices', 'sequence_number'), ?)`, maxSeq).Error
		if err != nil {
			return fmt.Errorf("continue the invoice sequence: %w", err)
		}
	}
	return nil
}

// bytea passes a []byte to a raw gorm statement as one value (gorm expands
// plain slices into lists).
type bytea []byte

// Value implements driver.Valuer.
func (b bytea) Value() (driver.Value, error) { return []byte(b), nil }

// adoptedInvoice converts an original invoice and its HTLCs.
func adoptedInvoice(o originalInvoice, byHash map[domain.PaymentHash][]originalHTLC, now time.Time) (domain.Invoice, error) {
	var inv domain.Invoice
	if err := copyExact(inv.Hash[:], o.Hash, "lnmux.invoices.hash"); err != nil {
		return inv, err
	}
	if err := copyExact(inv.Preimage[:], o.Preimage, "lnmux.invoices.preimage"); err != nil {
		return inv, err
	}
	if inv.Preimage.Hash() != inv.Hash {
		return inv, fmt.Errorf("%w: invoice %s: its preimage does not hash to it", ErrOriginalSchema, inv.Hash)
	}
	st, ok := originalInvoiceStatus[o.Status]
	if !ok {
		return inv, fmt.Errorf("%w: invoice %s has status %q", ErrOriginalSchema, inv.Hash, o.Status)
	}
	inv.Status = st
	inv.Amount = domain.Msat(o.AmountMsat)
	inv.Sequence = uint64(o.SequenceNum) //nolint:gosec // sequence numbers and epochs are positive bigints
	switch {
	case o.SettleRequestedAt != nil:
		inv.SettleRequestedAt = *o.SettleRequestedAt
	case o.FinalizedAt != nil:
		inv.SettleRequestedAt = *o.FinalizedAt
	default:
		inv.SettleRequestedAt = now
	}
	if o.FinalizedAt != nil {
		inv.FinalizedAt = *o.FinalizedAt
	} else if st.IsFinal() {
		inv.FinalizedAt = inv.SettleRequestedAt
	}
	// The original stored no expiry. Keep the hash known as paid for as long
	// as any invoice lnmuxd accepts can live, counted from the settle
	// request, which comes after the invoice was made.
	inv.Expiry = inv.SettleRequestedAt.Add(domain.MaxInvoiceExpiry)

	keys := make([]domain.CircuitKey, 0, len(byHash[inv.Hash]))
	for _, h := range byHash[inv.Hash] {
		var c domain.CircuitKey
		if err := copyExact(c.Node[:], h.Node, "lnmux.htlcs.node"); err != nil {
			return inv, err
		}
		c.Chan, c.HTLC = uint64(h.ChanID), uint64(h.HTLCID) //nolint:gosec // Postgres has no unsigned 64-bit column: it holds the bit pattern, which converts back unchanged
		hst, ok := originalHTLCStatus[h.Status]
		if !ok {
			return inv, fmt.Errorf("%w: htlc %s of invoice %s has status %q", ErrOriginalSchema, c, inv.Hash, h.Status)
		}
		inv.HTLCs = append(inv.HTLCs, domain.SettledHTLC{Circuit: c, Amount: domain.Msat(h.AmountMsat), Status: hst})
		inv.AmountPaid += domain.Msat(h.AmountMsat)
		keys = append(keys, c)
	}
	// A final invoice with an HTLC lnd has not finalised goes back to
	// settle-requested: lnmuxd settles that HTLC again and decides the
	// final status from lnd's word (I2, I3).
	if st.IsFinal() && slices.ContainsFunc(inv.HTLCs, func(h domain.SettledHTLC) bool { return !h.Status.IsFinal() }) {
		inv.Status, inv.FinalizedAt = domain.StatusSettleRequested, time.Time{}
	}
	if len(keys) == 0 {
		return inv, fmt.Errorf("%w: invoice %s has no htlcs", ErrOriginalSchema, inv.Hash)
	}
	inv.SetID = domain.NewSetID(keys)
	return inv, nil
}
