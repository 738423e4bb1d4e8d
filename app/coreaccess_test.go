package app

import (
	"context"
	"time"

	"github.com/lnmux/lnmux/app/core"
	"github.com/lnmux/lnmux/domain"
)

// Test access to the machine, through the loop like any input.

func (m *Mux) counts() core.Counts {
	var c core.Counts
	m.do(context.Background(), func(mc *core.Machine, _ time.Time) { c = mc.Counts() })
	return c
}

func (m *Mux) markPaid(hash domain.PaymentHash, expiry time.Time) {
	m.do(context.Background(), func(mc *core.Machine, _ time.Time) { mc.MarkPaid(hash, expiry) })
}

// pruneAll is the housekeeping of every shard at once.
func (m *Mux) pruneAll() {
	m.do(context.Background(), func(mc *core.Machine, now time.Time) { mc.PruneAll(now) })
}

func (m *Mux) paid(hash domain.PaymentHash) bool {
	var ok bool
	m.do(context.Background(), func(mc *core.Machine, _ time.Time) { ok = mc.Paid(hash) })
	return ok
}

func (m *Mux) setOf(hash domain.PaymentHash) (core.SetView, bool) {
	var v core.SetView
	var ok bool
	m.do(context.Background(), func(mc *core.Machine, _ time.Time) { v, ok = mc.Set(hash) })
	return v, ok
}

func (m *Mux) has(hash domain.PaymentHash) bool {
	var ok bool
	m.do(context.Background(), func(mc *core.Machine, _ time.Time) { ok = mc.Has(hash) })
	return ok
}

// coreShards is the machine's number of memory shards (core.numShards).
const coreShards = 64

// quiet waits until no store write or read of the machine is in flight:
// they run on their own goroutines, as in production.
func (h *harness) quiet() {
	h.t.Helper()
	waitFor(h.t, "the store writes in flight to finish", func() bool {
		var n int
		h.mux.do(context.Background(), func(mc *core.Machine, _ time.Time) { n = mc.InFlight() })
		return n == 0
	})
}
