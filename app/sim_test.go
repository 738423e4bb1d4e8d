package app

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	sphinx "github.com/lightningnetwork/lightning-onion"
	"github.com/lightningnetwork/lnd/htlcswitch/hop"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/app/core"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

func nodeKeyFrom(priv []byte) domain.NodeKey {
	_, pub := btcec.PrivKeyFromBytes(priv)
	var k domain.NodeKey
	copy(k[:], pub.SerializeCompressed())
	return k
}

// The deterministic simulation; its README is docs/design.md,
// "Simulation" (each lnd behaviour modelled, with the lnd source file it was
// read from, and what is checked). The real core (the machine and its
// driver) runs with simulated lnd nodes, a fault-injecting store and a
// simulated clock, all driven from one seed and run on one goroutine. After every run the fund-safety invariants are
// checked. A failing seed prints the command that replays it.
var (
	simSeeds = flag.Int("sim.seeds", 2000, "number of simulation seeds to run")
	simSeed  = flag.Uint64("sim.seed", 0, "run only this seed (replay)")
	simFirst = flag.Uint64("sim.first", 1, "first seed")
)

func TestSimulation(t *testing.T) {
	if *simSeed != 0 {
		if err := runSim(t, *simSeed, testing.Verbose()); err != nil {
			t.Fatalf("seed %d: %v", *simSeed, err)
		}
		return
	}
	n := *simSeeds
	if testing.Short() || raceEnabled {
		n = min(n, 200)
	}
	failed := 0
	for s := *simFirst; s < *simFirst+uint64(n); s++ {
		if err := runSim(t, s, false); err != nil {
			failed++
			t.Errorf("seed %d: %v\n  replay: go test ./app -run TestSimulation -sim.seed=%d -v", s, err, s)
			if failed >= 5 {
				t.Fatal("stopping after 5 failing seeds")
			}
		}
	}
	t.Logf("%d schedules checked, %d failed; blinded htlcs: %d well-formed (%d settled, %d failed), %d adversarial; "+
		"stored blinded sets: %d (%d across nodes); plain htlcs: %d (%d settled)", n, failed,
		blindedStats.parts.Load(), blindedStats.settled.Load(), blindedStats.failed.Load(), blindedStats.bad.Load(),
		blindedStats.sets.Load(), blindedStats.acrossNodes.Load(), blindedStats.plain.Load(), blindedStats.plainSettled.Load())
}

// simClock fires due timers in (deadline, creation) order from Advance.
type simClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*simTimer
}

type simTimer struct {
	c       *simClock
	at      time.Time
	seq     int
	f       func()
	stopped bool
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) AfterFunc(d time.Duration, f func()) ports.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &simTimer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *simTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves time forward, firing every timer due on the way in order.
func (c *simClock) Advance(d time.Duration) {
	end := c.Now().Add(d)
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool {
			a, b := c.timers[i], c.timers[j]
			if !a.at.Equal(b.at) {
				return a.at.Before(b.at)
			}
			return a.seq < b.seq
		})
		c.timers = slices.DeleteFunc(c.timers, func(t *simTimer) bool { return t.stopped })
		if len(c.timers) == 0 || c.timers[0].at.After(end) {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		t.stopped = true // fired: Stop reports false from now on
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

// lndHTLC is an HTLC as the simulated lnd holds it.
type lndHTLC struct {
	sent  sentHTLC
	state int // lndHeld, lndSettled, lndFailed
	byLnd bool
	// onChain: its channel was force-closed. lnd re-offers it to the
	// interceptor and takes only a SETTLE for it; any other answer ends
	// the interceptor stream (v0.21.3: htlcswitch/held_htlc_set.go
	// onChainHeld, lnrpc/routerrpc/forward_interceptor.go).
	onChain bool
	// bad names what is wrong with an adversarial blinded HTLC
	// (sim_blinded_test.go): lnmux must refuse it.
	bad string
}

// simFinal is one FinalHtlcEvent in a node's event stream, not yet read by
// lnmux. lnd sends it once, to the subscribers of that moment
// (htlcswitch/htlcnotifier.go, NotifyFinalHtlcEvent): if the stream breaks
// before lnmux reads it, it is gone, and only LookupHtlcResolution tells.
type simFinal struct {
	circuit domain.CircuitKey
	settled bool
}

const (
	lndHeld = iota
	lndSettled
	lndFailed
)

// sim is one run.
type sim struct {
	rng   *rand.Rand
	clock *simClock
	store *memStore
	cfg   Config
	log   *slog.Logger
	h     *harness // onion building only
	nodes []*simNode
	mux   *Mux
	epoch int
	// deposed marks incarnations that were told they no longer lead: not
	// one answer may come from them (review scenario 5).
	deposed map[int]bool
	// deposedMuxes are the deposed incarnations, which clients may still
	// call: they must refuse every decision.
	deposedMuxes []*Mux
	// muxes are every incarnation, by epoch.
	muxes map[int]*Mux
	// events are each node's FinalHtlcEvents not yet read by lnmux.
	events map[domain.NodeKey][]simFinal
	jobs   []simJob
	htlcs  map[domain.CircuitKey]*lndHTLC
	height uint32
	err    error
	// faults, in per mille.
	failBefore, failAfter, failUpdate int
	payments                          []*simPayment
	tickets                           []simTicket
	cancelledSets                     map[domain.SetID]bool
	// tombstoned are the hashes cancelled permanently (reported OK): never
	// to be stored as paid.
	tombstoned map[domain.PaymentHash]bool
	trace      []string
	verbose    bool
	// record, if set, receives the run's trace and final store.
	record *simRecord
	// swapRng, in runs with swap invoices (TestSimulationSwaps), decides
	// which invoices bring their own payment hash; nil in the other runs,
	// whose schedules it therefore leaves as they were.
	swapRng *rand.Rand
	// preimages are the swap invoices' preimages, known only to the
	// application.
	preimages map[domain.PaymentHash]domain.Preimage
	// payer is the payers' stream: which invoices are blinded, the
	// onions' session keys, adversarial blinded HTLCs
	// (sim_blinded_test.go). The schedule's stream is drawn as before.
	payer *rand.Rand
}

type simJob struct {
	epoch int
	f     func()
}

type simTicket struct {
	t     *pendingCall
	hash  domain.PaymentHash
	setID domain.SetID
	epoch int
}

type simPayment struct {
	inv   ports.AddInvoiceResult
	parts []sentHTLC
	sent  int
	// dec is a blinded invoice as the payer decoded it; its parts are
	// plans, built when sent (sim_blinded_test.go). height is the chain
	// height when the invoice was made.
	dec    *zpay32.Invoice
	plans  []blindedPlan
	height uint32
}

// nParts is the number of parts of the payment.
func (p *simPayment) nParts() int { return len(p.parts) + len(p.plans) }

// amount is what the payer pays in all.
func (p *simPayment) amount() domain.Msat {
	var amt domain.Msat
	for _, x := range p.parts {
		amt += x.htlc.Forward.OutgoingAmount
	}
	for _, x := range p.plans {
		amt += x.amount
	}
	return amt
}

// simNode is one lnd node as lnmux sees it through an incarnation.
type simNode struct {
	s   *sim
	key domain.NodeKey
	// proc is the node's onion processor: it plays the introduction node
	// of lnmux's blinded paths with lnd's code (sim_blinded_test.go).
	proc *hop.OnionProcessor
	down bool
	// holder is the incarnation whose interceptor stream lnd has
	// registered: one per node, and a second registration is refused
	// until the first stream's handler returned
	// (htlcswitch/interceptable_switch.go setInterceptor). A deposed
	// incarnation on a partitioned host keeps it until lnd's keepalive
	// notices; lnd offers it new HTLCs meanwhile, which it must not answer.
	holder int
	// window holds the answers sent on the stream that lnd has not read
	// yet: lnd reads them on its own schedule (offers and answers share
	// the stream's flow-control window), and they are lost if the stream
	// breaks first; lnd then offers the HTLC again.
	window []ports.Resolution
	// offered are the HTLCs offered on the current stream and not yet
	// answered: the adapter refuses an answer for any other (lnd would
	// end the stream for it: adapters/lnd/interceptor.go queue).
	offered map[domain.CircuitKey]bool
}

// simHandle binds a node to one lnmux incarnation: a dead or fenced
// incarnation's answers never reach lnd.
type simHandle struct {
	n     *simNode
	epoch int
}

func (h simHandle) Key() domain.NodeKey                             { return h.n.key }
func (h simHandle) Run(ctx context.Context, _ ports.NodeSink) error { <-ctx.Done(); return nil }

func (h simHandle) Resolve(_ context.Context, r ports.Resolution) error {
	s := h.n.s
	if s.deposed[h.epoch] {
		s.violate("answer %s for %s from incarnation %d after it was deposed", r.Action, r.Circuit, h.epoch)
		return nil
	}
	if h.epoch != s.epoch || h.n.down || h.n.holder != h.epoch {
		return errors.New("interceptor stream down")
	}
	l := s.htlcs[r.Circuit]
	if l == nil {
		s.violate("answer for a circuit lnd never offered: %s", r.Circuit)
		return nil
	}
	if !h.n.offered[r.Circuit] {
		return errors.New("not held on this stream")
	}
	if l.onChain && r.Action != ports.ActionSettle {
		// The adapter refuses it: lnd would end the stream.
		return errors.New("on-chain htlc takes only a settle")
	}
	delete(h.n.offered, r.Circuit)
	// What leaves lnmux is judged when it leaves: a preimage out before
	// its commit, or a FAIL of a committed HTLC, is wrong even if lnd
	// never reads it.
	stored, committed := s.store.invs[l.sent.htlc.Hash]
	inRow := committed && slices.ContainsFunc(stored.HTLCs, func(x domain.SettledHTLC) bool { return x.Circuit == r.Circuit })
	if l.bad != "" && r.Action != ports.ActionFail {
		s.violate("%s of %s (%s), want fail", r.Action, r.Circuit, l.bad)
	}
	if l.sent.intro != nil && r.Action == ports.ActionFail {
		if err := checkBlindedFail(l, r); err != nil {
			s.violate("%v", err)
		}
	}
	switch r.Action {
	case ports.ActionSettle:
		if r.Preimage.Hash() != l.sent.htlc.Hash {
			s.violate("settle of %s with a wrong preimage", r.Circuit)
		}
		if !inRow {
			s.violate("I1: preimage of %s left before its settlement was committed", r.Circuit)
		}
	case ports.ActionFail:
		if inRow {
			s.violate("I2: htlc %s of a settle-requested set failed by lnmux", r.Circuit)
		}
	case ports.ActionResume:
		s.violate("resume of a virtual-channel htlc %s", r.Circuit)
	}
	h.n.window = append(h.n.window, r)
	return nil
}

// lndReads is lnd reading up to k answers of a node's stream, in order.
func (s *sim) lndReads(n *simNode, k int) {
	for ; k > 0 && len(n.window) > 0 && !n.down; k-- {
		r := n.window[0]
		n.window = n.window[1:]
		l := s.htlcs[r.Circuit]
		if l == nil || l.state != lndHeld {
			continue // lnd ignores answers for resolved HTLCs
		}
		if l.onChain && r.Action != ports.ActionSettle {
			// lnd v0.21.3 ends the stream on a FAIL or RESUME of an
			// on-chain re-offer; the HTLC stays held on chain.
			s.tracef("lnd ends the stream of %x: %s of on-chain %s", n.key[:3], r.Action, r.Circuit)
			s.breakStream(n)
			return
		}
		switch r.Action {
		case ports.ActionSettle:
			l.state = lndSettled
			s.finalEvent(r.Circuit, true)
		case ports.ActionFail:
			l.state = lndFailed
			s.finalEvent(r.Circuit, false)
		case ports.ActionResume:
		}
		s.tracef("lnd %s %s", r.Action, r.Circuit)
	}
}

// breakStream is a node's streams going down: unread answers and unread
// final events are lost.
func (s *sim) breakStream(n *simNode) {
	n.down = true
	n.window = nil
	clear(n.offered)
	delete(s.events, n.key)
}

// finalEvent is lnd resolving an HTLC: one event, into the node's stream
// if lnmux subscribes now (its node is up), lost otherwise.
func (s *sim) finalEvent(c domain.CircuitKey, settled bool) {
	if n := s.nodeOf(c.Node); n != nil && !n.down && n.holder == s.epoch {
		s.events[c.Node] = append(s.events[c.Node], simFinal{circuit: c, settled: settled})
	}
}

// informed hands lnmux lnd's final word on c (an event read, or a lookup
// on reconnect) and checks that a held part lnd failed left its set: a set
// that lost a part must never be settled as complete (review scenario 3).
func (s *sim) informed(c domain.CircuitKey, settled bool) {
	l := s.htlcs[c]
	s.mux.HTLCFinal(context.Background(), ports.FinalResolution{Circuit: c, Settled: settled})
	if settled || l == nil {
		return
	}
	if v, ok := s.mux.core.Set(l.sent.htlc.Hash); ok && slices.Contains(v.Circuits, c) {
		if v.State == domain.SetCollecting || v.State == domain.SetAccepted {
			s.violate("lnd failed %s and told lnmux, yet it is still part of a %v set", c, v.State)
		}
	}
}

func (s *sim) violate(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format, args...)
	}
}

func (s *sim) tracef(format string, args ...any) {
	if s.verbose || s.record != nil {
		s.trace = append(s.trace, fmt.Sprintf("%s ", s.clock.Now().Format("15:04:05.000"))+fmt.Sprintf(format, args...))
	}
}

// simStore injects faults in front of memStore and refuses a dead or fenced
// incarnation's writes, as the fencing token does.
type simStore struct {
	s     *sim
	epoch int
}

var _ ports.InvoiceStore = simStore{}

func (st simStore) fenced() bool { return st.epoch != st.s.epoch }

func (st simStore) RequestSettle(ctx context.Context, inv domain.Invoice) (domain.Invoice, error) {
	s := st.s
	if st.fenced() {
		return domain.Invoice{}, domain.ErrNotLeader
	}
	if s.rng.IntN(1000) < s.failBefore {
		s.tracef("store: settle %x fails before commit", inv.Hash[:4])
		return domain.Invoice{}, errors.New("sim: connection refused")
	}
	out, err := s.store.RequestSettle(ctx, inv)
	if err == nil && s.rng.IntN(1000) < s.failAfter {
		s.tracef("store: settle %x committed, acknowledgement lost", inv.Hash[:4])
		return domain.Invoice{}, errors.New("sim: connection reset after COMMIT")
	}
	s.tracef("store: settle %x -> %v", inv.Hash[:4], err)
	return out, err
}

func (st simStore) Get(ctx context.Context, h domain.PaymentHash) (domain.Invoice, error) {
	return st.s.store.Get(ctx, h)
}

func (st simStore) Update(ctx context.Context, h domain.PaymentHash, fn func(*domain.Invoice) error) (domain.Invoice, error) {
	s := st.s
	if st.fenced() {
		return domain.Invoice{}, domain.ErrNotLeader
	}
	if s.rng.IntN(1000) < s.failUpdate {
		return domain.Invoice{}, errors.New("sim: deadline exceeded")
	}
	return s.store.Update(ctx, h, fn)
}

func (st simStore) ListPending(ctx context.Context) ([]domain.Invoice, error) {
	out, err := st.s.store.ListPending(ctx)
	slices.SortFunc(out, func(a, b domain.Invoice) int { return int(a.Sequence) - int(b.Sequence) })
	return out, err
}

func (st simStore) ListUnexpired(ctx context.Context, t time.Time) ([]ports.StoredExpiry, error) {
	out, err := st.s.store.ListUnexpired(ctx, t)
	slices.SortFunc(out, func(a, b ports.StoredExpiry) int { return slices.Compare(a.Hash[:], b.Hash[:]) })
	return out, err
}

func (st simStore) RecordCancel(ctx context.Context, c domain.CancelRecord) error {
	s := st.s
	if st.fenced() {
		return domain.ErrNotLeader
	}
	if s.rng.IntN(1000) < s.failBefore {
		s.tracef("store: cancel %x fails before commit", c.Hash[:4])
		return errors.New("sim: connection refused")
	}
	err := s.store.RecordCancel(ctx, c)
	if err == nil && s.rng.IntN(1000) < s.failAfter {
		s.tracef("store: cancel %x committed, acknowledgement lost", c.Hash[:4])
		return errors.New("sim: connection reset after COMMIT")
	}
	s.tracef("store: cancel %x -> %v", c.Hash[:4], err)
	return err
}

func (st simStore) ListCancels(ctx context.Context, t time.Time) ([]domain.CancelRecord, error) {
	return st.s.store.ListCancels(ctx, t)
}

func (st simStore) List(ctx context.Context, from uint64, limit int) ([]domain.Invoice, error) {
	return st.s.store.List(ctx, from, limit)
}

// start builds a new lnmux incarnation over the same store, nodes and clock,
// as after a crash: everything the previous one had in flight is lost.
func (s *sim) start() {
	// The old process's event streams died with it, and what it sent that
	// lnd had not read.
	clear(s.events)
	for _, n := range s.nodes {
		n.window = nil
		clear(n.offered)
	}
	s.epoch++
	epoch := s.epoch
	cfg := s.cfg
	cfg.Go = func(f func()) { s.jobs = append(s.jobs, simJob{epoch: epoch, f: f}) }
	nodes := make([]ports.Node, len(s.nodes))
	for i, n := range s.nodes {
		nodes[i] = simHandle{n: n, epoch: epoch}
	}
	m, err := New(cfg, nodes, simStore{s: s, epoch: epoch}, s.clock, s.log)
	if err != nil {
		s.violate("new: %v", err)
		return
	}
	// One goroutine drives the machine: the simulation's.
	m.inline = true
	if err := m.Recover(context.Background()); err != nil {
		s.violate("recover: %v", err)
		return
	}
	s.mux = m
	s.muxes[epoch] = m
	for _, n := range s.nodes {
		m.BlockHeight(context.Background(), n.key, s.height)
	}
	s.tracef("lnmux incarnation %d started", epoch)
	for _, n := range s.nodes {
		if s.deposed[n.holder] && n.holder == epoch-1 && s.rng.IntN(2) == 0 {
			// The deposed incarnation's stream is still registered (its
			// host was cut off): lnd refuses this one's until it ends.
			s.tracef("node %x still held by deposed incarnation %d", n.key[:3], n.holder)
			continue
		}
		n.holder = epoch
		if !n.down {
			s.reconnect(n)
		}
	}
}

// staleStreamEnds is lnd noticing that a deposed incarnation's stream is
// dead (keepalive): the current incarnation registers and lnd re-offers
// what it holds.
func (s *sim) staleStreamEnds() {
	for _, n := range s.nodes {
		if n.holder != s.epoch {
			s.tracef("node %x: stale stream of incarnation %d ends", n.key[:3], n.holder)
			n.holder = s.epoch
			n.window = nil
			clear(n.offered)
			if !n.down {
				s.reconnect(n)
			}
			return
		}
	}
}

// forceClose is a payer force-closing the channel of a held HTLC: lnd
// re-offers it as an on-chain HTLC, which takes only a SETTLE.
func (s *sim) forceClose() {
	var held []domain.CircuitKey
	for _, c := range s.sortedCircuits() {
		if l := s.htlcs[c]; l.state == lndHeld && !l.onChain {
			held = append(held, c)
		}
	}
	if len(held) == 0 {
		return
	}
	c := held[s.rng.IntN(len(held))]
	l := s.htlcs[c]
	l.onChain = true
	s.tracef("force-close: %s on chain", c)
	if n := s.nodeOf(c.Node); !n.down {
		s.offer(n, l.sent.htlc)
	}
}

// offer is lnd offering an HTLC to the incarnation that holds the node's
// interceptor.
func (s *sim) offer(n *simNode, h ports.InterceptedHTLC) {
	m := s.muxes[n.holder]
	if m == nil {
		return
	}
	n.offered[h.Circuit] = true
	m.HTLCIntercepted(context.Background(), h)
}

// reconnect is what lnd does when its interceptor (re)connects: re-offer
// every HTLC it holds, and answer the lookups of pending circuits.
func (s *sim) reconnect(n *simNode) {
	ctx := context.Background()
	for _, c := range s.mux.PendingCircuits(ctx, n.key) {
		if l := s.htlcs[c]; l != nil && l.state != lndHeld {
			s.informed(c, l.state == lndSettled)
		}
	}
	for _, c := range s.sortedCircuits() {
		l := s.htlcs[c]
		if c.Node == n.key && l.state == lndHeld {
			s.offer(n, l.sent.htlc)
		}
	}
}

func (s *sim) sortedCircuits() []domain.CircuitKey {
	keys := make([]domain.CircuitKey, 0, len(s.htlcs))
	for c := range s.htlcs {
		keys = append(keys, c)
	}
	slices.SortFunc(keys, domain.CircuitKey.Compare)
	return keys
}

// simRecord is what a run did, to compare two runs of one seed.
type simRecord struct {
	trace []string
	store []domain.Invoice
}

func runSim(t *testing.T, seed uint64, verbose bool) error {
	return runSimRecord(t, seed, verbose, nil)
}

func runSimRecord(t *testing.T, seed uint64, verbose bool, rec *simRecord) (err error) {
	return runSimWith(t, seed, verbose, rec, false)
}

// runSimWith runs one seed; with swaps, some invoices have a payment hash
// the application chose (docs/api.md, "Swap invoices").
func runSimWith(t *testing.T, seed uint64, verbose bool, rec *simRecord, swaps bool) (err error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := &sim{
		rng:           rng,
		clock:         newFakeClock(),
		store:         newMemStore(),
		htlcs:         make(map[domain.CircuitKey]*lndHTLC),
		height:        1000,
		cancelledSets: make(map[domain.SetID]bool),
		tombstoned:    make(map[domain.PaymentHash]bool),
		deposed:       make(map[int]bool),
		muxes:         make(map[int]*Mux),
		events:        make(map[domain.NodeKey][]simFinal),
		verbose:       verbose,
		record:        rec,
		failBefore:    rng.IntN(300),
		failAfter:     rng.IntN(300),
		failUpdate:    rng.IntN(300),
		preimages:     make(map[domain.PaymentHash]domain.Preimage),
		payer:         rand.New(rand.NewPCG(seed, seed^0xb11dedb11dedb11d)),
	}
	if swaps {
		s.swapRng = rand.New(rand.NewPCG(seed, seed^0x5a9b))
	}
	defer func() {
		if rec != nil {
			rec.trace = s.trace
			for _, inv := range s.store.invs {
				rec.store = append(rec.store, inv)
			}
			slices.SortFunc(rec.store, func(a, b domain.Invoice) int { return slices.Compare(a.Hash[:], b.Hash[:]) })
		}
		if err != nil && verbose {
			for _, l := range s.trace {
				t.Log(l)
			}
		}
	}()
	s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if verbose {
		s.log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s.cfg = Config{
		IdentityKey:   testIdentity,
		Policy:        domain.RoutingPolicy{FeeBase: 1000, FeeRatePPM: 100, CLTVDelta: 40},
		HoldTimeout:   time.Duration(5+rng.IntN(60)) * time.Second,
		AcceptTimeout: time.Duration(5+rng.IntN(60)) * time.Second,
		AutoSettle:    rng.IntN(4) == 0,
		// Always someone to decide: the application below.
		SubscriberGrace: 1000 * time.Hour,
	}
	var chachaSeed [32]byte
	binary.LittleEndian.PutUint64(chachaSeed[:], seed)
	s.cfg.Entropy = rand.NewChaCha8(chachaSeed)
	if rng.IntN(4) == 0 {
		// Few paid marks in memory: decisions on evicted hashes must ask
		// the store (review scenario 4).
		s.cfg.MaxPaidInMemory = 1 + rng.IntN(3)
	}
	nNodes := 1 + rng.IntN(3)
	for range nNodes {
		k := make([]byte, 32)
		for i := range k {
			k[i] = byte(rng.UintN(256))
		}
		k[0] |= 1
		n := &simNode{s: s, offered: make(map[domain.CircuitKey]bool)}
		n.key = nodeKeyFrom(k)
		priv, _ := btcec.PrivKeyFromBytes(k)
		n.proc = hop.NewOnionProcessor(sphinx.NewRouter(&sphinx.PrivKeyECDH{PrivKey: priv}, sphinx.NewMemoryReplayLog()))
		s.nodes = append(s.nodes, n)
	}
	s.start()
	if s.err != nil {
		return s.err
	}
	s.h = &harness{t: t, mux: s.mux, cfg: s.cfg, height: s.height}
	s.h.cfg.Policy = s.cfg.Policy

	steps := 100 + rng.IntN(300)
	for step := 0; step < steps && s.err == nil; step++ {
		s.step()
	}
	if s.err == nil {
		s.quiesce()
	}
	if s.err == nil {
		s.checkEnd()
	}
	s.countBlinded()
	return s.err
}

// step makes one random event happen.
func (s *sim) step() {
	ctx := context.Background()
	r := s.rng
	switch x := r.IntN(100); {
	case x < 10 && len(s.payments) < 12:
		s.newPayment()
	case x < 35:
		s.sendPart()
	case x < 50:
		s.runJob()
	case x < 60:
		s.clock.Advance(time.Duration(r.IntN(20000)) * time.Millisecond)
		if s.cfg.MaxPaidInMemory != 0 && r.IntN(2) == 0 {
			s.otherPaid()
		}
		// The machine prunes a shard per tick; sometimes all at once.
		s.mux.do(context.Background(), func(c *core.Machine, now time.Time) { c.PruneAll(now) })
	case x < 70:
		s.decide()
	case x < 75:
		n := s.nodes[r.IntN(len(s.nodes))]
		if n.down {
			n.down = false
			if n.holder == s.epoch {
				s.reconnect(n)
			}
		} else {
			s.breakStream(n)
		}
		s.tracef("node %x down=%v", n.key[:3], n.down)
	case x < 80:
		s.deliverFinal()
		// lnd reads what it was sent, some of it.
		n := s.nodes[r.IntN(len(s.nodes))]
		s.lndReads(n, 1+r.IntN(4))
	case x < 82:
		s.tracef("crash")
		s.start()
	case x < 83:
		// Leadership ends (the lock is lost and noticed, or a hand-over):
		// the old incarnation is told, then a successor starts. The old
		// one's timers and queued work still run; none may answer lnd.
		s.tracef("depose incarnation %d", s.epoch)
		if err := s.mux.Depose(ctx); err != nil {
			s.violate("depose: %v", err)
		}
		s.deposed[s.epoch] = true
		s.deposedMuxes = append(s.deposedMuxes, s.mux)
		s.start()
	case x < 84:
		s.lndFailsHeld()
	case x < 85:
		if r.IntN(2) == 0 {
			s.forceClose()
		} else {
			s.staleStreamEnds()
		}
	case x < 87:
		s.newBlock()
	case x < 90:
		// A late or repeated decision on an old set.
		if len(s.tickets) > 0 {
			tk := s.tickets[r.IntN(len(s.tickets))]
			s.repeatDecision(tk)
		}
		if len(s.deposedMuxes) > 0 && len(s.payments) > 0 {
			// A client still connected to a deposed incarnation.
			old := s.deposedMuxes[r.IntN(len(s.deposedMuxes))]
			if err := s.callSync(old, cancelCall(s.pick().inv.Hash, domain.SetID{})); !errors.Is(err, domain.ErrNotReady) {
				s.violate("cancel on a deposed incarnation: %v, want not ready", err)
			}
		}
	default:
		if p := s.pick(); p != nil && !s.cfg.AutoSettle {
			_, paid := s.store.invs[p.inv.Hash]
			f, permanent := cancelCall(p.inv.Hash, domain.SetID{}), r.IntN(4) == 0
			if permanent {
				f = permanentCall(p.inv.Hash)
			}
			if err := s.callSync(s.mux, f); err == nil {
				if paid {
					s.violate("I6: cancel of %x reported OK although the invoice was stored as paid", p.inv.Hash[:4])
				}
				if permanent {
					s.tombstoned[p.inv.Hash] = true
					if r.IntN(2) == 0 {
						// The payer tries again, not knowing.
						s.payAgain(p)
					}
				}
				// Whatever set was there is cancelled; the application
				// learns its id from the cancelled event in real life.
				s.tracef("cancel any %x", p.inv.Hash[:4])
			}
		}
	}
}

func (s *sim) pick() *simPayment {
	if len(s.payments) == 0 {
		return nil
	}
	return s.payments[s.rng.IntN(len(s.payments))]
}

func (s *sim) newPayment() { s.payAgain(nil) }

// payAgain is a new payment: of a new invoice, or of prev's (nil: now and
// then of a random earlier one).
func (s *sim) payAgain(prev *simPayment) {
	amt := domain.Msat(10000 * (1 + s.rng.IntN(10)))
	// A third of the invoices are blinded.
	req := ports.AddInvoiceRequest{Amount: amt, Expiry: time.Hour, Blinded: s.payer.IntN(3) == 0}
	if s.swapRng != nil && s.swapRng.IntN(2) == 0 {
		// A swap: the application's own preimage and a decision window
		// of its own (lnd's auto-fail height still bounds it).
		var pre domain.Preimage
		for i := range pre {
			pre[i] = byte(s.swapRng.UintN(256))
		}
		hash := pre.Hash()
		s.preimages[hash] = pre
		req.PaymentHash = &hash
		req.AcceptTimeout = time.Duration(1+s.swapRng.IntN(300)) * time.Second
	}
	inv, err := s.mux.AddInvoice(context.Background(), req)
	if err != nil {
		s.violate("add invoice: %v", err)
		return
	}
	if prev == nil && len(s.payments) > 0 && s.rng.IntN(5) == 0 {
		prev = s.pick()
	}
	p := &simPayment{inv: inv, height: s.height}
	if req.Blinded {
		if p.dec, err = decodeBlinded(inv); err != nil {
			s.violate("%v", err)
			return
		}
	}
	if prev != nil {
		// The same invoice paid again (a payer's retry, or a second payer).
		inv, amt = prev.inv, prev.amount()
		p = &simPayment{inv: inv, dec: prev.dec, height: prev.height}
	}
	nParts := 1 + s.rng.IntN(4)
	left := amt
	// Sometimes the payer overpays a little or sends a part more.
	for i := range nParts {
		a := left / domain.Msat(nParts-i)
		if i == nParts-1 {
			a = left
		}
		left -= a
		n := s.nodes[s.rng.IntN(len(s.nodes))]
		s.h.height = s.height
		autoFailIn := 20 + uint32(s.rng.IntN(100))
		if p.dec != nil {
			s.h.htlcID++
			p.plans = append(p.plans, blindedPlan{node: n, amount: a, total: amt, htlcID: s.h.htlcID, autoFailIn: autoFailIn})
			continue
		}
		part := s.h.build(inv, part{node: &fakeNode{key: n.key}, amount: a, total: amt, autoFail: s.height + autoFailIn,
			expiry: s.height + s.mux.cfg.FinalCLTVDelta + 3, session: s.payerKey()}) // lnd's payer: min_final_cltv + BlockPadding
		p.parts = append(p.parts, part)
	}
	s.payments = append(s.payments, p)
	s.tracef("payment %x: %d parts, blinded %v", inv.Hash[:4], nParts, p.dec != nil)
}

func (s *sim) sendPart() {
	var open []*simPayment
	for _, p := range s.payments {
		if p.sent < p.nParts() {
			open = append(open, p)
		}
	}
	if len(open) == 0 {
		return
	}
	p := open[s.rng.IntN(len(open))]
	if p.dec != nil {
		s.sendBlinded(p)
		return
	}
	part := p.parts[p.sent]
	p.sent++
	c := part.htlc.Circuit
	n := s.nodeOf(c.Node)
	if n.down {
		// lnd fails new HTLCs at once while no interceptor is connected.
		s.htlcs[c] = &lndHTLC{sent: part, state: lndFailed, byLnd: true}
		return
	}
	s.htlcs[c] = &lndHTLC{sent: part}
	s.offer(n, part.htlc)
}

func (s *sim) nodeOf(k domain.NodeKey) *simNode {
	for _, n := range s.nodes {
		if n.key == k {
			return n
		}
	}
	return nil
}

func (s *sim) runJob() {
	for len(s.jobs) > 0 {
		i := s.rng.IntN(len(s.jobs))
		j := s.jobs[i]
		s.jobs = slices.Delete(s.jobs, i, i+1)
		if j.epoch != s.epoch && s.rng.IntN(2) == 0 {
			continue // the process that queued it is gone
		}
		// Or it is a zombie that lost the lock: its writes are fenced.
		j.f()
		return
	}
}

// decide is the application: settle or cancel a waiting set.
func (s *sim) decide() {
	acc := s.mux.core.AcceptedSets()
	if len(acc) == 0 {
		return
	}
	ev := acc[s.rng.IntN(len(acc))]
	if s.rng.IntN(4) == 0 {
		s.cancel(ev.Hash, ev.SetID)
		return
	}
	s.settle(ev.Hash, ev.SetID)
}

func (s *sim) settle(hash domain.PaymentHash, id domain.SetID) {
	// A set the application cancelled may be settled by mistake: lnmux,
	// this incarnation or a later one, refuses it (the cancel is recorded:
	// docs/design.md, "Cancels"); checkEnd finds any that was settled.
	if pre, ok := s.preimages[hash]; ok && s.swapRng.IntN(3) == 0 {
		s.wrongPreimage(hash, id, pre)
		if s.err != nil {
			return
		}
	}
	t := s.mux.startCall(settleCall(hash, id, s.preimages[hash]))
	if done, err := t.poll(); done && err != nil {
		return
	}
	s.tickets = append(s.tickets, simTicket{t: t, hash: hash, setID: id, epoch: s.epoch})
}

// wrongPreimage is the application settling a swap before it has the
// right preimage (none, or another): lnmux must refuse it before anything
// happens, and the set must be as it was.
func (s *sim) wrongPreimage(hash domain.PaymentHash, id domain.SetID, right domain.Preimage) {
	var wrong domain.Preimage
	if s.swapRng.IntN(2) == 0 {
		wrong = right
		wrong[s.swapRng.IntN(len(wrong))] ^= 1 << s.swapRng.IntN(8)
	}
	before, inBefore := s.mux.core.Lookup(hash)
	err := s.callSync(s.mux, settleCall(hash, id, wrong))
	after, inAfter := s.mux.core.Lookup(hash)
	s.tracef("settle %x with a wrong preimage -> %v", hash[:4], err)
	// A preimage that does not hash to the hash is always refused. No
	// preimage is refused while the set waits or is being written; once
	// its settlement is recorded a repeat succeeds as for any invoice (I6):
	// nothing more is recorded.
	undecided := inBefore && before.SetID == id &&
		(before.State == domain.SetAccepted || before.State == domain.SetSettling)
	mustRefuse := wrong != (domain.Preimage{}) || undecided
	switch {
	case errors.Is(err, domain.ErrNotReady):
	case mustRefuse && !errors.Is(err, domain.ErrInvalidArgument):
		s.violate("settle of swap %x with a wrong preimage: %v, want invalid argument", hash[:4], err)
	case errors.Is(err, domain.ErrInvalidArgument) && (inBefore != inAfter || !reflect.DeepEqual(before, after)):
		s.violate("settle of swap %x with a wrong preimage changed its set: %+v -> %+v", hash[:4], before, after)
	}
}

func (s *sim) cancel(hash domain.PaymentHash, id domain.SetID) {
	if s.cfg.AutoSettle {
		return // with auto-settle there is no application to decide
	}
	err := s.callSync(s.mux, cancelCall(hash, id))
	if err == nil {
		s.cancelledSets[id] = true
	}
	s.tracef("cancel %x -> %v", hash[:4], err)
}

// deliverFinal lets lnmux read the next FinalHtlcEvent of one node's
// stream: in order, once.
func (s *sim) deliverFinal() {
	var ready []*simNode
	for _, n := range s.nodes {
		if len(s.events[n.key]) > 0 && !n.down && n.holder == s.epoch {
			ready = append(ready, n)
		}
	}
	if len(ready) == 0 {
		return
	}
	n := ready[s.rng.IntN(len(ready))]
	ev := s.events[n.key][0]
	s.events[n.key] = s.events[n.key][1:]
	s.informed(ev.circuit, ev.settled)
}

// otherPaid stands for the many other invoices an lnmux is paid: a paid
// mark, expiring later than the run's invoices, in the memory shard of one
// of them, so that the bound on paid marks drops that invoice's mark.
func (s *sim) otherPaid() {
	p := s.pick()
	if p == nil {
		return
	}
	other := p.inv.Hash
	other[31] ^= byte(1 + s.rng.IntN(255))
	expiry := s.clock.Now().Add(90 * time.Minute)
	s.mux.do(context.Background(), func(c *core.Machine, _ time.Time) { c.MarkPaid(other, expiry) })
}

// lndFailsHeld is lnd failing a held HTLC on its own, as it does when the
// channel went on chain and the HTLC timed out there, or when lnmux's view
// of the node's height lags behind lnd's auto_fail_height.
func (s *sim) lndFailsHeld() {
	var held []domain.CircuitKey
	for _, c := range s.sortedCircuits() {
		if s.htlcs[c].state == lndHeld {
			held = append(held, c)
		}
	}
	if len(held) == 0 {
		return
	}
	c := held[s.rng.IntN(len(held))]
	l := s.htlcs[c]
	l.state, l.byLnd = lndFailed, true
	s.tracef("lnd fails held %s on its own", c)
	s.finalEvent(c, false)
}

// repeatDecision is the application repeating, late, a decision it took:
// a settle that succeeded must succeed again (I6), whatever memory dropped.
func (s *sim) repeatDecision(tk simTicket) {
	done, err := tk.t.poll()
	succeeded := done && err == nil
	if !succeeded || s.rng.IntN(2) == 0 {
		if s.rng.IntN(2) == 0 {
			s.settle(tk.hash, tk.setID)
		} else {
			s.cancel(tk.hash, tk.setID)
		}
		return
	}
	if dep, _ := s.mux.core.Deposed(); s.deposed[s.epoch] || dep {
		return
	}
	// Outcome unknown is no failure: a write of the set is being retried
	// (memory can be behind the store, which a read already saw
	// committed: seed 90303) and this caller gave up before the retry's
	// deadline; it may call again (I7). Any other error is.
	if err := s.callSync(s.mux, settleCall(tk.hash, tk.setID, s.preimages[tk.hash])); err != nil && !errors.Is(err, domain.ErrOutcomeUnknown) {
		s.violate("I6: repeating the successful settle of %x: %v", tk.hash[:4], err)
	}
	if !s.cfg.AutoSettle {
		if err := s.callSync(s.mux, cancelCall(tk.hash, tk.setID)); !errors.Is(err, domain.ErrSettleRequested) {
			s.violate("I6: cancel of the settled set of %x: %v, want settle requested", tk.hash[:4], err)
		}
	}
}

// newBlock raises the height; lnd fails held HTLCs at their auto-fail
// height itself.
func (s *sim) newBlock() {
	s.height += uint32(1 + s.rng.IntN(5))
	for _, c := range s.sortedCircuits() {
		l := s.htlcs[c]
		if l.state == lndHeld && s.height >= l.sent.htlc.AutoFailHeight {
			l.state, l.byLnd = lndFailed, true
			s.tracef("lnd auto-fails %s", c)
			s.finalEvent(c, false)
		}
	}
	for _, n := range s.nodes {
		s.mux.BlockHeight(context.Background(), n.key, s.height)
	}
	// I4: nothing held that no one can decide on past the margin.
	s.mux.core.Sets(func(_ domain.PaymentHash, v core.SetView) {
		if v.State == domain.SetSettling {
			return
		}
		for i, af := range v.AutoFail {
			if af != 0 && s.height+s.mux.cfg.AutoFailMargin >= af {
				s.violate("I4: %s held at height %d, auto-fail %d", v.Circuits[i], s.height, af)
			}
		}
	})
}

// quiesce ends the faults and lets everything settle down: nodes up, all
// work done, every decision taken and lnd's finals delivered.
func (s *sim) quiesce() {
	s.failBefore, s.failAfter, s.failUpdate = 0, 0, 0
	for _, n := range s.nodes {
		if n.holder != s.epoch {
			n.holder = s.epoch
			n.window = nil
			clear(n.offered)
			n.down = true
		}
		if n.down {
			n.down = false
			s.reconnect(n)
		}
	}
	for round := 0; round < 50 && s.err == nil; round++ {
		for len(s.jobs) > 0 {
			s.runJob()
		}
		// Settle whatever waits, so that accepted sets end.
		for _, ev := range s.mux.core.AcceptedSets() {
			s.settle(ev.Hash, ev.SetID)
		}
		for len(s.jobs) > 0 {
			s.runJob()
		}
		s.clock.Advance(2 * time.Minute)
		if round >= 3 {
			// Blocks go on: HTLCs that only lnd can end (on chain, or
			// held by a stream lnmux lost) reach their deadlines, at most
			// 120 blocks after they were offered.
			for range 4 {
				s.newBlock()
			}
		}
		// lnd reads every answer; lnmux reads what is in the event
		// streams; nothing is sent twice.
		for _, n := range s.nodes {
			s.lndReads(n, len(n.window))
			if n.down {
				// lnd ended the stream (an on-chain FAIL): it comes back.
				n.down = false
				s.reconnect(n)
			}
		}
		for _, n := range s.nodes {
			for len(s.events[n.key]) > 0 {
				s.deliverFinal()
			}
		}
		if len(s.jobs) == 0 && len(s.mux.core.Pending(s.nodes[0].key)) == 0 && s.settledAll() {
			break
		}
	}
}

func (s *sim) settledAll() bool {
	for _, n := range s.nodes {
		if len(s.mux.core.Pending(n.key)) > 0 {
			return false
		}
	}
	for _, l := range s.htlcs {
		if l.state == lndHeld {
			return false
		}
	}
	return true
}

func (s *sim) checkEnd() {
	for _, c := range s.sortedCircuits() {
		if s.htlcs[c].state == lndHeld {
			s.violate("htlc %s still held by lnd at the end", c)
		}
	}
	for _, inv := range s.store.invs {
		if inv.Status == domain.StatusSettleRequested {
			s.violate("invoice %x still SETTLE_REQUESTED at the end", inv.Hash[:4])
		}
		lndFailedOne := false
		settled := 0
		for _, h := range inv.HTLCs {
			l := s.htlcs[h.Circuit]
			switch {
			case l == nil:
				s.violate("stored htlc %s never offered", h.Circuit)
				return
			case l.state == lndSettled:
				settled++
			case l.state == lndFailed && l.byLnd:
				lndFailedOne = true
			case l.state == lndFailed:
				s.violate("I2: htlc %s of stored invoice %x failed by lnmux", h.Circuit, inv.Hash[:4])
			}
		}
		if settled < len(inv.HTLCs) && !lndFailedOne {
			s.violate("partial settlement of %x without an lnd failure", inv.Hash[:4])
		}
		if lndFailedOne == false && inv.Status != domain.StatusSettled {
			s.violate("invoice %x is %s although lnd settled every htlc", inv.Hash[:4], inv.Status)
		}
		if s.cancelledSets[inv.SetID] {
			s.violate("set of %x was cancelled (CancelInvoice succeeded) and then settled", inv.Hash[:4])
		}
		if s.tombstoned[inv.Hash] {
			s.violate("invoice %x was cancelled permanently (reported OK) and then paid", inv.Hash[:4])
		}
	}
	for _, tk := range s.tickets {
		done, err := tk.t.poll()
		if !done {
			if tk.epoch == s.epoch {
				s.violate("settle of %x never answered", tk.hash[:4])
			}
			continue
		}
		if err != nil {
			continue
		}
		inv, ok := s.store.invs[tk.hash]
		if !ok || inv.SetID != tk.setID {
			s.violate("successful SettleInvoice of %x not stored with its set", tk.hash[:4])
		}
	}
	// A payment settled in lnd is stored with the same preimage.
	for _, c := range s.sortedCircuits() {
		l := s.htlcs[c]
		if l.bad != "" && l.state == lndSettled {
			s.violate("%s (%s) settled", c, l.bad)
		}
		if l.state != lndSettled {
			continue
		}
		inv, ok := s.store.invs[l.sent.htlc.Hash]
		if !ok || inv.Preimage.Hash() != l.sent.htlc.Hash {
			s.violate("htlc %s settled in lnd but its invoice is not stored", c)
			continue
		}
		if pre, swap := s.preimages[inv.Hash]; swap && inv.Preimage != pre {
			s.violate("swap %x stored with a preimage the application did not give", inv.Hash[:4])
		}
		if !slices.ContainsFunc(inv.HTLCs, func(x domain.SettledHTLC) bool { return x.Circuit == c }) {
			s.violate("htlc %s settled in lnd but not part of the stored set of %x", c, inv.Hash[:4])
		}
	}
	// Memory: after every invoice expired, nothing is left.
	s.clock.Advance(2 * time.Hour)
	// A permanent cancel of a hash memory knew nothing of keeps its
	// tombstone as long as an invoice may live: its expiry is unknown.
	s.mux.do(context.Background(), func(c *core.Machine, now time.Time) { c.PruneAll(now.Add(domain.MaxInvoiceExpiry)) })
	if c := s.mux.core.Counts(); c.Entries != 0 || c.Pending != 0 {
		s.violate("memory not released after expiry: %+v", c)
	}
}

// pendingCall is a request's reply, once it came (the simulation polls it
// between its steps).
type pendingCall struct {
	req  core.ReqID
	ch   chan error
	done bool
	err  error
}

func (p *pendingCall) poll() (bool, error) {
	if !p.done {
		select {
		case err := <-p.ch:
			p.done, p.err = true, err
		default:
		}
	}
	return p.done, p.err
}

type callFunc func(*core.Machine, time.Time, core.ReqID)

// settleCall settles with the application's preimage: zero for lnmux's
// own invoices.
func settleCall(hash domain.PaymentHash, id domain.SetID, preimage domain.Preimage) callFunc {
	return func(c *core.Machine, now time.Time, req core.ReqID) { c.Settle(now, req, hash, id, preimage) }
}

func permanentCall(hash domain.PaymentHash) callFunc {
	return func(c *core.Machine, now time.Time, req core.ReqID) { c.Cancel(now, req, hash, domain.SetID{}, true) }
}

func cancelCall(hash domain.PaymentHash, id domain.SetID) callFunc {
	return func(c *core.Machine, now time.Time, req core.ReqID) { c.Cancel(now, req, hash, id, false) }
}

// startCall makes a request without waiting for its reply.
func (m *Mux) startCall(f callFunc) *pendingCall {
	req, ch := m.request(context.Background(), f)
	return &pendingCall{ch: ch, req: req}
}

// callSync makes a request of incarnation m and, as a caller waiting for
// its reply would, lets the queued work run (in order) until it comes.
func (s *sim) callSync(m *Mux, f callFunc) error {
	p := m.startCall(f)
	for {
		if done, err := p.poll(); done {
			return err
		}
		if len(s.jobs) == 0 {
			// What is left waits for a timer (a write being retried): the
			// caller gives up, as one whose deadline passed.
			m.do(context.Background(), func(c *core.Machine, _ time.Time) { c.Abandon(p.req) })
			if done, err := p.poll(); done {
				return err
			}
			s.violate("a request was never answered")
			return errors.New("sim: no reply")
		}
		j := s.jobs[0]
		s.jobs = s.jobs[1:]
		j.f()
	}
}

// TestSimulationSwaps runs the simulation with swap invoices: half the new
// invoices have a payment hash the application chose, a decision window
// of their own (1 s to 5 min), and are settled only with its preimage,
// sometimes after a wrong one (refused, the set untouched). Everything
// TestSimulation checks holds too. -sim.seeds sets the count as there.
func TestSimulationSwaps(t *testing.T) {
	if *simSeed != 0 {
		if err := runSimWith(t, *simSeed, testing.Verbose(), nil, true); err != nil {
			t.Fatalf("seed %d: %v", *simSeed, err)
		}
		return
	}
	n := *simSeeds
	if testing.Short() || raceEnabled {
		n = min(n, 200)
	}
	failed := 0
	for s := *simFirst; s < *simFirst+uint64(n); s++ {
		if err := runSimWith(t, s, false, nil, true); err != nil {
			failed++
			t.Errorf("seed %d: %v\n  replay: go test ./app -run TestSimulationSwaps -sim.seed=%d -v", s, err, s)
			if failed >= 5 {
				t.Fatal("stopping after 5 failing seeds")
			}
		}
	}
	t.Logf("%d schedules with swaps checked, %d failed", n, failed)
}

// TestSimulationIsDeterministic runs seeds twice: the same inputs must
// give the same run, step for step, or a failing seed could not be
// replayed (and the machine would depend on something besides its inputs,
// such as Go's random map order).
func TestSimulationIsDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		var a, b simRecord
		swaps := seed%2 == 0
		errA := runSimWith(t, seed, false, &a, swaps)
		errB := runSimWith(t, seed, false, &b, swaps)
		if fmt.Sprint(errA) != fmt.Sprint(errB) {
			t.Fatalf("seed %d: %v, then %v", seed, errA, errB)
		}
		if !slices.Equal(a.trace, b.trace) {
			for i := range min(len(a.trace), len(b.trace)) {
				if a.trace[i] != b.trace[i] {
					t.Fatalf("seed %d: runs differ at step %d:\n  %s\n  %s", seed, i, a.trace[i], b.trace[i])
				}
			}
			t.Fatalf("seed %d: runs differ in length: %d and %d steps", seed, len(a.trace), len(b.trace))
		}
		if !reflect.DeepEqual(a.store, b.store) {
			t.Fatalf("seed %d: the store differs between two runs", seed)
		}
	}
}
