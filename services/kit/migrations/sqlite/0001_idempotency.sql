-- Idempotency keys of create calls (AIP-155; DOMAIN.md "Idempotency keys"), shared by every
-- service of a node. `response` is NULL while the first request is in flight.
CREATE TABLE idempotency_keys (
    scope        TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    request_hash BLOB    NOT NULL,
    response     BLOB,
    claimed_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, request_id)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
