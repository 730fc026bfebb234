-- The receipts of the sealed daily registers sent to preservation (DOMAIN.md "Registry",
-- Protocol register: "sent to preservation by the next working day"). One row per sealed
-- day that the preservation service accepted; a sealed day without a row is still to be
-- sent. Written only after the archive has answered, never changed afterwards.
CREATE TABLE protocol_preservations (
    comune        TEXT    NOT NULL,
    register      TEXT    NOT NULL,
    day           TEXT    NOT NULL,
    -- The archive's id of the deposit (pacchetto di versamento).
    deposit_id    TEXT    NOT NULL,
    -- When the archive accepted it, microseconds since the epoch.
    deposited_at  INTEGER NOT NULL,
    -- SHA-256 of the package's manifest, hex, as the archive acknowledged it.
    package_sha256 TEXT   NOT NULL CHECK (length(package_sha256) = 64),
    -- When this node stored the receipt, microseconds since the epoch.
    recorded_at   INTEGER NOT NULL,
    PRIMARY KEY (comune, register, day)
);
