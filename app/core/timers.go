package core

import (
	"container/heap"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Write retry backoff (docs/design.md, "Writes").
const (
	retryMin = 100 * time.Millisecond
	retryMax = 10 * time.Second
)

// Backoff is the wait before the attempt after attempt.
func Backoff(attempt int) time.Duration {
	d := retryMin
	for i := 1; i < attempt && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

type timerKind uint8

const (
	timerHold timerKind = iota + 1
	timerAccept
	timerSettleRetry
	timerFinalRetry
	timerPrune
	timerCancelRetry
)

// timer is a deadline the machine keeps. It lives inside what it times
// (a held HTLC, a set, a ticket), so arming one allocates nothing; the heap
// orders the armed ones by (at, seq).
type timer struct {
	at  time.Time
	seq uint64
	// idx is the position in the heap plus one; 0 when not armed.
	idx  int
	kind timerKind
	hash domain.PaymentHash
	held *heldHTLC
	set  *setEntry
	t    *ticket
	fw   *finalWrite
	ct   *cancelTicket
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i+1, j+1
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer) //nolint:forcetypeassert // only timers are pushed
	t.idx = len(*h) + 1
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = 0
	return t
}

// arm (re)starts t to fire at at.
func (m *Machine) arm(t *timer, at time.Time) {
	if m.role == deposed {
		return
	}
	m.seq++
	t.at, t.seq = at, m.seq
	if t.idx != 0 {
		heap.Fix(&m.timers, t.idx-1)
		return
	}
	heap.Push(&m.timers, t)
}

// disarm stops t; nothing if it is not armed.
func (m *Machine) disarm(t *timer) {
	if t.idx != 0 {
		heap.Remove(&m.timers, t.idx-1)
	}
}

// clearTimers disarms every timer.
func (m *Machine) clearTimers() {
	for _, t := range m.timers {
		t.idx = 0
	}
	clear(m.timers)
	m.timers = m.timers[:0]
}

// Tick is the time passing: every deadline due by now fires, in order.
func (m *Machine) Tick(now time.Time) {
	for len(m.timers) > 0 && !m.timers[0].at.After(now) {
		t, _ := heap.Pop(&m.timers).(*timer)
		switch t.kind {
		case timerHold:
			m.holdTimeout(t.hash, t.held)
		case timerAccept:
			m.acceptTimeout(t.hash, t.set)
		case timerSettleRetry:
			m.retrySettle(t.t)
		case timerFinalRetry:
			m.writeFinal(now, t.fw)
		case timerCancelRetry:
			m.retryCancel(t.ct)
		case timerPrune:
			m.pruneShard(m.pruneNext, now)
			m.pruneNext = (m.pruneNext + 1) % numShards
			m.arm(&m.prune, now.Add(pruneEvery))
		}
	}
}

// PruneAll prunes every shard now (tests, and the simulation's end).
func (m *Machine) PruneAll(now time.Time) {
	for i := range m.shards {
		m.pruneShard(i, now)
	}
}

// holdTimeout fails one part of a set that did not complete in time.
func (m *Machine) holdTimeout(hash domain.PaymentHash, held *heldHTLC) {
	e := m.lookup(hash)
	if e == nil || e.set == nil {
		return
	}
	se := e.set
	h, timedOut := se.htlcs.Timeout(held.circuit)
	if !timedOut {
		return
	}
	se.removeHeld(held.circuit)
	delete(m.index, held.circuit)
	e.remember(h, domain.FailMPPTimeout)
	if se.htlcs.Len() == 0 {
		e.set = nil
	}
	m.dropIfEmpty(e)
	m.logf(LevelInfo, "mpp timeout", "hash", hash, "circuit", held.circuit)
	m.fail(h, held.onion, domain.FailMPPTimeout)
}

// acceptTimeout ends a set nobody decided on in time: it expires.
func (m *Machine) acceptTimeout(hash domain.PaymentHash, se *setEntry) {
	if err := m.cancel(cancelRequest{hash: hash, only: se, reason: domain.FailAcceptTimeout, expire: true}); err != nil {
		m.logf(LevelDebug, "accept timeout: set already ended", "hash", hash, "err", err)
	}
}

// rearmHold starts the hold timer of a part.
func (m *Machine) armHold(now time.Time, hash domain.PaymentHash, held *heldHTLC, expiry time.Time) {
	held.hold.kind, held.hold.hash, held.hold.held = timerHold, hash, held
	m.arm(&held.hold, now.Add(min(m.cfg.HoldTimeout, expiry.Sub(now))))
}

// finalWrite is lnd's final word on a circuit being recorded.
type finalWrite struct {
	hash    domain.PaymentHash
	r       ports.FinalResolution
	attempt int
	retry   timer
}
