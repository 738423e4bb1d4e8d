package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/lnmux/lnmux/app/core"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// The driver: one loop owns the machine. Every input, from whichever
// goroutine (a node's delivery, an API call, a store write's completion, a
// timer), is a job on the inbox; the loop steps the machine with it,
// executes the machine's Ready and only then lets the caller go on, so a
// caller sees the effects of its input done (an HTLC answered or held). The
// loop never waits for the network or the store: answers are queued by the
// node adapters (ports.Node.Resolve), events are dropped for a subscriber
// that lags, writes and reads run on their own goroutines. So a caller
// waits for the loop, and the loop for no caller: no cycle.

// storeTimeout bounds one store call. Writes run detached from the caller's
// context: a client hanging up must not end a write.
const storeTimeout = 30 * time.Second

// job is one input for the machine.
type job struct {
	ctx  context.Context //nolint:containedctx // the input's context, for trace parents and logs
	f    func(*core.Machine, time.Time)
	done chan struct{}
}

var doneChans = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

// do steps the machine with f and executes what it decided; it returns
// when both are done.
func (m *Mux) do(ctx context.Context, f func(*core.Machine, time.Time)) {
	if m.inline {
		m.step(ctx, f)
		return
	}
	m.loop.Do(func() { go m.run() })
	done, _ := doneChans.Get().(chan struct{})
	m.inbox <- job{ctx: ctx, f: f, done: done}
	<-done
	doneChans.Put(done)
}

// run is the loop. It lives as long as the process.
func (m *Mux) run() {
	for j := range m.inbox {
		m.step(j.ctx, j.f)
		j.done <- struct{}{}
	}
}

func (m *Mux) step(ctx context.Context, f func(*core.Machine, time.Time)) {
	now := m.clock.Now()
	m.stepCtx = ctx
	f(m.core, now)
	rd := m.core.Ready()
	if !rd.Empty() {
		m.execute(ctx, rd)
	}
	m.stepCtx = context.Background()
	m.rearm(now)
}

// request steps the machine with a request that is answered by a Reply,
// now or later, and returns its id and where the reply comes.
func (m *Mux) request(ctx context.Context, f func(*core.Machine, time.Time, core.ReqID)) (core.ReqID, chan error) {
	ch := make(chan error, 1)
	var req core.ReqID
	m.do(ctx, func(c *core.Machine, now time.Time) {
		m.nextReq++
		req = m.nextReq
		m.replies[req] = ch
		f(c, now, req)
	})
	return req, ch
}

// call makes a request and waits for its reply. A caller that gives up
// abandons it: the decision goes on, and the reply says whether its
// outcome is unknown (a write being retried) rather than merely pending.
func (m *Mux) call(ctx context.Context, f func(*core.Machine, time.Time, core.ReqID)) error {
	req, ch := m.request(ctx, f)
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
	}
	m.do(context.WithoutCancel(ctx), func(c *core.Machine, _ time.Time) { c.Abandon(req) })
	err := <-ch // exactly one reply comes: the decision's, or the abandon's
	if errors.Is(err, core.ErrAbandoned) {
		return ctx.Err()
	}
	return err
}

// rearm keeps one clock timer at the machine's next deadline.
func (m *Mux) rearm(now time.Time) {
	at, ok := m.core.Next()
	switch {
	case !ok:
		if m.timer != nil {
			m.timer.Stop()
			m.timer = nil
		}
		return
	case m.timer != nil && at.Equal(m.timerAt):
		return
	case m.timer != nil:
		m.timer.Stop()
	}
	m.timerAt = at
	m.timer = m.clock.AfterFunc(max(at.Sub(now), 0), m.tick)
}

func (m *Mux) tick() {
	m.do(context.Background(), func(c *core.Machine, now time.Time) { c.Tick(now) })
}

// execute carries out a Ready, in the order its fields are listed.
func (m *Mux) execute(ctx context.Context, rd core.Ready) {
	ctx = context.WithoutCancel(ctx)
	for range rd.Committed {
		m.cfg.Metrics.SettleRequested()
		// Durable: the crash-recovery tests stop the process here, after
		// the commit and before any preimage is sent.
		if m.cfg.AfterSettleCommit != nil {
			m.cfg.AfterSettleCommit()
		}
	}
	for _, l := range rd.Logs {
		m.log.Log(ctx, slogLevel(l.Level), l.Msg, l.Attrs...)
	}
	for _, a := range rd.Answers {
		m.send(ctx, a)
	}
	for range rd.Held {
		m.cfg.Metrics.HTLCHeld()
	}
	for _, a := range rd.Accepted {
		m.cfg.Metrics.SetAccepted(a.Parts)
		m.hub.publishAccepted(a.Event)
	}
	for _, u := range rd.Updates {
		m.hub.publishInvoice(u)
	}
	if rd.LogChanged {
		m.hub.stored.wake()
	}
	for _, w := range rd.Writes {
		m.write(ctx, w)
	}
	for _, r := range rd.Reads {
		m.read(ctx, r)
	}
	for _, e := range rd.Ended {
		k := traceKey{e.Hash, e.SetID}
		if tr, ok := m.traces[k]; ok {
			delete(m.traces, k)
			tr.end(e.Err)
		}
	}
	for _, f := range rd.Finals {
		m.cfg.Metrics.InvoiceFinal(f.Invoice.Status, f.Partial)
	}
	for _, r := range rd.Replies {
		if ch, ok := m.replies[r.Req]; ok {
			delete(m.replies, r.Req)
			ch <- r.Err
		}
	}
	if rd.Fatal != nil {
		m.fatal(rd.Fatal)
	}
}

func slogLevel(l core.Level) slog.Level {
	switch l {
	case core.LevelDebug:
		return slog.LevelDebug
	case core.LevelInfo:
		return slog.LevelInfo
	case core.LevelWarn:
		return slog.LevelWarn
	case core.LevelError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// send hands an answer to its node, which queues it for its stream.
func (m *Mux) send(ctx context.Context, a core.Answer) {
	ns := m.nodes[a.Circuit.Node]
	if ns == nil {
		return
	}
	r := ports.Resolution{Circuit: a.Circuit, Action: a.Action, Preimage: a.Preimage}
	if a.Action == ports.ActionFail {
		res, err := m.onion.failureResolution(a.Circuit, a.Reason, a.Onion, a.FC)
		if err != nil {
			m.log.ErrorContext(ctx, "cannot encrypt failure", "circuit", a.Circuit, "err", err)
			return
		}
		r = res
		m.log.InfoContext(ctx, "failing htlc", "hash", a.Hash, "circuit", a.Circuit, "reason", a.Reason)
	}
	m.cfg.Metrics.HTLCResolved(a.Action, a.Reason)
	if err := ns.node.Resolve(ctx, r); err != nil {
		// lnd keeps the HTLC and re-offers it after reconnecting; the
		// replay is answered then (the machine remembers the decision).
		m.log.WarnContext(ctx, "resolution not delivered", "circuit", a.Circuit, "action", a.Action, "err", err)
	}
}

// traceKey names a settlement's trace span.
type traceKey struct {
	hash  domain.PaymentHash
	setID domain.SetID
}

type settleTrace struct {
	ctx context.Context //nolint:containedctx // the span's context, carried to the write
	end func(error)
}

// write runs a store write on its own goroutine and feeds its outcome back.
func (m *Mux) write(ctx context.Context, w core.Write) {
	if w.Kind == core.WriteSettle {
		k := traceKey{w.Hash, w.SetID}
		tr, ok := m.traces[k]
		if !ok {
			// The settlement's span (docs/tracing.md) covers the write and
			// the settle answers; it outlives the caller.
			tctx, end := m.cfg.Tracer.Settlement(ctx, w.Hash, w.SetID, len(w.Invoice.HTLCs))
			tr = settleTrace{ctx: tctx, end: end}
			m.traces[k] = tr
		}
		ctx = tr.ctx
	}
	m.cfg.Go(func() {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		var inv domain.Invoice
		var err error
		switch w.Kind {
		case core.WriteSettle:
			inv, err = m.store.RequestSettle(sctx, w.Invoice)
		case core.WriteCancel:
			err = m.store.RecordCancel(sctx, w.Cancel)
		case core.WriteFinal:
			inv, err = m.store.Update(sctx, w.Hash, func(inv *domain.Invoice) error {
				_, err := inv.ApplyFinal(w.Final.Circuit, w.Final.Settled, w.At)
				return err
			})
		}
		cancel()
		m.do(ctx, func(c *core.Machine, now time.Time) { c.WriteDone(now, w.ID, inv, err) })
	})
}

// read runs a store read on its own goroutine and feeds its outcome back.
func (m *Mux) read(ctx context.Context, r core.Read) {
	m.cfg.Go(func() {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		inv, err := m.store.Get(sctx, r.Hash)
		cancel()
		m.do(ctx, func(c *core.Machine, now time.Time) { c.ReadDone(now, r.ID, inv, err) })
	})
}
