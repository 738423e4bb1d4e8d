package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// memInFlight sizes TestMemoryInFlight; docs/benchmarks.md runs it with
// 100000.
var memInFlight = flag.Int("mem.inflight", 4000, "HTLCs held at once by TestMemoryInFlight")

// heapAlloc is the live heap after two collections.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// memHarness is a harness whose lnmux uses the wall clock, so that every
// held HTLC and set costs the runtime timers production pays (the test
// clock keeps timers of its own). The timeouts are far beyond the test.
func memHarness(t testing.TB, mod func(*Config)) *harness {
	h := newHarness(t, 2, func(c *Config) {
		c.HoldTimeout = time.Hour
		c.AcceptTimeout = time.Hour
		if mod != nil {
			mod(c)
		}
	})
	nodes := []ports.Node{h.nodes[0], h.nodes[1]}
	m, err := New(h.cfg, nodes, h.store, SystemClock{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range h.nodes {
		m.BlockHeight(context.Background(), n.key, h.height)
	}
	h.mux = m
	return h
}

// sameOnionParts builds a set of parts of equal amounts over both nodes
// that share one onion (a payer's parts of equal amounts carry the same
// payload): building onions dominates the test, not what lnmux holds.
func (h *harness) sameOnionParts(inv ports.AddInvoiceResult, parts, send int, amount domain.Msat) []ports.InterceptedHTLC {
	s := h.build(inv, part{node: h.nodes[0], amount: amount, total: amount * domain.Msat(parts)})
	out := make([]ports.InterceptedHTLC, send)
	for i := range out {
		c := s.htlc
		n := h.nodes[i%2]
		h.htlcID++
		c.Circuit = domain.CircuitKey{Node: n.key, Chan: 7, HTLC: h.htlcID}
		c.OutgoingChanID = domain.VirtualChannelID(n.key)
		out[i] = c
	}
	return out
}

// drain discards the accepted events of h for the test's lifetime.
func drain(h *harness) {
	acc := h.subscribe()
	go func() {
		for range acc {
		}
	}()
}

// memFigures measures what lnmux holds for n items made by build (before
// the first measurement) and added by add (between the two).
func memFigures[T any](n int, build func(i int) T, add func(T)) float64 {
	items := make([]T, n)
	for i := range items {
		items[i] = build(i)
	}
	before := heapAlloc()
	for _, it := range items {
		add(it)
	}
	after := heapAlloc()
	runtime.KeepAlive(items)
	runtime.KeepAlive(add) // and the lnmux it adds to
	return float64(int64(after)-int64(before)) / float64(n)
}

// TestMemoryPerItem reports the bytes lnmux's core holds per held HTLC
// (incomplete sets: entry, set, HTLC, decoded onion, hold timer), per
// accepted set of four parts (waiting for the application) and per paid
// hash remembered after settlement. The figures go to docs/benchmarks.md;
// the only assertion is the 200 MB budget for 100,000 HTLCs in flight,
// i.e. 2,000 bytes per held HTLC.
func TestMemoryPerItem(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	const n = 1500
	t.Run("held htlc", func(t *testing.T) {
		h := memHarness(t, nil)
		drain(h)
		per := memFigures(n, func(int) ports.InterceptedHTLC {
			// Each HTLC is the first of two parts: its set stays incomplete.
			return h.sameOnionParts(h.invoice(2000, time.Hour), 2, 1, 1000)[0]
		}, func(c ports.InterceptedHTLC) { h.mux.HTLCIntercepted(ctx, c) })
		if c := h.mux.counts(); c.Sets != n {
			t.Fatalf("%d sets in memory, want %d held", c.Sets, n)
		}
		t.Logf("MEMORY per held htlc (own incomplete set): %.0f bytes", per)
		if per > 2000 {
			t.Errorf("%.0f bytes per held HTLC: 100,000 in flight would exceed 200 MB", per)
		}
	})
	t.Run("accepted set of 4", func(t *testing.T) {
		h := memHarness(t, nil)
		drain(h)
		per := memFigures(n, func(int) []ports.InterceptedHTLC {
			return h.sameOnionParts(h.invoice(4000, time.Hour), 4, 4, 1000)
		}, func(cs []ports.InterceptedHTLC) {
			for _, c := range cs {
				h.mux.HTLCIntercepted(ctx, c)
			}
		})
		if c := h.mux.counts(); c.Sets != n {
			t.Fatalf("%d sets in memory, want %d accepted", c.Sets, n)
		}
		t.Logf("MEMORY per accepted set of 4 htlcs: %.0f bytes (%.0f per htlc)", per, per/4)
	})
	t.Run("paid hash", func(t *testing.T) {
		h := memHarness(t, nil)
		expiry := time.Now().Add(24 * time.Hour)
		per := memFigures(100_000, func(i int) domain.PaymentHash {
			var hash domain.PaymentHash
			copy(hash[:], fmt.Appendf(nil, "%032d", i))
			hash[0] = byte(i) // spread over the shards
			return hash
		}, func(hash domain.PaymentHash) { h.mux.markPaid(hash, expiry) })
		t.Logf("MEMORY per paid hash loaded by hash only: %.0f bytes (MaxPaidInMemory %d: at most %.0f MB)",
			per, defaultMaxPaid, per*defaultMaxPaid/1e6)
	})
	t.Run("settled invoice", func(t *testing.T) {
		h := memHarness(t, func(c *Config) { c.AutoSettle = true })
		per := memFigures(n, func(i int) ports.InterceptedHTLC {
			return h.sameOnionParts(h.invoice(1000, time.Hour), 1, 1, 1000)[0]
		}, func(c ports.InterceptedHTLC) {
			// Settled at once (auto-settle), then reported final by lnd.
			h.mux.HTLCIntercepted(ctx, c)
			h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: c.Circuit, Settled: true})
			h.quiet()
			for _, nd := range h.nodes {
				nd.mu.Lock()
				nd.res = nil
				nd.mu.Unlock()
			}
			// The database is not lnmux's memory.
			h.store.mu.Lock()
			delete(h.store.invs, c.Hash)
			h.store.core.Forget(c.Hash)
			h.store.mu.Unlock()
		})
		if c := h.mux.counts(); c.PaidOnly != n || c.Pending != 0 {
			t.Fatalf("ledger holds %+v, want %d paid marks and nothing pending", c, n)
		}
		t.Logf("MEMORY per settled invoice remembered until its expiry: %.0f bytes", per)
	})
}

// TestMemoryInFlight holds -mem.inflight HTLCs at once (accepted sets of
// four parts over two nodes, waiting for the application) and reports the
// heap lnmux's core holds for them; 100,000 must fit in 200 MB.
func TestMemoryInFlight(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	n := *memInFlight / 4 * 4
	h := memHarness(t, nil)
	drain(h)
	sets := make([][]ports.InterceptedHTLC, n/4)
	for i := range sets {
		sets[i] = h.sameOnionParts(h.invoice(4000, time.Hour), 4, 4, 1000)
	}
	before := heapAlloc()
	for _, cs := range sets {
		for _, c := range cs {
			h.mux.HTLCIntercepted(ctx, c)
		}
	}
	after := heapAlloc()
	runtime.KeepAlive(sets)
	if c := h.mux.counts(); c.Sets != n/4 {
		t.Fatalf("%d sets in memory, want %d", c.Sets, n/4)
	}
	held := float64(int64(after) - int64(before))
	t.Logf("MEMORY %d htlcs in flight (%d accepted sets of 4): %.1f MB, %.0f bytes per htlc", n, n/4, held/1e6, held/float64(n))
	if budget := 200e6 * float64(n) / 100_000; held > budget {
		t.Errorf("%d HTLCs in flight hold %.1f MB, want under %.1f MB (200 MB per 100,000)", n, held/1e6, budget/1e6)
	}
}

// TestYearOfSettledInvoicesIsBounded: a year of daily payments, each
// settled and reported final by lnd, with invoices that expire after a
// day: the ledger forgets each paid hash once its invoice expired, so what
// it holds stays the size of one or two days of payments, not of the year.
func TestYearOfSettledInvoicesIsBounded(t *testing.T) {
	perDay := 12
	if raceEnabled || testing.Short() {
		perDay = 2
	}
	h := newHarness(t, 2, func(c *Config) { c.AutoSettle = true })
	maxEntries := 0
	var heapDay30 uint64
	for day := range 365 {
		for i := range perDay {
			inv := h.invoice(1000, 24*time.Hour)
			n := h.nodes[i%2]
			h.send(h.build(inv, part{node: n, amount: 1000}))
			r := n.next(t)
			if r.Action != ports.ActionSettle {
				t.Fatalf("day %d payment %d answered %s, want settle", day, i, r.Action)
			}
			h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: r.Circuit, Settled: true})
			n.mu.Lock()
			n.res = nil
			n.mu.Unlock()
		}
		h.quiet()
		maxEntries = max(maxEntries, h.mux.counts().Entries)
		h.clock.Advance(24 * time.Hour)
		h.mux.pruneAll()
		// The database is not lnmux's memory: forget what it holds.
		h.store.mu.Lock()
		for hash, inv := range h.store.invs {
			if inv.Status != domain.StatusSettled {
				t.Fatalf("day %d: invoice %s is %s, want settled", day, hash, inv.Status)
			}
			delete(h.store.invs, hash)
		}
		h.store.mu.Unlock()
		c := h.mux.counts()
		if c.Entries > 2*perDay || c.Pending != 0 || c.Sets != 0 {
			t.Fatalf("day %d: ledger holds %+v, want at most %d entries (two days of payments) and nothing pending", day, c, 2*perDay)
		}
		if day == 30 {
			heapDay30 = heapAlloc()
		}
	}
	heapEnd := heapAlloc()
	t.Logf("MEMORY a year of %d settled payments a day: at most %d ledger entries on any day; heap %.1f MB on day 30, %.1f MB on day 365",
		perDay, maxEntries, float64(heapDay30)/1e6, float64(heapEnd)/1e6)
}

// TestPaidMarksCappedAtMaxPaidInMemory: paid hashes whose invoices have not
// expired are kept up to MaxPaidInMemory; beyond it the ones expiring first
// are dropped (the store refuses a second settlement of those).
func TestPaidMarksCappedAtMaxPaidInMemory(t *testing.T) {
	const maxPaid = 640 // 10 per shard
	h := newHarness(t, 1, func(c *Config) { c.MaxPaidInMemory = maxPaid })
	now := h.clock.Now()
	for i := range 5000 {
		var hash domain.PaymentHash
		hash[0], hash[1], hash[2] = byte(i), byte(i>>8), 1
		h.mux.markPaid(hash, now.Add(time.Duration(i+1)*time.Hour))
	}
	h.mux.pruneAll()
	if c := h.mux.counts(); c.PaidOnly > maxPaid {
		t.Fatalf("%d paid hashes kept, want at most MaxPaidInMemory = %d", c.PaidOnly, maxPaid)
	}
	// The ones kept are those expiring last.
	var last domain.PaymentHash
	lastI := 4999
	last[0], last[1], last[2] = byte(lastI), byte(lastI>>8), 1
	if !h.mux.paid(last) {
		t.Fatal("the paid hash expiring last was dropped, want the ones expiring first dropped")
	}
}
