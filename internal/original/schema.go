package original

// Migration is one version of the original's schema (Postgres schema
// lnmux): statements that go-pg/migrations ran in one transaction before it
// recorded Version in its table lnmux.migrations (one row per version
// applied; the last is current).
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations are the original's schema versions 1 to 4 (its last), in
// order. Every name is qualified with Schema here; the original relied on
// its session's search_path, which its first migration set to lnmux, so
// that its enum types were created in lnmux as well.
//
// The shape they leave, which an existing deployment has:
//
//	lnmux.invoices  hash bytea(32) PK, preimage bytea(32) unique,
//	                amount_msat bigint > 0, settle_requested_at timestamptz,
//	                sequence_num serial unique, status invoice_status,
//	                finalized_at timestamptz (null until final)
//	lnmux.htlcs     (node bytea(33), chan_id bigint, htlc_id bigint) PK,
//	                hash -> invoices ON DELETE CASCADE,
//	                amount_msat bigint > 0, settle_requested_at timestamptz,
//	                status htlc_status, finalized_at timestamptz
//	lnmux.invoice_status, lnmux.htlc_status
//	                enums SETTLE_REQUESTED, SETTLED, FAILED
var Migrations = []Migration{
	{Version: 1, Name: "initial", Statements: []string{
		// An invoice is stored once the application asked to settle it.
		`CREATE TABLE lnmux.invoices (
	settle_requested_at timestamptz,
	hash                bytea       NOT NULL CHECK (length(hash) = 32),
	preimage            bytea       NOT NULL UNIQUE CHECK (length(preimage) = 32),
	amount_msat         bigint      NOT NULL CHECK (amount_msat > 0),
	settled             boolean     NOT NULL DEFAULT false,
	settled_at          timestamptz,
	PRIMARY KEY (hash)
)`,
		// The HTLCs of its accepted set, keyed by circuit.
		`CREATE TABLE lnmux.htlcs (
	settle_requested_at timestamptz,
	hash                bytea       NOT NULL CHECK (length(hash) = 32),
	chan_id             bigint      NOT NULL,
	htlc_id             bigint      NOT NULL,
	amount_msat         bigint      NOT NULL CHECK (amount_msat > 0),
	settled             boolean     NOT NULL DEFAULT false,
	settled_at          timestamptz,
	PRIMARY KEY (chan_id, htlc_id),
	CONSTRAINT fk_hash FOREIGN KEY (hash) REFERENCES lnmux.invoices (hash) ON DELETE CASCADE
)`,
	}},
	{Version: 2, Name: "add.node", Statements: []string{
		// Circuit keys repeat across nodes: the node joins the key.
		`ALTER TABLE lnmux.htlcs ADD COLUMN node bytea NOT NULL CHECK (length(node) = 33)`,
		`ALTER TABLE lnmux.htlcs DROP CONSTRAINT htlcs_pkey`,
		`ALTER TABLE lnmux.htlcs ADD PRIMARY KEY (node, chan_id, htlc_id)`,
	}},
	{Version: 3, Name: "add_invoice_seq_num", Statements: []string{
		// The paging cursor of ListInvoices.
		`ALTER TABLE lnmux.invoices ADD COLUMN sequence_num serial UNIQUE`,
	}},
	{Version: 4, Name: "add_status", Statements: []string{
		// settled/settled_at become a status with a failed outcome and the
		// time the status became final. (The original then filled both from
		// the old columns for rows it had; a schema built here has none.)
		`CREATE TYPE lnmux.invoice_status AS ENUM ('SETTLE_REQUESTED', 'SETTLED', 'FAILED')`,
		`ALTER TABLE lnmux.invoices ADD COLUMN status lnmux.invoice_status NOT NULL`,
		`ALTER TABLE lnmux.invoices ADD COLUMN finalized_at timestamptz`,
		`ALTER TABLE lnmux.invoices DROP COLUMN settled`,
		`ALTER TABLE lnmux.invoices DROP COLUMN settled_at`,
		`CREATE TYPE lnmux.htlc_status AS ENUM ('SETTLE_REQUESTED', 'SETTLED', 'FAILED')`,
		`ALTER TABLE lnmux.htlcs ADD COLUMN status lnmux.htlc_status NOT NULL`,
		`ALTER TABLE lnmux.htlcs ADD COLUMN finalized_at timestamptz`,
		`ALTER TABLE lnmux.htlcs DROP COLUMN settled`,
		`ALTER TABLE lnmux.htlcs DROP COLUMN settled_at`,
	}},
}
