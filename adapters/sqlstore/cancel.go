package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/lnmux/lnmux/domain"
)

// Recorded cancels (docs/store.md, "Recorded cancels"). RecordCancel and
// the settle batches both take the sequence lock (Postgres; SQLite's write
// lock, taken at BEGIN, plays its part) before they read: a settle request
// and a cancel of the same set are serial, so exactly one of them wins and
// the other sees it (the settle fails with domain.ErrConflict, the cancel
// with domain.ErrSettleRequested).

// cancelRow is a row of cancels.
type cancelRow struct {
	Hash        []byte    `gorm:"column:hash;primaryKey"`
	SetID       []byte    `gorm:"column:set_id;primaryKey"`
	Permanent   bool      `gorm:"column:permanent"`
	Expiry      time.Time `gorm:"column:expiry"`
	CancelledAt time.Time `gorm:"column:cancelled_at"`
}

func (cancelRow) TableName() string { return "cancels" }

// cancelHTLCRow is a row of cancel_htlcs.
type cancelHTLCRow struct {
	Hash       []byte `gorm:"column:hash;primaryKey"`
	SetID      []byte `gorm:"column:set_id;primaryKey"`
	NodePubkey []byte `gorm:"column:node_pubkey;primaryKey"`
	ChanID     int64  `gorm:"column:chan_id;primaryKey;autoIncrement:false"`
	HTLCID     int64  `gorm:"column:htlc_id;primaryKey;autoIncrement:false"`
	Until      int64  `gorm:"column:until_height"`
}

func (cancelHTLCRow) TableName() string { return "cancel_htlcs" }

// RecordCancel implements ports.InvoiceStore. In one fenced transaction
// that holds the sequence lock it refuses a stored hash, inserts the
// record or merges it into the stored one (permanent stays permanent, the
// later expiry and the union of the HTLCs, each with its later height, are
// kept; the first CancelledAt stays), and, when the hash becomes
// permanently cancelled, appends a "cancelled" event to the event log.
func (s *Store) RecordCancel(ctx context.Context, c domain.CancelRecord) error {
	err := s.write(ctx, func(tx *gorm.DB) error {
		if err := s.lockSequence(tx); err != nil {
			return err
		}
		var stored []int64
		if err := tx.Model(&invoiceRow{}).Where("hash = ?", c.Hash[:]).Limit(1).Pluck("sequence_number", &stored).Error; err != nil {
			return err
		}
		if len(stored) > 0 {
			return fmt.Errorf("%w: invoice %s is stored", domain.ErrSettleRequested, c.Hash)
		}
		var existing []cancelRow
		if err := tx.Where("hash = ?", c.Hash[:]).Find(&existing).Error; err != nil {
			return err
		}
		wasPermanent := false
		var cur *cancelRow
		for i, r := range existing {
			wasPermanent = wasPermanent || r.Permanent
			if string(r.SetID) == string(c.SetID[:]) {
				cur = &existing[i]
			}
		}
		if err := upsertCancel(tx, c, cur); err != nil {
			return err
		}
		if err := mergeCancelHTLCs(tx, c, cur != nil); err != nil {
			return err
		}
		if !c.Permanent || wasPermanent {
			return nil
		}
		ev := eventRow{Hash: c.Hash[:], Status: domain.StatusCancelled.String(), CreatedAt: dbTime(c.CancelledAt)}
		if c.SetID != (domain.SetID{}) {
			ev.SetID = c.SetID[:]
		}
		return s.appendEvents(tx, []eventRow{ev})
	})
	if err != nil {
		return s.wrap(ctx, "record cancel", err)
	}
	return nil
}

// upsertCancel inserts c's row, or merges c into cur, the stored row of
// the same hash and set id.
func upsertCancel(tx *gorm.DB, c domain.CancelRecord, cur *cancelRow) error {
	if cur == nil {
		row := cancelRow{
			Hash: c.Hash[:], SetID: c.SetID[:], Permanent: c.Permanent,
			Expiry: dbTime(c.Expiry), CancelledAt: dbTime(c.CancelledAt),
		}
		return tx.Create(&row).Error
	}
	changes := map[string]any{}
	if c.Permanent && !cur.Permanent {
		changes["permanent"] = true
	}
	if e := dbTime(c.Expiry); e.After(cur.Expiry) {
		changes["expiry"] = e
	}
	if len(changes) == 0 {
		return nil
	}
	return tx.Model(&cancelRow{}).Where("hash = ? AND set_id = ?", c.Hash[:], c.SetID[:]).Updates(changes).Error
}

// mergeCancelHTLCs stores the HTLCs of c: all of them for a new record;
// for a stored one those it lacks, and a later height for those it has.
func mergeCancelHTLCs(tx *gorm.DB, c domain.CancelRecord, stored bool) error {
	have := map[domain.CircuitKey]uint32{}
	if stored {
		var rows []cancelHTLCRow
		if err := tx.Where("hash = ? AND set_id = ?", c.Hash[:], c.SetID[:]).Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			h, err := cancelHTLCToDomain(r)
			if err != nil {
				return err
			}
			have[h.Circuit] = h.Until
		}
	}
	var fresh []cancelHTLCRow
	seen := map[domain.CircuitKey]int{}
	for _, h := range c.HTLCs {
		if i, dup := seen[h.Circuit]; dup {
			fresh[i].Until = max(fresh[i].Until, int64(h.Until))
			continue
		}
		until, ok := have[h.Circuit]
		if !ok {
			seen[h.Circuit] = len(fresh)
			fresh = append(fresh, cancelHTLCFromDomain(c.Hash, c.SetID, h))
			continue
		}
		if h.Until <= until {
			continue
		}
		have[h.Circuit] = h.Until
		r := cancelHTLCFromDomain(c.Hash, c.SetID, h)
		err := tx.Model(&cancelHTLCRow{}).
			Where("hash = ? AND set_id = ? AND node_pubkey = ? AND chan_id = ? AND htlc_id = ?", r.Hash, r.SetID, r.NodePubkey, r.ChanID, r.HTLCID).
			Update("until_height", r.Until).Error
		if err != nil {
			return err
		}
	}
	for start := 0; start < len(fresh); start += htlcInsertChunk {
		chunk := fresh[start:min(start+htlcInsertChunk, len(fresh))]
		if err := tx.Create(&chunk).Error; err != nil {
			return err
		}
	}
	return nil
}

func cancelHTLCFromDomain(hash domain.PaymentHash, set domain.SetID, h domain.CancelledHTLC) cancelHTLCRow {
	return cancelHTLCRow{
		Hash:       hash[:],
		SetID:      set[:],
		NodePubkey: h.Circuit.Node[:],
		ChanID:     int64(h.Circuit.Chan), //nolint:gosec // Postgres has no unsigned 64-bit column: it holds the bit pattern, which converts back unchanged
		HTLCID:     int64(h.Circuit.HTLC), //nolint:gosec // Postgres has no unsigned 64-bit column: it holds the bit pattern, which converts back unchanged
		Until:      int64(h.Until),
	}
}

func cancelHTLCToDomain(r cancelHTLCRow) (domain.CancelledHTLC, error) {
	var h domain.CancelledHTLC
	if err := copyExact(h.Circuit.Node[:], r.NodePubkey, "node_pubkey"); err != nil {
		return h, err
	}
	if r.Until < 0 || r.Until > int64(^uint32(0)) {
		return h, fmt.Errorf("corrupt row: until_height %d", r.Until)
	}
	h.Circuit.Chan = uint64(r.ChanID) //nolint:gosec // Postgres has no unsigned 64-bit column: it holds the bit pattern, which converts back unchanged
	h.Circuit.HTLC = uint64(r.HTLCID) //nolint:gosec // Postgres has no unsigned 64-bit column: it holds the bit pattern, which converts back unchanged
	h.Until = uint32(r.Until)
	return h, nil
}

// ListCancels implements ports.InvoiceStore: the records whose expiry is
// after t, in (hash, set id) order, each with its HTLCs in circuit order.
func (s *Store) ListCancels(ctx context.Context, t time.Time) ([]domain.CancelRecord, error) {
	var out []domain.CancelRecord
	err := s.readOnly(ctx, func(tx *gorm.DB) error {
		out = nil
		var rows []cancelRow
		if err := tx.Where("expiry > ?", dbTime(t)).Order("hash").Order("set_id").Find(&rows).Error; err != nil {
			return err
		}
		type key struct{ hash, set string }
		idx := make(map[key]int, len(rows))
		for _, r := range rows {
			var c domain.CancelRecord
			if err := copyExact(c.Hash[:], r.Hash, "hash"); err != nil {
				return err
			}
			if err := copyExact(c.SetID[:], r.SetID, "set_id"); err != nil {
				return err
			}
			c.Permanent = r.Permanent
			c.Expiry = r.Expiry.UTC()
			c.CancelledAt = r.CancelledAt.UTC()
			idx[key{string(r.Hash), string(r.SetID)}] = len(out)
			out = append(out, c)
		}
		for start := 0; start < len(rows); start += htlcQueryChunk {
			chunk := rows[start:min(start+htlcQueryChunk, len(rows))]
			hashes := make([][]byte, len(chunk))
			for i, r := range chunk {
				hashes[i] = r.Hash
			}
			var hs []cancelHTLCRow
			if err := tx.Where("hash IN ?", hashes).Find(&hs).Error; err != nil {
				return err
			}
			for _, r := range hs {
				i, ok := idx[key{string(r.Hash), string(r.SetID)}]
				if !ok {
					// A record of the hash that is not listed (expired).
					continue
				}
				h, err := cancelHTLCToDomain(r)
				if err != nil {
					return err
				}
				out[i].HTLCs = append(out[i].HTLCs, h)
			}
		}
		for i := range out {
			slices.SortFunc(out[i].HTLCs, func(a, b domain.CancelledHTLC) int { return a.Circuit.Compare(b.Circuit) })
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(ctx, "list cancels", err)
	}
	return out, nil
}

// cancelledSets reads which of the settle requests of fresh are refused by
// a recorded cancel: their set, or their hash permanently, was cancelled.
// The transaction holds the sequence lock (settleBatch).
func cancelledSets(tx *gorm.DB, fresh []*pendingSettle) (map[*pendingSettle]error, error) {
	hashes := make([][]byte, len(fresh))
	for i, r := range fresh {
		hashes[i] = r.inv.Hash[:]
	}
	var rows []cancelRow
	if err := tx.Select("hash", "set_id", "permanent").Where("hash IN ?", hashes).Find(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	out := map[*pendingSettle]error{}
	for _, r := range fresh {
		for _, c := range rows {
			if string(c.Hash) != string(r.inv.Hash[:]) || !c.Permanent && string(c.SetID) != string(r.inv.SetID[:]) {
				continue
			}
			var set domain.SetID
			copy(set[:], c.SetID)
			what := "set " + set.String() + " was cancelled"
			if c.Permanent {
				what = "the invoice was cancelled permanently"
			}
			out[r] = fmt.Errorf("%w: invoice %s: %s", domain.ErrConflict, r.inv.Hash, what)
			break
		}
	}
	return out, nil
}
