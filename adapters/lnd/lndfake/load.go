package lndfake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	sphinx "github.com/lightningnetwork/lightning-onion"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/record"
	"github.com/lightningnetwork/lnd/routing/route"

	"github.com/lnmux/lnmux/adapters/lnd"
	lnmuxprom "github.com/lnmux/lnmux/adapters/prometheus"
	"github.com/lnmux/lnmux/app"
	"github.com/lnmux/lnmux/app/lnmuxd/wiring"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// RigConfig shapes a load rig.
type RigConfig struct {
	// Nodes is the number of fake lnd nodes (default 2).
	Nodes int
	// Parts is the number of HTLCs per payment; part i of a set goes
	// through node i mod Nodes (default 4).
	Parts int
	// PartMsat is the amount of each part (default 10,000).
	PartMsat domain.Msat
	// DecodeWorkers is passed to each node's adapter (lnd.Config): 0 peels
	// onions on GOMAXPROCS workers, -1 on the delivery goroutine only.
	DecodeWorkers int
	// Logger receives lnmux's logs; nil discards them.
	Logger *slog.Logger
}

// Rig is lnmux's real application core (auto-settle, in-memory store)
// behind the real lnd adapter, assembled as lnmuxd assembles it
// (app/lnmuxd/wiring: every node behind the hand-over gate, the store and
// settlements traced, metrics fed), connected to fake lnd nodes over TLS
// gRPC.
type Rig struct {
	cfg     RigConfig
	Mux     *app.Mux
	Store   *MemStore
	servers []*Server
	dir     string
	height  uint32
	policy  domain.RoutingPolicy
	cancel  context.CancelFunc
	done    chan error

	htlcID atomic.Uint64

	// answers of the batch in flight
	mu       sync.Mutex
	expect   map[answerKey]*Offer
	answered int
	want     int
	all      chan struct{}
	failures []string
	latency  []time.Duration
	window   chan struct{}
}

type answerKey struct {
	node       int
	chan_, htl uint64
}

// Offer is one prebuilt HTLC: the request lnd would send and what lnmux
// must answer.
type Offer struct {
	node int
	req  *routerrpc.ForwardHtlcInterceptRequest
	hash domain.PaymentHash
	set  int
}

// NewRig starts the fake nodes and lnmux, and returns once every node's
// interceptor stream is open.
func NewRig(ctx context.Context, cfg RigConfig) (*Rig, error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 2
	}
	if cfg.Parts <= 0 {
		cfg.Parts = 4
	}
	if cfg.PartMsat <= 0 {
		cfg.PartMsat = 10_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dir, err := os.MkdirTemp("", "lndfake-")
	if err != nil {
		return nil, fmt.Errorf("rig: temp dir: %w", err)
	}
	r := &Rig{cfg: cfg, Store: NewMemStore(), dir: dir, height: 1000,
		policy: domain.RoutingPolicy{FeeBase: 1000, FeeRatePPM: 100, CLTVDelta: 40}, done: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	var nodes []*lnd.Node
	for i := range cfg.Nodes {
		d := fmt.Sprintf("%s/node%d", dir, i)
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("rig: node dir: %w", err)
		}
		s, err := Start(Options{Dir: d, Height: r.height, OnAnswer: func(a Answer) { r.onAnswer(i, a) }})
		if err != nil {
			return nil, err
		}
		r.servers = append(r.servers, s)
		nc := s.Config()
		nc.Logger = cfg.Logger
		nc.DecodeWorkers = cfg.DecodeWorkers
		n, err := lnd.New(nc)
		if err != nil {
			return nil, fmt.Errorf("rig: lnd adapter: %w", err)
		}
		nodes = append(nodes, n)
	}
	idKey, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, fmt.Errorf("rig: identity key: %w", err)
	}
	key := idKey.Serialize()
	// lnmuxd's own assembly of the HTLC path (the hand-over gate, traced
	// store, metrics): what is measured is what runs.
	m, _, err := wiring.NewMux(wiring.Options{
		App:   app.Config{IdentityKey: key, Policy: r.policy, AutoSettle: true},
		Nodes: nodes, Store: r.Store, Metrics: lnmuxprom.New(), Log: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("rig: lnmux: %w", err)
	}
	if err := m.Recover(ctx); err != nil {
		return nil, fmt.Errorf("rig: recover: %w", err)
	}
	r.Mux = m
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	go func() { r.done <- m.Run(rctx) }()
	for _, s := range r.servers {
		if err := s.WaitInterceptor(ctx); err != nil {
			return nil, err
		}
	}
	// The adapter reports the height before it opens the interceptor,
	// through the same ordered queue: HTLCs are judged at this height.
	ok = true
	return r, nil
}

// Close stops lnmux and the fake nodes.
func (r *Rig) Close() {
	if r.cancel != nil {
		r.cancel()
		<-r.done //nolint:errcheck // closing: the run's end was reported by Run
	}
	for _, s := range r.servers {
		s.Stop()
	}
	os.RemoveAll(r.dir)
}

// Build makes sets of payments with real sphinx onions for invoices of the
// rig's lnmux, sets×Parts HTLCs in all, on every core.
func (r *Rig) Build(ctx context.Context, sets int) ([]*Offer, error) {
	parts := r.cfg.Parts
	out := make([]*Offer, sets*parts)
	invs := make([]ports.AddInvoiceResult, sets)
	for i := range invs {
		var err error
		invs[i], err = r.Mux.AddInvoice(ctx, ports.AddInvoiceRequest{Amount: r.cfg.PartMsat * domain.Msat(parts), Expiry: time.Hour})
		if err != nil {
			return nil, fmt.Errorf("build: add invoice: %w", err)
		}
	}
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(out) {
					return
				}
				set, part := i/parts, i%parts
				o, err := r.offer(invs[set], set, (set+part)%len(r.servers))
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				out[i] = o
			}
		})
	}
	wg.Wait()
	return out, firstErr
}

// offer builds one part of inv through node.
func (r *Rig) offer(inv ports.AddInvoiceResult, set, node int) (*Offer, error) {
	nodeKey := r.servers[node].Key()
	chanID := domain.VirtualChannelID(nodeKey)
	amt := r.cfg.PartMsat
	total := amt * domain.Msat(r.cfg.Parts)
	expiry := r.height + 100
	pub := r.Mux.PubKey()
	hop := &route.Hop{
		PubKeyBytes:      route.Vertex(pub),
		ChannelID:        chanID,
		OutgoingTimeLock: expiry,
		AmtToForward:     lnwire.MilliSatoshi(amt),
		MPP:              record.NewMPP(lnwire.MilliSatoshi(total), inv.PaymentAddr),
	}
	rt, err := route.NewRouteFromHops(lnwire.MilliSatoshi(amt), expiry, route.Vertex(nodeKey), []*route.Hop{hop})
	if err != nil {
		return nil, fmt.Errorf("build: route: %w", err)
	}
	path, err := rt.ToSphinxPath()
	if err != nil {
		return nil, fmt.Errorf("build: sphinx path: %w", err)
	}
	session, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, err
	}
	pkt, err := sphinx.NewOnionPacket(path, session, inv.Hash[:], sphinx.DeterministicPacketFiller)
	if err != nil {
		return nil, fmt.Errorf("build: onion: %w", err)
	}
	var buf bytes.Buffer
	if err := pkt.Encode(&buf); err != nil {
		return nil, fmt.Errorf("build: encode onion: %w", err)
	}
	inExpiry := expiry + uint32(r.policy.CLTVDelta)
	return &Offer{node: node, hash: inv.Hash, set: set, req: &routerrpc.ForwardHtlcInterceptRequest{
		IncomingCircuitKey:      &routerrpc.CircuitKey{ChanId: 100 + uint64(node), HtlcId: r.htlcID.Add(1)},
		IncomingAmountMsat:      uint64(amt + r.policy.Fee(amt)),
		IncomingExpiry:          inExpiry,
		PaymentHash:             inv.Hash[:],
		OutgoingRequestedChanId: chanID,
		OutgoingAmountMsat:      uint64(amt),
		OutgoingExpiry:          expiry,
		OnionBlob:               buf.Bytes(),
		AutoFailHeight:          int32(inExpiry - 19),
	}}, nil
}

// Result is what one Run measured.
type Result struct {
	HTLCs    int
	Sets     int
	Elapsed  time.Duration // first offer to last answer
	Offered  float64       // offered HTLC/s (0: as fast as the window allows)
	Latency  []time.Duration
	Failures []string // answers other than SETTLE with the right preimage
	// CPU is the process's CPU time (user + system) during the run: lnmux
	// and the fake nodes' side of the streams. On a machine shared with
	// other work it says what the wall-clock rate cannot.
	CPU time.Duration
}

// CPUPerHTLC is the process's CPU time per HTLC.
func (res Result) CPUPerHTLC() time.Duration { return res.CPU / time.Duration(max(res.HTLCs, 1)) }

// Rate is the HTLCs answered per second.
func (res Result) Rate() float64 { return float64(res.HTLCs) / res.Elapsed.Seconds() }

// Percentile returns the p-th percentile (0–100) of the latencies.
func (res Result) Percentile(p float64) time.Duration {
	if len(res.Latency) == 0 {
		return 0
	}
	s := slices.Clone(res.Latency)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

func (res Result) String() string {
	mode := "max rate"
	if res.Offered > 0 {
		mode = fmt.Sprintf("offered %.0f HTLC/s", res.Offered)
	}
	return fmt.Sprintf("%s: %d HTLCs in %d sets in %s: %.0f HTLC/s; latency offer→answer p50 %s p99 %s max %s; CPU %s per HTLC (fake nodes included); %d wrong answers",
		mode, res.HTLCs, res.Sets, res.Elapsed.Round(time.Millisecond), res.Rate(),
		res.Percentile(50).Round(time.Microsecond), res.Percentile(99).Round(time.Microsecond),
		res.Percentile(100).Round(time.Microsecond), res.CPUPerHTLC().Round(time.Microsecond), len(res.Failures))
}

// Run offers the HTLCs and waits for every answer. With rate > 0 whole
// sets are offered at once (a payer's parts arrive together), sets spaced
// so that rate HTLCs per second are offered; with rate 0 HTLCs are offered
// as fast as possible with at most window unanswered.
func (r *Rig) Run(ctx context.Context, offers []*Offer, rate float64, window int) (Result, error) {
	if window <= 0 {
		window = 1024
	}
	r.mu.Lock()
	r.expect = make(map[answerKey]*Offer, len(offers))
	for _, o := range offers {
		r.expect[answerKey{o.node, o.req.IncomingCircuitKey.ChanId, o.req.IncomingCircuitKey.HtlcId}] = o
	}
	r.answered, r.want = 0, len(offers)
	r.all = make(chan struct{})
	r.failures, r.latency = nil, make([]time.Duration, 0, len(offers))
	r.window = nil
	if rate <= 0 {
		r.window = make(chan struct{}, window)
	}
	all := r.all
	r.mu.Unlock()

	// The offers are the fake lnd's work: label this goroutine as the
	// fake's server goroutines are (FakeLabels), until Run returns.
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, FakeLabels))
	defer pprof.SetGoroutineLabels(ctx)

	cpu0 := cpuTime()
	start := time.Now()
	sets := map[int]bool{}
	parts := r.cfg.Parts
	for i, o := range offers {
		sets[o.set] = true
		if rate > 0 && i%parts == 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return Result{}, ctx.Err()
				}
			}
		}
		if r.window != nil {
			select {
			case r.window <- struct{}{}:
			case <-ctx.Done():
				return Result{}, ctx.Err()
			}
		}
		if err := r.servers[o.node].Offer(o.req); err != nil {
			return Result{}, err
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
		r.mu.Lock()
		n := r.answered
		r.mu.Unlock()
		return Result{}, fmt.Errorf("run: %d of %d answered: %w", n, len(offers), ctx.Err())
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	r.mu.Lock()
	defer r.mu.Unlock()
	return Result{HTLCs: len(offers), Sets: len(sets), Elapsed: elapsed, Offered: rate,
		Latency: r.latency, Failures: r.failures, CPU: cpu}, nil
}

func (r *Rig) onAnswer(node int, a Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := answerKey{node, a.Chan, a.HTLC}
	o, ok := r.expect[k]
	if !ok {
		return
	}
	delete(r.expect, k)
	if r.window != nil {
		<-r.window
	}
	r.latency = append(r.latency, a.Latency)
	if a.Action != routerrpc.ResolveHoldForwardAction_SETTLE || sha256.Sum256(a.Preimage) != o.hash {
		r.failures = append(r.failures, fmt.Sprintf("node %d circuit %d:%d: %s", node, a.Chan, a.HTLC, a.Action))
	}
	r.answered++
	if r.answered == r.want {
		close(r.all)
	}
}

// WaitSettled waits until the store holds n invoices SETTLED: lnd's final
// events went through the adapter and the application.
func (r *Rig) WaitSettled(ctx context.Context, n int) error {
	for {
		if r.Store.Statuses()[domain.StatusSettled] >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait settled: %v: %w", r.Store.Statuses(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
