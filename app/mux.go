// Package app is lnmux's application core: the multiplexer that turns
// intercepted HTLCs into accepted invoices, the invoice service and the
// settlement tracker. It drives the domain through ports and knows no
// database, RPC framework or LND wire format.
package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lnmux/lnmux/app/core"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Config holds what the multiplexer needs besides its ports.
type Config struct {
	// IdentityKey is the 32-byte private key of the virtual node.
	IdentityKey []byte
	Network     *chaincfg.Params
	Policy      domain.RoutingPolicy
	// FinalCLTVDelta is the invoices' min_final_cltv_expiry.
	FinalCLTVDelta uint32
	// FinalCLTVRejectDelta: HTLCs expiring within this many blocks of the
	// node's height are refused.
	FinalCLTVRejectDelta uint32
	// HoldTimeout bounds how long a part of an incomplete set is held.
	HoldTimeout time.Duration
	// AcceptTimeout bounds how long an accepted set waits for a decision.
	AcceptTimeout time.Duration
	// AutoFailMargin: sets are cancelled this many blocks before lnd's
	// auto_fail_height of any of their HTLCs.
	AutoFailMargin uint32
	AutoSettle     bool
	// SubscriberGrace: with auto-settle off, new sets are still held this
	// long after start and after the last accepted subscriber left, so
	// that the application can (re)connect: lnd re-offers held HTLCs the
	// moment the interceptor is back. Their accept timer still bounds them.
	// Default: AcceptTimeout.
	SubscriberGrace time.Duration
	// Metrics receives counts; nil discards them.
	Metrics ports.Metrics
	// AfterSettleCommit, if set, runs after a settlement is committed and
	// before any preimage is sent: the crash-recovery tests kill the
	// process there.
	AfterSettleCommit func()
	// Go runs background work (store writes and their retries); nil runs
	// it on a new goroutine. The simulation runs it on its own schedule.
	Go func(func())
	// Tracer marks settlements in the traces; nil traces nothing.
	Tracer ports.Tracer
	// Entropy makes the nonces of new invoices (their payment secrets and
	// preimages); nil means crypto/rand. The simulation gives a seeded
	// one, to replay a run exactly. Never set it in production.
	Entropy io.Reader
	// MaxPaidInMemory bounds the paid hashes without pending HTLCs kept in
	// memory; 0 means 1<<20.
	MaxPaidInMemory int
	// HintGrace: a node unreachable for longer is left out of new
	// invoices' route hints (docs/route-hints.md). Default 5 minutes.
	HintGrace time.Duration
}

func (c *Config) setDefaults() {
	if c.Network == nil {
		c.Network = &chaincfg.RegressionNetParams
	}
	if c.FinalCLTVDelta == 0 {
		c.FinalCLTVDelta = 40
	}
	if c.FinalCLTVRejectDelta == 0 {
		c.FinalCLTVRejectDelta = 19
	}
	if c.HoldTimeout == 0 {
		c.HoldTimeout = 120 * time.Second
	}
	if c.AcceptTimeout == 0 {
		c.AcceptTimeout = 60 * time.Second
	}
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	if c.SubscriberGrace == 0 {
		c.SubscriberGrace = c.AcceptTimeout
	}
	if c.AutoFailMargin == 0 {
		c.AutoFailMargin = 10
	}
	if c.Policy.CLTVDelta == 0 {
		c.Policy.CLTVDelta = 40
	}
	if c.Go == nil {
		c.Go = func(f func()) { go f() }
	}
	if c.Tracer == nil {
		c.Tracer = ports.NoTracer{}
	}
	if c.MaxPaidInMemory == 0 {
		c.MaxPaidInMemory = defaultMaxPaid
	}
	if c.HintGrace == 0 {
		c.HintGrace = 5 * time.Minute
	}
}

// Defaults is the configuration the core uses for every field left zero.
// lnmuxd's configuration defaults must agree with it (a test checks that,
// app/lnmuxd/config/config_test.go: the config library needs literal defaults).
func Defaults() Config {
	var c Config
	c.setDefaults()
	return c
}

// defaultMaxPaid bounds the paid hashes kept in memory (docs/design.md,
// "Memory").
const defaultMaxPaid = 1 << 20

// Mux is the multiplexer: the driver of the settlement machine (package
// core, docs/design.md "The machine"). It implements ports.NodeSink for the
// nodes and ports.Service for the API. Every input reaches the machine
// through one loop goroutine (driver.go), which also executes what the
// machine decided: it sends answers, publishes events, starts store writes
// and reads on their own goroutines and feeds their outcomes back.
type Mux struct {
	cfg     Config
	log     *slog.Logger
	clock   ports.Clock
	store   ports.InvoiceStore
	pubKey  domain.NodeKey
	onion   *onionDecoder
	blinder *blinder
	invoice *invoiceFactory
	nodes   map[domain.NodeKey]*nodeState
	hub     *hub
	// core is the machine; only the loop touches it (or the caller, when
	// inline: the simulation drives it from its one goroutine).
	core   *core.Machine
	inline bool
	inbox  chan job
	loop   sync.Once
	// Owned by the loop.
	timer   ports.Timer
	timerAt time.Time
	nextReq core.ReqID
	replies map[core.ReqID]chan error
	traces  map[traceKey]settleTrace
	stepCtx context.Context //nolint:containedctx // the context of the input being stepped, for trace parents
	// ready is set once recovery from the store is done.
	ready     atomic.Bool
	fatalOnce sync.Once
	fatalErr  error
	fatalCh   chan struct{}
}

var (
	_ ports.NodeSink = (*Mux)(nil)
	_ ports.Service  = (*Mux)(nil)
)

type nodeState struct {
	node   ports.Node
	chanID uint64
	// originalChanID is the original lnmux's virtual channel through this
	// node: its invoices, and settlements adopted from its database, arrive
	// there (docs/compatibility.md).
	originalChanID uint64
	// height is the node's best height as last reported, for Info.
	height atomic.Uint32
	mu     sync.Mutex
	status ports.NodeStatus
}

// New builds the multiplexer. Call Recover before handing it to nodes.
func New(cfg Config, nodes []ports.Node, store ports.InvoiceStore, clock ports.Clock, log *slog.Logger) (*Mux, error) {
	cfg.setDefaults()
	if err := domain.ValidateIdentityKey(cfg.IdentityKey); err != nil {
		return nil, err
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	key, pub := btcec.PrivKeyFromBytes(cfg.IdentityKey)
	codec, err := domain.NewInvoiceCodec(cfg.IdentityKey)
	if err != nil {
		return nil, err
	}
	m := &Mux{
		cfg:   cfg,
		log:   log,
		clock: clock,
		store: store,
		onion: newOnionDecoder(key),
		nodes: make(map[domain.NodeKey]*nodeState, len(nodes)),
		hub:   newHub(),
		core: core.New(core.Config{
			Rules: domain.Rules{
				Codec:                codec,
				Policy:               cfg.Policy,
				FinalCLTVRejectDelta: cfg.FinalCLTVRejectDelta,
				FinalCLTVDelta:       cfg.FinalCLTVDelta,
			},
			HoldTimeout:     cfg.HoldTimeout,
			AcceptTimeout:   cfg.AcceptTimeout,
			SubscriberGrace: cfg.SubscriberGrace,
			AutoFailMargin:  cfg.AutoFailMargin,
			AutoSettle:      cfg.AutoSettle,
			MaxPaidInMemory: cfg.MaxPaidInMemory,
		}),
		inbox:   make(chan job, 256),
		replies: make(map[core.ReqID]chan error),
		traces:  make(map[traceKey]settleTrace),
		stepCtx: context.Background(),
		fatalCh: make(chan struct{}),
	}
	copy(m.pubKey[:], pub.SerializeCompressed())
	if m.blinder, err = newBlinder(key); err != nil {
		return nil, err
	}
	m.onion.blinder = m.blinder
	keys := make([]domain.NodeKey, 0, len(nodes))
	for _, n := range nodes {
		k := n.Key()
		if _, dup := m.nodes[k]; dup {
			return nil, fmt.Errorf("%w: node %s configured twice", domain.ErrInvalidArgument, k)
		}
		ns := &nodeState{node: n, chanID: domain.VirtualChannelID(k), originalChanID: domain.OriginalVirtualChannelID(k)}
		ns.status.Node = k
		m.nodes[k] = ns
		keys = append(keys, k)
	}
	m.invoice, err = newInvoiceFactory(key, codec, cfg.Network, keys, cfg.Policy, cfg.FinalCLTVDelta, cfg.HintGrace, clock)
	if err != nil {
		return nil, err
	}
	m.invoice.entropy = cfg.Entropy
	m.invoice.blinder = m.blinder
	m.invoice.height = m.height
	return m, nil
}

// noMetrics discards counts.
type noMetrics struct{}

func (noMetrics) HTLCResolved(ports.Action, domain.FailureReason) {}
func (noMetrics) HTLCHeld()                                       {}
func (noMetrics) SetAccepted(int)                                 {}
func (noMetrics) SettleRequested()                                {}
func (noMetrics) InvoiceFinal(domain.InvoiceStatus, bool)         {}

// Stats reports the in-memory state for gauges.
func (m *Mux) Stats() ports.Stats {
	var c core.Counts
	m.do(context.Background(), func(mc *core.Machine, _ time.Time) { c = mc.Counts() })
	return ports.Stats{Nodes: m.Info(context.Background()).Nodes, Sets: c.Sets, PendingSettleHTLCs: c.Pending}
}

// height is the highest chain height a node reported; zero while none has.
func (m *Mux) height() uint32 {
	var h uint32
	for _, ns := range m.nodes {
		h = max(h, ns.height.Load())
	}
	return h
}

// PubKey is the virtual node's public key.
func (m *Mux) PubKey() domain.NodeKey { return m.pubKey }

// Run starts every node and the housekeeping loop, and returns when ctx is
// done. Recover must have succeeded first.
func (m *Mux) Run(ctx context.Context) error {
	if !m.ready.Load() {
		return errors.New("recover before run")
	}
	if len(m.nodes) == 0 {
		m.log.WarnContext(ctx, "no lnd nodes configured: invoices can be created but not paid")
	}
	if !m.cfg.AutoSettle {
		m.log.InfoContext(ctx, "auto-settle off: new payments are refused until an application subscribes to accepted invoices")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-m.fatalCh:
			// Stop intercepting first: lnd holds what is not answered.
			cancel()
		}
	})
	for _, ns := range m.nodes {
		wg.Go(func() {
			// A node returns only for a configuration error or shutdown;
			// the others keep going either way.
			if err := ns.node.Run(ctx, m); err != nil && ctx.Err() == nil {
				m.log.ErrorContext(ctx, "node stopped", "node", ns.node.Key(), "err", err)
				ns.setStatus(func(s *ports.NodeStatus) { s.Connected, s.InterceptorActive, s.LastError = false, false, err.Error() })
			}
		})
	}
	wg.Wait()
	// Nothing answers lnd any more: it holds what is not answered and
	// offers it to the next lnmux.
	m.do(context.Background(), func(c *core.Machine, _ time.Time) { c.Depose("stopped") })
	select {
	case <-m.fatalCh:
		return m.fatalErr
	default:
		return nil
	}
}

// fatal stops the multiplexer for good: a write was fenced, so another
// lnmux leads. The machine is deposed already; Run returns err.
func (m *Mux) fatal(err error) {
	m.fatalOnce.Do(func() {
		m.fatalErr = err
		m.log.Error("leadership lost: stopping", "err", err)
		close(m.fatalCh)
	})
}

// Fatal is closed when the multiplexer stopped for good (see fatal).
func (m *Mux) Fatal() <-chan struct{} { return m.fatalCh }

func (ns *nodeState) setStatus(f func(*ports.NodeStatus)) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	f(&ns.status)
}

func (ns *nodeState) getStatus() ports.NodeStatus {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	s := ns.status
	s.Height = ns.height.Load()
	return s
}

// Info implements ports.Service.
func (m *Mux) Info(context.Context) ports.Info {
	info := ports.Info{PubKey: m.pubKey, Network: m.cfg.Network.Name, AutoSettle: m.cfg.AutoSettle}
	for _, ns := range m.nodes {
		s := ns.getStatus()
		s.Hint = m.invoice.hintStatus(s.Node)
		info.Nodes = append(info.Nodes, s)
	}
	sortNodes(info.Nodes)
	return info
}

// AddInvoice implements ports.Service.
func (m *Mux) AddInvoice(ctx context.Context, req ports.AddInvoiceRequest) (ports.AddInvoiceResult, error) {
	return m.invoice.create(ctx, req)
}

// ListInvoices implements ports.Service.
func (m *Mux) ListInvoices(ctx context.Context, from uint64, limit int) ([]domain.Invoice, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit must be positive", domain.ErrInvalidArgument)
	}
	return m.store.List(ctx, from, limit)
}

// NodeStatusChanged implements ports.NodeSink.
func (m *Mux) NodeStatusChanged(ctx context.Context, s ports.NodeStatus) {
	ns, ok := m.nodes[s.Node]
	if !ok {
		return
	}
	prev := ns.getStatus()
	ns.setStatus(func(cur *ports.NodeStatus) { *cur = s })
	if s.Height > 0 {
		ns.height.Store(s.Height)
		m.do(ctx, func(c *core.Machine, _ time.Time) { c.Height(s.Node, s.Height) })
	}
	if err := m.invoice.nodeChanged(s); err != nil {
		m.log.ErrorContext(ctx, "route hints not updated", "node", s.Node, "err", err)
	}
	level := slog.LevelInfo
	if prev.Connected == s.Connected && prev.InterceptorActive == s.InterceptorActive && prev.LastError == s.LastError {
		level = slog.LevelDebug // a new inbound liquidity only
	}
	m.log.Log(ctx, level, "node status", "node", s.Node, "connected", s.Connected,
		"interceptor", s.InterceptorActive, "last_error", s.LastError, "inbound_msat", s.Inbound, "inbound_known", s.InboundKnown)
}

func sortNodes(ns []ports.NodeStatus) {
	slices.SortFunc(ns, func(a, b ports.NodeStatus) int { return bytes.Compare(a.Node[:], b.Node[:]) })
}
