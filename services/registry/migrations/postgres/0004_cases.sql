-- Cases (cases.proto; L. 241/1990, DOMAIN.md "Registry", Cases). Procedure types with their
-- legal deadline; cases, each registered in the protocol when submitted; and the history of
-- every transition, from which the deadline clock is computed (never stored). Keys start with
-- the comune. Instants are microseconds since the epoch; days are TEXT `YYYY-MM-DD` in Italy;
-- flags are integers 0/1.

CREATE TABLE registry_procedure_types (
    comune         TEXT COLLATE "C" NOT NULL,
    code           TEXT COLLATE "C" NOT NULL,
    title          TEXT COLLATE "C" NOT NULL,
    legal_days     BIGINT  NOT NULL CHECK (legal_days BETWEEN 1 AND 180),
    complex        BIGINT  NOT NULL CHECK (complex IN (0, 1)),
    office         TEXT COLLATE "C" NOT NULL,
    classification TEXT COLLATE "C" NOT NULL,
    created_by     TEXT COLLATE "C" NOT NULL,
    create_time    BIGINT  NOT NULL,
    PRIMARY KEY (comune, code),
    CHECK (complex = 1 OR legal_days <= 90)
);

-- A case. `state` is the state after the last history entry, kept for filtering; the history
-- is the record. The legal days are those of the procedure type when the case was submitted.
CREATE TABLE registry_cases (
    comune                TEXT COLLATE "C" NOT NULL,
    id                    TEXT COLLATE "C" NOT NULL,
    procedure_code        TEXT COLLATE "C" NOT NULL,
    applicant             TEXT COLLATE "C" NOT NULL,
    subject               TEXT COLLATE "C" NOT NULL,
    data                  TEXT COLLATE "C" NOT NULL,
    -- JSON array of {file_name, media_type, sha256, size_bytes}; the content is in
    -- protocol_blobs.
    documents             TEXT COLLATE "C" NOT NULL,
    office                TEXT COLLATE "C" NOT NULL,
    legal_days            BIGINT  NOT NULL CHECK (legal_days BETWEEN 1 AND 180),
    state                 TEXT COLLATE "C" NOT NULL CHECK (state IN ('SUBMITTED', 'IN_PROGRESS',
        'INTEGRATION_REQUESTED', 'REFUSAL_NOTICE_SENT', 'ACCEPTED', 'REJECTED', 'WITHDRAWN',
        'CANCELLED')),
    protocol_registration TEXT COLLATE "C" NOT NULL,
    protocol_register     TEXT COLLATE "C" NOT NULL,
    protocol_year         BIGINT  NOT NULL,
    protocol_number       BIGINT  NOT NULL,
    submitted_at          BIGINT  NOT NULL,
    submission_date       TEXT COLLATE "C" NOT NULL,
    revision              BIGINT  NOT NULL,
    PRIMARY KEY (comune, id),
    UNIQUE (comune, protocol_register, protocol_year, protocol_number),
    FOREIGN KEY (comune, procedure_code) REFERENCES registry_procedure_types (comune, code),
    FOREIGN KEY (comune, protocol_registration) REFERENCES protocol_registrations (comune, id)
);

CREATE INDEX registry_cases_by_time ON registry_cases (comune, submitted_at, id);
CREATE INDEX registry_cases_by_applicant ON registry_cases (comune, applicant, submitted_at);

-- Every transition of a case, in order; never updated.
CREATE TABLE registry_case_events (
    comune     TEXT COLLATE "C" NOT NULL,
    case_id    TEXT COLLATE "C" NOT NULL,
    seq        BIGINT  NOT NULL CHECK (seq >= 1),
    action     TEXT COLLATE "C" NOT NULL,
    from_state TEXT COLLATE "C",
    to_state   TEXT COLLATE "C" NOT NULL,
    at         BIGINT  NOT NULL,
    actor      TEXT COLLATE "C" NOT NULL,
    reason     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (comune, case_id, seq),
    FOREIGN KEY (comune, case_id) REFERENCES registry_cases (comune, id)
);
