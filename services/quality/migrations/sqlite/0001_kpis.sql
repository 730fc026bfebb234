-- The quality office (kpis.proto): each comune's own KPIs and every comune's measurements,
-- keyed by comune so that each town's data stays strictly apart. The federation's standard
-- catalogue lives in code (domain.rs, STANDARD_KPIS), the same on every node.
-- Enum columns hold the stable codes of domain.rs; instants are microseconds since the epoch.

-- A comune's own KPIs, beside the standard catalogue. Ids never take the standard `UQ` prefix.
CREATE TABLE quality_local_kpis (
    comune        TEXT    NOT NULL,
    kpi_id        TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    definition    TEXT    NOT NULL,
    unit          TEXT    NOT NULL,
    polarity      TEXT    NOT NULL CHECK (polarity IN ('HIGHER_IS_BETTER', 'LOWER_IS_BETTER')),
    normalisation TEXT    NOT NULL CHECK (normalisation IN ('NONE', 'PER_1000_INHABITANTS')),
    target        REAL    NOT NULL,
    tolerance     REAL    NOT NULL CHECK (tolerance >= 0),
    period        TEXT    NOT NULL CHECK (period IN ('MONTH', 'QUARTER', 'YEAR')),
    source        TEXT    NOT NULL CHECK (source IN ('REPORTED', 'COMPUTED')),
    owner_office  TEXT    NOT NULL,
    create_time   INTEGER NOT NULL,
    PRIMARY KEY (comune, kpi_id),
    CHECK (kpi_id NOT LIKE 'UQ%')
);

-- The current value of a KPI for a period. `revision` is 1 when first recorded and grows by
-- one at each correction; `value` is 0 unless the status is OK.
CREATE TABLE quality_measurements (
    comune      TEXT    NOT NULL,
    kpi_id      TEXT    NOT NULL,
    period      TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('OK', 'MISSING', 'NOT_APPLICABLE', 'CONFIDENTIAL')),
    value       REAL    NOT NULL,
    revision    INTEGER NOT NULL CHECK (revision >= 1),
    update_time INTEGER NOT NULL,
    PRIMARY KEY (comune, kpi_id, period),
    CHECK (status = 'OK' OR value = 0)
);

-- Every earlier revision of a measurement, kept when it is corrected (DOMAIN.md "Quality and
-- benchmarks": a correction keeps the earlier value in a history). Rows are only ever added.
CREATE TABLE quality_measurement_history (
    comune          TEXT    NOT NULL,
    kpi_id          TEXT    NOT NULL,
    period          TEXT    NOT NULL,
    revision        INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    value           REAL    NOT NULL,
    update_time     INTEGER NOT NULL,
    supersede_time  INTEGER NOT NULL,
    PRIMARY KEY (comune, kpi_id, period, revision),
    FOREIGN KEY (comune, kpi_id, period) REFERENCES quality_measurements (comune, kpi_id, period)
);
