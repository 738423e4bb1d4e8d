package lnd_test

import (
	"context"
	"sync"
	"testing"

	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/adapters/lnd/lndfake"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// encryptedFailureLen is the length of the encrypted failure lnmux answers
// a FAIL with (interceptor.go failureMessageLen).
const encryptedFailureLen = lnwire.FailureMessageLength + 2 + 2 + 32

// TestReplayUnderLndCoupling models lnd's interceptor stream: one loop
// sends every offer and applies every answer, so while lnd replays its
// held HTLCs to a newly registered interceptor it reads no answer, and the
// answers sent meanwhile only fill its flow-control window (lndfake
// Coupled, Window; docs/lnd-behaviour.md). A node holding many HTLCs
// restarts its interceptor; the sink fails every replayed HTLC at once,
// with an encrypted failure as lnmux does. Every answer must reach lnd:
// the adapter's reader keeps reading offers while answers wait for lnd, so
// the replay ends and lnd then applies them all. When the reader waited for
// the writer (a lock held across Send) both sides waited for each other
// for good and no answer was applied.
func TestReplayUnderLndCoupling(t *testing.T) {
	const n = 3000
	var (
		mu      sync.Mutex
		applied = map[uint64]routerrpc.ResolveHoldForwardAction{}
		allIn   = make(chan struct{})
	)
	srv, err := lndfake.Start(lndfake.Options{Dir: t.TempDir(), Height: 500, Coupled: true, Window: 64 << 10,
		OnAnswer: func(a lndfake.Answer) {
			mu.Lock()
			defer mu.Unlock()
			applied[a.HTLC] = a.Action
			if len(applied) == n {
				close(allIn)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cfg := srv.Config()
	cfg.Logger = testLogger()
	ctx := t.Context()
	wctx, wcancel := context.WithTimeout(ctx, waitLong) // only a hang fails
	defer wcancel()

	// The first interceptor holds every HTLC it is offered.
	first, err := lnd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	holder := newSink()
	holder.node = first
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- first.Run(rctx, holder) }()
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
			IncomingExpiry: 700, OutgoingExpiry: 660, AutoFailHeight: 680,
			OnionBlob: make([]byte, lnwire.OnionPacketSize),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	holder.waitFor(t, "every HTLC offered to the first interceptor", waitLong, func(s *sink) bool { return len(s.htlcs) == n })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The next interceptor is offered them all again, under lnd's loop,
	// and fails each one as soon as it arrives.
	second, err := lnd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	answerer := newSink()
	answerer.node = second
	answerer.setDecide(func(h ports.InterceptedHTLC) *ports.Resolution {
		return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionFail, FailureMessage: make([]byte, encryptedFailureLen)}
	})
	rctx2, stop2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { done2 <- second.Run(rctx2, answerer) }()
	defer func() { stop2(); <-done2 }() //nolint:errcheck // the test is over
	select {
	case <-allIn:
	case <-wctx.Done():
		mu.Lock()
		got := len(applied)
		mu.Unlock()
		answerer.mu.Lock()
		defer answerer.mu.Unlock()
		t.Fatalf("%d of %d answers applied by lnd (%d replayed HTLCs reached the sink, %d answers refused by the adapter)",
			got, n, len(answerer.htlcs), len(answerer.errs))
	}
	for c, a := range applied {
		if a != routerrpc.ResolveHoldForwardAction_FAIL {
			t.Fatalf("HTLC %d answered %v, want FAIL", c, a)
		}
	}
	if held := srv.Held(); held != 0 {
		t.Errorf("lnd still holds %d HTLCs", held)
	}
}
