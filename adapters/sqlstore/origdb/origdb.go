// Package origdb builds, for tests, a Postgres database as the original
// lnmux (bottlepay/lnmux) leaves it: its schema "lnmux" from the
// repository's statement of its migrations (internal/original), applied the
// way go-pg/migrations does (in order, one transaction each, versions
// recorded in lnmux.migrations), with invoices and HTLCs in every state it
// knows. origdb_test.go cross-checks the schema with the original's own
// migration files when a copy of them is at hand.
package origdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/lnmux/lnmux/internal/original"
)

// HTLC is one row of the original's lnmux.htlcs.
type HTLC struct {
	Node   [33]byte
	Chan   uint64
	ID     uint64
	Amount int64
	// Status is SETTLE_REQUESTED, SETTLED or FAILED.
	Status string
}

// Invoice is one row of the original's lnmux.invoices with its HTLCs.
type Invoice struct {
	Preimage [32]byte
	Amount   int64
	// Status is SETTLE_REQUESTED, SETTLED or FAILED.
	Status            string
	SettleRequestedAt time.Time
	// FinalizedAt is zero when not final.
	FinalizedAt time.Time
	Sequence    int64
	HTLCs       []HTLC
}

// Hash is the invoice's payment hash.
func (i Invoice) Hash() [32]byte { return sha256.Sum256(i.Preimage[:]) }

// Node returns a fixed, valid-looking compressed node key for n.
func Node(n byte) [33]byte {
	var k [33]byte
	k[0] = 0x02
	for i := 1; i < len(k); i++ {
		k[i] = n
	}
	return k
}

func preimage(n byte) [32]byte {
	var p [32]byte
	for i := range p {
		p[i] = n
	}
	p[0] = 0xee
	return p
}

// Sample returns invoices in every state the original records: one whose
// settlement waits for lnd (HTLCs through two nodes), one settled, one
// failed (one HTLC failed, one settled: a partial settlement), and one the
// original marked failed while an HTLC was still not final. Sequence
// numbers have gaps, as a serial column after rolled-back inserts has.
func Sample() []Invoice {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	return []Invoice{
		{Preimage: preimage(1), Amount: 30_000, Status: "SETTLE_REQUESTED", SettleRequestedAt: at, Sequence: 10, HTLCs: []HTLC{
			{Node: Node(1), Chan: 1 << 40, ID: 7, Amount: 10_000, Status: "SETTLE_REQUESTED"},
			{Node: Node(2), Chan: 2<<40 | 1, ID: 7, Amount: 20_000, Status: "SETTLE_REQUESTED"},
		}},
		{Preimage: preimage(2), Amount: 5_000, Status: "SETTLED", SettleRequestedAt: at, FinalizedAt: at.Add(time.Second), Sequence: 11, HTLCs: []HTLC{
			{Node: Node(1), Chan: 1 << 40, ID: 8, Amount: 5_001, Status: "SETTLED"},
		}},
		{Preimage: preimage(3), Amount: 8_000, Status: "FAILED", SettleRequestedAt: at, FinalizedAt: at.Add(2 * time.Second), Sequence: 13, HTLCs: []HTLC{
			{Node: Node(1), Chan: 1 << 40, ID: 9, Amount: 4_000, Status: "FAILED"},
			{Node: Node(2), Chan: 2<<40 | 1, ID: 9, Amount: 4_000, Status: "SETTLED"},
		}},
		{Preimage: preimage(4), Amount: 2_000, Status: "FAILED", SettleRequestedAt: at, FinalizedAt: at.Add(3 * time.Second), Sequence: 14, HTLCs: []HTLC{
			{Node: Node(1), Chan: 1 << 40, ID: 10, Amount: 1_000, Status: "FAILED"},
			{Node: Node(2), Chan: 2<<40 | 1, ID: 10, Amount: 1_000, Status: "SETTLE_REQUESTED"},
		}},
	}
}

// Build creates the original's schema in the database of dsn, up to
// version upTo (4 is the original's last), and inserts invs (only with
// upTo = 4).
func Build(t testing.TB, dsn string, upTo int, invs []Invoice) {
	t.Helper()
	buildWith(t, dsn, upTo, invs, func(m original.Migration) []string { return m.Statements })
}

// buildWith is Build with the statements of each migration from stmts (the
// original's own files in the cross-check of origdb_test.go).
func buildWith(t testing.TB, dsn string, upTo int, invs []Invoice, stmts func(original.Migration) []string) {
	t.Helper()
	if upTo < 0 || upTo > len(original.Migrations) {
		t.Fatalf("origdb: no schema version %d", upTo)
	}
	if len(invs) > 0 && upTo < len(original.Migrations) {
		t.Fatalf("origdb: rows need the schema at version %d, not %d", len(original.Migrations), upTo)
	}
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	// One session, as go-pg/migrations runs: the original's own first
	// migration sets search_path and its later ones rely on it.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("origdb: %v", err)
	}
	defer func() { _ = conn.Close() }()

	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("origdb: %s: %v", q, err)
		}
	}
	// go-pg/migrations' bookkeeping table, as the original names it.
	exec(`CREATE SCHEMA lnmux`)
	exec(`CREATE TABLE lnmux.migrations (id serial, version bigint, created_at timestamptz)`)
	for _, m := range original.Migrations[:upTo] {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range stmts(m) {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				t.Fatalf("origdb: migration %d (%s): %v", m.Version, m.Name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO lnmux.migrations (version, created_at) VALUES ($1, now())`, m.Version); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, inv := range invs {
		h := inv.Hash()
		var fin any
		if !inv.FinalizedAt.IsZero() {
			fin = inv.FinalizedAt
		}
		exec(`INSERT INTO lnmux.invoices (settle_requested_at, hash, preimage, amount_msat, sequence_num, status, finalized_at)
VALUES ($1, $2, $3, $4, $5, $6::lnmux.invoice_status, $7)`,
			inv.SettleRequestedAt, h[:], inv.Preimage[:], inv.Amount, inv.Sequence, inv.Status, fin)
		for _, x := range inv.HTLCs {
			exec(`INSERT INTO lnmux.htlcs (settle_requested_at, hash, chan_id, htlc_id, amount_msat, node, status, finalized_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::lnmux.htlc_status, $8)`,
				inv.SettleRequestedAt, h[:], int64(x.Chan), int64(x.ID), x.Amount, x.Node[:], x.Status, fin)
		}
	}
}
