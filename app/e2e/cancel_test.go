package e2e

import (
	"bytes"
	"testing"

	"connectrpc.com/connect"
	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lnmux/lnmux/deployments/regtest"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// TestPermanentCancel on real lnd: Carol's HTLC through Alice is held in an
// accepted set; the application cancels the invoice permanently; the HTLC
// is failed back and Carol's payment fails; her next attempt fails too,
// also after lnmuxd restarted (the tombstone is stored); the event log
// shows the cancel (docs/design.md, "Cancels"; docs/api.md).
func TestPermanentCancel(t *testing.T) {
	cluster := regtest.StartT(t, regtest.Options{AliceChannelSat: channelSat, BobChannelSat: channelSat, Logf: t.Logf})
	aliceChan := chanID(t, cluster, cluster.Alice)
	env := &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: t.TempDir(), cluster: cluster}
	d := env.start(t, daemonOpts{})
	acc := d.accepted(t)

	const amt = int64(100_000)
	inv := d.addInvoice(t, amt, 600)
	attempt := make(chan *lnrpc.HTLCAttempt, 1)
	go func() { attempt <- sendToRoute(t, cluster, cluster.Alice, aliceChan, inv, amt, amt) }()
	nextAcceptedFor(t, acc, inv.Hash)
	if _, err := d.client.CancelInvoice(t.Context(), connect.NewRequest(&lnmuxpb.CancelInvoiceRequest{Hash: inv.Hash, Permanent: true})); err != nil {
		t.Fatalf("permanent cancel: %v", err)
	}
	if att := <-attempt; att == nil || att.Status != lnrpc.HTLCAttempt_FAILED {
		t.Fatalf("held part after the permanent cancel: %v, want failed", att)
	}
	// The payer tries again: refused as unknown, never accepted.
	if att := sendToRoute(t, cluster, cluster.Alice, aliceChan, inv, amt, amt); att == nil || att.Status != lnrpc.HTLCAttempt_FAILED ||
		att.Failure.GetCode() != lnrpc.Failure_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS {
		t.Fatalf("payment of a permanently cancelled invoice: %v, want incorrect or unknown payment details", att)
	}
	log := d.events(t, 0)
	if ev := log.nextStored(t); ev.Type != lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_CANCELLED || !bytes.Equal(ev.Hash, inv.Hash) {
		t.Fatalf("event log: %v, want the permanent cancel", ev)
	}
	log.close()

	// A new lnmuxd over the same database knows it too.
	d.stop()
	d = env.start(t, daemonOpts{})
	if att := sendToRoute(t, cluster, cluster.Alice, aliceChan, inv, amt, amt); att == nil || att.Status != lnrpc.HTLCAttempt_FAILED ||
		att.Failure.GetCode() != lnrpc.Failure_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS {
		t.Fatalf("after a restart: %v, want incorrect or unknown payment details", att)
	}
	if l := d.lookup(t, inv.Hash); l.State == lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_ACCEPTED {
		t.Fatalf("lookup after the restart: %v", l)
	}
}
