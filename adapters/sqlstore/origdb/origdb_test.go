package origdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
	"github.com/lnmux/lnmux/internal/original"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// catalog describes what a database holds in the original's schema: its
// relations, columns (dropped ones too, which keep their place), types,
// defaults, constraints, indexes, sequences, enums, recorded versions and
// rows. Two databases with the same catalog are the same to the original
// and to lnmuxd's adoption.
func catalog(t *testing.T, dsn string) []string {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	queries := []string{
		`SELECT c.relname, c.relkind::text FROM pg_class c WHERE c.relnamespace = 'lnmux'::regnamespace`,
		`SELECT a.attrelid::regclass::text, a.attnum::text, CASE WHEN a.attisdropped THEN '(dropped)' ELSE a.attname END,
			format_type(a.atttypid, a.atttypmod), a.attnotnull::text, coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE c.relnamespace = 'lnmux'::regnamespace AND c.relkind = 'r' AND a.attnum > 0`,
		`SELECT conrelid::regclass::text, conname, contype::text, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE connamespace = 'lnmux'::regnamespace`,
		`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'lnmux'`,
		`SELECT sequence_name, data_type, start_value, increment, maximum_value FROM information_schema.sequences WHERE sequence_schema = 'lnmux'`,
		`SELECT n.nspname, t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
		FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
		GROUP BY n.nspname, t.typname`,
		`SELECT version::text FROM lnmux.migrations`,
	}
	var out []string
	read := func(q string) {
		t.Helper()
		rows, err := db.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer func() { _ = rows.Close() }()
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, v := range vals {
				fmt.Fprintf(&b, "%s|", v.String)
			}
			out = append(out, fmt.Sprintf("%.20s: %s", q[7:], b.String()))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range queries {
		read(q)
	}
	var hasStatus bool
	if err := db.QueryRowContext(context.Background(), `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = 'lnmux' AND table_name = 'invoices' AND column_name = 'status')`).Scan(&hasStatus); err != nil {
		t.Fatal(err)
	}
	if hasStatus {
		read(`SELECT encode(hash, 'hex'), amount_msat::text, status::text, sequence_num::text, settle_requested_at::text, coalesce(finalized_at::text, '') FROM lnmux.invoices`)
		read(`SELECT encode(node, 'hex'), chan_id::text, htlc_id::text, amount_msat::text, status::text, coalesce(finalized_at::text, '') FROM lnmux.htlcs`)
	}
	slices.Sort(out)
	return out
}

// TestSchemaMatchesReference cross-checks internal/original's migrations
// with the original's own migration files, when a copy of them is at hand:
// at every version, a database built from each has the same catalog, and
// the sample rows go into both alike.
func TestSchemaMatchesReference(t *testing.T) {
	dir := original.ReferenceFile(t, "original-migrations")
	fromFiles := func(m original.Migration) []string {
		files, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%d_*.up.sql", m.Version)))
		if err != nil || len(files) != 1 {
			t.Fatalf("the original's migration %d in %s: %v %v", m.Version, dir, files, err)
		}
		b, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		return []string{string(b)}
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.up.sql")); len(files) != len(original.Migrations) {
		t.Fatalf("%s has %d migrations, internal/original %d", dir, len(files), len(original.Migrations))
	}
	for v := 1; v <= len(original.Migrations); v++ {
		t.Run(fmt.Sprint("version ", v), func(t *testing.T) {
			var invs []Invoice
			if v == len(original.Migrations) {
				invs = Sample()
			}
			ours, theirs := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
			Build(t, ours, v, invs)
			buildWith(t, theirs, v, invs, fromFiles)
			a, b := catalog(t, ours), catalog(t, theirs)
			if !slices.Equal(a, b) {
				onlyIn := func(x, y []string) string {
					var d []string
					for _, l := range x {
						if !slices.Contains(y, l) {
							d = append(d, l)
						}
					}
					return strings.Join(d, "\n")
				}
				t.Errorf("internal/original's schema differs from the original's files:\nonly in ours:\n%s\nonly in theirs:\n%s", onlyIn(a, b), onlyIn(b, a))
			}
			if len(a) < 10 {
				t.Errorf("catalog too small to mean anything:\n%s", strings.Join(a, "\n"))
			}
		})
	}
}

// TestBuild: the schema of internal/original builds at every version and
// takes the sample, with the shape adoption reads.
func TestBuild(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	Build(t, dsn, len(original.Migrations), Sample())
	c := strings.Join(catalog(t, dsn), "\n")
	for _, want := range []string{
		"lnmux|invoice_status|SETTLE_REQUESTED,SETTLED,FAILED|",
		"lnmux|htlc_status|SETTLE_REQUESTED,SETTLED,FAILED|",
		"PRIMARY KEY (node, chan_id, htlc_id)",
		"UNIQUE (sequence_num)",
		"FOREIGN KEY (hash) REFERENCES lnmux.invoices(hash) ON DELETE CASCADE",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("catalog lacks %q:\n%s", want, c)
		}
	}
	for v := range len(original.Migrations) {
		Build(t, pgtest.NewDatabase(t), v, nil)
	}
}
