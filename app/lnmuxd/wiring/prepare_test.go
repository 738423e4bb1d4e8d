package wiring_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/adapters/lnd/lndfake"
	"github.com/lnmux/lnmux/app/lnmuxd/wiring"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// preparedSink is a multiplexer stand-in that prepares every HTLC and
// records whether each one arrived prepared.
type preparedSink struct {
	mu         sync.Mutex
	prepared   int // PrepareHTLC calls
	delivered  int
	unprepared int // delivered without its PrepareHTLC result
	all        chan struct{}
	want       int
}

type preparedMark struct{ htlc uint64 }

func (s *preparedSink) PrepareHTLC(h ports.InterceptedHTLC) any {
	s.mu.Lock()
	s.prepared++
	s.mu.Unlock()
	return preparedMark{h.Circuit.HTLC}
}

func (s *preparedSink) HTLCIntercepted(_ context.Context, h ports.InterceptedHTLC) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delivered++
	if m, ok := h.Prepared.(preparedMark); !ok || m.htlc != h.Circuit.HTLC {
		s.unprepared++
	}
	if s.delivered == s.want {
		close(s.all)
	}
}

func (s *preparedSink) BlockHeight(context.Context, domain.NodeKey, uint32) {}
func (s *preparedSink) HTLCFinal(context.Context, ports.FinalResolution)    {}
func (s *preparedSink) PendingCircuits(context.Context, domain.NodeKey) []domain.CircuitKey {
	return nil
}
func (s *preparedSink) NodeStatusChanged(context.Context, ports.NodeStatus) {}

// TestGatePassesPrepareHTLC: HTLCs that reach the multiplexer through the
// gate, as in lnmuxd, were prepared by the multiplexer's PrepareHTLC on
// the adapter's workers. When a wrapper hid PrepareHTLC (lnmuxd's gate did,
// embedding a NodeSink that did not include it), every onion was peeled
// on the node's one delivery goroutine while the benchmarks, built
// without the gate, measured the parallel path.
func TestGatePassesPrepareHTLC(t *testing.T) {
	const n = 50
	srv, err := lndfake.Start(lndfake.Options{Dir: t.TempDir(), Height: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	node, err := lnd.New(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	g := wiring.NewGate([]*lnd.Node{node})
	sink := &preparedSink{all: make(chan struct{}), want: n}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute) // only a hang fails
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Wrap(node).Run(rctx, sink) }()
	defer func() { stop(); <-done }() //nolint:errcheck // the test is over
	if err := srv.WaitInterceptor(ctx); err != nil {
		t.Fatal(err)
	}
	hash := domain.PaymentHash{1}
	for i := range uint64(n) {
		if err := srv.Offer(&routerrpc.ForwardHtlcInterceptRequest{
			IncomingCircuitKey: &routerrpc.CircuitKey{ChanId: 9, HtlcId: i}, PaymentHash: hash[:],
			IncomingAmountMsat: 2000, OutgoingAmountMsat: 1000, IncomingExpiry: 700, OutgoingExpiry: 660,
			OnionBlob: make([]byte, 1366),
		}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-sink.all:
	case <-ctx.Done():
		t.Fatal("HTLCs not delivered")
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.prepared != n || sink.unprepared != 0 {
		t.Fatalf("through the gate: PrepareHTLC called %d times for %d HTLCs, %d delivered unprepared; want every HTLC prepared",
			sink.prepared, n, sink.unprepared)
	}
}
