package memstore

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

var _ ports.MacaroonRootKeyStore = (*Store)(nil)

// rootKey is the store's macaroon root key id.
type rootKey struct {
	mu  sync.Mutex
	id  uint64
	set bool
}

// MacaroonRootKeyID implements ports.MacaroonRootKeyStore.
func (s *Store) MacaroonRootKeyID(ctx context.Context) (uint64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, fmt.Errorf("macaroon root key id: %w", err)
	}
	s.rootKey.mu.Lock()
	defer s.rootKey.mu.Unlock()
	return s.rootKey.id, s.rootKey.set, nil
}

// RaiseMacaroonRootKeyID implements ports.MacaroonRootKeyStore.
func (s *Store) RaiseMacaroonRootKeyID(ctx context.Context, id uint64) (uint64, error) {
	if id > math.MaxInt64 {
		return 0, fmt.Errorf("%w: macaroon root key id %d above 2^63-1", domain.ErrInvalidArgument, id)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("raise macaroon root key id: %w", err)
	}
	s.rootKey.mu.Lock()
	defer s.rootKey.mu.Unlock()
	s.rootKey.id, s.rootKey.set = max(s.rootKey.id, id), true
	return s.rootKey.id, nil
}
