package main

import (
	"context"
	"time"

	"github.com/lnmux/lnmux/app/lnmuxd/config"
)

// handoverTimeout bounds each step of a planned hand-over.
const handoverTimeout = 10 * time.Second

// successorPoll is how often a leader handing over looks whether its
// successor took the epoch; it lasts a few milliseconds.
const successorPoll = 2 * time.Millisecond

// handover ends this instance's leadership on SIGTERM so that no HTLC is
// refused when a standby is ready (docs/high-availability.md):
//
//  1. New HTLCs are no longer judged: lnd holds them, unanswered, and
//     offers them to the next interceptor. Readiness drops and leader-only
//     calls are refused from here on.
//  2. The SettleInvoice and CancelInvoice calls in flight finish, so that
//     their writes are durable (or refused) before the lock goes (I1: no
//     preimage before its settlement is durable; a later write would be
//     fenced anyway).
//  3. The core is deposed (no answer leaves this process from here on),
//     then the lock is released (after checking, on Postgres, that a standby
//     waits; with a Kubernetes Lease one is assumed). A standby takes it,
//     bumps the epoch (which waits for this instance's last writes) and
//     recovers the settle-requested state from the store.
//  4. Once the successor took the epoch, recovered and marked the leader
//     row as intercepting (or at once without a standby waiting), the
//     interceptor streams close. lnd allows one interceptor per node: the
//     successor, retrying on "interceptor already exists", registers the
//     moment this one is gone, and lnd offers it every held HTLC.
func (d leadDeps) handover(release, stopMux func(), muxDone <-chan struct{}, myEpoch <-chan uint64) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), handoverTimeout)
	defer cancel()
	d.gate.Drain()
	d.role.setLeading(false)
	d.log.InfoContext(ctx, "hand-over: new HTLCs stay with lnd for the next leader")
	if err := d.guard.Wait(ctx); err != nil {
		d.log.WarnContext(ctx, "hand-over: settle or cancel calls still running; their writes are fenced", "err", err)
	}
	var epoch uint64
	select {
	case epoch = <-myEpoch:
	default:
	}
	waiting := false
	switch {
	case d.leader == nil:
	case d.cfg.DistributedLock.Type == config.LockKubernetes:
		// Standbys wait on the Lease, which shows no waiters: assume
		// one and wait (bounded) for its mark in the leader row.
		waiting = true
	default:
		var err error
		if waiting, err = d.rows.StandbyWaiting(ctx); err != nil {
			d.log.WarnContext(ctx, "hand-over: cannot tell whether a standby waits", "err", err)
		}
	}
	// From the release on another lnmuxd may lead: nothing is answered
	// here any more (the successor answers what lnd offers it).
	if err := d.mux.Depose(ctx); err != nil {
		d.log.WarnContext(ctx, "hand-over: answers still being sent", "err", err)
	}
	release()
	d.log.InfoContext(ctx, "hand-over: leader lock released", "standby_waiting", waiting)
	if waiting && epoch > 0 {
		d.awaitSuccessor(ctx, epoch)
	}
	stopMux()
	<-muxDone
	d.log.InfoContext(ctx, "hand-over: interceptor streams closed", "took_ms", ms(time.Since(start)))
	return nil
}

// awaitSuccessor waits until the leader row's epoch is past epoch (the
// successor holds the lock and has fenced this instance) and the successor
// has recovered and starts its interceptors.
func (d leadDeps) awaitSuccessor(ctx context.Context, epoch uint64) {
	t := time.NewTicker(successorPoll)
	defer t.Stop()
	for {
		row, err := d.rows.LeaderRow(ctx)
		if err == nil && row.Epoch > epoch && row.Intercepting {
			d.log.InfoContext(ctx, "hand-over: the successor took the lock", "leader", row.Holder, "epoch", row.Epoch)
			return
		}
		select {
		case <-ctx.Done():
			d.log.WarnContext(ctx, "hand-over: no successor took the lock in time; closing the streams")
			return
		case <-t.C:
		}
	}
}
