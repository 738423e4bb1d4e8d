package lnd_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/deployments/regtest"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// sink is a hand-written ports.NodeSink that records every call and answers
// intercepted HTLCs with decide (nil: hold).
type sink struct {
	node ports.Node

	mu       sync.Mutex
	changed  chan struct{}
	htlcs    []ports.InterceptedHTLC
	heights  []uint32
	finals   []ports.FinalResolution
	statuses []ports.NodeStatus
	pending  []domain.CircuitKey
	decide   func(ports.InterceptedHTLC) *ports.Resolution
	errs     []error
}

var _ ports.NodeSink = (*sink)(nil)

func newSink() *sink { return &sink{changed: make(chan struct{})} }

func (s *sink) record(f func()) {
	s.mu.Lock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *sink) HTLCIntercepted(ctx context.Context, h ports.InterceptedHTLC) {
	var decide func(ports.InterceptedHTLC) *ports.Resolution
	s.record(func() { s.htlcs = append(s.htlcs, h); decide = s.decide })
	if decide == nil {
		return
	}
	if r := decide(h); r != nil {
		if err := s.node.Resolve(ctx, *r); err != nil {
			s.record(func() { s.errs = append(s.errs, err) })
		}
	}
}

// PrepareHTLC implements ports.NodeSink: nothing to prepare.
func (s *sink) PrepareHTLC(ports.InterceptedHTLC) any { return nil }

func (s *sink) BlockHeight(_ context.Context, _ domain.NodeKey, h uint32) {
	s.record(func() { s.heights = append(s.heights, h) })
}

func (s *sink) HTLCFinal(_ context.Context, r ports.FinalResolution) {
	s.record(func() { s.finals = append(s.finals, r) })
}

func (s *sink) PendingCircuits(context.Context, domain.NodeKey) []domain.CircuitKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]domain.CircuitKey(nil), s.pending...)
}

func (s *sink) NodeStatusChanged(_ context.Context, st ports.NodeStatus) {
	s.record(func() { s.statuses = append(s.statuses, st) })
}

func (s *sink) setDecide(f func(ports.InterceptedHTLC) *ports.Resolution) {
	s.mu.Lock()
	s.decide = f
	s.mu.Unlock()
}

// waitFor waits until cond, evaluated under the lock, holds.
func (s *sink) waitFor(t *testing.T, what string, timeout time.Duration, cond func(*sink) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ok, ch := cond(s), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("timed out after %s waiting for %s; statuses %+v, errors %v", timeout, what, s.statuses, s.errs)
		}
	}
}

func (s *sink) lastStatus() ports.NodeStatus {
	if len(s.statuses) == 0 {
		return ports.NodeStatus{}
	}
	return s.statuses[len(s.statuses)-1]
}

func (s *sink) htlcsOn(scid uint64) []ports.InterceptedHTLC {
	var out []ports.InterceptedHTLC
	for _, h := range s.htlcs {
		if h.OutgoingChanID == scid {
			out = append(out, h)
		}
	}
	return out
}

// circuitsOn returns the distinct circuits offered for scid, in the order
// first seen. A payer may retry after a failure and lnd re-offers held HTLCs
// after a reconnect, so the number of offers says nothing; circuits do.
func (s *sink) circuitsOn(scid uint64) []ports.InterceptedHTLC {
	seen := map[domain.CircuitKey]bool{}
	var out []ports.InterceptedHTLC
	for _, h := range s.htlcsOn(scid) {
		if !seen[h.Circuit] {
			seen[h.Circuit] = true
			out = append(out, h)
		}
	}
	return out
}

// offersOf counts how often circuit c was offered.
func (s *sink) offersOf(c domain.CircuitKey) int {
	n := 0
	for _, h := range s.htlcs {
		if h.Circuit == c {
			n++
		}
	}
	return n
}

func (s *sink) final(c domain.CircuitKey) (ports.FinalResolution, bool) {
	for _, f := range s.finals {
		if f.Circuit == c {
			return f, true
		}
	}
	return ports.FinalResolution{}, false
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func config(t *testing.T, n *regtest.Node) lnd.Config {
	t.Helper()
	key, err := domain.ParseNodeKey(n.PubKey)
	if err != nil {
		t.Fatal(err)
	}
	return lnd.Config{
		PubKey:       key,
		URL:          n.RPCAddr,
		TLSCertPath:  n.TLSCertPath,
		MacaroonPath: n.MacaroonPath,
		Network:      "regtest",
		Logger:       testLogger(),
		MinBackoff:   100 * time.Millisecond,
		MaxBackoff:   time.Second,
	}
}

// virtual is a hop hint from Alice to a node key nobody has, over a channel
// id that does not exist: what an lnmux invoice contains.
type virtual struct {
	scid uint64
	dest []byte
}

func newVirtual(t *testing.T, block uint32) virtual {
	t.Helper()
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	scid := lnwire.ShortChannelID{BlockHeight: block, TxIndex: 1, TxPosition: 0}.ToUint64()
	return virtual{scid: scid, dest: k.PubKey().SerializeCompressed()}
}

// waitLong bounds every wait for lnd: far above what an idle machine needs,
// so that only a hang fails a test on a busy one.
const waitLong = 3 * time.Minute

const (
	hintFeeBase    = 1000
	hintFeePPM     = 100
	hintCLTV       = 40
	finalCLTV      = 40
	paymentMsat    = 50_000_000
	paymentFeeMsat = hintFeeBase + paymentMsat*hintFeePPM/1_000_000
)

// pay has Carol pay the virtual destination through via's hint, the way
// she pays an lnmux invoice, and delivers the final result on a channel.
func pay(ctx context.Context, c *regtest.Cluster, via *regtest.Node, v virtual, hash []byte) <-chan result {
	done := make(chan result, 1)
	addr := make([]byte, 32)
	rand.Read(addr)
	go func() {
		p, err := c.SendPayment(ctx, c.Carol, &routerrpc.SendPaymentRequest{
			Dest:           v.dest,
			AmtMsat:        paymentMsat,
			PaymentHash:    hash,
			PaymentAddr:    addr,
			FinalCltvDelta: finalCLTV,
			MaxParts:       1,
			TimeoutSeconds: 30,
			DestFeatures: []lnrpc.FeatureBit{
				lnrpc.FeatureBit_TLV_ONION_REQ, lnrpc.FeatureBit_PAYMENT_ADDR_REQ, lnrpc.FeatureBit_MPP_OPT,
			},
			RouteHints: []*lnrpc.RouteHint{{HopHints: []*lnrpc.HopHint{{
				NodeId:                    via.PubKey,
				ChanId:                    v.scid,
				FeeBaseMsat:               hintFeeBase,
				FeeProportionalMillionths: hintFeePPM,
				CltvExpiryDelta:           hintCLTV,
			}}}},
		})
		done <- result{p, err}
	}()
	return done
}

type result struct {
	p   *regtest.Payment
	err error
}

func await(t *testing.T, ch <-chan result) *regtest.Payment {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("send payment: %v", r.err)
		}
		return r.p
	case <-time.After(waitLong):
		t.Fatalf("payment did not finish within %s", waitLong)
		return nil
	}
}

func randomPreimage(t *testing.T) (domain.Preimage, []byte) {
	t.Helper()
	var p domain.Preimage
	rand.Read(p[:])
	h := sha256.Sum256(p[:])
	return p, h[:]
}

func height(t *testing.T, c *regtest.Cluster) uint32 {
	t.Helper()
	h, err := c.Height()
	if err != nil {
		t.Fatal(err)
	}
	return uint32(h)
}

// TestNodeRefusesMisconfiguredLnd: Carol runs without the cluster flags.
func TestNodeAgainstLnd(t *testing.T) {
	c := regtest.StartT(t, regtest.Options{})
	ctx := t.Context()

	t.Run("refuses a node without the cluster flags", func(t *testing.T) {
		s := newSink()
		n, err := lnd.New(config(t, c.Carol))
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, waitLong)
		defer cancel()
		err = n.Run(rctx, s)
		if !errors.Is(err, lnd.ErrMisconfigured) ||
			!strings.Contains(err.Error(), "--requireinterceptor") ||
			!strings.Contains(err.Error(), "--store-final-htlc-resolutions") {
			t.Fatalf("Run = %v, want ErrMisconfigured naming both flags", err)
		}
		if st := s.lastStatus(); st.Connected || !strings.Contains(st.LastError, "--requireinterceptor") {
			t.Errorf("last status %+v", st)
		}
	})

	t.Run("refuses a wrong key or network", func(t *testing.T) {
		for name, mod := range map[string]func(*lnd.Config){
			"key":     func(cfg *lnd.Config) { cfg.PubKey = config(t, c.Bob).PubKey },
			"network": func(cfg *lnd.Config) { cfg.Network = "mainnet" },
		} {
			cfg := config(t, c.Alice)
			mod(&cfg)
			n, err := lnd.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, waitLong)
			err = n.Run(rctx, newSink())
			cancel()
			if !errors.Is(err, lnd.ErrMisconfigured) {
				t.Errorf("%s: Run = %v, want ErrMisconfigured", name, err)
			}
		}
	})

	// The node under test, on Alice, for the rest.
	s := newSink()
	node, err := lnd.New(config(t, c.Alice))
	if err != nil {
		t.Fatal(err)
	}
	s.node = node
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	runDone := make(chan error, 1)
	go func() { runDone <- node.Run(runCtx, s) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopRun()
			if err := <-runDone; err != nil {
				t.Errorf("Run = %v after cancel, want nil", err)
			}
		}
	}
	t.Cleanup(stop)
	s.waitFor(t, "connected with interceptor", waitLong, func(s *sink) bool {
		st := s.lastStatus()
		return st.Connected && st.InterceptorActive
	})
	aliceKey := node.Key()
	chans, err := c.Alice.Client.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
	if err != nil || len(chans.Channels) != 1 {
		t.Fatalf("alice channels: %v %v", chans, err)
	}
	carolChan := chans.Channels[0].ChanId
	var failed, settled domain.CircuitKey

	t.Run("reports inbound liquidity", func(t *testing.T) {
		ch := chans.Channels[0]
		want := domain.Msat(ch.RemoteBalance-int64(ch.RemoteConstraints.ChanReserveSat)) * 1000 //nolint:gosec // a reserve is small
		if want <= 0 {
			t.Fatalf("carol's channel to alice: %+v", ch)
		}
		s.waitFor(t, "alice's inbound liquidity", waitLong, func(s *sink) bool {
			st := s.lastStatus()
			return st.InboundKnown && st.Inbound == want
		})
	})

	t.Run("intercepts an htlc for a virtual channel and fails it", func(t *testing.T) {
		v := newVirtual(t, 1_000_001)
		s.setDecide(func(h ports.InterceptedHTLC) *ports.Resolution {
			if h.OutgoingChanID != v.scid {
				return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionResume}
			}
			return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionFail, FailureCode: uint16(lnwire.CodeTemporaryChannelFailure)}
		})
		_, hash := randomPreimage(t)
		h0 := height(t, c)
		began := time.Now()
		p := await(t, pay(ctx, c, c.Alice, v, hash))
		t.Logf("intercept+fail round trip: %s", time.Since(began).Round(time.Millisecond))
		if p.Status != lnrpc.Payment_FAILED || p.FailureCode != lnrpc.Failure_TEMPORARY_CHANNEL_FAILURE || p.FailureSourceIndex != 1 {
			t.Errorf("payment %v reason %v code %v from hop %d; want FAILED with temporary_channel_failure from Alice",
				p.Status, p.FailureReason, p.FailureCode, p.FailureSourceIndex)
		}
		// Carol may try again after the failure (how often is hers to
		// decide): every attempt is a circuit of its own and each must
		// look the same.
		s.mu.Lock()
		got := s.circuitsOn(v.scid)
		s.mu.Unlock()
		if len(got) == 0 {
			t.Fatal("no htlc intercepted for the virtual channel")
		}
		t.Logf("%d attempt(s) intercepted for the virtual channel", len(got))
		for _, h := range got {
			checkIntercepted(t, h, aliceKey, carolChan, hash, h0)
		}
		failed = got[0].Circuit
		for _, h := range got {
			s.waitFor(t, "final failure", waitLong, func(s *sink) bool { _, ok := s.final(h.Circuit); return ok })
			if r, _ := s.final(h.Circuit); r.Settled {
				t.Errorf("final %+v, want failed", r)
			}
		}
	})
	t.Run("settles with the preimage", func(t *testing.T) {
		v := newVirtual(t, 1_000_002)
		pre, hash := randomPreimage(t)
		s.setDecide(func(h ports.InterceptedHTLC) *ports.Resolution {
			if h.OutgoingChanID != v.scid {
				return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionResume}
			}
			return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionSettle, Preimage: pre}
		})
		began := time.Now()
		p := await(t, pay(ctx, c, c.Alice, v, hash))
		t.Logf("intercept+settle round trip: %s", time.Since(began).Round(time.Millisecond))
		if p.Status != lnrpc.Payment_SUCCEEDED || p.Preimage != pre {
			t.Fatalf("payment %v %v preimage %x", p.Status, p.FailureCode, p.Preimage)
		}
		s.mu.Lock()
		settled = s.htlcsOn(v.scid)[0].Circuit
		s.mu.Unlock()
		s.waitFor(t, "final settlement", waitLong, func(s *sink) bool { _, ok := s.final(settled); return ok })
		if r, _ := s.final(settled); !r.Settled {
			t.Errorf("final %+v, want settled", r)
		}
	})

	t.Run("reports block heights", func(t *testing.T) {
		h, err := c.MineBlocks(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		s.waitFor(t, "height", waitLong, func(s *sink) bool {
			return len(s.heights) > 0 && int64(s.heights[len(s.heights)-1]) == h
		})
		if st := node.Status(); int64(st.Height) != h {
			t.Errorf("status height %d, want %d", st.Height, h)
		}
	})

	t.Run("refuses answers lnd would end the stream for", func(t *testing.T) {
		err := node.Resolve(ctx, ports.Resolution{Circuit: domain.CircuitKey{Node: aliceKey, Chan: carolChan, HTLC: 999}, Action: ports.ActionResume})
		if !errors.Is(err, lnd.ErrNotHeld) {
			t.Errorf("Resolve unknown circuit = %v, want ErrNotHeld", err)
		}
		err = node.Resolve(ctx, ports.Resolution{Circuit: failed, Action: ports.ActionResume})
		if !errors.Is(err, lnd.ErrNotHeld) {
			t.Errorf("Resolve answered circuit = %v, want ErrNotHeld", err)
		}
		if st := node.Status(); !st.Connected || !st.InterceptorActive {
			t.Errorf("status %+v after refused answers", st)
		}
	})

	t.Run("re-offers a held htlc after lnd restarts", func(t *testing.T) {
		v := newVirtual(t, 1_000_003)
		s.setDecide(func(h ports.InterceptedHTLC) *ports.Resolution {
			if h.OutgoingChanID != v.scid {
				return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionResume}
			}
			return nil // hold
		})
		_, hash := randomPreimage(t)
		done := pay(ctx, c, c.Alice, v, hash)
		s.waitFor(t, "held htlc", waitLong, func(s *sink) bool { return len(s.htlcsOn(v.scid)) >= 1 })
		s.mu.Lock()
		held := s.htlcsOn(v.scid)[0]
		nStatus := len(s.statuses)
		s.mu.Unlock()

		began := time.Now()
		if err := c.Stop(c.Alice); err != nil {
			t.Fatal(err)
		}
		s.waitFor(t, "disconnected", waitLong, func(s *sink) bool { return !s.lastStatus().Connected })
		if err := node.Resolve(ctx, ports.Resolution{Circuit: held.Circuit, Action: ports.ActionResume}); !errors.Is(err, lnd.ErrInterceptorDown) {
			t.Errorf("Resolve while lnd is down = %v, want ErrInterceptorDown", err)
		}
		if err := c.Start(ctx, c.Alice); err != nil {
			t.Fatal(err)
		}
		s.waitFor(t, "reconnected and re-offered", waitLong, func(s *sink) bool {
			st := s.lastStatus()
			return st.Connected && st.InterceptorActive && s.offersOf(held.Circuit) >= 2
		})
		t.Logf("alice restart to re-offer: %s", time.Since(began).Round(time.Millisecond))
		s.mu.Lock()
		var again ports.InterceptedHTLC
		for _, h := range s.htlcsOn(v.scid)[1:] {
			if h.Circuit == held.Circuit {
				again = h
				break
			}
		}
		var sawDown, sawUp bool
		for _, st := range s.statuses[nStatus:] {
			sawDown = sawDown || !st.Connected
			sawUp = sawUp || (sawDown && st.Connected && st.InterceptorActive)
		}
		s.mu.Unlock()
		if again.Circuit != held.Circuit || again.Hash != held.Hash || again.Forward != held.Forward {
			t.Errorf("re-offered %+v, first offered %+v", again, held)
		}
		if !sawDown || !sawUp {
			t.Errorf("statuses did not go disconnected → connected")
		}
		if err := node.Resolve(ctx, ports.Resolution{Circuit: held.Circuit, Action: ports.ActionFail}); err != nil {
			t.Fatal(err)
		}
		if p := await(t, done); p.Status != lnrpc.Payment_FAILED || p.FailureCode != lnrpc.Failure_TEMPORARY_CHANNEL_FAILURE {
			t.Errorf("payment %v code %v", p.Status, p.FailureCode)
		}
	})

	t.Run("re-offers held htlcs to the next session and looks up pending circuits", func(t *testing.T) {
		// An HTLC seen by one session and not answered stays held by lnd
		// (--requireinterceptor) and goes to the next: lnmuxd restarting.
		v := newVirtual(t, 1_000_004)
		pre, hash := randomPreimage(t)
		s.setDecide(func(h ports.InterceptedHTLC) *ports.Resolution {
			if h.OutgoingChanID != v.scid {
				return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionResume}
			}
			return nil // hold
		})
		paid := pay(ctx, c, c.Alice, v, hash)
		s.waitFor(t, "held htlc", waitLong, func(s *sink) bool { return len(s.htlcsOn(v.scid)) >= 1 })
		stop()

		// A new HTLC while no interceptor is connected is failed at once
		// by lnd with temporary_channel_failure, not held. lnd drops the
		// interceptor a moment after our stream ended: a probe arriving
		// before is held for the next session like any offered HTLC (the
		// next session resumes it and it fails at Alice). So probe until
		// one finishes; how long a probe takes decides nothing but how
		// many are sent.
		var probe *regtest.Payment
		for i := range 3 {
			_, hash2 := randomPreimage(t)
			ch := pay(ctx, c, c.Alice, newVirtual(t, 1_000_005+uint32(i)), hash2)
			select {
			case r := <-ch:
				if r.err != nil {
					t.Fatalf("send probe: %v", r.err)
				}
				probe = r.p
			case <-time.After(waitLong / 3):
				t.Logf("probe %d not failed yet: held by lnd for an interceptor it had not dropped", i)
				continue
			}
			break
		}
		if probe == nil {
			t.Fatal("every probe was held: lnd kept the ended interceptor stream")
		}
		if probe.Status != lnrpc.Payment_FAILED || probe.FailureCode != lnrpc.Failure_TEMPORARY_CHANNEL_FAILURE || probe.FailureSourceIndex != 1 {
			t.Errorf("payment without interceptor: %v %v from hop %d", probe.Status, probe.FailureCode, probe.FailureSourceIndex)
		}
		select {
		case r := <-paid:
			t.Fatalf("held payment finished without an interceptor: %+v %v", r.p, r.err)
		default:
		}

		s2 := newSink()
		unknown := domain.CircuitKey{Node: aliceKey, Chan: carolChan, HTLC: 999}
		s2.pending = []domain.CircuitKey{failed, settled, unknown}
		s2.decide = func(h ports.InterceptedHTLC) *ports.Resolution {
			if h.OutgoingChanID != v.scid {
				return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionResume}
			}
			return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionSettle, Preimage: pre}
		}
		n2, err := lnd.New(config(t, c.Alice))
		if err != nil {
			t.Fatal(err)
		}
		s2.node = n2
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- n2.Run(rctx, s2) }()
		defer func() { cancel(); <-done }() //nolint:errcheck // Run's error after cancel is context.Canceled
		if p := await(t, paid); p.Status != lnrpc.Payment_SUCCEEDED || p.Preimage != pre {
			t.Errorf("held payment: %v %v", p.Status, p.FailureCode)
		}
		s2.waitFor(t, "looked-up finals", waitLong, func(s *sink) bool {
			_, a := s.final(failed)
			_, b := s.final(settled)
			return a && b
		})
		if r, ok := s2.final(settled); !ok || !r.Settled {
			t.Errorf("settled circuit: %+v %v", r, ok)
		}
		if r, ok := s2.final(failed); !ok || r.Settled {
			t.Errorf("failed circuit: %+v %v", r, ok)
		}
		if _, ok := s2.final(unknown); ok {
			t.Error("a circuit lnd does not know was reported final")
		}
	})

	t.Run("replays every held htlc to a restarted interceptor", func(t *testing.T) {
		// Its own interceptors on Alice: the one above has stopped. As
		// many HTLCs as one channel takes; `task held-replay` runs the
		// same on many channels (held_test.go).
		heldReplay(t, c, 1, maxHeldPerChannel)
	})
}

// checkIntercepted checks what the adapter reports of an HTLC Carol sent
// through Alice to a virtual channel at height h0.
func checkIntercepted(t *testing.T, h ports.InterceptedHTLC, aliceKey domain.NodeKey, carolChan uint64, hash []byte, h0 uint32) {
	t.Helper()
	t.Logf("intercepted at height %d: chan %d htlc %d → %d, %+v, auto-fail height %d, onion %d bytes",
		h0, h.Circuit.Chan, h.Circuit.HTLC, h.OutgoingChanID, h.Forward, h.AutoFailHeight, len(h.Onion))
	if h.Circuit.Node != aliceKey || h.Circuit.Chan != carolChan {
		t.Errorf("circuit %v, want alice's channel %d", h.Circuit, carolChan)
	}
	if string(h.Hash[:]) != string(hash) || h.OutgoingNodeID != nil {
		t.Errorf("hash %v, outgoing node %v", h.Hash, h.OutgoingNodeID)
	}
	f := h.Forward
	if f.OutgoingAmount != paymentMsat || f.IncomingAmount != paymentMsat+paymentFeeMsat {
		t.Errorf("amounts in %d out %d, want %d and %d", f.IncomingAmount, f.OutgoingAmount, paymentMsat+paymentFeeMsat, paymentMsat)
	}
	if f.IncomingExpiry-f.OutgoingExpiry != hintCLTV || f.OutgoingExpiry < h0+finalCLTV || f.OutgoingExpiry > h0+finalCLTV+10 {
		t.Errorf("expiries in %d out %d at height %d", f.IncomingExpiry, f.OutgoingExpiry, h0)
	}
	if h.AutoFailHeight <= h0 || h.AutoFailHeight >= f.IncomingExpiry {
		t.Errorf("auto-fail height %d, height %d, incoming expiry %d", h.AutoFailHeight, h0, f.IncomingExpiry)
	}
	if len(h.Onion) != lnwire.OnionPacketSize {
		t.Errorf("onion of %d bytes", len(h.Onion))
	}
}
