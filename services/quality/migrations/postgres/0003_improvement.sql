-- Improvement (improvement.proto; ISO 9001:2015 6.2 and 10.2): quality objectives,
-- nonconformities and their corrective actions, and the history of every change with its
-- actor. Keyed by comune first, as in 0001; instants are microseconds since the epoch, dates
-- `YYYY-MM-DD` text (Europe/Rome); enum columns hold the stable codes of domain/improvement.rs.
-- Keys sort by byte (COLLATE "C"), as in SQLite and in Rust.

CREATE TABLE quality_objectives (
    comune       TEXT COLLATE "C" NOT NULL,
    objective_id TEXT COLLATE "C" NOT NULL,
    title        TEXT    NOT NULL,
    kpi_id       TEXT,
    measure      TEXT    NOT NULL,
    target_value DOUBLE PRECISION NOT NULL,
    owner_office TEXT    NOT NULL,
    due_date     TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('PLANNED', 'IN_PROGRESS', 'ACHIEVED', 'NOT_ACHIEVED', 'CANCELLED')),
    create_time  BIGINT  NOT NULL,
    PRIMARY KEY (comune, objective_id)
);

-- `close_time` is NULL while open; `root_cause` empty until analysed.
CREATE TABLE quality_nonconformities (
    comune           TEXT COLLATE "C" NOT NULL,
    nonconformity_id TEXT COLLATE "C" NOT NULL,
    description      TEXT    NOT NULL,
    source           TEXT    NOT NULL CHECK (source IN ('AUDIT', 'COMPLAINT', 'KPI_OFF_TARGET', 'OTHER')),
    detection_date   TEXT    NOT NULL,
    root_cause       TEXT    NOT NULL,
    create_time      BIGINT  NOT NULL,
    close_time       BIGINT,
    PRIMARY KEY (comune, nonconformity_id)
);

-- `check_date` and `result` are the last effectiveness check, both NULL until checked.
CREATE TABLE quality_corrective_actions (
    comune           TEXT COLLATE "C" NOT NULL,
    nonconformity_id TEXT COLLATE "C" NOT NULL,
    action_id        TEXT COLLATE "C" NOT NULL,
    action           TEXT    NOT NULL,
    owner_office     TEXT    NOT NULL,
    due_date         TEXT    NOT NULL,
    check_date       TEXT,
    result           TEXT CHECK (result IN ('EFFECTIVE', 'NOT_EFFECTIVE')),
    create_time      BIGINT  NOT NULL,
    PRIMARY KEY (comune, nonconformity_id, action_id),
    FOREIGN KEY (comune, nonconformity_id) REFERENCES quality_nonconformities (comune, nonconformity_id),
    CHECK ((check_date IS NULL) = (result IS NULL))
);

-- Every change of an objective (`objectives/{id}`) or a nonconformity and its actions
-- (`nonconformities/{id}`), with who and when; rows are only ever added.
CREATE TABLE quality_improvement_history (
    comune      TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL,
    seq         BIGINT  NOT NULL CHECK (seq >= 1),
    change_time BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    change      TEXT    NOT NULL,
    PRIMARY KEY (comune, subject, seq)
);
