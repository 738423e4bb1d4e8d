-- Invoices whose settlement was requested (docs/design.md, "Lifecycle"). Open and accepted
-- invoices live only in memory and are never stored.
--
-- SQLite can only auto-increment an INTEGER PRIMARY KEY, so here the sequence
-- number is the primary key and the hash a NOT NULL UNIQUE key: the same
-- guarantees as the Postgres schema. AUTOINCREMENT keeps numbers from ever
-- being reused, which ListInvoices paging relies on.
--
-- Times are DATETIME so that the driver parses them back into time.Time; the
-- store writes them in UTC, so their text form also sorts in time order.
CREATE TABLE invoices (
    sequence_number     INTEGER  PRIMARY KEY AUTOINCREMENT,
    hash                BLOB     NOT NULL UNIQUE CHECK (length(hash) = 32),
    preimage            BLOB     NOT NULL CHECK (length(preimage) = 32),
    amount_msat         INTEGER  NOT NULL CHECK (amount_msat >= 0),
    amount_paid_msat    INTEGER  NOT NULL CHECK (amount_paid_msat >= 0),
    set_id              BLOB     NOT NULL CHECK (length(set_id) = 32),
    status              TEXT     NOT NULL CHECK (status IN ('settle_requested', 'settled', 'failed')),
    expiry              DATETIME NOT NULL,
    settle_requested_at DATETIME NOT NULL,
    finalized_at        DATETIME
);

-- Recovery after a restart re-sends settles for every pending invoice.
CREATE INDEX invoices_pending_idx ON invoices (sequence_number) WHERE status = 'settle_requested';
CREATE INDEX invoices_expiry_idx ON invoices (expiry);

-- The HTLC set of each stored invoice. chan_id and htlc_id are uint64 in lnd;
-- they are stored as the int64 with the same bits, as on Postgres.
CREATE TABLE htlcs (
    invoice_hash BLOB    NOT NULL REFERENCES invoices (hash),
    node_pubkey  BLOB    NOT NULL CHECK (length(node_pubkey) = 33),
    chan_id      INTEGER NOT NULL,
    htlc_id      INTEGER NOT NULL,
    amount_msat  INTEGER NOT NULL CHECK (amount_msat >= 0),
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'settled', 'failed')),
    -- Channel and HTLC ids are only unique per node (docs/design.md, "The HTLC path").
    PRIMARY KEY (node_pubkey, chan_id, htlc_id)
);

CREATE INDEX htlcs_invoice_hash_idx ON htlcs (invoice_hash);
