package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/deployments/regtest"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// The on-chain path (docs/on-chain.md): Carol, the payer, force-closes the
// channel that carries one part of a two-part payment; the other part
// stays off chain on Bob's channel. lnd then offers the part on chain again
// to lnmux, with auto_fail_height equal to its expiry, and takes only a
// SETTLE for it (docs/lnd-behaviour.md, item 6).
const (
	// onChainPartSat is each part's amount: far above the dust limit, so
	// that the HTLC has its own output on Carol's commitment and pays for
	// its own sweep.
	onChainPartSat = 100_000
	// onChainFinalDelta is how far above the current height the parts
	// expire at lnmux; lnd's incoming HTLCs expire 40 blocks later (the
	// virtual channel's CLTV delta). lnmux requires at least 40 (the
	// invoice's min_final_cltv_expiry).
	onChainFinalDelta = 50
	// lndRejectDelta is lnd's CLTV reject delta: an off-chain HTLC's
	// auto_fail_height is its expiry minus this (lncfg
	// DefaultFinalCltvRejectDelta).
	lndRejectDelta = 19
	// autoFailMargin is lnmuxd's default invoice.autoFailMargin.
	autoFailMargin = 10
	// settleBlocks bounds the blocks mined while waiting for a settlement
	// on chain: far fewer than the 90 blocks to the HTLC's expiry, so
	// the payer's timeout path never competes with the claim.
	settleBlocks = 40
)

// TestOnChain runs the on-chain scenarios of docs/on-chain.md on one
// cluster, each on its own channel from Carol to Alice (force-closed by
// Carol) with a second part through Bob that stays off chain.
func TestOnChain(t *testing.T) {
	began := time.Now()
	c := regtest.StartT(t, regtest.Options{Logf: t.Logf})
	aliceChans := []uint64{chanID(t, c, c.Alice)}
	more, err := c.OpenChannels(t.Context(), c.Alice, 1_000_000, 1_000_000, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	aliceChans = append(aliceChans, more...)
	bobChan := chanID(t, c, c.Bob)
	// Alice has no coins on chain (all channel funds are Carol's): her
	// claims pay their fee from the HTLC output itself.
	t.Logf("ONCHAIN cluster with four channels to alice up in %s", time.Since(began).Round(time.Second))

	env := &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: t.TempDir(), cluster: c}
	// Decisions are the test's: no timer may end a set meanwhile (blocks
	// may take long on a loaded machine); only block heights do.
	opts := daemonOpts{acceptTimeout: time.Hour, holdTimeout: 10 * time.Minute}
	d := env.start(t, opts)
	acc := d.accepted(t)
	oc := &onChain{c: c}

	t.Run("held set force-closed, then settled", func(t *testing.T) {
		began, h0 := time.Now(), oc.height(t)
		inv := d.addInvoice(t, 2*onChainPartSat*1000, 3600)
		states := watchStates(t, d, inv.Hash)
		parts := oc.send(t, inv, []hop{{c.Alice, aliceChans[0]}, {c.Bob, bobChan}})
		ev := nextAcceptedFor(t, acc, inv.Hash)
		circuit := oc.pendingHTLC(t, c.Alice, aliceChans[0], inv.Hash)
		aliceDown := logCount(c.Alice.LogPath, "Interceptor disconnected")

		oc.forceClose(t, circuit)
		// lnmuxd has the on-chain offer (lnd's second offer of the circuit
		// on the same stream) before the application decides.
		waitLog(t, d.logPath, 1, "htlc re-offered while held", "circuit="+circuit.String())
		if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
			t.Fatal(err)
		}
		mined := oc.mineUntil(t, "the on-chain part settled", settleBlocks, func() bool {
			return parts.done() && states.has(lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLED)
		})
		parts.wantSettled(t, inv.Preimage)
		oc.wantPayment(t, inv.Hash, lnrpc.Payment_SUCCEEDED)
		if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("final %v", got)
		}
		circuit.wantFinal(t, true)
		if got := states.all(); !slices.Equal(got, []lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState{
			lnmuxpb.SubscribeSingleInvoiceResponse_STATE_ACCEPTED,
			lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLE_REQUESTED,
			lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLED,
		}) {
			t.Errorf("SubscribeSingleInvoice %v", got)
		}
		if n := logCount(c.Alice.LogPath, "Interceptor disconnected"); n != aliceDown {
			t.Errorf("alice's interceptor stream ended %d times", n-aliceDown)
		}
		if l := grepLog(d.logPath, "resolution not delivered"); l != "" {
			t.Errorf("lnmuxd withheld an answer:\n%s", l)
		}
		t.Logf("ONCHAIN held set force-closed then settled: %s, %d blocks after the settle (%d in all)",
			time.Since(began).Round(time.Second), mined, oc.height(t)-h0)
	})

	t.Run("held set settled while its force-close confirms", func(t *testing.T) {
		began, h0 := time.Now(), oc.height(t)
		inv := d.addInvoice(t, 2*onChainPartSat*1000, 3600)
		states := watchStates(t, d, inv.Hash)
		parts := oc.send(t, inv, []hop{{c.Alice, aliceChans[3]}, {c.Bob, bobChan}})
		ev := nextAcceptedFor(t, acc, inv.Hash)
		circuit := oc.pendingHTLC(t, c.Alice, aliceChans[3], inv.Hash)
		rejected := logCount(c.Alice.LogPath, "HtlcInterceptor]")

		// The commitment is mined but not yet deep enough for Alice to
		// act on it: lnd still holds the HTLC off chain (the path of lnd
		// issue 10892). lnmuxd's SETTLE goes to that hold; lnd offers the
		// HTLC again once it moves it on chain, and lnmuxd settles the
		// offer again from its committed settlement (or lnd already has
		// the preimage from the link and never offers it).
		txid := oc.closeAndMine(t, circuit)
		confs := oc.closeConfs(t, circuit, txid)
		if confs == 1 {
			t.Fatal("alice acted on the close's first confirmation: this scenario needs her to wait for more")
		}
		if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
			t.Fatal(err)
		}
		if _, err := c.MineBlocks(t.Context(), confs-1); err != nil {
			t.Fatal(err)
		}
		mined := oc.mineUntil(t, "the on-chain part settled", settleBlocks, func() bool {
			return parts.done() && states.has(lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLED)
		})
		parts.wantSettled(t, inv.Preimage)
		oc.wantPayment(t, inv.Hash, lnrpc.Payment_SUCCEEDED)
		if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("final %v", got)
		}
		circuit.wantFinal(t, true)
		// Which way lnd went, and whether an answer crossed lnd's second
		// offer (docs/on-chain.md, "One race"): reported, not asserted.
		t.Logf("ONCHAIN settled while the close confirms: lnmuxd re-settled an on-chain offer %d times, alice rejected %d interceptor answers",
			logCount(d.logPath, "re-settling replayed htlc", "circuit="+circuit.String()), logCount(c.Alice.LogPath, "HtlcInterceptor]")-rejected)
		t.Logf("ONCHAIN held set settled while its force-close confirms: %s, %d blocks after the close was deep enough (%d in all)",
			time.Since(began).Round(time.Second), mined, oc.height(t)-h0)
	})

	t.Run("settle committed, answer lost, then force-closed", func(t *testing.T) {
		began, h0 := time.Now(), oc.height(t)
		d.stop()
		d = env.start(t, daemonOpts{acceptTimeout: opts.acceptTimeout, holdTimeout: opts.holdTimeout, failpoint: "crash-after-settle-commit"})
		acc = d.accepted(t)
		inv := d.addInvoice(t, 2*onChainPartSat*1000, 3600)
		parts := oc.send(t, inv, []hop{{c.Alice, aliceChans[1]}, {c.Bob, bobChan}})
		ev := nextAcceptedFor(t, acc, inv.Hash)
		circuit := oc.pendingHTLC(t, c.Alice, aliceChans[1], inv.Hash)
		if err := d.settle(t, inv.Hash, ev.SetId); err == nil {
			t.Fatal("settle answered although the failpoint kills lnmuxd")
		}
		if err, ok := d.exited(waitLong); !ok || err == nil {
			t.Fatalf("lnmuxd still running or exited cleanly: %v", err)
		}
		if parts.done() {
			t.Fatal("a part ended while lnmuxd was down")
		}
		// lnd moves the held HTLC to its on-chain hold while no
		// interceptor is connected, and offers it to the next one.
		oc.forceClose(t, circuit)

		d = env.start(t, opts)
		acc = d.accepted(t)
		aliceDown := logCount(c.Alice.LogPath, "Interceptor disconnected")
		states := watchStates(t, d, inv.Hash)
		waitLog(t, d.logPath, 1, "re-settling replayed htlc", "circuit="+circuit.String())
		mined := oc.mineUntil(t, "the on-chain part settled", settleBlocks, func() bool {
			return parts.done() && states.has(lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLED)
		})
		parts.wantSettled(t, inv.Preimage)
		oc.wantPayment(t, inv.Hash, lnrpc.Payment_SUCCEEDED)
		if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("final %v", got)
		}
		circuit.wantFinal(t, true)
		if n := logCount(c.Alice.LogPath, "Interceptor disconnected"); n != aliceDown {
			t.Errorf("alice's interceptor stream ended %d times", n-aliceDown)
		}
		if l := grepLog(d.logPath, "resolution not delivered"); l != "" {
			t.Errorf("lnmuxd withheld an answer:\n%s", l)
		}
		t.Logf("ONCHAIN settle committed, answer lost, then force-closed: %s, %d blocks after the restart (%d in all)",
			time.Since(began).Round(time.Second), mined, oc.height(t)-h0)
	})

	t.Run("held set times out on chain", func(t *testing.T) {
		if !d.running() {
			d = env.start(t, opts) // the previous scenario failed with lnmuxd down
			acc = d.accepted(t)
		}
		began, h0 := time.Now(), oc.height(t)
		inv := d.addInvoice(t, 2*onChainPartSat*1000, 3600)
		states := watchStates(t, d, inv.Hash)
		final := uint32(h0) + onChainFinalDelta
		expiry := final + 40 // lnd's incoming HTLCs
		parts := oc.sendExpiring(t, inv, []hop{{c.Alice, aliceChans[2]}, {c.Bob, bobChan}}, final)
		nextAcceptedFor(t, acc, inv.Hash)
		circuit := oc.pendingHTLC(t, c.Alice, aliceChans[2], inv.Hash)
		aliceDown := logCount(c.Alice.LogPath, "Interceptor disconnected")
		bobDown := logCount(c.Bob.LogPath, "Interceptor disconnected")

		oc.forceClose(t, circuit)
		waitLog(t, d.logPath, 1, "htlc re-offered while held", "circuit="+circuit.String())

		// No one decides. lnmuxd ends the set autoFailMargin blocks before
		// the auto_fail_height the parts were first offered with, fails
		// Bob's part and keeps its FAIL for Alice's, which lnd would
		// reject now that it is on chain.
		oc.mineTo(t, expiry-lndRejectDelta-autoFailMargin)
		states.wait(t, lnmuxpb.SubscribeSingleInvoiceResponse_STATE_EXPIRED)
		bob := parts.wait(t, 1)
		if bob.err != nil || bob.att.Status != lnrpc.HTLCAttempt_FAILED || bob.att.Failure == nil ||
			bob.att.Failure.Code != lnrpc.Failure_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS || bob.att.Failure.FailureSourceIndex != 2 {
			t.Fatalf("bob's part: %v %v, want failed by lnmux (hop 2) with incorrect_or_unknown_payment_details", bob.att, bob.err)
		}
		waitLog(t, d.logPath, 1, "resolution not delivered", "circuit="+circuit.String(), "on chain")
		if parts.parts[0].poll() {
			t.Fatal("alice's part ended before its expiry")
		}
		if n := logCount(c.Alice.LogPath, "Interceptor disconnected"); n != aliceDown {
			t.Errorf("alice's interceptor stream ended %d times", n-aliceDown)
		}
		if n := logCount(c.Bob.LogPath, "Interceptor disconnected"); n != bobDown {
			t.Errorf("bob's interceptor stream ended %d times", n-bobDown)
		}
		if l := grepLog(c.Alice.LogPath, "on-chain flow"); l != "" {
			t.Errorf("alice rejected an answer:\n%s", l)
		}
		if !allIntercepting(d.info(t).Nodes) {
			t.Errorf("nodes %v, want both intercepting", d.info(t).Nodes)
		}

		// What lnmux guards against, on the real node: lnd answers FAIL or
		// RESUME of an on-chain offer by ending the stream, and keeps the
		// HTLC for the next interceptor.
		d.stop()
		oc.rejectOnChain(t, circuit, expiry)
		// lnd logs each rejected answer: the checks for none above and
		// below are not blind.
		rejected := logCount(c.Alice.LogPath, "on-chain flow")
		if rejected < 2 {
			t.Fatalf("alice logged %d rejected answers, want the 2 just sent", rejected)
		}
		d = env.start(t, opts)
		acc = d.accepted(t)
		// The restarted lnmuxd no longer remembers the set: it judges the
		// replayed offer afresh, refuses it (too close to its expiry) and
		// keeps that FAIL too.
		waitLog(t, d.logPath, 1, "resolution not delivered", "circuit="+circuit.String(), "on chain")
		aliceDown = logCount(c.Alice.LogPath, "Interceptor disconnected")

		// At the expiry Alice gives the HTLC up and Carol takes it back
		// with her timeout transaction.
		oc.mineTo(t, expiry)
		mined := oc.mineUntil(t, "alice's part timed out", settleBlocks, func() bool { return parts.done() })
		if a := parts.wait(t, 0); a.err != nil || a.att.Status != lnrpc.HTLCAttempt_FAILED {
			t.Fatalf("alice's part: %v %v, want failed", a.att, a.err)
		}
		oc.wantPayment(t, inv.Hash, lnrpc.Payment_FAILED)
		circuit.wantFinal(t, false)
		res, err := d.client.ListInvoices(t.Context(), connect.NewRequest(&lnmuxpb.ListInvoicesRequest{MaxInvoicesCount: 100}))
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range res.Msg.Invoice {
			if bytes.Equal(i.Hash, inv.Hash) {
				t.Errorf("invoice stored as %v", i.Status)
			}
		}
		for _, s := range states.all() {
			if s == lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLE_REQUESTED || s == lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLED {
				t.Errorf("invoice states %v", states.all())
			}
		}
		if n := logCount(c.Alice.LogPath, "Interceptor disconnected"); n != aliceDown {
			t.Errorf("alice's interceptor stream ended %d times after the restart", n-aliceDown)
		}
		if n := logCount(c.Alice.LogPath, "on-chain flow"); n != rejected {
			t.Errorf("alice rejected %d answers of lnmuxd", n-rejected)
		}
		if !allIntercepting(d.info(t).Nodes) {
			t.Errorf("nodes %v, want both intercepting", d.info(t).Nodes)
		}
		t.Logf("ONCHAIN held set timed out on chain: %s, %d blocks (%d after the expiry)",
			time.Since(began).Round(time.Second), oc.height(t)-h0, mined)
	})
	t.Logf("ONCHAIN total %s", time.Since(began).Round(time.Second))
}

// onChain drives the cluster for the on-chain scenarios.
type onChain struct {
	c *regtest.Cluster
}

// hop is the channel a part takes to its node.
type hop struct {
	via  *regtest.Node
	chID uint64
}

// partResult is Carol's final word on one part.
type partResult struct {
	att *lnrpc.HTLCAttempt
	err error
}

// sentPart is one part in flight; only the test goroutine reads it.
type sentPart struct {
	hop
	ch  chan partResult // buffered: the sender never waits
	res *partResult
}

// poll reports whether Carol has the part's final result, keeping it.
func (p *sentPart) poll() bool {
	if p.res != nil {
		return true
	}
	select {
	case r := <-p.ch:
		p.res = &r
		return true
	default:
		return false
	}
}

type sentParts struct {
	parts []*sentPart
}

// done reports whether Carol has a final result for every part.
func (s *sentParts) done() bool {
	for _, p := range s.parts {
		if !p.poll() {
			return false
		}
	}
	return true
}

// wait returns part i's result, waiting for it.
func (s *sentParts) wait(t *testing.T, i int) partResult {
	t.Helper()
	p := s.parts[i]
	if p.poll() {
		return *p.res
	}
	select {
	case r := <-p.ch:
		p.res = &r
		return r
	case <-time.After(waitLong):
		t.Fatalf("part %d via %s: no result", i, p.via.Name)
		return partResult{}
	}
}

// wantSettled checks that Carol saw every part succeed with the preimage.
func (s *sentParts) wantSettled(t *testing.T, preimage []byte) {
	t.Helper()
	for i := range s.parts {
		r := s.wait(t, i)
		if r.err != nil || r.att.Status != lnrpc.HTLCAttempt_SUCCEEDED || !bytes.Equal(r.att.Preimage, preimage) {
			t.Errorf("part %d via %s: %v %v, want succeeded with the invoice's preimage", i, s.parts[i].via.Name, r.att, r.err)
		}
	}
}

func (o *onChain) height(t *testing.T) int64 {
	t.Helper()
	h, err := o.c.Height()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// send has Carol send one part of onChainPartSat per hop at once, on
// routes built by hand, expiring onChainFinalDelta blocks from now at
// lnmux.
func (o *onChain) send(t *testing.T, inv *lnmuxpb.AddInvoiceResponse, hops []hop) *sentParts {
	t.Helper()
	return o.sendExpiring(t, inv, hops, uint32(o.height(t))+onChainFinalDelta)
}

func (o *onChain) sendExpiring(t *testing.T, inv *lnmuxpb.AddInvoiceResponse, hops []hop, final uint32) *sentParts {
	t.Helper()
	amt := int64(onChainPartSat * 1000)
	total := amt * int64(len(hops))
	fee := int64(100) + amt*1000/1_000_000
	s := &sentParts{}
	routes := make([]*lnrpc.Route, len(hops))
	for i, h := range hops {
		routes[i] = routeExpiring(t, o.c, h.via, h.chID, inv, amt, total, fee, final)
	}
	// A part on chain ends only with its claim or its timeout: long after
	// the subtest's own deadlines, never after the test.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for i, h := range hops {
		p := &sentPart{hop: h, ch: make(chan partResult, 1)}
		s.parts = append(s.parts, p)
		go func() {
			att, err := o.c.Carol.Router.SendToRouteV2(ctx, &routerrpc.SendToRouteRequest{PaymentHash: inv.Hash, Route: routes[i]})
			p.ch <- partResult{att, err}
		}()
	}
	return s
}

// htlcCircuit is an HTLC as the node it reached knows it.
type htlcCircuit struct {
	node  *regtest.Node
	chID  uint64
	index uint64
}

// String is how lnmuxd logs the circuit (domain.CircuitKey).
func (c htlcCircuit) String() string {
	return fmt.Sprintf("%s:%d:%d", c.node.PubKey[:8], c.chID, c.index)
}

// promoted is the line lnd logs when it moves the HTLC from its off-chain
// hold to its on-chain hold (htlcswitch/held_htlc_set.go).
func (c htlcCircuit) promoted() string {
	return fmt.Sprintf("Promoting held htlc (Chan ID=%v, HTLC ID=%d)", lnwire.NewShortChanIDFromInt(c.chID), c.index)
}

// wantFinal checks lnd's final resolution of the circuit: settled or not,
// and on chain.
func (c htlcCircuit) wantFinal(t *testing.T, settled bool) {
	t.Helper()
	res, err := c.node.Client.LookupHtlcResolution(t.Context(), &lnrpc.LookupHtlcResolutionRequest{ChanId: c.chID, HtlcIndex: c.index})
	if err != nil {
		t.Fatalf("final resolution of %s: %v", c, err)
	}
	if res.Settled != settled || res.Offchain {
		t.Errorf("final resolution of %s: settled %v offchain %v, want settled %v on chain", c, res.Settled, res.Offchain, settled)
	}
}

// pendingHTLC waits until node holds an incoming HTLC of hash on channel
// chID and returns its circuit.
func (o *onChain) pendingHTLC(t *testing.T, node *regtest.Node, chID uint64, hash []byte) htlcCircuit {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		res, err := node.Client.ListChannels(t.Context(), &lnrpc.ListChannelsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range res.Channels {
			if ch.ChanId != chID {
				continue
			}
			for _, h := range ch.PendingHtlcs {
				if h.Incoming && bytes.Equal(h.HashLock, hash) {
					return htlcCircuit{node: node, chID: chID, index: h.HtlcIndex}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s holds no HTLC of %x on channel %d", node.Name, hash, chID)
	return htlcCircuit{}
}

// forceClose has Carol force-close the channel of c, mines the commitment,
// then the further confirmations Alice waits for before she acts on a
// close (at least 3: lnwallet/confscale_prod.go; she logs how many), and
// waits until Alice has moved the held HTLC to her on-chain hold: from then
// on lnd takes only a SETTLE for it.
func (o *onChain) forceClose(t *testing.T, c htlcCircuit) {
	t.Helper()
	txid := o.closeAndMine(t, c)
	confs := o.closeConfs(t, c, txid)
	if confs > 1 {
		if _, err := o.c.MineBlocks(t.Context(), confs-1); err != nil {
			t.Fatal(err)
		}
	}
	waitLog(t, o.c.Alice.LogPath, 1, c.promoted())
}

// closeAndMine has Carol force-close the channel of c and mines her
// commitment; it returns the commitment's txid.
func (o *onChain) closeAndMine(t *testing.T, c htlcCircuit) string {
	t.Helper()
	txid, err := o.c.ForceClose(t.Context(), o.c.Carol, c.chID)
	if err != nil {
		t.Fatal(err)
	}
	o.mineWith(t, txid)
	return txid
}

// closeConfs returns how many confirmations of the commitment txid Alice
// waits for ("waiting for N confirmations of spend tx", chain_watcher.go),
// or 1 when she acted on the first one already.
func (o *onChain) closeConfs(t *testing.T, c htlcCircuit, txid string) uint32 {
	t.Helper()
	re := regexp.MustCompile(`waiting for (\d+) confirmations of spend tx ` + txid)
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(o.c.Alice.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if m := re.FindSubmatch(data); m != nil {
			n, err := strconv.ParseUint(string(m[1]), 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(n)
		}
		if bytes.Contains(data, []byte(c.promoted())) {
			return 1
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("alice never acted on the close %s", txid)
	return 0
}

// mineWith mines one block once txid is in the mempool.
func (o *onChain) mineWith(t *testing.T, txid string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		pool, err := o.c.Mempool()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(pool, txid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction %s never reached the mempool", txid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := o.c.MineBlocks(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
}

// mineTo mines up to height h (nothing if the chain is there already).
func (o *onChain) mineTo(t *testing.T, h uint32) {
	t.Helper()
	if cur := o.height(t); cur < int64(h) {
		if _, err := o.c.MineBlocks(t.Context(), h-uint32(cur)); err != nil {
			t.Fatal(err)
		}
	}
}

// reactWindow is how long mineUntil lets the nodes react to a block when
// nothing shows in the mempool. It only paces the loop: a block is mined
// after it either way, and no outcome depends on it.
const reactWindow = 5 * time.Second

// mineUntil mines one block at a time until done, at most maxBlocks, and
// returns how many it mined. Before each block it waits until done, or a
// transaction waits in the mempool (a claim or a timeout being broadcast),
// or reactWindow passed.
func (o *onChain) mineUntil(t *testing.T, what string, maxBlocks int, done func() bool) int {
	t.Helper()
	for mined := 0; ; mined++ {
		quiet := time.Now().Add(reactWindow)
		for !done() && time.Now().Before(quiet) {
			pool, err := o.c.Mempool()
			if err != nil {
				t.Fatal(err)
			}
			if len(pool) > 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if done() {
			return mined
		}
		if mined == maxBlocks {
			t.Fatalf("%s: not after %d blocks", what, maxBlocks)
		}
		if _, err := o.c.MineBlocks(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
	}
}

// wantPayment checks Carol's payment of hash.
func (o *onChain) wantPayment(t *testing.T, hash []byte, want lnrpc.Payment_PaymentStatus) {
	t.Helper()
	res, err := o.c.Carol.Client.ListPayments(t.Context(), &lnrpc.ListPaymentsRequest{IncludeIncomplete: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Payments {
		if p.PaymentHash == hex.EncodeToString(hash) {
			if p.Status != want {
				t.Errorf("carol's payment %s %v, want %v (%s)", p.PaymentHash, p.Status, want, attempts(p))
			}
			return
		}
	}
	t.Errorf("carol has no payment %x", hash)
}

// rejectOnChain opens an interceptor of its own on Alice (no lnmuxd is
// connected), and checks lnd's rules for the on-chain offer of c: it is
// replayed at registration with auto_fail_height equal to the incoming
// expiry; a FAIL ends the stream ("cannot fail held htlc in the on-chain
// flow"), and so does a RESUME; the HTLC is still offered after each.
func (o *onChain) rejectOnChain(t *testing.T, c htlcCircuit, expiry uint32) {
	t.Helper()
	for _, action := range []routerrpc.ResolveHoldForwardAction{routerrpc.ResolveHoldForwardAction_FAIL, routerrpc.ResolveHoldForwardAction_RESUME} {
		ctx, cancel := context.WithTimeout(t.Context(), waitLong)
		stream, req := o.interceptOnce(ctx, t)
		if req.IncomingCircuitKey.GetChanId() != c.chID || req.IncomingCircuitKey.GetHtlcId() != c.index {
			cancel()
			t.Fatalf("alice offered %v, want the on-chain HTLC %s", req.IncomingCircuitKey, c)
		}
		if req.IncomingExpiry != expiry || req.AutoFailHeight != int32(expiry) { //nolint:gosec // a regtest height
			cancel()
			t.Fatalf("on-chain offer: incoming_expiry %d auto_fail_height %d, want both %d", req.IncomingExpiry, req.AutoFailHeight, expiry)
		}
		if err := stream.Send(&routerrpc.ForwardHtlcInterceptResponse{IncomingCircuitKey: req.IncomingCircuitKey, Action: action}); err != nil {
			cancel()
			t.Fatal(err)
		}
		_, err := stream.Recv()
		cancel()
		if err == nil || !strings.Contains(err.Error(), "on-chain flow") {
			t.Fatalf("%v of an on-chain offer: stream %v, want it ended by lnd", action, err)
		}
		t.Logf("ONCHAIN %v of the on-chain offer: lnd ended the stream: %v", action, err)
	}
}

// interceptOnce registers an interceptor on Alice, retrying while lnd still
// has the previous one (it drops an ended stream a moment later), and
// returns it with the first offer.
func (o *onChain) interceptOnce(ctx context.Context, t *testing.T) (routerrpc.Router_HtlcInterceptorClient, *routerrpc.ForwardHtlcInterceptRequest) {
	t.Helper()
	for {
		stream, err := o.c.Alice.Router.HtlcInterceptor(ctx)
		if err != nil {
			t.Fatal(err)
		}
		req, err := stream.Recv()
		if err == nil {
			return stream, req
		}
		if !strings.Contains(err.Error(), "interceptor already exists") || ctx.Err() != nil {
			t.Fatalf("interceptor on alice: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stateWatch follows SubscribeSingleInvoice until the test ends.
type stateWatch struct {
	mu     sync.Mutex
	states []lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState
}

func watchStates(t *testing.T, d *daemon, hash []byte) *stateWatch {
	w := &stateWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		stream, err := d.client.SubscribeSingleInvoice(ctx, connect.NewRequest(&lnmuxpb.SubscribeSingleInvoiceRequest{Hash: hash}))
		if err != nil {
			return
		}
		for stream.Receive() {
			w.mu.Lock()
			w.states = append(w.states, stream.Msg().State)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *stateWatch) all() []lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.states)
}

func (w *stateWatch) has(s lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState) bool {
	return slices.Contains(w.all(), s)
}

func (w *stateWatch) wait(t *testing.T, s lnmuxpb.SubscribeSingleInvoiceResponse_InvoiceState) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !w.has(s) {
		if time.Now().After(deadline) {
			t.Fatalf("invoice states %v, want %v", w.all(), s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logCount counts the lines of a log that contain every one of subs.
func logCount(path string, subs ...string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for l := range strings.SplitSeq(string(data), "\n") {
		if !slices.ContainsFunc(subs, func(s string) bool { return !strings.Contains(l, s) }) {
			n++
		}
	}
	return n
}

// waitLog waits until a log has at least n lines containing every one of
// subs.
func waitLog(t *testing.T, path string, n int, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for logCount(path, subs...) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d lines with %q", path, n, subs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
