package memstore

import (
	"context"
	"sync"

	"github.com/lnmux/lnmux/ports"
)

// Leader is an in-process ports.Leader: the processes it elects one of are
// the callers of one Leader value. Held leadership is never lost.
type Leader struct {
	held chan struct{} // capacity 1: full while someone leads
}

var _ ports.Leader = (*Leader)(nil)

// NewLeader returns a lock nobody holds.
func NewLeader() *Leader { return &Leader{held: make(chan struct{}, 1)} }

// Acquire implements ports.Leader.
func (l *Leader) Acquire(ctx context.Context) (<-chan struct{}, func(), error) {
	select {
	case l.held <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	return make(chan struct{}), sync.OnceFunc(func() { <-l.held }), nil
}
