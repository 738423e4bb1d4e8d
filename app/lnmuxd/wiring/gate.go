package wiring

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Gate stands between the lnd nodes and the multiplexer. During a
// hand-over it keeps the HTLCs lnd offers from the multiplexer: they stay
// unanswered, held by lnd (--requireinterceptor), which offers them again
// to the next leader's interceptor once this one's streams close. It also
// watches the nodes' status, to tell when every interceptor is active.
type Gate struct {
	draining atomic.Bool

	mu       sync.Mutex
	active   map[domain.NodeKey]bool
	n        int
	allReady chan struct{} // closed once every node intercepts
}

// NewGate returns the gate of these nodes.
func NewGate(nodes []*lnd.Node) *Gate {
	g := &Gate{active: map[domain.NodeKey]bool{}, n: len(nodes), allReady: make(chan struct{})}
	if g.n == 0 {
		close(g.allReady)
	}
	return g
}

// Wrap returns the ports.Node the multiplexer runs for n.
func (g *Gate) Wrap(n *lnd.Node) ports.Node { return gatedNode{Node: n, g: g} }

// Drain stops handing new HTLCs to the multiplexer.
func (g *Gate) Drain() { g.draining.Store(true) }

// Intercepting is closed once every node's interceptor is active.
func (g *Gate) Intercepting() <-chan struct{} { return g.allReady }

func (g *Gate) observe(s ports.NodeStatus) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active[s.Node] = s.InterceptorActive
	count := 0
	for _, on := range g.active {
		if on {
			count++
		}
	}
	if count == g.n {
		select {
		case <-g.allReady:
		default:
			close(g.allReady)
		}
	}
}

type gatedNode struct {
	*lnd.Node
	g *Gate
}

// Run implements ports.Node.
func (n gatedNode) Run(ctx context.Context, sink ports.NodeSink) error {
	return n.Node.Run(ctx, gateSink{NodeSink: sink, g: n.g})
}

// gateSink passes everything on to the multiplexer except what the gate
// holds back. PrepareHTLC (part of ports.NodeSink) is passed on by the
// embedded sink: the adapter peels onions on its workers through it
// (docs/design.md, "Parallel decode, ordered delivery").
type gateSink struct {
	ports.NodeSink
	g *Gate
}

// HTLCIntercepted hands the HTLC on unless the gate drains.
func (s gateSink) HTLCIntercepted(ctx context.Context, h ports.InterceptedHTLC) {
	if s.g.draining.Load() {
		return // held by lnd for the next leader
	}
	s.NodeSink.HTLCIntercepted(ctx, h)
}

// NodeStatusChanged reports the status on and watches it.
func (s gateSink) NodeStatusChanged(ctx context.Context, st ports.NodeStatus) {
	s.NodeSink.NodeStatusChanged(ctx, st)
	s.g.observe(st)
}
