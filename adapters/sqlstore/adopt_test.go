package sqlstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/adapters/sqlstore/origdb"
	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
	"github.com/lnmux/lnmux/domain"
)

// TestAdoptOriginal: `migrate up` alone (no init) on a database the
// original lnmux left at its schema version 4 keeps every invoice and HTLC,
// with the original's sequence numbers, and leaves the settlements that
// wait for lnd pending so that recovery settles them again.
func TestAdoptOriginal(t *testing.T) {
	cfg := postgresConfig(t)
	sample := origdb.Sample()
	origdb.Build(t, cfg.DSN, 4, sample)

	applied, err := sqlstore.Migrate(t.Context(), cfg, "up")
	if err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	if len(applied) == 0 || !slices.ContainsFunc(applied, func(m sqlstore.MigrationStatus) bool { return m.Name == "adopt_original_lnmux" }) {
		t.Fatalf("applied %v", applied)
	}
	if again, err := sqlstore.Migrate(t.Context(), cfg, "up"); err != nil || len(again) != 0 {
		t.Fatalf("second migrate up: %v, %v", again, err)
	}
	st, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })

	list, err := st.List(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(sample) {
		t.Fatalf("listed %d invoices, want %d", len(list), len(sample))
	}
	wantStatus := []domain.InvoiceStatus{
		domain.StatusSettleRequested, domain.StatusSettled, domain.StatusFailed,
		// Failed in the original with an HTLC lnd had not finalised: back to
		// settle-requested, so that HTLC is settled and lnd decides.
		domain.StatusSettleRequested,
	}
	for i, o := range sample {
		inv := list[i]
		if inv.Hash != domain.PaymentHash(o.Hash()) || inv.Preimage != domain.Preimage(o.Preimage) ||
			inv.Amount != domain.Msat(o.Amount) || inv.Sequence != uint64(o.Sequence) || inv.Status != wantStatus[i] ||
			!inv.SettleRequestedAt.Equal(o.SettleRequestedAt) {
			t.Errorf("invoice %d = %+v", i, inv)
		}
		if final := !inv.FinalizedAt.IsZero(); final != inv.Status.IsFinal() || (final && !inv.FinalizedAt.Equal(o.FinalizedAt)) {
			t.Errorf("invoice %d finalized at %v", i, inv.FinalizedAt)
		}
		if !inv.Expiry.After(o.SettleRequestedAt.Add(300 * 24 * time.Hour)) {
			t.Errorf("invoice %d expiry %v: the hash must stay known as paid", i, inv.Expiry)
		}
		var keys []domain.CircuitKey
		var paid domain.Msat
		for _, h := range o.HTLCs {
			keys = append(keys, domain.CircuitKey{Node: domain.NodeKey(h.Node), Chan: h.Chan, HTLC: h.ID})
			paid += domain.Msat(h.Amount)
		}
		if inv.SetID != domain.NewSetID(keys) || inv.AmountPaid != paid || len(inv.HTLCs) != len(o.HTLCs) {
			t.Errorf("invoice %d set %s paid %d htlcs %d", i, inv.SetID, inv.AmountPaid, len(inv.HTLCs))
		}
		for _, h := range inv.HTLCs {
			j := slices.IndexFunc(o.HTLCs, func(x origdb.HTLC) bool {
				return x.Chan == h.Circuit.Chan && x.ID == h.Circuit.HTLC && x.Node == h.Circuit.Node
			})
			want := map[string]domain.HTLCStatus{"SETTLE_REQUESTED": domain.HTLCPending, "SETTLED": domain.HTLCSettled, "FAILED": domain.HTLCFailed}
			if j < 0 || h.Status != want[o.HTLCs[j].Status] || h.Amount != domain.Msat(o.HTLCs[j].Amount) {
				t.Errorf("invoice %d htlc %+v", i, h)
			}
		}
		got, err := st.Get(t.Context(), inv.Hash)
		if err != nil || got.Sequence != inv.Sequence {
			t.Errorf("get %d: %v %v", i, got.Sequence, err)
		}
	}

	// Recovery after start sees exactly the settlements waiting for lnd.
	pending, err := st.ListPending(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].Hash != domain.PaymentHash(sample[0].Hash()) || pending[1].Hash != domain.PaymentHash(sample[3].Hash()) {
		t.Fatalf("pending %+v", pending)
	}
	unexpired, err := st.ListUnexpired(t.Context(), time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || len(unexpired) != len(sample) {
		t.Fatalf("unexpired %d, %v", len(unexpired), err)
	}

	// New invoices continue after the original's sequence numbers.
	var p domain.Preimage
	p[0] = 0x42
	node := domain.NodeKey(origdb.Node(1))
	inv, err := st.RequestSettle(t.Context(), domain.Invoice{
		Hash: p.Hash(), Preimage: p, Amount: 1, AmountPaid: 1, Status: domain.StatusSettleRequested,
		SetID:  domain.NewSetID([]domain.CircuitKey{{Node: node, Chan: 5, HTLC: 5}}),
		Expiry: time.Now().Add(time.Hour), SettleRequestedAt: time.Now(),
		HTLCs: []domain.SettledHTLC{{Circuit: domain.CircuitKey{Node: node, Chan: 5, HTLC: 5}, Amount: 1}},
	})
	if err != nil || inv.Sequence != 15 {
		t.Fatalf("new invoice sequence %d, %v; want 15", inv.Sequence, err)
	}
}

func TestAdoptOriginalRefusals(t *testing.T) {
	t.Run("old original schema", func(t *testing.T) {
		cfg := postgresConfig(t)
		origdb.Build(t, cfg.DSN, 3, nil)
		if _, err := sqlstore.Migrate(t.Context(), cfg, "up"); !errors.Is(err, sqlstore.ErrOriginalSchema) {
			t.Fatalf("migrate up: %v, want ErrOriginalSchema", err)
		}
	})
	t.Run("no original schema still needs init", func(t *testing.T) {
		cfg := sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.NewDatabase(t)}
		if _, err := sqlstore.Migrate(t.Context(), cfg, "up"); !errors.Is(err, sqlstore.ErrSchemaNotInitialized) {
			t.Fatalf("migrate up: %v, want ErrSchemaNotInitialized", err)
		}
	})
}
