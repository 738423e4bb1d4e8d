// Package core is lnmux's settlement core as one deterministic state
// machine (docs/design.md, "The machine").
//
// Everything that happens to lnmux's in-memory payment state is an input:
// an HTLC offered, lnd's final word on one, a block, the time, an
// application's decision, the outcome of a store write or read, and
// leadership gained or lost. Each input is a method call; what the machine
// decides is not done but appended to its Ready: answers to send to lnd,
// events to publish, writes and reads to run, replies to callers, log
// lines, and the next time it must be woken. The driver (app.Mux) calls one
// input at a time from one goroutine, then executes the Ready, and feeds
// the outcome of every write and read back as an input. Like etcd's raft,
// the machine persists before it sends: a preimage appears in a Ready only
// after the write of its settlement came back committed.
//
// The package holds no lock, starts no goroutine, reads no clock (every
// input that needs the time carries it), does no I/O and keeps no context:
// given the same inputs it makes the same decisions, which is what lets the
// simulation (app/sim_test.go) explore millions of interleavings and replay
// any of them from a seed. A test in this package checks those properties
// of its source.
package core

import (
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Config is what the machine decides with. Every duration must be positive:
// the driver fills in the defaults (app.Defaults).
type Config struct {
	// Rules are the stateless checks of an HTLC against its invoice.
	Rules domain.Rules
	// HoldTimeout bounds how long a part of an incomplete set is held.
	HoldTimeout time.Duration
	// AcceptTimeout bounds how long an accepted set waits for a decision.
	AcceptTimeout time.Duration
	// SubscriberGrace: with auto-settle off, new sets are held this long
	// after leadership began and after the last accepted subscriber left.
	SubscriberGrace time.Duration
	// AutoFailMargin: sets are cancelled this many blocks before lnd's
	// auto_fail_height of any of their HTLCs.
	AutoFailMargin uint32
	// AutoSettle settles every set as soon as it is accepted.
	AutoSettle bool
	// MaxPaidInMemory bounds the paid hashes without pending HTLCs kept.
	MaxPaidInMemory int
}

// numShards splits the entries so that pruning can walk one part at a time
// (docs/design.md, "Memory"): the machine has no lock to split.
const numShards = 64

// pruneEvery is how often one shard's entries are pruned: every shard
// once in about a minute.
const pruneEvery = time.Minute / numShards

// role is where the machine stands in leadership.
type role uint8

const (
	// standby: not leading yet; nothing is judged, answered or written.
	standby role = iota
	// leading: the store was loaded under the leader lock.
	leading
	// deposed: leadership ended (lost, handed over or fenced). From then
	// on nothing leaves the machine but refusals (I5).
	deposed
)

// Machine is the settlement core. Its zero value is not usable: call New.
// It is not safe for concurrent use: one driver calls it.
type Machine struct {
	cfg  Config
	role role
	// why is the reason leadership ended, for refusals and logs.
	why string

	shards [numShards]map[domain.PaymentHash]*entry
	// index names the hash of every circuit whose final outcome in lnd
	// matters: held in a set, in a settlement being written, or in a
	// committed settlement lnd has not finalised. lnd's final events and
	// lookups name only the circuit.
	index map[domain.CircuitKey]domain.PaymentHash
	// heights are the nodes' best block heights.
	heights map[domain.NodeKey]uint32
	// evictedUntil is the latest expiry of a paid mark dropped beyond
	// MaxPaidInMemory: a hash of an invoice expiring no later may be paid
	// although memory does not say so (review scenario 4).
	evictedUntil time.Time

	timers timerHeap
	seq    uint64
	prune  timer
	// pruneNext is the shard the next prune walks.
	pruneNext int

	nextOp uint64
	// writes and reads in flight, by operation id.
	writes map[uint64]*pendingWrite
	reads  map[uint64]*pendingRead
	// finals are the circuits whose final resolution is being written.
	finals map[domain.CircuitKey]*finalWrite
	// waiting maps a request waiting on a settlement to its ticket;
	// cancelling one waiting on a cancel's record.
	waiting    map[ReqID]*ticket
	cancelling map[ReqID]*cancelTicket

	// subscribers counts the applications subscribed to accepted sets.
	subscribers int
	// graceFrom starts the grace in which new sets are held without a
	// subscriber: when leadership began, or the last subscriber left.
	graceFrom time.Time

	rd Ready
}

// New returns a machine in standby: it judges nothing until Lead.
func New(cfg Config) *Machine {
	m := &Machine{
		cfg:     cfg,
		index:   make(map[domain.CircuitKey]domain.PaymentHash),
		heights: make(map[domain.NodeKey]uint32),
		writes:  make(map[uint64]*pendingWrite),
		reads:   make(map[uint64]*pendingRead),
		finals:  make(map[domain.CircuitKey]*finalWrite),
		waiting: make(map[ReqID]*ticket),

		cancelling: make(map[ReqID]*cancelTicket),
	}
	for i := range m.shards {
		m.shards[i] = make(map[domain.PaymentHash]*entry)
	}
	m.prune.kind = timerPrune
	return m
}

// Ready returns what the inputs since the last call decided, and starts a
// new Ready. The driver executes it in the order its fields are listed.
func (m *Machine) Ready() Ready {
	rd := m.rd
	m.rd = Ready{}
	return rd
}

// Next is when the machine must next be given a Tick; false if never.
func (m *Machine) Next() (time.Time, bool) {
	if len(m.timers) == 0 {
		return time.Time{}, false
	}
	return m.timers[0].at, true
}

// Deposed reports whether leadership ended, and why.
func (m *Machine) Deposed() (bool, string) { return m.role == deposed, m.why }

// Lead is leadership gained: the store, read under the leader lock, holds
// the settle-requested invoices pending (whose replays are settled again),
// the paid ones that have not expired (never paid twice) and the recorded
// cancels (never undone). Until Lead nothing is judged; after Depose, Lead
// does nothing.
func (m *Machine) Lead(now time.Time, pending []domain.Invoice, paid []ports.StoredExpiry, cancels []domain.CancelRecord) {
	if m.role != standby {
		return
	}
	m.loadCancels(cancels)
	for _, inv := range pending {
		e := m.getOrCreate(inv.Hash, inv.Expiry)
		m.markSettled(e, inv)
		m.dropIfEmpty(e)
	}
	for _, p := range paid {
		m.markPaid(p.Hash, p.Expiry)
	}
	for i := range m.shards {
		m.pruneShard(i, now)
	}
	m.role = leading
	m.graceFrom = now
	m.arm(&m.prune, now.Add(pruneEvery))
	m.logf(LevelInfo, "leading: recovered from store", "pending_invoices", len(pending), "paid_unexpired", len(paid))
}

// Depose is leadership ended: the lock was lost, this process hands over,
// or a write was fenced. From now on no answer of any kind leaves the
// machine, decisions are refused as not ready and nothing is written: lnd
// keeps every HTLC and offers it to the next leader (I5). Timers, writes
// and reads still in flight end without effect.
func (m *Machine) Depose(why string) {
	if m.role == deposed {
		return
	}
	m.role = deposed
	m.why = why
	m.clearTimers()
	for req := range m.waiting {
		delete(m.waiting, req)
		m.reply(req, notReady(why))
	}
	for req := range m.cancelling {
		delete(m.cancelling, req)
		m.reply(req, notReady(why))
	}
	for id, r := range m.reads {
		delete(m.reads, id)
		if !r.abandoned {
			m.reply(r.req, notReady(why))
		}
	}
	m.logf(LevelWarn, "leadership ended: no answer leaves this process any more", "why", why)
}

// Subscribers reports how many applications are subscribed to accepted
// sets: with none, and no auto-settle, a new set is held only during the
// grace (I4).
func (m *Machine) Subscribers(now time.Time, n int) {
	if n == 0 && m.subscribers > 0 {
		m.graceFrom = now
	}
	m.subscribers = n
}

// Height records a node's best height without acting on it (a status
// report); Block acts on a new block.
func (m *Machine) Height(node domain.NodeKey, height uint32) {
	if height > 0 {
		m.heights[node] = height
	}
}

// mayHoldNewSet reports whether someone can decide on a new set: auto-settle,
// an accepted subscriber, or the grace after leadership began or after the
// last subscriber left, in which the application is expected back.
func (m *Machine) mayHoldNewSet(now time.Time) bool {
	if m.cfg.AutoSettle || m.subscribers > 0 {
		return true
	}
	return now.Sub(m.graceFrom) < m.cfg.SubscriberGrace
}

func (m *Machine) shard(h domain.PaymentHash) map[domain.PaymentHash]*entry {
	return m.shards[h[0]%numShards]
}

func (m *Machine) lookup(h domain.PaymentHash) *entry { return m.shard(h)[h] }

// getOrCreate returns the hash's entry, creating it.
func (m *Machine) getOrCreate(h domain.PaymentHash, expiry time.Time) *entry {
	sh := m.shard(h)
	e := sh[h]
	if e == nil {
		e = &entry{hash: h, expiry: expiry}
		sh[h] = e
	}
	if expiry.After(e.expiry) {
		e.expiry = expiry
	}
	return e
}

// dropIfEmpty drops an entry that holds nothing any more.
func (m *Machine) dropIfEmpty(e *entry) {
	if e.set == nil && e.settled == nil && len(e.failed) == 0 && e.coldEmpty() {
		delete(m.shard(e.hash), e.hash)
	}
}

func (m *Machine) op() uint64 {
	m.nextOp++
	return m.nextOp
}

// InFlight counts the writes and reads whose outcome has not come back.
func (m *Machine) InFlight() int { return len(m.writes) + len(m.reads) }
