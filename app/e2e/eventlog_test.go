package e2e

import (
	"bytes"
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"

	"github.com/lnmux/lnmux/deployments/regtest"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// TestEventLogAndLookup: LookupInvoice in each state a payer can produce
// on real lnd (open, collecting, accepted, stored) for a payment in two
// parts through Alice and Bob; then the event log: subscribed from cursor
// 0 after the settlement it replays SETTLE_REQUESTED then SETTLED, follows
// a later payment live, and a client reconnecting with its last cursor
// gets nothing twice (docs/api.md).
func TestEventLogAndLookup(t *testing.T) {
	cluster := regtest.StartT(t, regtest.Options{AliceChannelSat: channelSat, BobChannelSat: channelSat, Logf: t.Logf})
	aliceChan := chanID(t, cluster, cluster.Alice)
	bobChan := chanID(t, cluster, cluster.Bob)
	env := &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: t.TempDir(), cluster: cluster}
	// A long hold timeout: the first part waits while the test looks.
	d := env.start(t, daemonOpts{holdTimeout: 5 * time.Minute})
	acc := d.accepted(t)

	const part = int64(100_000)
	inv := d.addInvoice(t, 2*part, 600)
	if l := d.lookup(t, inv.Hash); l.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_OPEN_OR_UNKNOWN {
		t.Fatalf("new invoice: %v", l)
	}
	fee := int64(100) + part*1000/1_000_000
	attempts := make(chan *lnrpc.HTLCAttempt, 2)
	send := func(r *lnrpc.Route) {
		go func() {
			att, err := cluster.Carol.Router.SendToRouteV2(context.Background(), &routerrpc.SendToRouteRequest{PaymentHash: inv.Hash, Route: r})
			if err != nil {
				t.Errorf("send to route: %v", err)
			}
			attempts <- att
		}()
	}
	send(routeVia(t, cluster, cluster.Alice, aliceChan, inv, part, 2*part, fee))
	collecting := d.waitLookup(t, inv.Hash, lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_COLLECTING)
	if collecting.Parts != 1 || collecting.HeldMsat != part || collecting.TotalMsat != 2*part || collecting.AmountMsat != 2*part || len(collecting.SetId) != 0 {
		t.Fatalf("collecting: %v", collecting)
	}
	send(routeVia(t, cluster, cluster.Bob, bobChan, inv, part, 2*part, fee))
	ev := nextAcceptedFor(t, acc, inv.Hash)
	accepted := d.lookup(t, inv.Hash)
	if accepted.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_ACCEPTED || !bytes.Equal(accepted.SetId, ev.SetId) ||
		accepted.Parts != 2 || accepted.HeldMsat != 2*part || accepted.AcceptDeadline <= time.Now().Add(-time.Hour).Unix() {
		t.Fatalf("accepted: %v", accepted)
	}
	if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
		t.Fatal(err)
	}
	if l := d.lookup(t, inv.Hash); l.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_STORED || l.Invoice.GetSequenceNumber() == 0 {
		t.Fatalf("after the settle request: %v", l)
	}
	for range 2 {
		if att := <-attempts; att == nil || att.Status != lnrpc.HTLCAttempt_SUCCEEDED {
			t.Fatalf("part: %v", att)
		}
	}
	if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
		t.Fatalf("final %v", got)
	}
	stored := d.lookup(t, inv.Hash)
	if stored.State != lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_STORED || stored.Invoice.GetStatus() != lnmuxpb.InvoiceStatus_SETTLED ||
		stored.Invoice.GetAmountPaidMsat() != 2*part || !bytes.Equal(stored.Invoice.GetPreimage(), inv.Preimage) || len(stored.Htlcs) != 2 {
		t.Fatalf("settled: %v", stored)
	}
	nodes := map[string]bool{}
	for _, h := range stored.Htlcs {
		if h.Status != lnmuxpb.StoredHtlc_HTLC_STATUS_SETTLED || h.AmountMsat != part {
			t.Fatalf("htlc %v", h)
		}
		nodes[string(h.NodePubKey)] = true
	}
	if len(nodes) != 2 {
		t.Fatalf("htlcs held by %d nodes, want Alice and Bob", len(nodes))
	}

	// The log from the start, after the settlement: the history.
	first := d.events(t, 0)
	sr := first.nextStored(t)
	settled := first.nextStored(t)
	if sr.Type != lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_SETTLE_REQUESTED || !bytes.Equal(sr.Hash, inv.Hash) ||
		!bytes.Equal(sr.SetId, ev.SetId) || sr.AmountPaidMsat != 2*part || sr.InvoiceSequenceNumber != stored.Invoice.GetSequenceNumber() ||
		settled.Type != lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_SETTLED || !bytes.Equal(settled.Hash, inv.Hash) ||
		settled.Sequence <= sr.Sequence {
		t.Fatalf("replay: %v then %v", sr, settled)
	}
	// Live on the same stream: a second payment.
	second := d.payAndSettle(t, cluster, acc)
	liveSR, liveSettled := first.nextStored(t), first.nextStored(t)
	if !bytes.Equal(liveSR.Hash, second) || liveSR.Type != lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_SETTLE_REQUESTED ||
		liveSR.Sequence <= settled.Sequence || !bytes.Equal(liveSettled.Hash, second) ||
		liveSettled.Type != lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_SETTLED || liveSettled.Sequence <= liveSR.Sequence {
		t.Fatalf("live: %v then %v", liveSR, liveSettled)
	}
	first.close()

	// Reconnecting with the last cursor: the next stored event is the
	// next change, nothing handled before.
	again := d.events(t, liveSettled.Sequence)
	third := d.payAndSettle(t, cluster, acc)
	if ev := again.nextStored(t); !bytes.Equal(ev.Hash, third) || ev.Sequence <= liveSettled.Sequence ||
		ev.Type != lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_SETTLE_REQUESTED {
		t.Fatalf("after reconnecting with cursor %d: %v", liveSettled.Sequence, ev)
	}
	again.close()
	// From a cursor in the middle: what followed it.
	mid := d.events(t, sr.Sequence)
	if ev := mid.nextStored(t); ev.Sequence != settled.Sequence || !bytes.Equal(ev.Hash, inv.Hash) {
		t.Fatalf("from cursor %d: %v, want the settlement at %d", sr.Sequence, ev, settled.Sequence)
	}
	mid.close()
}

func (d *daemon) lookup(t *testing.T, hash []byte) *lnmuxpb.LookupInvoiceResponse {
	t.Helper()
	res, err := d.client.LookupInvoice(t.Context(), connect.NewRequest(&lnmuxpb.LookupInvoiceRequest{Hash: hash}))
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	return res.Msg
}

// waitLookup polls LookupInvoice until the invoice is in state: a part on
// its way through lnd arrives when it arrives.
func (d *daemon) waitLookup(t *testing.T, hash []byte, state lnmuxpb.LookupInvoiceResponse_LookupState) *lnmuxpb.LookupInvoiceResponse {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		l := d.lookup(t, hash)
		if l.State == state {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoice still %v, want %v", l.State, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// payAndSettle pays a new invoice as Carol, settles it and waits until it
// is final; it returns its hash.
func (d *daemon) payAndSettle(t *testing.T, cluster *regtest.Cluster, acc <-chan *lnmuxpb.SubscribeInvoiceAcceptedResponse) []byte {
	t.Helper()
	inv := d.addInvoice(t, 50_000, 600)
	pay := payAsync(t, cluster, inv.PaymentRequest)
	ev := nextAcceptedFor(t, acc, inv.Hash)
	if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
		t.Fatal(err)
	}
	if p := <-pay; p.Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("payment %v", p.Status)
	}
	if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
		t.Fatalf("final %v", got)
	}
	return inv.Hash
}

// eventLog is one SubscribeInvoiceEvents stream.
type eventLog struct {
	ch     chan *lnmuxpb.SubscribeInvoiceEventsResponse
	cancel context.CancelFunc
	done   chan struct{}
}

func (d *daemon) events(t *testing.T, from uint64) *eventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &eventLog{ch: make(chan *lnmuxpb.SubscribeInvoiceEventsResponse, 256), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer close(l.ch)
		stream, err := d.client.SubscribeInvoiceEvents(ctx, connect.NewRequest(&lnmuxpb.SubscribeInvoiceEventsRequest{FromSequence: from}))
		if err != nil {
			return
		}
		for stream.Receive() {
			l.ch <- stream.Msg()
		}
		if err := stream.Err(); err != nil && ctx.Err() == nil {
			t.Errorf("event stream from %d ended: %v", from, err)
		}
	}()
	t.Cleanup(l.close)
	return l
}

// nextStored returns the next stored event, skipping the accepted sets
// (which carry no cursor).
func (l *eventLog) nextStored(t *testing.T) *lnmuxpb.SubscribeInvoiceEventsResponse {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case ev, ok := <-l.ch:
			if !ok {
				t.Fatal("event stream ended")
			}
			if ev.Type == lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_ACCEPTED {
				if ev.Sequence != 0 {
					t.Fatalf("accepted event with sequence %d", ev.Sequence)
				}
				continue
			}
			return ev
		case <-timeout:
			t.Fatal("no stored event")
		}
	}
}

func (l *eventLog) close() {
	l.cancel()
	<-l.done
}
