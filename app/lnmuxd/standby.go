package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lnmux/lnmux/adapters/connectrpc"
	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/app"
	"github.com/lnmux/lnmux/app/lnmuxd/config"
	"github.com/lnmux/lnmux/app/lnmuxd/wiring"
	"github.com/lnmux/lnmux/ports"
)

// standbyCheckWait bounds how long a standby waits for every node's first
// check before it waits on the lock: a node that is down must not keep it
// from taking over (the leader runs with the nodes it reaches).
const standbyCheckWait = 30 * time.Second

// leaderRowEvery is how often a standby reads who leads, for its refusals.
const leaderRowEvery = 2 * time.Second

// leadDeps is what the leadership lifecycle works with.
type leadDeps struct {
	cfg    *config.Config
	log    *slog.Logger
	store  *sqlstore.Store
	leader ports.Leader // nil without distributedLock.enabled
	mux    *app.Mux
	nodes  []*lnd.Node
	gate   *wiring.Gate
	role   *role
	guard  *connectrpc.Guard
}

// lead runs this instance's leadership: standby until the lock is held,
// then leader until ctx ends (hand-over), the lock is lost or the
// multiplexer fails. On the takeover path, after the lock, only what must
// follow it runs: the epoch bump and fencing (inside Acquire), recovery
// from the store, and the interceptors on connections opened and checked
// beforehand.
func lead(ctx context.Context, d leadDeps) error {
	var lost <-chan struct{}
	release := func() {}
	if d.leader != nil {
		sctx, stopStandby := context.WithCancel(ctx)
		standbyDone := d.standby(sctx)
		d.log.InfoContext(ctx, "lnmuxd standby: waiting for the leader lock", "leader", d.role.Leader())
		l, rel, err := d.leader.Acquire(ctx)
		stopStandby()
		<-standbyDone
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("leader lock: %w", err)
		}
		lost, release = l, rel
		if ctx.Err() != nil { // granted while shutting down
			release()
			return nil
		}
	}
	locked := time.Now()
	defer release()

	// I5: nothing is recovered or intercepted before this process is the
	// only lnmux on the database, and the store refuses writes once
	// another process took the lock since (docs/store.md).
	if err := d.mux.Recover(ctx); err != nil {
		if ctx.Err() != nil {
			// Stopped while loading: nothing was intercepted, a clean stop.
			return nil
		}
		return err
	}
	recovered := time.Now()
	select {
	case <-lost:
		return errLeaderLost
	default:
	}

	// The streams close when the hand-over says so, not with ctx.
	muxCtx, stopMux := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMux()
	muxDone := make(chan struct{})
	muxErr := make(chan error, 1)
	go func() {
		defer close(muxDone)
		if err := d.mux.Run(muxCtx); err != nil && muxCtx.Err() == nil {
			muxErr <- err
		}
	}()
	d.role.setLeading(true)
	d.log.InfoContext(ctx, "lnmuxd running", "role", "leader", "recover_ms", ms(recovered.Sub(locked)))
	epoch := make(chan uint64, 1)
	go func() {
		// Concurrent with the interceptors' start: a predecessor handing
		// over closes its streams once it sees the mark (handover.go).
		if d.leader != nil {
			if row, err := d.store.LeaderRow(ctx); err != nil {
				d.log.WarnContext(ctx, "cannot read the leader row", "err", err)
			} else {
				if err := d.store.MarkIntercepting(ctx, row.Epoch); err != nil {
					d.log.WarnContext(ctx, "cannot mark the leader row intercepting", "err", err)
				}
				epoch <- row.Epoch
			}
		}
		select {
		case <-d.gate.Intercepting():
			now := time.Now()
			// The takeover's end, measured from the lock (see
			// docs/high-availability.md and TestTakeoverDrill).
			d.log.InfoContext(ctx, "interceptors active on every node", "took_ms", ms(now.Sub(locked)),
				"recover_ms", ms(recovered.Sub(locked)), "at_unix_us", now.UnixMicro())
		case <-muxDone:
		}
	}()

	watch := make(chan error, 1)
	// On a lost lock, no answer may leave this process any more (another
	// lnmuxd may lead already): depose the core before its streams close.
	deposeAndStop := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handoverTimeout)
		defer cancel()
		if err := d.mux.Depose(dctx); err != nil {
			d.log.WarnContext(dctx, "answers still being sent after losing the lock", "err", err)
		}
		stopMux()
	}
	go func() { watch <- watchLeadership(ctx, d.log, lost, deposeAndStop, muxDone) }()
	select {
	case err := <-watch:
		if err != nil {
			d.role.setLeading(false)
			return err
		}
		return d.handover(release, stopMux, muxDone, epoch)
	case err := <-muxErr:
		d.role.setLeading(false)
		return err
	}
}

// ms is d in milliseconds with a tenth.
func ms(d time.Duration) float64 { return float64(d.Microseconds()/100) / 10 }

// standby connects to every node and checks it, and keeps the connections
// checked until ctx is done (they then serve the first session of Run). It
// returns after every node's first check, or standbyCheckWait; the channel
// closes once everything it started has stopped.
func (d leadDeps) standby(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	checked := make(chan struct{}, len(d.nodes))
	var wg sync.WaitGroup
	for _, n := range d.nodes {
		wg.Go(func() {
			var once sync.Once
			first := func() { once.Do(func() { checked <- struct{}{} }) }
			err := n.Standby(ctx, func(s ports.NodeStatus) {
				d.mux.NodeStatusChanged(ctx, s)
				first()
			})
			first()
			if err != nil {
				d.log.ErrorContext(ctx, "lnd node refused by the standby check", "node", n.Key(), "err", err)
			}
		})
	}
	wg.Go(func() { d.role.refreshLeader(ctx, leaderRowEvery) })
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(standbyCheckWait)
	defer t.Stop()
	for range d.nodes {
		select {
		case <-checked:
		case <-t.C:
			d.log.WarnContext(ctx, "not every lnd node answered the standby check: waiting for the lock anyway")
			return done
		case <-ctx.Done():
			return done
		}
	}
	return done
}
