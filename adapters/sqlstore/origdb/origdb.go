// Package origdb builds, for tests, a Postgres database as the original
// lnmux (bottlepay/lnmux) leaves it: its schema "lnmux" from its own
// published migration files, applied the way go-pg/migrations does (in
// order, one transaction each, on one session, versions recorded in
// lnmux.migrations), with invoices and HTLCs in every state it knows.
package origdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// ReferenceDir returns the directory of the original lnmux's published
// interfaces: LNMUX_REFERENCE_DIR, or shared/reference beside the
// repository. It fails the test with a hint when they are missing.
func ReferenceDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LNMUX_REFERENCE_DIR")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for root := wd; ; root = filepath.Dir(root) {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				dir = filepath.Join(filepath.Dir(root), "shared", "reference")
				break
			}
			if filepath.Dir(root) == root {
				t.Fatalf("origdb: no go.mod above %s", wd)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "original-migrations")); err != nil {
		t.Fatalf("origdb: the original lnmux's migrations are missing (%v): put its published interfaces in shared/reference beside the repository or set LNMUX_REFERENCE_DIR", err)
	}
	return dir
}

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
	if len(invs) > 0 && upTo < 4 {
		t.Fatalf("origdb: rows need the schema at version 4, not %d", upTo)
	}
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	// One session, as go-pg/migrations runs: migration 1 sets search_path
	// and the later files rely on it.
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
	dir := filepath.Join(ReferenceDir(t), "original-migrations")
	files := []string{"1_initial.up.sql", "2_add.node.up.sql", "3_add_invoice_seq_num.up.sql", "4_add_status.up.sql"}
	for v, name := range files[:upTo] {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("origdb: %v", err)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, string(b)); err != nil {
			t.Fatalf("origdb: migration %s: %v", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO lnmux.migrations (version, created_at) VALUES ($1, now())`, v+1); err != nil {
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
VALUES ($1, $2, $3, $4, $5, $6::invoice_status, $7)`,
			inv.SettleRequestedAt, h[:], inv.Preimage[:], inv.Amount, inv.Sequence, inv.Status, fin)
		for _, x := range inv.HTLCs {
			exec(`INSERT INTO lnmux.htlcs (settle_requested_at, hash, chan_id, htlc_id, amount_msat, node, status, finalized_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::htlc_status, $8)`,
				inv.SettleRequestedAt, h[:], int64(x.Chan), int64(x.ID), x.Amount, x.Node[:], x.Status, fin)
		}
	}
}
