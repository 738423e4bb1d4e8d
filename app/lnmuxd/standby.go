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
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// standbyCheckWait bounds how long a standby waits for every node's first
// check before it waits on the lock: a node that is down must not keep it
// from taking over (the leader runs with the nodes it reaches).
const standbyCheckWait = 30 * time.Second

// leaderRowEvery is how often a standby reads who leads, for its refusals.
const leaderRowEvery = 2 * time.Second

// leadDeps is what the leadership lifecycle works with: ports and the
// narrow interfaces below, which the adapters (*sqlstore.Store, *lnd.Node,
// *wiring.Gate, *connectrpc.Guard, *app.Mux) satisfy.
type leadDeps struct {
	cfg    *config.Config
	log    *slog.Logger
	rows   leaderRows
	leader leaderLock // nil without distributedLock.enabled
	mux    leadMux
	nodes  []standbyNode
	gate   interceptGate
	role   *role
	guard  callGuard
}

// leaderRows reads and marks the leader row (sqlstore.Store).
type leaderRows interface {
	LeaderRow(ctx context.Context) (sqlstore.LeaderRow, error)
	MarkIntercepting(ctx context.Context, epoch uint64) error
	StandbyWaiting(ctx context.Context) (bool, error)
}

// leadMux is the multiplexer as leadership drives it (app.Mux).
type leadMux interface {
	Recover(ctx context.Context) error
	Run(ctx context.Context) error
	Depose(ctx context.Context) error
	NodeStatusChanged(ctx context.Context, s ports.NodeStatus)
}

// standbyNode is an lnd node a standby keeps connected and checked
// (lnd.Node).
type standbyNode interface {
	Key() domain.NodeKey
	Standby(ctx context.Context, report func(ports.NodeStatus)) error
}

// interceptGate tells when every node intercepts and stops the judging of
// new HTLCs for a hand-over (wiring.Gate).
type interceptGate interface {
	Drain()
	Intercepting() <-chan struct{}
}

// callGuard waits for the settle and cancel calls in flight
// (connectrpc.Guard).
type callGuard interface {
	Wait(ctx context.Context) error
}

// standbyNodes lists the lnd nodes as a standby uses them.
func standbyNodes(ns []*lnd.Node) []standbyNode {
	out := make([]standbyNode, len(ns))
	for i, n := range ns {
		out[i] = n
	}
	return out
}

var (
	_ leaderRows    = (*sqlstore.Store)(nil)
	_ leadMux       = (*app.Mux)(nil)
	_ standbyNode   = (*lnd.Node)(nil)
	_ interceptGate = (*wiring.Gate)(nil)
	_ callGuard     = (*connectrpc.Guard)(nil)
)

// lead runs this instance's leadership: standby until the lock is held,
// then leader until ctx ends (hand-over), the lock is lost or the
// multiplexer fails. On the takeover path, after the lock, only what must
// follow it runs: the epoch bump and fencing (inside Acquire), recovery
// from the store, and the interceptors on connections opened and checked
// beforehand.
func lead(ctx context.Context, d leadDeps) error {
	var lost <-chan struct{}
	var held heldLock
	release := func() {}
	if d.leader != nil {
		sctx, stopStandby := context.WithCancel(ctx)
		standbyDone := d.standby(sctx)
		d.log.InfoContext(ctx, "lnmuxd standby: waiting for the leader lock", "leader", d.role.Leader())
		h, err := d.leader.Acquire(ctx)
		stopStandby()
		<-standbyDone
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("leader lock: %w", err)
		}
		held = h
		lost, release = h.lost, h.release
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
			if row, err := d.rows.LeaderRow(ctx); err != nil {
				d.log.WarnContext(ctx, "cannot read the leader row", "err", err)
			} else {
				if err := d.rows.MarkIntercepting(ctx, row.Epoch); err != nil {
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
	// lnmuxd may lead soon or already): depose the core before its streams
	// close. A lock lost silently (the database cut off) is not free yet:
	// keep the streams open and silent until it most likely is, so that
	// lnd holds new HTLCs for the successor rather than refusing them
	// while no interceptor is registered (docs/high-availability.md).
	deposeAndStop := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handoverTimeout)
		defer cancel()
		if err := d.mux.Depose(dctx); err != nil {
			d.log.WarnContext(dctx, "answers still being sent after losing the lock", "err", err)
		}
		d.linger(ctx, held)
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

// maxLinger bounds how long a deposed leader keeps its streams open.
const maxLinger = time.Minute

// linger waits, after a silent loss of the lock, until the database has
// most likely granted it to a standby (heldLock.freedBy), at most
// maxLinger.
func (d leadDeps) linger(ctx context.Context, held heldLock) {
	if held.freedBy == nil {
		return
	}
	wait := min(time.Until(held.freedBy()), maxLinger)
	if wait <= 0 {
		return
	}
	d.log.WarnContext(ctx, "leader lock lost silently: the interceptor streams stay open, answering nothing, until a standby can hold the lock",
		"close_in_ms", ms(wait))
	t := time.NewTimer(wait)
	defer t.Stop()
	<-t.C
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
