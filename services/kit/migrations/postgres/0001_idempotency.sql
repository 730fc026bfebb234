-- Idempotency keys of create calls (AIP-155; DOMAIN.md "Idempotency keys"), shared by every
-- service of a node. `response` is NULL while the first request is in flight.
CREATE TABLE idempotency_keys (
    scope        TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    request_hash BYTEA   NOT NULL,
    response     BYTEA,
    claimed_at   BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (scope, request_id)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
