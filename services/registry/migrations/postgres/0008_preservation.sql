-- The receipts of the sealed daily registers sent to preservation (DOMAIN.md "Registry",
-- Protocol register: "sent to preservation by the next working day"). One row per sealed
-- day that the preservation service accepted; a sealed day without a row is still to be
-- sent. Written only after the archive has answered, never changed afterwards.
CREATE TABLE protocol_preservations (
    comune        TEXT COLLATE "C" NOT NULL,
    register      TEXT COLLATE "C" NOT NULL,
    day           TEXT COLLATE "C" NOT NULL,
    -- The archive's id of the deposit (pacchetto di versamento).
    deposit_id    TEXT COLLATE "C" NOT NULL,
    -- When the archive accepted it, microseconds since the epoch.
    deposited_at  BIGINT  NOT NULL,
    -- SHA-256 of the package's manifest, hex, as the archive acknowledged it.
    package_sha256 TEXT COLLATE "C" NOT NULL CHECK (length(package_sha256) = 64),
    -- When this node stored the receipt, microseconds since the epoch.
    recorded_at   BIGINT  NOT NULL,
    PRIMARY KEY (comune, register, day)
);
