package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	sphinx "github.com/lightningnetwork/lightning-onion"
	"github.com/lightningnetwork/lnd/htlcswitch/hop"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/record"
	"github.com/lightningnetwork/lnd/routing/route"

	"github.com/lnmux/lnmux/adapters/memstore"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// fakeClock is the simulation's clock (sim_test.go): timers fire from
// Advance, in deadline order and, for equal deadlines, in creation order.
type fakeClock = simClock

var _ ports.Clock = (*fakeClock)(nil)

func newFakeClock() *fakeClock {
	return &simClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
}

// fakeNode records resolutions.
type fakeNode struct {
	key domain.NodeKey
	// priv lets blinded tests play the introduction node (blinded_test.go).
	priv *btcec.PrivateKey
	mu   sync.Mutex
	res  []ports.Resolution
	ch   chan ports.Resolution
	// down makes Resolve fail as when the interceptor stream is gone.
	down atomic.Bool
}

var _ ports.Node = (*fakeNode)(nil)

func newFakeNode(t testing.TB) *fakeNode {
	t.Helper()
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{ch: make(chan ports.Resolution, 1024), priv: k}
	copy(n.key[:], k.PubKey().SerializeCompressed())
	return n
}

func (n *fakeNode) Key() domain.NodeKey { return n.key }

func (n *fakeNode) Run(ctx context.Context, _ ports.NodeSink) error {
	<-ctx.Done()
	return nil
}

func (n *fakeNode) Resolve(_ context.Context, r ports.Resolution) error {
	if n.down.Load() {
		return errors.New("interceptor stream down")
	}
	n.mu.Lock()
	n.res = append(n.res, r)
	n.mu.Unlock()
	select {
	case n.ch <- r:
	default:
	}
	return nil
}

// next waits for the node's next resolution.
func (n *fakeNode) next(t testing.TB) ports.Resolution {
	t.Helper()
	select {
	case r := <-n.ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no resolution")
		return ports.Resolution{}
	}
}

// none asserts that no resolution is waiting.
func (n *fakeNode) none(t testing.TB) {
	t.Helper()
	select {
	case r := <-n.ch:
		t.Fatalf("unexpected resolution %s for %s", r.Action, r.Circuit)
	default:
	}
}

// memStore is the memory store (adapters/memstore, held to the SQL stores'
// contract) with the faults the tests inject. Every call holds mu, so a
// test holding it makes the store hang.
type memStore struct {
	mu   sync.Mutex
	core *memstore.Store
	// invs mirrors what core holds, for the simulation's checks, which read
	// it directly.
	invs map[domain.PaymentHash]domain.Invoice
	// failNext makes the next RequestSettle fail before committing.
	failNext error
	// ambiguous makes this many RequestSettle calls commit and then fail
	// with ambiguousErr, as a lost COMMIT acknowledgement does.
	ambiguous    int
	ambiguousErr error
	// failUpdates makes this many Update calls fail.
	failUpdates int
	// updateGate, if set, blocks Update until it is closed.
	updateGate chan struct{}
	// unavailable, if set, fails every RequestSettle before it commits.
	unavailable error
	settles     int
	// entered, if set before the store is used, receives a value each time
	// RequestSettle is called, before it takes the lock: tests that hang a
	// write by holding mu learn from it that the write is in flight.
	entered chan struct{}
}

var _ ports.InvoiceStore = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{core: memstore.New(), invs: make(map[domain.PaymentHash]domain.Invoice)}
}

func (s *memStore) RequestSettle(ctx context.Context, inv domain.Invoice) (domain.Invoice, error) {
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default: // nobody is counting any more
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failNext; err != nil {
		s.failNext = nil
		return domain.Invoice{}, err
	}
	s.settles++
	if s.unavailable != nil {
		return domain.Invoice{}, s.unavailable
	}
	out, err := s.core.RequestSettle(ctx, inv)
	if err != nil {
		return domain.Invoice{}, err
	}
	s.invs[out.Hash] = out
	if s.ambiguous > 0 {
		s.ambiguous--
		err := s.ambiguousErr
		if err == nil {
			err = errors.New("connection reset after COMMIT")
		}
		return domain.Invoice{}, err
	}
	return out, nil
}

func (s *memStore) Get(ctx context.Context, h domain.PaymentHash) (domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Get(ctx, h)
}

func (s *memStore) Update(ctx context.Context, h domain.PaymentHash, fn func(*domain.Invoice) error) (domain.Invoice, error) {
	s.mu.Lock()
	gate := s.updateGate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return domain.Invoice{}, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failUpdates > 0 {
		s.failUpdates--
		return domain.Invoice{}, errors.New("database unavailable")
	}
	out, err := s.core.Update(ctx, h, fn)
	if err == nil {
		s.invs[h] = out
	}
	return out, err
}

func (s *memStore) ListPending(ctx context.Context) ([]domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.ListPending(ctx)
}

func (s *memStore) ListUnexpired(ctx context.Context, t time.Time) ([]ports.StoredExpiry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.ListUnexpired(ctx, t)
}

func (s *memStore) List(ctx context.Context, from uint64, limit int) ([]domain.Invoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.List(ctx, from, limit)
}

func (s *memStore) RecordCancel(ctx context.Context, c domain.CancelRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unavailable != nil {
		return s.unavailable
	}
	return s.core.RecordCancel(ctx, c)
}

func (s *memStore) ListCancels(ctx context.Context, t time.Time) ([]domain.CancelRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.ListCancels(ctx, t)
}

var _ ports.InvoiceEventLog = (*memStore)(nil)

func (s *memStore) ListEvents(ctx context.Context, after uint64, limit int) ([]ports.InvoiceEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.ListEvents(ctx, after, limit)
}

// harness is one lnmux over fake nodes, a memory store and a fake clock.
type harness struct {
	t      testing.TB
	mux    *Mux
	nodes  []*fakeNode
	store  *memStore
	clock  *fakeClock
	key    []byte
	cfg    Config
	height uint32
	htlcID uint64
}

var testIdentity = bytes.Repeat([]byte{0x42}, 32)

func newHarness(t testing.TB, nNodes int, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, store: newMemStore(), clock: newFakeClock(), key: testIdentity, height: 1000}
	for range nNodes {
		h.nodes = append(h.nodes, newFakeNode(t))
	}
	// Store writes and reads run on their own goroutines, as in
	// production: a caller waits for its reply, which comes after them.
	h.cfg = Config{IdentityKey: h.key, Policy: domain.RoutingPolicy{FeeBase: 1000, FeeRatePPM: 100, CLTVDelta: 40}}
	if mod != nil {
		mod(&h.cfg)
	}
	h.restart()
	return h
}

// restart builds a new Mux over the same store, nodes and clock, as after a
// crash.
func (h *harness) restart() {
	h.t.Helper()
	h.restartWith(h.store)
}

// restartWith builds a new Mux over store.
func (h *harness) restartWith(store ports.InvoiceStore) {
	h.t.Helper()
	nodes := make([]ports.Node, len(h.nodes))
	for i, n := range h.nodes {
		nodes[i] = n
	}
	log := slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(h.cfg, nodes, store, h.clock, log)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := m.Recover(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	for _, n := range h.nodes {
		m.BlockHeight(context.Background(), n.key, h.height)
	}
	h.mux = m
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	if testing.Verbose() {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (h *harness) invoice(amt domain.Msat, expiry time.Duration) ports.AddInvoiceResult {
	h.t.Helper()
	res, err := h.mux.AddInvoice(context.Background(), ports.AddInvoiceRequest{Amount: amt, Expiry: expiry})
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

// part describes one HTLC a payer sends to lnmux through a node.
type part struct {
	node    *fakeNode
	amount  domain.Msat
	total   domain.Msat
	htlcID  uint64 // 0: next id
	chanID  uint64 // 0: the node's virtual channel
	expiry  uint32 // 0: height + 100
	noMPP   bool
	feePaid *domain.Msat
	// onionAmt/onionCLTV override what the onion asks for.
	onionAmt  domain.Msat
	onionCLTV uint32
	autoFail  uint32
	// session is the payer's onion session key; nil: a random one (the
	// simulation draws its own from the seed).
	session *btcec.PrivateKey
}

type sentHTLC struct {
	htlc    ports.InterceptedHTLC
	circuit *sphinx.Circuit
	// intro wraps lnmux's failure as the introduction node of a blinded
	// path would (blinded_test.go); nil for a plain HTLC.
	intro hop.ErrorEncrypter
}

// build makes an intercepted HTLC with a real onion addressed to lnmux.
func (h *harness) build(inv ports.AddInvoiceResult, p part) sentHTLC {
	h.t.Helper()
	if p.htlcID == 0 {
		h.htlcID++
		p.htlcID = h.htlcID
	}
	if p.chanID == 0 {
		p.chanID = domain.VirtualChannelID(p.node.key)
	}
	if p.expiry == 0 {
		p.expiry = h.height + 100
	}
	if p.total == 0 {
		p.total = p.amount
	}
	onionAmt, onionCLTV := p.amount, p.expiry
	if p.onionAmt != 0 {
		onionAmt = p.onionAmt
	}
	if p.onionCLTV != 0 {
		onionCLTV = p.onionCLTV
	}
	pub := h.mux.pubKey
	hop := &route.Hop{
		PubKeyBytes:      route.Vertex(pub),
		ChannelID:        p.chanID,
		OutgoingTimeLock: onionCLTV,
		AmtToForward:     lnwire.MilliSatoshi(onionAmt),
	}
	if !p.noMPP {
		hop.MPP = record.NewMPP(lnwire.MilliSatoshi(p.total), inv.PaymentAddr)
	}
	rt, err := route.NewRouteFromHops(lnwire.MilliSatoshi(onionAmt), onionCLTV, route.Vertex(p.node.key), []*route.Hop{hop})
	if err != nil {
		h.t.Fatal(err)
	}
	path, err := rt.ToSphinxPath()
	if err != nil {
		h.t.Fatal(err)
	}
	session := p.session
	if session == nil {
		if session, err = btcec.NewPrivateKey(); err != nil {
			h.t.Fatal(err)
		}
	}
	pkt, err := sphinx.NewOnionPacket(path, session, inv.Hash[:], sphinx.DeterministicPacketFiller)
	if err != nil {
		h.t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := pkt.Encode(&buf); err != nil {
		h.t.Fatal(err)
	}
	fee := h.cfg.Policy.Fee(p.amount)
	if p.feePaid != nil {
		fee = *p.feePaid
	}
	lnmuxPub, _ := btcec.ParsePubKey(pub[:])
	return sentHTLC{
		htlc: ports.InterceptedHTLC{
			Circuit:        domain.CircuitKey{Node: p.node.key, Chan: 7, HTLC: p.htlcID},
			Hash:           inv.Hash,
			OutgoingChanID: p.chanID,
			Forward: domain.Forward{
				IncomingAmount: p.amount + fee,
				OutgoingAmount: p.amount,
				IncomingExpiry: p.expiry + uint32(h.cfg.Policy.CLTVDelta),
				OutgoingExpiry: p.expiry,
			},
			AutoFailHeight: p.autoFail,
			Onion:          buf.Bytes(),
		},
		circuit: &sphinx.Circuit{SessionKey: session, PaymentPath: []*btcec.PublicKey{lnmuxPub}},
	}
}

func (h *harness) send(s sentHTLC) {
	h.mux.HTLCIntercepted(context.Background(), s.htlc)
}

// failure decrypts the BOLT 4 failure of a FAIL resolution.
func (h *harness) failure(s sentHTLC, r ports.Resolution) lnwire.FailureMessage {
	h.t.Helper()
	if r.Action != ports.ActionFail {
		h.t.Fatalf("resolution is %s, want fail", r.Action)
	}
	if len(r.FailureMessage) == 0 {
		h.t.Fatalf("fail without message (code %d)", r.FailureCode)
	}
	de, err := sphinx.NewOnionErrorDecrypter(s.circuit).DecryptError(r.FailureMessage)
	if err != nil {
		h.t.Fatalf("decrypt failure: %v", err)
	}
	msg, err := lnwire.DecodeFailure(bytes.NewReader(de.Message), 0)
	if err != nil {
		h.t.Fatalf("decode failure: %v", err)
	}
	return msg
}

// subscribe registers an accepted-event subscriber for the test's lifetime.
func (h *harness) subscribe() <-chan ports.AcceptedEvent {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan ports.AcceptedEvent, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.mux.SubscribeAccepted(ctx, func(ev ports.AcceptedEvent) error { ch <- ev; return nil })
	}()
	h.t.Cleanup(func() { cancel(); <-done })
	waitFor(h.t, "the accepted subscriber to be registered", h.mux.hub.hasAcceptedSubscribers)
	return ch
}

// waitFor waits until cond holds, for what the Mux does in a goroutine and
// announces by no event (a subscription being registered). It fails the test
// after a bound generous enough for a loaded machine.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitEntered waits for a store call to signal on ch (memStore.entered).
func waitEntered(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("waited 30s for %s", what)
	}
}

// acceptedPayment pays a new 10 000 msat invoice with one HTLC through n
// and waits for the set to be accepted: where most tests of what happens
// next begin.
func (h *harness) acceptedPayment(t testing.TB, acc <-chan ports.AcceptedEvent, n *fakeNode) (ports.AddInvoiceResult, sentHTLC, ports.AcceptedEvent) {
	t.Helper()
	inv := h.invoice(10000, time.Hour)
	s := h.build(inv, part{node: n, amount: 10000})
	h.send(s)
	return inv, s, nextAccepted(t, acc)
}

func nextAccepted(t testing.TB, ch <-chan ports.AcceptedEvent) ports.AcceptedEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no accepted event")
		return ports.AcceptedEvent{}
	}
}
