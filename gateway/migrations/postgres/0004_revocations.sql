-- Certificates revoked by the federation directory (`[[revoked_certificates]]`): the gateway
-- refuses a node presenting one, and a node calling through it with one. Replaced with the
-- rest of the directory, in the same transaction, when its content changes.

CREATE TABLE revoked_certificates (
    fingerprint TEXT PRIMARY KEY,  -- sha256: and 64 lowercase hex digits of the DER
    node        TEXT NOT NULL,     -- whose it was; not a reference: a removed node stays revoked
    reason      TEXT NOT NULL,
    revoked_at  TEXT NOT NULL      -- YYYY-MM-DD
);

-- How many revocations each version listed (0 for the versions before this table existed).
ALTER TABLE directory_versions ADD COLUMN revoked_certificates BIGINT NOT NULL DEFAULT 0;
