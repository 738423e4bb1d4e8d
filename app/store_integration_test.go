package app

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// TestRestartOverSQLite runs the crash-recovery path against the real
// embedded database: settle requested, process gone, a new instance over the
// same file re-settles the HTLCs lnd re-offers and records lnd's final word.
func TestRestartOverSQLite(t *testing.T) {
	cfg := sqlstore.Config{Driver: sqlstore.DriverSQLite, Path: filepath.Join(t.TempDir(), "lnmux.db")}
	for _, cmd := range []string{"init", "up"} {
		if _, err := sqlstore.Migrate(t.Context(), cfg, cmd); err != nil {
			t.Fatal(err)
		}
	}
	open := func() *sqlstore.Store {
		s, err := sqlstore.Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	store := open()
	h := newHarness(t, 2, nil)
	h.restartWith(store)
	acc := h.subscribe()
	a, b := h.nodes[0], h.nodes[1]
	inv := h.invoice(10000, time.Hour)
	sa := h.build(inv, part{node: a, amount: 2500, total: 10000})
	sb := h.build(inv, part{node: b, amount: 7500, total: 10000})
	h.send(sa)
	h.send(sb)
	ev := nextAccepted(t, acc)
	if err := h.mux.SettleInvoice(ctx, inv.Hash, ev.SetID); err != nil {
		t.Fatal(err)
	}
	a.next(t)
	b.next(t)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// A new process: the settlement is known from the database only.
	store = open()
	defer store.Close()
	h.restartWith(store)
	h.send(sb)
	h.send(sa)
	for _, n := range []*fakeNode{b, a} {
		if r := n.next(t); r.Action != ports.ActionSettle || r.Preimage.Hash() != inv.Hash {
			t.Fatalf("after restart: %+v", r)
		}
	}
	// Paying the settled invoice again is refused without a database read.
	again := h.build(inv, part{node: a, amount: 10000})
	h.send(again)
	if !isIncorrectDetails(h.failure(again, a.next(t))) {
		t.Fatal("second payment accepted")
	}
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: sa.htlc.Circuit, Settled: true})
	h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: sb.htlc.Circuit, Settled: true})
	st, err := h.mux.WaitForFinalStatus(ctx, inv.Hash)
	if err != nil || st != domain.StatusSettled {
		t.Fatalf("final %v %v", st, err)
	}
	list, err := h.mux.ListInvoices(ctx, 0, 10)
	if err != nil || len(list) != 1 || list[0].Status != domain.StatusSettled || list[0].FinalizedAt.IsZero() {
		t.Fatalf("list %+v %v", list, err)
	}
}
