-- Invoices whose settlement was requested (docs/design.md, "Lifecycle"). Open and accepted
-- invoices live only in memory and are never stored.
CREATE TABLE invoices (
    hash                BYTEA       PRIMARY KEY CHECK (octet_length(hash) = 32),
    preimage            BYTEA       NOT NULL CHECK (octet_length(preimage) = 32),
    amount_msat         BIGINT      NOT NULL CHECK (amount_msat >= 0),
    amount_paid_msat    BIGINT      NOT NULL CHECK (amount_paid_msat >= 0),
    set_id              BYTEA       NOT NULL CHECK (octet_length(set_id) = 32),
    status              TEXT        NOT NULL CHECK (status IN ('settle_requested', 'settled', 'failed')),
    expiry              TIMESTAMPTZ NOT NULL,
    settle_requested_at TIMESTAMPTZ NOT NULL,
    finalized_at        TIMESTAMPTZ,
    -- ALWAYS: nothing but the database may pick a sequence number, so
    -- clients paging with ListInvoices never see one reused.
    sequence_number     BIGINT      GENERATED ALWAYS AS IDENTITY UNIQUE
);

-- Recovery after a restart re-sends settles for every pending invoice.
CREATE INDEX invoices_pending_idx ON invoices (sequence_number) WHERE status = 'settle_requested';
CREATE INDEX invoices_expiry_idx ON invoices (expiry);

-- The HTLC set of each stored invoice. chan_id and htlc_id are uint64 in lnd;
-- they are stored as the int64 with the same bits because Postgres has no
-- unsigned integers.
CREATE TABLE htlcs (
    invoice_hash BYTEA  NOT NULL REFERENCES invoices (hash),
    node_pubkey  BYTEA  NOT NULL CHECK (octet_length(node_pubkey) = 33),
    chan_id      BIGINT NOT NULL,
    htlc_id      BIGINT NOT NULL,
    amount_msat  BIGINT NOT NULL CHECK (amount_msat >= 0),
    status       TEXT   NOT NULL CHECK (status IN ('pending', 'settled', 'failed')),
    -- Channel and HTLC ids are only unique per node (docs/design.md, "The HTLC path").
    PRIMARY KEY (node_pubkey, chan_id, htlc_id)
);

CREATE INDEX htlcs_invoice_hash_idx ON htlcs (invoice_hash);
