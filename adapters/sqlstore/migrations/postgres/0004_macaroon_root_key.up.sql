-- The id of the API's macaroon root key (docs/authentication.md, "Root
-- key"): every replica reads it here, so neither a restart nor a lost data
-- directory undoes a rotation. No row: never set (lnmuxd stores the data
-- directory's id on its first start). It only grows. One row only.
CREATE TABLE macaroon_root_key (
    id         SMALLINT    PRIMARY KEY CHECK (id = 1),
    key_id     BIGINT      NOT NULL CHECK (key_id >= 0),
    -- For the operator: when the id last changed.
    updated_at TIMESTAMPTZ NOT NULL
);
