package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/lnmux/lnmux/domain"
)

// errCancelsTODO: placeholder until the cancels table exists (branch
// cancels, in progress). Never merged to main in this state.
var errCancelsTODO = errors.New("sqlstore: recorded cancels not implemented yet")

// RecordCancel implements ports.InvoiceStore.
func (s *Store) RecordCancel(context.Context, domain.CancelRecord) error { return errCancelsTODO }

// ListCancels implements ports.InvoiceStore.
func (s *Store) ListCancels(context.Context, time.Time) ([]domain.CancelRecord, error) {
	return nil, nil
}
