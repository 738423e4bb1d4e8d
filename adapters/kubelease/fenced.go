package kubelease

import (
	"context"
	"fmt"

	"github.com/lnmux/lnmux/ports"
)

// EpochClaimer takes the next fencing epoch of the database and fences its
// store with it: sqlstore.Store.ClaimEpoch.
type EpochClaimer interface {
	ClaimEpoch(ctx context.Context) (uint64, error)
}

// Fenced is the leader lock of type kubernetes: the Lease decides who
// leads, the database's epoch keeps a leader that lost the Lease without
// noticing from writing. Each Acquire takes the Lease, then claims the
// epoch, which waits for the previous leader's writes in flight and makes
// every later one fail with domain.ErrNotLeader (docs/kubernetes.md). If
// the claim fails, the Lease is released and the error returned.
func Fenced(e *Elector, s EpochClaimer) ports.Leader { return fenced{e: e, s: s} }

type fenced struct {
	e *Elector
	s EpochClaimer
}

func (f fenced) Acquire(ctx context.Context) (<-chan struct{}, func(), error) {
	lost, release, err := f.e.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := f.s.ClaimEpoch(ctx); err != nil {
		release()
		return nil, nil, fmt.Errorf("kubernetes lease %s held, but the database fencing epoch could not be claimed: %w", f.e.describe(), err)
	}
	select {
	case <-lost:
		// The claim took longer than the Lease lasted: another leader
		// may have claimed after it. Start over rather than lead on a
		// lost Lease.
		release()
		return nil, nil, fmt.Errorf("kubernetes lease %s lost while claiming the database fencing epoch", f.e.describe())
	default:
	}
	return lost, release, nil
}
