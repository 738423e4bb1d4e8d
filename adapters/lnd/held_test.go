package lnd_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/deployments/regtest"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// maxHeldPerChannel is how many HTLCs Carol holds in flight on one channel
// to Alice: lnd accepts at most 483 per channel direction
// (--default-remote-max-htlcs).
const maxHeldPerChannel = 480

// heldMsat is each held payment: below the dust limit, so that hundreds of
// HTLCs add nothing to the commitment transaction's fee (and 480 of them
// stay far below lnd's default fee exposure limit of 500,000 sat).
const heldMsat = 100_000

// TestManyHeldHTLCsReplayed is the long form of the suite's "replays every
// held htlc to a restarted interceptor" (TestNodeAgainstLnd): its own
// cluster with LNMUX_TEST_HELD_CHANNELS channels from Carol to Alice, each
// holding LNMUX_TEST_HELD_PER_CHANNEL HTLCs (default 480). Run it with
// `task held-replay` (docs/benchmarks.md).
func TestManyHeldHTLCsReplayed(t *testing.T) {
	channels, _ := strconv.Atoi(os.Getenv("LNMUX_TEST_HELD_CHANNELS"))
	if channels <= 0 {
		t.Skip("set LNMUX_TEST_HELD_CHANNELS (task held-replay) to run the long form")
	}
	perChannel := maxHeldPerChannel
	if v, err := strconv.Atoi(os.Getenv("LNMUX_TEST_HELD_PER_CHANNEL")); err == nil && v > 0 {
		perChannel = min(v, maxHeldPerChannel)
	}
	c := regtest.StartT(t, regtest.Options{Logf: t.Logf})
	heldReplay(t, c, channels, perChannel)
}

// heldReplay has Carol send channels×perChannel payments through Alice to
// a virtual channel, each pinned to one of channels channels from Carol to
// Alice (opened here beyond the cluster's one), while an interceptor holds
// them all. That interceptor then stops and another starts: lnd offers it
// every held HTLC again in one go, and while it does so it reads no answer
// (docs/lnd-behaviour.md, fact 13). The new interceptor settles each one as
// it arrives. Every payment must succeed with its preimage, every HTLC be
// reported settled by lnd, and no answer be refused or lost.
func heldReplay(t *testing.T, c *regtest.Cluster, channels, perChannel int) {
	t.Helper()
	ctx := t.Context()
	n := channels * perChannel
	chanIDs := carolChannelsTo(t, c, c.Alice, channels)

	v := newVirtual(t, 1_100_000)
	preimages := make(map[domain.PaymentHash]domain.Preimage, n)
	hashes := make([][]byte, n)
	for i := range n {
		pre, hash := randomPreimage(t)
		hashes[i] = hash
		preimages[domain.PaymentHash(hash)] = pre
	}

	// The first interceptor holds every HTLC for the virtual channel.
	holder := newSink()
	holder.setDecide(func(h ports.InterceptedHTLC) *ports.Resolution {
		if h.OutgoingChanID != v.scid {
			return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionResume}
		}
		return nil
	})
	first, err := lnd.New(config(t, c.Alice))
	if err != nil {
		t.Fatal(err)
	}
	holder.node = first
	rctx, cancelFirst := context.WithCancel(ctx)
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Run(rctx, holder) }()
	stopFirst := sync.OnceValue(func() error { cancelFirst(); return <-firstDone })
	defer stopFirst() //nolint:errcheck // checked below where it matters
	holder.waitFor(t, "first interceptor active", waitLong, func(s *sink) bool { return s.lastStatus().InterceptorActive })

	// Every payment stays in flight until the second interceptor settles.
	wait := waitLong + time.Duration(n)*50*time.Millisecond // only a hang fails
	payCtx, cancelPay := context.WithTimeout(ctx, wait+waitLong)
	defer cancelPay()
	results := make(chan heldResult, n)
	began := time.Now()
	for i := range n {
		go func() {
			p, err := payPinned(payCtx, c, c.Alice, v, hashes[i], chanIDs[i%channels])
			results <- heldResult{i: i, p: p, err: err}
		}()
	}
	waitHeld(t, holder, v.scid, n, began, wait)
	t.Logf("%d htlcs held by alice on %d channels after %s", n, channels, time.Since(began).Round(time.Millisecond))
	holder.mu.Lock()
	heldCircuits := map[domain.CircuitKey]bool{}
	for _, h := range holder.circuitsOn(v.scid) {
		heldCircuits[h.Circuit] = true
	}
	holder.mu.Unlock()
	select {
	case r := <-results:
		t.Fatalf("payment %d finished while held: %+v %v", r.i, r.p, r.err)
	default:
	}

	// Restart the interceptor: lnd replays them all to the next one.
	if err := stopFirst(); err != nil {
		t.Fatalf("first interceptor: Run = %v", err)
	}
	answerer := newSink()
	answerer.setDecide(func(h ports.InterceptedHTLC) *ports.Resolution {
		if pre, ok := preimages[h.Hash]; ok && h.OutgoingChanID == v.scid {
			return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionSettle, Preimage: pre}
		}
		return &ports.Resolution{Circuit: h.Circuit, Action: ports.ActionResume}
	})
	second, err := lnd.New(config(t, c.Alice))
	if err != nil {
		t.Fatal(err)
	}
	answerer.node = second
	restarted := time.Now()
	r2ctx, stopSecond := context.WithCancel(ctx)
	secondDone := make(chan error, 1)
	go func() { secondDone <- second.Run(r2ctx, answerer) }()
	defer func() { stopSecond(); <-secondDone }() //nolint:errcheck // Run returns nil on cancel

	answerer.waitFor(t, fmt.Sprintf("%d htlcs replayed", n), wait, func(s *sink) bool { return len(s.circuitsOn(v.scid)) >= n })
	t.Logf("%d held htlcs replayed to the next interceptor %s after it started (each answered as it arrived)", n, time.Since(restarted).Round(time.Millisecond))
	answerer.waitFor(t, fmt.Sprintf("%d htlcs reported settled by lnd", n), wait, func(s *sink) bool {
		settled := 0
		for _, f := range s.finals {
			if f.Settled && heldCircuits[f.Circuit] {
				settled++
			}
		}
		return settled >= n
	})
	t.Logf("%d replayed htlcs settled and reported final %s after the interceptor restarted", n, time.Since(restarted).Round(time.Millisecond))
	for range n {
		var r heldResult
		select {
		case r = <-results:
		case <-payCtx.Done():
			t.Fatalf("payments did not finish: %v", payCtx.Err())
		}
		if r.err != nil {
			t.Fatalf("payment %d: %v", r.i, r.err)
		}
		if r.p.Status != lnrpc.Payment_SUCCEEDED || r.p.Preimage != preimages[domain.PaymentHash(hashes[r.i])] {
			t.Fatalf("payment %d: %v %v, want SUCCEEDED with its preimage", r.i, r.p.Status, r.p.FailureCode)
		}
	}
	t.Logf("%d payments succeeded %s after the interceptor restarted", n, time.Since(restarted).Round(time.Millisecond))
	answerer.mu.Lock()
	defer answerer.mu.Unlock()
	if len(answerer.errs) > 0 {
		t.Errorf("%d answers refused by the adapter, first: %v", len(answerer.errs), answerer.errs[0])
	}
	replayed := answerer.circuitsOn(v.scid)
	if len(replayed) != n {
		t.Errorf("%d htlcs replayed to the second interceptor, want %d", len(replayed), n)
	}
	for _, h := range replayed {
		if !heldCircuits[h.Circuit] {
			t.Errorf("replayed circuit %v was not held by the first interceptor", h.Circuit)
		}
	}
	for _, st := range answerer.statuses {
		if st.LastError != "" {
			t.Errorf("second interceptor's stream failed: %+v", st)
		}
	}
}

// waitHeld waits until the sink holds n HTLCs for scid, logging the count
// now and then: building a held set of thousands takes minutes.
func waitHeld(t *testing.T, s *sink, scid uint64, n int, began time.Time, wait time.Duration) {
	t.Helper()
	held := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.circuitsOn(scid))
	}
	deadline := time.Now().Add(wait)
	next := time.Now().Add(time.Minute)
	for {
		k := held()
		if k >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d htlcs held after %s", k, n, time.Since(began).Round(time.Second))
		}
		if time.Now().After(next) {
			t.Logf("%d of %d htlcs held after %s", k, n, time.Since(began).Round(time.Second))
			next = next.Add(time.Minute)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

type heldResult struct {
	i   int
	p   *regtest.Payment
	err error
}

// payPinned has Carol pay the virtual destination through via's hint, the
// first hop pinned to one of her channels.
func payPinned(ctx context.Context, c *regtest.Cluster, via *regtest.Node, v virtual, hash []byte, chanID uint64) (*regtest.Payment, error) {
	addr := make([]byte, 32)
	rand.Read(addr)
	return c.SendPayment(ctx, c.Carol, &routerrpc.SendPaymentRequest{
		Dest:            v.dest,
		AmtMsat:         heldMsat,
		PaymentHash:     hash,
		PaymentAddr:     addr,
		FinalCltvDelta:  finalCLTV,
		MaxParts:        1,
		TimeoutSeconds:  3600,
		OutgoingChanIds: []uint64{chanID},
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
}

// openBatch is how many channels Carol opens to one peer before mining
// them: lnd refuses more than --maxpendingchannels (10 in the cluster)
// pending channels from one peer.
const openBatch = 8

// carolChannelsTo returns the ids of k channels from Carol to peer, opening
// those beyond the ones she has, each usable for payments.
func carolChannelsTo(t *testing.T, c *regtest.Cluster, peer *regtest.Node, k int) []uint64 {
	t.Helper()
	ctx := t.Context()
	have := carolActiveTo(t, c, peer)
	if missing := k - len(have); missing > 0 {
		// One confirmed output per channel to fund.
		outs := map[string]int64{}
		for range missing {
			a, err := c.Carol.Client.NewAddress(ctx, &lnrpc.NewAddressRequest{Type: lnrpc.AddressType_WITNESS_PUBKEY_HASH})
			if err != nil {
				t.Fatal(err)
			}
			outs[a.Address] = 2_000_000 // sat: a 1,000,000 sat channel and its fee
		}
		if _, err := c.Carol.Client.SendMany(ctx, &lnrpc.SendManyRequest{AddrToAmount: outs, SatPerVbyte: 2}); err != nil {
			t.Fatalf("carol funds her channels: %v", err)
		}
		if _, err := c.MineBlocks(ctx, 1); err != nil {
			t.Fatal(err)
		}
		key, err := hex.DecodeString(peer.PubKey)
		if err != nil {
			t.Fatal(err)
		}
		for opened := 0; opened < missing; {
			for b := 0; b < openBatch && opened < missing; b++ {
				if _, err := c.Carol.Client.OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
					NodePubkey: key, LocalFundingAmount: 1_000_000, SatPerVbyte: 2,
				}); err != nil {
					t.Fatalf("open channel %d of %d to %s: %v", opened+1, missing, peer.Name, err)
				}
				opened++
			}
			if _, err := c.MineBlocks(ctx, 6); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(waitLong) // only a hang fails
	for {
		have = carolActiveTo(t, c, peer)
		if len(have) >= k {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d channels from carol to %s active", len(have), k, peer.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ids := have[:k]
	// Active is not yet usable: wait until Carol's pathfinding may use
	// each of them (as regtest.WaitChannelsActive does for one).
	for _, id := range ids {
		for {
			_, err := c.Carol.Client.QueryRoutes(ctx, &lnrpc.QueryRoutesRequest{PubKey: peer.PubKey, Amt: 1000, OutgoingChanIds: []uint64{id}})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("channel %d from carol to %s not usable: %v", id, peer.Name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return ids
}

// carolActiveTo lists Carol's active channels to peer.
func carolActiveTo(t *testing.T, c *regtest.Cluster, peer *regtest.Node) []uint64 {
	t.Helper()
	res, err := c.Carol.Client.ListChannels(t.Context(), &lnrpc.ListChannelsRequest{ActiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, ch := range res.Channels {
		if ch.RemotePubkey == peer.PubKey {
			ids = append(ids, ch.ChanId)
		}
	}
	return ids
}
