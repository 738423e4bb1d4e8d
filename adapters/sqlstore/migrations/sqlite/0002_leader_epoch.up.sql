-- The leader's fencing token (docs/store.md, "Leader fencing"). Each lnmux
-- that takes the leader lock increments epoch while it holds the lock; every
-- write of the store checks, in its own transaction, that epoch is still the
-- one its process took, and is refused otherwise. One row only.
CREATE TABLE leader (
    id          INTEGER  PRIMARY KEY CHECK (id = 1),
    epoch       INTEGER  NOT NULL CHECK (epoch >= 0),
    -- For the operator: which host and process took the lock, and when.
    holder      TEXT     NOT NULL,
    acquired_at DATETIME
);

INSERT INTO leader (id, epoch, holder) VALUES (1, 0, '');
