package sqlstore

import (
	"fmt"
	"slices"
	"time"

	"github.com/lnmux/lnmux/domain"
)

// invoiceRow is a row of the invoices table. It mirrors the SQL of the
// migrations, which own the schema; the tags only tell gorm the names.
type invoiceRow struct {
	Hash              []byte     `gorm:"column:hash;primaryKey"`
	Preimage          []byte     `gorm:"column:preimage"`
	AmountMsat        int64      `gorm:"column:amount_msat"`
	AmountPaidMsat    int64      `gorm:"column:amount_paid_msat"`
	SetID             []byte     `gorm:"column:set_id"`
	Status            string     `gorm:"column:status"`
	Expiry            time.Time  `gorm:"column:expiry"`
	SettleRequestedAt time.Time  `gorm:"column:settle_requested_at"`
	FinalizedAt       *time.Time `gorm:"column:finalized_at"`
	// SequenceNumber is left out of INSERTs and read back with RETURNING:
	// the database assigns it.
	SequenceNumber int64 `gorm:"column:sequence_number;autoIncrement"`
}

func (invoiceRow) TableName() string { return "invoices" }

// htlcRow is a row of the htlcs table.
type htlcRow struct {
	InvoiceHash []byte `gorm:"column:invoice_hash"`
	NodePubkey  []byte `gorm:"column:node_pubkey;primaryKey"`
	// ChanID and HTLCID hold the bits of lnd's uint64 ids.
	ChanID     int64  `gorm:"column:chan_id;primaryKey;autoIncrement:false"`
	HTLCID     int64  `gorm:"column:htlc_id;primaryKey;autoIncrement:false"`
	AmountMsat int64  `gorm:"column:amount_msat"`
	Status     string `gorm:"column:status"`
}

func (htlcRow) TableName() string { return "htlcs" }

// dbTime is how a time is stored: UTC, so that SQLite's text timestamps sort
// in time order, and to the microsecond, the precision of Postgres, so that
// both drivers give back the same value.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// fromDomain converts an invoice to its rows. The sequence number is the
// store's to assign, so it is not copied.
func fromDomain(inv domain.Invoice) (invoiceRow, []htlcRow) {
	row := invoiceRow{
		Hash:              inv.Hash[:],
		Preimage:          inv.Preimage[:],
		AmountMsat:        int64(inv.Amount),
		AmountPaidMsat:    int64(inv.AmountPaid),
		SetID:             inv.SetID[:],
		Status:            inv.Status.String(),
		Expiry:            dbTime(inv.Expiry),
		SettleRequestedAt: dbTime(inv.SettleRequestedAt),
	}
	if !inv.FinalizedAt.IsZero() {
		t := dbTime(inv.FinalizedAt)
		row.FinalizedAt = &t
	}
	htlcs := make([]htlcRow, len(inv.HTLCs))
	for i, h := range inv.HTLCs {
		htlcs[i] = htlcFromDomain(inv.Hash, h)
	}
	return row, htlcs
}

func htlcFromDomain(hash domain.PaymentHash, h domain.SettledHTLC) htlcRow {
	return htlcRow{
		InvoiceHash: hash[:],
		NodePubkey:  h.Circuit.Node[:],
		ChanID:      int64(h.Circuit.Chan), //nolint:gosec // Postgres has no unsigned 64-bit column: it holds the bit pattern, which converts back unchanged
		HTLCID:      int64(h.Circuit.HTLC), //nolint:gosec // Postgres has no unsigned 64-bit column: it holds the bit pattern, which converts back unchanged
		AmountMsat:  int64(h.Amount),
		Status:      h.Status.String(),
	}
}

// toDomain converts rows to an invoice, with its HTLCs in circuit key order.
func toDomain(row invoiceRow, htlcs []htlcRow) (domain.Invoice, error) {
	var inv domain.Invoice
	if err := copyExact(inv.Hash[:], row.Hash, "hash"); err != nil {
		return inv, err
	}
	if err := copyExact(inv.Preimage[:], row.Preimage, "preimage"); err != nil {
		return inv, err
	}
	if err := copyExact(inv.SetID[:], row.SetID, "set_id"); err != nil {
		return inv, err
	}
	st, err := domain.ParseInvoiceStatus(row.Status)
	if err != nil {
		return inv, fmt.Errorf("corrupt invoice row %s: %w", inv.Hash, err)
	}
	inv.Status = st
	inv.Amount = domain.Msat(row.AmountMsat)
	inv.AmountPaid = domain.Msat(row.AmountPaidMsat)
	inv.Expiry = row.Expiry.UTC()
	inv.SettleRequestedAt = row.SettleRequestedAt.UTC()
	if row.FinalizedAt != nil {
		inv.FinalizedAt = row.FinalizedAt.UTC()
	}
	inv.Sequence = uint64(row.SequenceNumber) //nolint:gosec // sequence numbers and epochs are positive bigints
	inv.HTLCs = make([]domain.SettledHTLC, len(htlcs))
	for i, h := range htlcs {
		if inv.HTLCs[i], err = htlcToDomain(h); err != nil {
			return inv, fmt.Errorf("corrupt htlc row of invoice %s: %w", inv.Hash, err)
		}
	}
	slices.SortFunc(inv.HTLCs, func(a, b domain.SettledHTLC) int { return a.Circuit.Compare(b.Circuit) })
	return inv, nil
}

func htlcToDomain(row htlcRow) (domain.SettledHTLC, error) {
	var h domain.SettledHTLC
	if err := copyExact(h.Circuit.Node[:], row.NodePubkey, "node_pubkey"); err != nil {
		return h, err
	}
	st, err := domain.ParseHTLCStatus(row.Status)
	if err != nil {
		return h, err
	}
	h.Circuit.Chan = uint64(row.ChanID) //nolint:gosec // Postgres has no unsigned 64-bit column: it holds the bit pattern, which converts back unchanged
	h.Circuit.HTLC = uint64(row.HTLCID) //nolint:gosec // Postgres has no unsigned 64-bit column: it holds the bit pattern, which converts back unchanged
	h.Amount = domain.Msat(row.AmountMsat)
	h.Status = st
	return h, nil
}

func copyExact(dst, src []byte, column string) error {
	if len(src) != len(dst) {
		return fmt.Errorf("corrupt row: column %s has %d bytes, want %d", column, len(src), len(dst))
	}
	copy(dst, src)
	return nil
}
