package lnd_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/adapters/lnd/lndfake"
	"github.com/lnmux/lnmux/domain"
)

func channel(point string, active bool, remoteSat int64, reserveSat uint64) *lnrpc.Channel {
	return &lnrpc.Channel{ChannelPoint: point, Active: active, RemoteBalance: remoteSat,
		RemoteConstraints: &lnrpc.ChannelConstraints{ChanReserveSat: reserveSat}}
}

// TestInboundLiquidity: the node reports what its channels can receive
// (the peers' balances above their reserves), measured at connect and again
// on a channel event, long before the periodic measurement. An inactive
// channel counts for InactiveChannelGrace after it was last seen active (or
// first seen), then not until it is active again.
func TestInboundLiquidity(t *testing.T) {
	srv, err := lndfake.Start(lndfake.Options{Dir: t.TempDir(), Height: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	srv.SetChannels([]*lnrpc.Channel{
		channel("a:0", true, 100_000, 1_000),
		channel("b:0", true, 500, 1_000),     // below its reserve: nothing
		channel("c:0", false, 50_000, 1_000), // inactive, first seen: counts for the grace
	})
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC).UnixNano())
	advance := func(d time.Duration) { now.Add(int64(d)) }
	cfg := srv.Config()
	cfg.Logger = testLogger()
	cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	cfg.BalanceInterval = time.Hour // only the connect and the events measure
	cfg.InactiveChannelGrace = time.Minute
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
	s.waitFor(t, "inbound 148,000 sat", waitLong, inbound(148_000_000))

	deadline := time.Now().Add(waitLong)
	for srv.ChannelSubscribers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the node never subscribed to channel events")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Each SetChannels sends a channel event: measured again.
	advance(time.Minute)
	srv.SetChannels([]*lnrpc.Channel{
		channel("a:0", true, 100_000, 1_000),
		channel("b:0", true, 101_000, 1_000),
		channel("c:0", false, 50_000, 1_000), // inactive past the grace
	})
	s.waitFor(t, "inbound 199,000 sat: c left out", waitLong, inbound(199_000_000))

	advance(time.Second)
	srv.SetChannels([]*lnrpc.Channel{
		channel("a:0", false, 100_000, 1_000), // just went inactive: still counts
		channel("b:0", true, 101_000, 1_000),
		channel("c:0", true, 50_000, 1_000), // active again
	})
	s.waitFor(t, "inbound 248,000 sat: a briefly inactive, c back", waitLong, inbound(248_000_000))

	advance(time.Minute)
	srv.SetChannels([]*lnrpc.Channel{
		channel("a:0", false, 100_000, 1_000), // inactive past the grace
		channel("b:0", true, 101_000, 1_000),
		channel("c:0", true, 50_000, 1_000),
	})
	s.waitFor(t, "inbound 149,000 sat: a left out", waitLong, inbound(149_000_000))
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
