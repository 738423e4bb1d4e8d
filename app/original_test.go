package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/adapters/sqlstore/origdb"
	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// originalInvoice makes an invoice as the original lnmux did with the same
// identity key (its published rules: payment address = 16 random bytes ‖
// expiry ‖ amount, preimage = HMAC-SHA256(identity key, address)).
func originalInvoice(key []byte, amt domain.Msat, expiry time.Time) ports.AddInvoiceResult {
	var addr domain.PaymentAddr
	copy(addr[:16], "original-lnmux!!")
	binary.BigEndian.PutUint64(addr[16:24], uint64(expiry.Unix()))
	binary.BigEndian.PutUint64(addr[24:32], uint64(amt))
	m := hmac.New(sha256.New, key)
	m.Write(addr[:])
	var p domain.Preimage
	copy(p[:], m.Sum(nil))
	return ports.AddInvoiceResult{Hash: p.Hash(), Preimage: p, PaymentAddr: addr, ExpiresAt: expiry}
}

// TestOriginalInvoicePayable: an invoice the original lnmux issued before
// the switch, paid through its virtual channels, is held, settled with the
// preimage the original derived, and refused once paid.
func TestOriginalInvoicePayable(t *testing.T) {
	h := newHarness(t, 2, nil)
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv := originalInvoice(h.key, 10_000, h.clock.Now().Add(time.Hour))
	sa := h.build(inv, part{node: a, amount: 4_000, total: 10_000, chanID: domain.OriginalVirtualChannelID(a.key)})
	sb := h.build(inv, part{node: b, amount: 6_000, total: 10_000, chanID: domain.OriginalVirtualChannelID(b.key)})
	h.send(sa)
	h.send(sb)
	ev := nextAccepted(t, acc)
	if ev.Hash != inv.Hash {
		t.Fatalf("accepted %s, want %s", ev.Hash, inv.Hash)
	}
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*fakeNode{a, b} {
		if r := n.next(t); r.Action != ports.ActionSettle || r.Preimage != inv.Preimage {
			t.Fatalf("resolution %+v", r)
		}
	}
	again := h.build(inv, part{node: a, amount: 10_000, chanID: domain.OriginalVirtualChannelID(a.key)})
	h.send(again)
	if !isIncorrectDetails(h.failure(again, a.next(t))) {
		t.Fatal("second payment of the original invoice accepted")
	}

	// An expired original invoice is refused like one of lnmux's own.
	old := originalInvoice(h.key, 1_000, h.clock.Now().Add(-time.Minute))
	late := h.build(old, part{node: a, amount: 1_000, chanID: domain.OriginalVirtualChannelID(a.key)})
	h.send(late)
	if r := a.next(t); r.Action != ports.ActionFail {
		t.Fatalf("expired original invoice: %+v", r)
	}
}

// TestAdoptedSettlementsResettled: after `migrate up` adopted the original
// lnmux's database, the settlements it left waiting for lnd are settled
// again when lnd re-offers their HTLCs on the original's virtual channels,
// and their final status comes from lnd; the rest reads as before through
// the service.
func TestAdoptedSettlementsResettled(t *testing.T) {
	cluster, err := pgtest.Start()
	if err != nil {
		t.Fatalf("postgres for tests: %v", err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	dsn, err := cluster.CreateDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sample := origdb.Sample()
	origdb.Build(t, dsn, 4, sample)
	cfg := sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn}
	if _, err := sqlstore.Migrate(t.Context(), cfg, "up"); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	store, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })

	h := newHarness(t, 2, nil)
	h.nodes[0].key, h.nodes[1].key = origdb.Node(1), origdb.Node(2)
	h.restartWith(store)

	for _, i := range []int{0, 3} { // the two the original left unfinished
		inv := sample[i]
		for _, x := range inv.HTLCs {
			if x.Status != "SETTLE_REQUESTED" {
				continue
			}
			n := h.nodes[int(x.Node[1])-1]
			h.mux.HTLCIntercepted(ctx, ports.InterceptedHTLC{
				Circuit:        domain.CircuitKey{Node: x.Node, Chan: x.Chan, HTLC: x.ID},
				Hash:           inv.Hash(),
				OutgoingChanID: domain.OriginalVirtualChannelID(x.Node),
			})
			if r := n.next(t); r.Action != ports.ActionSettle || r.Preimage != domain.Preimage(inv.Preimage) {
				t.Fatalf("invoice %d htlc %d: %+v", i, x.ID, r)
			}
			h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: domain.CircuitKey{Node: x.Node, Chan: x.Chan, HTLC: x.ID}, Settled: true})
		}
	}
	for i, want := range map[int]domain.InvoiceStatus{0: domain.StatusSettled, 1: domain.StatusSettled, 2: domain.StatusFailed, 3: domain.StatusFailed} {
		st, err := h.mux.WaitForFinalStatus(ctx, sample[i].Hash())
		if err != nil || st != want {
			t.Errorf("invoice %d: %v %v, want %v", i, st, err, want)
		}
	}
	list, err := h.mux.ListInvoices(ctx, 12, 10)
	if err != nil || len(list) != 2 || list[0].Sequence != 13 || list[1].Sequence != 14 {
		t.Fatalf("list from 12: %+v %v", list, err)
	}
}
