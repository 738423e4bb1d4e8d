package sqlstore

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lnmux/lnmux/domain"
)

// Both dialects must describe the same schema history, or an operator
// switching drivers would see different versions.
func TestMigrationsMatchAcrossDialects(t *testing.T) {
	names := func(dialect string) []string {
		ms, err := loadMigrations(dialect)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.name)
			if strings.TrimSpace(m.sql) == "" && m.run == nil {
				t.Errorf("%s migration %d is empty", dialect, m.version)
			}
		}
		return out
	}
	sqlite, pg := names(DriverSQLite), names(DriverPostgres)
	if len(sqlite) == 0 || !slices.Equal(sqlite, pg) {
		t.Fatalf("sqlite migrations %v, postgres %v", sqlite, pg)
	}
}

func TestSchemaTooNew(t *testing.T) {
	cfg := Config{Path: filepath.Join(t.TempDir(), "lnmux.db")}
	m, err := OpenMigrator(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(t.Context()); err != nil {
		t.Fatal(err)
	}
	row := migrationRow{Version: 9999, Name: "future", AppliedAt: time.Now()}
	if err := m.c.db.Create(&row).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), cfg); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("open: got %v, want ErrSchemaTooNew", err)
	}
}

func TestToDomainRejectsCorruptRows(t *testing.T) {
	var pre domain.Preimage
	inv := domain.Invoice{
		Hash: pre.Hash(), Preimage: pre, Status: domain.StatusSettleRequested,
		HTLCs: []domain.SettledHTLC{{Circuit: domain.CircuitKey{Node: domain.NodeKey{2}}}},
	}
	for name, corrupt := range map[string]func(*invoiceRow, []htlcRow){
		"hash":        func(r *invoiceRow, _ []htlcRow) { r.Hash = r.Hash[:31] },
		"status":      func(r *invoiceRow, _ []htlcRow) { r.Status = "open-ish" },
		"node":        func(_ *invoiceRow, h []htlcRow) { h[0].NodePubkey = nil },
		"htlc status": func(_ *invoiceRow, h []htlcRow) { h[0].Status = "" },
	} {
		row, htlcs := fromDomain(inv)
		corrupt(&row, htlcs)
		if _, err := toDomain(row, htlcs); err == nil {
			t.Errorf("%s: corrupt row accepted", name)
		}
	}
}
