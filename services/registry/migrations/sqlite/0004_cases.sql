-- Cases (cases.proto; L. 241/1990, DOMAIN.md "Registry", Cases). Procedure types with their
-- legal deadline; cases, each registered in the protocol when submitted; and the history of
-- every transition, from which the deadline clock is computed (never stored). Keys start with
-- the comune. Instants are microseconds since the epoch; days are TEXT `YYYY-MM-DD` in Italy;
-- flags are integers 0/1.

CREATE TABLE registry_procedure_types (
    comune         TEXT    NOT NULL,
    code           TEXT    NOT NULL,
    title          TEXT    NOT NULL,
    legal_days     INTEGER NOT NULL CHECK (legal_days BETWEEN 1 AND 180),
    complex        INTEGER NOT NULL CHECK (complex IN (0, 1)),
    office         TEXT    NOT NULL,
    classification TEXT    NOT NULL,
    created_by     TEXT    NOT NULL,
    create_time    INTEGER NOT NULL,
    PRIMARY KEY (comune, code),
    CHECK (complex = 1 OR legal_days <= 90)
);

-- A case. `state` is the state after the last history entry, kept for filtering; the history
-- is the record. The legal days are those of the procedure type when the case was submitted.
CREATE TABLE registry_cases (
    comune                TEXT    NOT NULL,
    id                    TEXT    NOT NULL,
    procedure_code        TEXT    NOT NULL,
    applicant             TEXT    NOT NULL,
    subject               TEXT    NOT NULL,
    data                  TEXT    NOT NULL,
    -- JSON array of {file_name, media_type, sha256, size_bytes}; the content is in
    -- protocol_blobs.
    documents             TEXT    NOT NULL,
    office                TEXT    NOT NULL,
    legal_days            INTEGER NOT NULL CHECK (legal_days BETWEEN 1 AND 180),
    state                 TEXT    NOT NULL CHECK (state IN ('SUBMITTED', 'IN_PROGRESS',
        'INTEGRATION_REQUESTED', 'REFUSAL_NOTICE_SENT', 'ACCEPTED', 'REJECTED', 'WITHDRAWN',
        'CANCELLED')),
    protocol_registration TEXT    NOT NULL,
    protocol_register     TEXT    NOT NULL,
    protocol_year         INTEGER NOT NULL,
    protocol_number       INTEGER NOT NULL,
    submitted_at          INTEGER NOT NULL,
    submission_date       TEXT    NOT NULL,
    revision              INTEGER NOT NULL,
    PRIMARY KEY (comune, id),
    UNIQUE (comune, protocol_register, protocol_year, protocol_number),
    FOREIGN KEY (comune, procedure_code) REFERENCES registry_procedure_types (comune, code),
    FOREIGN KEY (comune, protocol_registration) REFERENCES protocol_registrations (comune, id)
);

CREATE INDEX registry_cases_by_time ON registry_cases (comune, submitted_at, id);
CREATE INDEX registry_cases_by_applicant ON registry_cases (comune, applicant, submitted_at);

-- Every transition of a case, in order; never updated.
CREATE TABLE registry_case_events (
    comune     TEXT    NOT NULL,
    case_id    TEXT    NOT NULL,
    seq        INTEGER NOT NULL CHECK (seq >= 1),
    action     TEXT    NOT NULL,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    PRIMARY KEY (comune, case_id, seq),
    FOREIGN KEY (comune, case_id) REFERENCES registry_cases (comune, id)
);
