package sqlstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"gorm.io/gorm"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

var _ ports.MacaroonRootKeyStore = (*Store)(nil)

const selectRootKeyID = "SELECT key_id FROM macaroon_root_key WHERE id = 1"

// MacaroonRootKeyID implements ports.MacaroonRootKeyStore.
func (s *Store) MacaroonRootKeyID(ctx context.Context) (uint64, bool, error) {
	var ids []int64
	err := s.retryBusy(ctx, func() error {
		ids = ids[:0]
		return s.c.db.WithContext(ctx).Raw(selectRootKeyID).Scan(&ids).Error
	})
	if err != nil {
		return 0, false, s.wrap(ctx, "read macaroon root key id", err)
	}
	if len(ids) == 0 {
		return 0, false, nil
	}
	return uint64(ids[0]), true, nil //nolint:gosec // CHECK (key_id >= 0)
}

// RaiseMacaroonRootKeyID implements ports.MacaroonRootKeyStore with one
// upsert that keeps the greater id, so that concurrent raises need no
// lock of their own. Not fenced (see the port).
func (s *Store) RaiseMacaroonRootKeyID(ctx context.Context, id uint64) (uint64, error) {
	if id > math.MaxInt64 {
		return 0, fmt.Errorf("%w: macaroon root key id %d above 2^63-1", domain.ErrInvalidArgument, id)
	}
	greatest := "GREATEST"
	if s.c.dialect() == DriverSQLite {
		greatest = "MAX" // with two arguments, SQLite's scalar max
	}
	upsert := `INSERT INTO macaroon_root_key (id, key_id, updated_at) VALUES (1, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    key_id = ` + greatest + `(macaroon_root_key.key_id, excluded.key_id),
    updated_at = CASE WHEN excluded.key_id > macaroon_root_key.key_id
        THEN excluded.updated_at ELSE macaroon_root_key.updated_at END`
	var ids []int64
	// Repeating it after SQLITE_BUSY is harmless: raising is idempotent.
	err := s.retryBusy(ctx, func() error {
		ids = ids[:0]
		return s.c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(upsert, int64(id), time.Now().UTC().Truncate(time.Microsecond)).Error; err != nil { //nolint:gosec // id ≤ MaxInt64, checked above
				return err
			}
			return tx.Raw(selectRootKeyID).Scan(&ids).Error
		})
	})
	if err == nil && len(ids) != 1 {
		err = fmt.Errorf("read back %d rows", len(ids))
	}
	if err != nil {
		return 0, s.wrap(ctx, "raise macaroon root key id", err)
	}
	return uint64(ids[0]), nil //nolint:gosec // CHECK (key_id >= 0)
}
