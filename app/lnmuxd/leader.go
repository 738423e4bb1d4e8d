package main

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/klog/v2"

	"github.com/lnmux/lnmux/adapters/kubelease"
	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/app/lnmuxd/config"
	"github.com/lnmux/lnmux/ports"
)

// newLeader builds the leader lock of distributedLock.type. Whatever the
// lock, acquiring it also takes a new fencing epoch in the database and
// fences store with it, so that the writes of a stale leader are refused
// (docs/store.md, "Leader fencing"; docs/high-availability.md).
func newLeader(cfg *config.Config, store *sqlstore.Store, log *slog.Logger) (ports.Leader, error) {
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
		return kubelease.Fenced(elector, store), nil
	default:
		return nil, fmt.Errorf("distributedLock.type %q is not one of %s, %s", cfg.DistributedLock.Type, config.LockDatabase, config.LockKubernetes)
	}
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
func (l fencedDatabaseLeader) Acquire(ctx context.Context) (<-chan struct{}, func(), error) {
	lease, err := l.leader.AcquireLease(ctx)
	if err != nil {
		return nil, nil, err
	}
	l.store.Fence(lease.Epoch)
	l.log.InfoContext(ctx, "leader lock held", "epoch", lease.Epoch)
	return lease.Lost(), lease.Release, nil
}
