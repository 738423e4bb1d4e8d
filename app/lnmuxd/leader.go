package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/klog/v2"

	"github.com/lnmux/lnmux/adapters/kubelease"
	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/app/lnmuxd/config"
	"github.com/lnmux/lnmux/ports"
)

// leaderLock is the leader lock as the leadership lifecycle uses it: a
// ports.Leader that may also tell, once the lock is lost, until when the
// database keeps it from a standby.
type leaderLock interface {
	Acquire(ctx context.Context) (heldLock, error)
}

// heldLock is the leader lock held.
type heldLock struct {
	// lost closes when the lock is lost; release gives it up.
	lost    <-chan struct{}
	release func()
	// freedBy, if set, tells once lost has closed when a standby most
	// likely got the lock; the zero time means it may have already.
	freedBy func() time.Time
}

// newLeader builds the leader lock of distributedLock.type. Whatever the
// lock, acquiring it also takes a new fencing epoch in the database and
// fences store with it, so that the writes of a stale leader are refused
// (docs/store.md, "Leader fencing"; docs/high-availability.md).
func newLeader(cfg *config.Config, store *sqlstore.Store, log *slog.Logger) (leaderLock, error) {
	switch cfg.DistributedLock.Type {
	case config.LockDatabase:
		return fencedDatabaseLeader{leader: store.Leader().As(cfg.DistributedLock.ID), store: store, log: log}, nil
	case config.LockKubernetes:
		// client-go's own log lines (the elector's) in lnmuxd's format.
		if log != nil {
			klog.SetSlogLogger(log.With("component", "kubelease"))
		}
		lc := cfg.DistributedLock
		elector, err := kubelease.New(kubelease.Config{
			Namespace: lc.Namespace, Name: lc.Name, ID: lc.ID, KubeConfig: lc.DevKubeConfig,
			LeaseDuration: lc.LeaseDuration, RenewDeadline: lc.RenewDeadline, RetryPeriod: lc.RetryPeriod,
		})
		if err != nil {
			return nil, fmt.Errorf("kubernetes lock: %w", err)
		}
		// Fenced claims the database epoch (and fences store) after the Lease.
		return portLock{kubelease.Fenced(elector, store)}, nil
	default:
		return nil, fmt.Errorf("distributedLock.type %q is not one of %s, %s", cfg.DistributedLock.Type, config.LockDatabase, config.LockKubernetes)
	}
}

// portLock is a ports.Leader that tells nothing more when lost.
type portLock struct{ ports.Leader }

func (l portLock) Acquire(ctx context.Context) (heldLock, error) {
	lost, release, err := l.Leader.Acquire(ctx)
	return heldLock{lost: lost, release: release}, err
}

// fencedDatabaseLeader is the database's own lock (a Postgres advisory lock
// or an flock beside the SQLite file) with the store fenced by its epoch.
type fencedDatabaseLeader struct {
	leader *sqlstore.Leader
	store  *sqlstore.Store
	log    *slog.Logger
}

// Acquire blocks until the lock is held, then fences the store before
// anything is written under the new leadership.
func (l fencedDatabaseLeader) Acquire(ctx context.Context) (heldLock, error) {
	lease, err := l.leader.AcquireLease(ctx)
	if err != nil {
		return heldLock{}, err
	}
	l.store.Fence(lease.Epoch)
	l.log.InfoContext(ctx, "leader lock held", "epoch", lease.Epoch, "session_bound_ms", lease.SessionBound.Milliseconds())
	if lease.OverTCP && lease.SessionBound == 0 {
		l.log.WarnContext(ctx, "the leader lock's Postgres session reports no TCP keepalive or user timeout: "+
			"if this host is cut off, the server may keep the lock for a long time (docs/operations.md)")
	}
	return heldLock{lost: lease.Lost(), release: lease.Release, freedBy: lease.FreedBy}, nil
}
