package lnd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/chainrpc"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

var _ ports.Node = (*Node)(nil)

// stableAfter is how long a session must last for the backoff to reset.
const stableAfter = 10 * time.Second

// Node is one LND node of the cluster.
type Node struct {
	cfg     Config
	log     *slog.Logger
	running atomic.Bool

	mu     sync.Mutex
	status ports.NodeStatus
	icpt   *interceptor // the open interceptor stream, nil when down
	ready  *readyConn   // a connection Standby checked, for the next session
	q      *queue
	spans  htlcSpans // trace links of the HTLCs lnmux holds (trace.go)

	// chanInactive is when each inactive channel (by channel point) was
	// first measured inactive; only the liquidity loop uses it, one
	// session at a time (liquidity.go).
	chanInactive map[string]time.Time
}

// New checks the configuration; it does not connect (Run does).
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Node{
		cfg:    cfg,
		log:    cfg.Logger.With("node", cfg.PubKey.String(), "lnd", cfg.URL),
		status: ports.NodeStatus{Node: cfg.PubKey, Since: cfg.Now()},
	}, nil
}

// Key implements ports.Node.
func (n *Node) Key() domain.NodeKey { return n.cfg.PubKey }

// Status returns what the node last reported.
func (n *Node) Status() ports.NodeStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

// Run implements ports.Node. Every session opens one connection and runs the
// interceptor, block and final-resolution streams on it; when any of them
// fails the session ends, and the next one starts after a backoff. It
// returns nil when ctx ends, and an ErrMisconfigured error when lnd answers
// but may not be used.
func (n *Node) Run(ctx context.Context, sink ports.NodeSink) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("lnd node: Run called twice")
	}
	defer n.running.Store(false)

	q := newQueueWorkers(n.cfg.DecodeWorkers)
	// The queue outlives ctx a little so the last status gets through.
	qctx, stopQueue := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { q.run(qctx) })
	defer func() {
		stopQueue()
		wg.Wait()
	}()
	n.mu.Lock()
	n.q = q
	n.mu.Unlock()

	backoff := n.cfg.MinBackoff
	for {
		lasted, err := n.session(ctx, sink, q)
		if ctx.Err() != nil {
			n.setStatus(sink, func(s *ports.NodeStatus) { s.Connected, s.InterceptorActive = false, false })
			// Report the final status before the queue stops.
			n.flush(q)
			return nil
		}
		n.setStatus(sink, func(s *ports.NodeStatus) {
			s.Connected, s.InterceptorActive, s.LastError = false, false, err.Error()
		})
		if errors.Is(err, ErrMisconfigured) {
			n.log.ErrorContext(ctx, "lnd node refused", "err", err)
			n.flush(q)
			return err
		}
		if lasted >= stableAfter {
			backoff = n.cfg.MinBackoff
		}
		n.log.WarnContext(ctx, "lnd node disconnected", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, n.cfg.MaxBackoff)
	}
}

// flush waits (briefly) until the queue has delivered what it holds.
func (n *Node) flush(q *queue) {
	done := make(chan struct{})
	q.push(func(context.Context) { close(done) })
	select {
	case <-done:
	case <-time.After(time.Second):
	}
}

// session runs one connection until it fails or ctx ends, and reports how
// long it was connected.
func (n *Node) session(ctx context.Context, sink ports.NodeSink, q *queue) (time.Duration, error) {
	var conn *grpc.ClientConn
	var info *lnrpc.GetInfoResponse
	if r := n.takeReady(); r != nil {
		// Checked by Standby moments ago: intercept at once.
		conn, info = r.conn, r.info
	} else {
		var err error
		if conn, info, err = n.connectChecked(ctx); err != nil {
			return 0, err
		}
	}
	defer conn.Close()
	began := time.Now()
	n.log.InfoContext(ctx, "lnd node connected", "version", info.Version, "height", info.BlockHeight)
	n.setStatus(sink, func(s *ports.NodeStatus) {
		s.Connected, s.Height, s.LastError = true, info.BlockHeight, ""
	})
	height := info.BlockHeight
	q.push(func(ctx context.Context) { sink.BlockHeight(ctx, n.cfg.PubKey, height) })

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(sctx)
	g.Go(func() error { return n.intercept(gctx, conn, sink, q) })
	g.Go(func() error { return n.blocks(gctx, chainrpc.NewChainNotifierClient(conn), sink, q) })
	g.Go(func() error { return n.finals(gctx, conn, sink, q) })
	// Measuring liquidity never fails the session (liquidity.go).
	g.Go(func() error { n.liquidity(gctx, conn, sink); return nil })
	err := g.Wait()
	return time.Since(began), err
}

// setStatus changes the status and reports it through the queue, so the
// sink sees it in order with the HTLCs. A new height alone is not reported
// here: BlockHeight carries it. The inbound liquidity stays as last
// measured while the node is away (its channels are still there).
func (n *Node) setStatus(sink ports.NodeSink, change func(*ports.NodeStatus)) {
	n.mu.Lock()
	before := n.status
	change(&n.status)
	connChanged := n.status.Connected != before.Connected || n.status.InterceptorActive != before.InterceptorActive
	if connChanged {
		n.status.Since = n.cfg.Now()
	}
	changed := connChanged || n.status.LastError != before.LastError ||
		n.status.Inbound != before.Inbound || n.status.InboundKnown != before.InboundKnown
	s, q := n.status, n.q
	n.mu.Unlock()
	if changed && q != nil {
		q.push(func(ctx context.Context) { sink.NodeStatusChanged(ctx, s) })
	}
}

// blocks follows the node's best height. lnd sends its current tip first.
func (n *Node) blocks(ctx context.Context, chain chainrpc.ChainNotifierClient, sink ports.NodeSink, q *queue) error {
	stream, err := chain.RegisterBlockEpochNtfn(ctx, &chainrpc.BlockEpoch{})
	if err != nil {
		return fmt.Errorf("block epochs: %w", err)
	}
	for {
		epoch, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("block epochs: %w", err)
		}
		height := epoch.Height
		n.mu.Lock()
		icpt := n.icpt
		n.mu.Unlock()
		if icpt != nil {
			icpt.expire(height)
		}
		n.setStatus(sink, func(s *ports.NodeStatus) { s.Height = height })
		q.push(func(ctx context.Context) { sink.BlockHeight(ctx, n.cfg.PubKey, height) })
	}
}
