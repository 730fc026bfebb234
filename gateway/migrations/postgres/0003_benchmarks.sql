-- The benchmark snapshot: the measurements each member publishes (its quality office's open
-- data export), as last read by the gateway, and per member when it was last read and when a
-- read last failed. Only aggregates: no personal data is ever stored here.
CREATE TABLE benchmark_members (
    comune    TEXT COLLATE "C" PRIMARY KEY,  -- ISTAT code
    read_at   BIGINT NOT NULL,  -- last successful read, microseconds since the epoch; 0: never
    failed_at BIGINT NOT NULL,  -- last failed read, microseconds; 0: never
    failure   TEXT   NOT NULL   -- why the last read failed; empty when it did not
);

CREATE TABLE benchmark_measurements (
    comune   TEXT COLLATE "C" NOT NULL,
    kpi_id   TEXT COLLATE "C" NOT NULL,
    period   TEXT COLLATE "C" NOT NULL,  -- 2026, 2026-Q1 or 2026-03
    status   TEXT NOT NULL,              -- OK, MISSING, NOT_APPLICABLE, CONFIDENTIAL
    value    DOUBLE PRECISION NOT NULL,  -- 0 unless the status is OK
    revision BIGINT NOT NULL,
    PRIMARY KEY (comune, kpi_id, period)
);
