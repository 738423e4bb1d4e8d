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
    -- The cursor. Drawn only under the sequence lock (docs/store.md,
    -- "Sequence numbers"), so cursors become visible in increasing order.
    sequence         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash             BYTEA       NOT NULL CHECK (octet_length(hash) = 32),
    status           TEXT        NOT NULL CHECK (status IN ('settle_requested', 'settled', 'failed', 'cancelled')),
    set_id           BYTEA       CHECK (octet_length(set_id) = 32),
    amount_msat      BIGINT      NOT NULL CHECK (amount_msat >= 0),
    amount_paid_msat BIGINT      NOT NULL CHECK (amount_paid_msat >= 0),
    -- The invoice's sequence_number, 0 when there is no invoice row.
    invoice_sequence BIGINT      NOT NULL CHECK (invoice_sequence >= 0),
    created_at       TIMESTAMPTZ NOT NULL
);

-- Status changes of Updates (final statuses), committed in the Update's
-- transaction but not numbered yet: an Update takes no lock, and a sweep
-- moves these rows into invoice_events under the sequence lock, many at a
-- time. Same columns as invoice_events.
CREATE TABLE invoice_changes (
    id               BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash             BYTEA       NOT NULL CHECK (octet_length(hash) = 32),
    status           TEXT        NOT NULL CHECK (status IN ('settle_requested', 'settled', 'failed', 'cancelled')),
    set_id           BYTEA       CHECK (octet_length(set_id) = 32),
    amount_msat      BIGINT      NOT NULL CHECK (amount_msat >= 0),
    amount_paid_msat BIGINT      NOT NULL CHECK (amount_paid_msat >= 0),
    invoice_sequence BIGINT      NOT NULL CHECK (invoice_sequence >= 0),
    created_at       TIMESTAMPTZ NOT NULL
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
