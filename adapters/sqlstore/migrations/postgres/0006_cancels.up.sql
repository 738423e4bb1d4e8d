-- Recorded cancels (docs/store.md, "Recorded cancels"; docs/design.md,
-- "Cancels"): an application's CancelInvoice is stored here before any of
-- its HTLCs is failed and before the cancel is reported done, so that the
-- next leader fails those HTLCs again if lnd offers them again. One row per
-- (hash, set id); a permanent cancel also makes every later set of the hash
-- unpayable until expiry. RequestSettle refuses a cancelled set and every
-- set of a permanently cancelled hash; RecordCancel refuses a stored hash.
-- Both take the sequence lock before they read, so they are serial.
CREATE TABLE cancels (
    hash         BYTEA       NOT NULL CHECK (octet_length(hash) = 32),
    -- All zero for a permanent cancel of a hash that had no set.
    set_id       BYTEA       NOT NULL CHECK (octet_length(set_id) = 32),
    -- Only ever goes from false to true.
    permanent    BOOLEAN     NOT NULL,
    -- The invoice's expiry: after it the row is no longer listed and may
    -- be deleted, with its HTLCs.
    expiry       TIMESTAMPTZ NOT NULL,
    cancelled_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (hash, set_id)
);

CREATE INDEX cancels_expiry_idx ON cancels (expiry);

-- The HTLCs of each cancelled set, as in htlcs: chan_id and htlc_id hold
-- the bits of lnd's uint64 ids. A child table rather than a serialized
-- column: each value is checked by the database, a repeated cancel adds
-- HTLCs by primary key, and nothing needs an encoding of its own.
CREATE TABLE cancel_htlcs (
    hash         BYTEA  NOT NULL,
    set_id       BYTEA  NOT NULL,
    node_pubkey  BYTEA  NOT NULL CHECK (octet_length(node_pubkey) = 33),
    chan_id      BIGINT NOT NULL,
    htlc_id      BIGINT NOT NULL,
    -- The block height after which lnd can no longer offer the HTLC again.
    until_height BIGINT NOT NULL CHECK (until_height >= 0 AND until_height <= 4294967295),
    PRIMARY KEY (hash, set_id, node_pubkey, chan_id, htlc_id),
    FOREIGN KEY (hash, set_id) REFERENCES cancels (hash, set_id) ON DELETE CASCADE
);
