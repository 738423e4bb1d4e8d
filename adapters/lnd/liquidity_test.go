package lnd_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/adapters/lnd/lndfake"
	"github.com/lnmux/lnmux/domain"
)

func channel(active bool, remoteSat int64, reserveSat uint64) *lnrpc.Channel {
	return &lnrpc.Channel{Active: active, RemoteBalance: remoteSat,
		RemoteConstraints: &lnrpc.ChannelConstraints{ChanReserveSat: reserveSat}}
}

// TestInboundLiquidity: the node reports what its active channels can
// receive (the peers' balances above their reserves), measured at connect
// and again on a channel event, long before the periodic measurement.
func TestInboundLiquidity(t *testing.T) {
	srv, err := lndfake.Start(lndfake.Options{Dir: t.TempDir(), Height: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	srv.SetChannels([]*lnrpc.Channel{
		channel(true, 100_000, 1_000),
		channel(true, 500, 1_000),     // below its reserve: nothing
		channel(false, 50_000, 1_000), // peer offline: nothing
	})
	cfg := srv.Config()
	cfg.Logger = testLogger()
	cfg.BalanceInterval = time.Hour // only the connect and the events measure
	node, err := lnd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx, s) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	inbound := func(want domain.Msat) func(*sink) bool {
		return func(s *sink) bool { st := s.lastStatus(); return st.InboundKnown && st.Inbound == want }
	}
	s.waitFor(t, "inbound 99,000 sat", waitLong, inbound(99_000_000))

	// A channel event: measured again.
	deadline := time.Now().Add(waitLong)
	for srv.ChannelSubscribers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the node never subscribed to channel events")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.SetChannels([]*lnrpc.Channel{channel(true, 100_000, 1_000), channel(true, 101_000, 1_000)})
	s.waitFor(t, "inbound 199,000 sat after the channel event", waitLong, inbound(199_000_000))
	if st := s.lastStatus(); !st.Connected {
		t.Errorf("status %+v", st)
	}
}

// TestInboundLiquidityUnavailable: an lnd that does not list channels
// leaves the liquidity unknown and the session up.
func TestInboundLiquidityUnavailable(t *testing.T) {
	srv, err := lndfake.Start(lndfake.Options{Dir: t.TempDir(), Height: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	var logs syncBuffer
	cfg := srv.Config()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	node, err := lnd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx, s) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	s.waitFor(t, "connected with interceptor", waitLong, func(s *sink) bool {
		st := s.lastStatus()
		return st.Connected && st.InterceptorActive
	})
	deadline := time.Now().Add(waitLong)
	for !strings.Contains(logs.String(), "inbound liquidity unknown") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the liquidity:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.statuses {
		if st.InboundKnown {
			t.Fatalf("liquidity reported known: %+v", st)
		}
	}
	if st := s.lastStatus(); !st.Connected || !st.InterceptorActive {
		t.Fatalf("session ended: %+v", st)
	}
}
