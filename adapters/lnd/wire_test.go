package lnd_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/adapters/lnd/lndfake"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// preparingSink is a NodeSink with a preparer whose work takes a random
// time, so that prepares finish out of order; it records the order of the
// deliveries and answers every HTLC with RESUME.
type preparingSink struct {
	*sink
	rng   *rand.Rand
	rngMu sync.Mutex

	mu        sync.Mutex
	delivered []uint64
	unready   []uint64 // delivered without (or with another HTLC's) prepared value
}

func (s *preparingSink) PrepareHTLC(h ports.InterceptedHTLC) any {
	s.rngMu.Lock()
	d := time.Duration(s.rng.IntN(400)) * time.Microsecond
	if h.Circuit.HTLC < 20 {
		d = time.Duration(20-h.Circuit.HTLC) * time.Millisecond // the first ones finish last
	}
	s.rngMu.Unlock()
	time.Sleep(d)
	return h.Circuit.HTLC
}

func (s *preparingSink) HTLCIntercepted(ctx context.Context, h ports.InterceptedHTLC) {
	s.mu.Lock()
	s.delivered = append(s.delivered, h.Circuit.HTLC)
	if p, ok := h.Prepared.(uint64); !ok || p != h.Circuit.HTLC {
		s.unready = append(s.unready, h.Circuit.HTLC)
	}
	s.mu.Unlock()
	s.sink.HTLCIntercepted(ctx, h)
}

// TestParallelDecodeKeepsStreamOrder: through the real adapter and a fake
// lnd over TLS gRPC, HTLCs whose onions are prepared in parallel and finish
// out of order reach the sink in the order lnd offered them, each with its
// own prepared value, and every answer reaches lnd.
func TestParallelDecodeKeepsStreamOrder(t *testing.T) {
	const n = 600
	var (
		answersMu sync.Mutex
		answers   = map[uint64]routerrpc.ResolveHoldForwardAction{}
		allIn     = make(chan struct{})
	)
	srv, err := lndfake.Start(lndfake.Options{Dir: t.TempDir(), Height: 500, OnAnswer: func(a lndfake.Answer) {
		answersMu.Lock()
		defer answersMu.Unlock()
		answers[a.HTLC] = a.Action
		if len(answers) == n {
			close(allIn)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cfg := srv.Config()
	cfg.Logger = testLogger()
	cfg.DecodeWorkers = 4
	node, err := lnd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &preparingSink{sink: newSink(), rng: rand.New(rand.NewPCG(7, 11))}
	s.node = node
	s.setDecide(func(h ports.InterceptedHTLC) *ports.Resolution {
		return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionResume}
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx, s) }()
	defer func() { cancel(); <-done }() //nolint:errcheck // the test is over: how the run ended was checked where it mattered
	wctx, wcancel := context.WithTimeout(ctx, waitLong)
	defer wcancel()
	if err := srv.WaitInterceptor(wctx); err != nil {
		t.Fatal(err)
	}
	hash := domain.PaymentHash{1}
	for i := range uint64(n) {
		err := srv.Offer(&routerrpc.ForwardHtlcInterceptRequest{
			IncomingCircuitKey:      &routerrpc.CircuitKey{ChanId: 9, HtlcId: i},
			PaymentHash:             hash[:],
			OutgoingRequestedChanId: 1234,
			IncomingAmountMsat:      2000, OutgoingAmountMsat: 1000,
			IncomingExpiry: 700, OutgoingExpiry: 660,
			OnionBlob: make([]byte, 1366),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-allIn:
	case <-wctx.Done():
		t.Fatalf("only %d of %d answers reached lnd", len(answers), n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.delivered) != n {
		t.Fatalf("delivered %d HTLCs, want %d", len(s.delivered), n)
	}
	for i, c := range s.delivered {
		if c != uint64(i) {
			t.Fatalf("delivery %d was HTLC %d: want the order lnd offered them in", i, c)
		}
	}
	if len(s.unready) > 0 {
		t.Fatalf("%d HTLCs delivered without their own prepared value, first %d", len(s.unready), s.unready[0])
	}
}
