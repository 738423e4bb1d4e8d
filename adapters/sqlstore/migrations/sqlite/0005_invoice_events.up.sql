-- The event log (docs/api.md, "The event log"; docs/store.md, "The event
-- log"): one row per change of a stored invoice's status, recorded in the
-- transaction that makes the change (a settle request here directly, a
-- final status through invoice_changes below). SubscribeInvoiceEvents reads
-- it from a client's cursor. Rows are never updated or deleted.
--
-- A row is self-contained (no foreign key to invoices): a permanent cancel
-- (issue 20, item 4) will log a hash that has no invoice row, with status
-- 'cancelled' and no set id, which the CHECK admits already.
CREATE TABLE invoice_events (
    -- The cursor. SQLite's writers are serial (BEGIN IMMEDIATE), so
    -- cursors commit in increasing order; AUTOINCREMENT never reuses one.
    sequence         INTEGER  PRIMARY KEY AUTOINCREMENT,
    hash             BLOB     NOT NULL CHECK (length(hash) = 32),
    status           TEXT     NOT NULL CHECK (status IN ('settle_requested', 'settled', 'failed', 'cancelled')),
    set_id           BLOB     CHECK (length(set_id) = 32),
    amount_msat      INTEGER  NOT NULL CHECK (amount_msat >= 0),
    amount_paid_msat INTEGER  NOT NULL CHECK (amount_paid_msat >= 0),
    -- The invoice's sequence_number, 0 when there is no invoice row.
    invoice_sequence INTEGER  NOT NULL CHECK (invoice_sequence >= 0),
    created_at       DATETIME NOT NULL
);

-- Status changes of Updates (final statuses), committed in the Update's
-- transaction but not numbered yet; a sweep moves them into invoice_events,
-- many at a time. Same columns as invoice_events.
CREATE TABLE invoice_changes (
    id               INTEGER  PRIMARY KEY AUTOINCREMENT,
    hash             BLOB     NOT NULL CHECK (length(hash) = 32),
    status           TEXT     NOT NULL CHECK (status IN ('settle_requested', 'settled', 'failed', 'cancelled')),
    set_id           BLOB     CHECK (length(set_id) = 32),
    amount_msat      INTEGER  NOT NULL CHECK (amount_msat >= 0),
    amount_paid_msat INTEGER  NOT NULL CHECK (amount_paid_msat >= 0),
    invoice_sequence INTEGER  NOT NULL CHECK (invoice_sequence >= 0),
    created_at       DATETIME NOT NULL
);

-- The history of the invoices stored before this migration: their settle
-- requests in sequence order, then their final statuses in the order they
-- became final.
INSERT INTO invoice_events (hash, status, set_id, amount_msat, amount_paid_msat, invoice_sequence, created_at)
SELECT hash, 'settle_requested', set_id, amount_msat, amount_paid_msat, sequence_number, settle_requested_at
FROM invoices ORDER BY sequence_number;

INSERT INTO invoice_events (hash, status, set_id, amount_msat, amount_paid_msat, invoice_sequence, created_at)
SELECT hash, status, set_id, amount_msat, amount_paid_msat, sequence_number, COALESCE(finalized_at, settle_requested_at)
FROM invoices WHERE status <> 'settle_requested'
ORDER BY COALESCE(finalized_at, settle_requested_at), sequence_number;
