-- How each computed measurement was obtained (kpis.proto, Computation): the latest computation
-- of a KPI for a period, kept beside the measurement it recorded. `inputs` and `sources` are
-- JSON arrays ([["name", value], ...] and ["call range", ...]).
CREATE TABLE quality_computations (
    comune       TEXT    NOT NULL,
    kpi_id       TEXT    NOT NULL,
    period       TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    inputs       TEXT    NOT NULL,
    sources      TEXT    NOT NULL,
    compute_time INTEGER NOT NULL,
    PRIMARY KEY (comune, kpi_id, period)
);
