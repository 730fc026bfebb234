-- Listening to citizens (surveys.proto, complaints.proto): satisfaction surveys with their
-- anonymous responses, and complaints (ISO 10002) with their history and each comune's service
-- charter. Keyed by comune first, as in 0001; instants are microseconds since the epoch, dates
-- `YYYY-MM-DD` text (Europe/Rome); enum columns hold the stable codes of domain.rs.

CREATE TABLE quality_surveys (
    comune          TEXT NOT NULL,
    survey_id       TEXT NOT NULL,
    title           TEXT             NOT NULL,
    channel         TEXT             NOT NULL CHECK (channel IN ('COUNTER', 'PHONE', 'WEB', 'KIOSK')),
    min_sample_size INTEGER          NOT NULL CHECK (min_sample_size >= 2),
    create_time     INTEGER          NOT NULL,
    PRIMARY KEY (comune, survey_id)
);

CREATE TABLE quality_survey_questions (
    comune     TEXT NOT NULL,
    survey_id  TEXT NOT NULL,
    position   INTEGER          NOT NULL CHECK (position >= 0),
    text       TEXT             NOT NULL,
    scale      TEXT             NOT NULL CHECK (scale IN ('LIKERT_5', 'NPS_0_10')),
    importance REAL             NOT NULL CHECK (importance > 0),
    PRIMARY KEY (comune, survey_id, position),
    FOREIGN KEY (comune, survey_id) REFERENCES quality_surveys (comune, survey_id)
);

-- A response is anonymous: its answers and when it came, nothing about who gave it.
CREATE TABLE quality_survey_responses (
    comune      TEXT NOT NULL,
    survey_id   TEXT NOT NULL,
    response_id TEXT NOT NULL,
    submit_time INTEGER          NOT NULL,
    PRIMARY KEY (comune, survey_id, response_id),
    FOREIGN KEY (comune, survey_id) REFERENCES quality_surveys (comune, survey_id)
);

CREATE INDEX quality_survey_responses_by_time
    ON quality_survey_responses (comune, survey_id, submit_time);

CREATE TABLE quality_survey_answers (
    comune      TEXT NOT NULL,
    survey_id   TEXT NOT NULL,
    response_id TEXT NOT NULL,
    position    INTEGER          NOT NULL CHECK (position >= 0),
    answer      INTEGER          NOT NULL CHECK (answer BETWEEN 0 AND 10),
    PRIMARY KEY (comune, survey_id, response_id, position),
    FOREIGN KEY (comune, survey_id, response_id)
        REFERENCES quality_survey_responses (comune, survey_id, response_id)
);

-- A comune's service charter commitments for complaints; without a row, 5 and 30 days.
CREATE TABLE quality_service_charters (
    comune               TEXT NOT NULL PRIMARY KEY,
    acknowledgement_days INTEGER          NOT NULL CHECK (acknowledgement_days BETWEEN 1 AND 365),
    response_days        INTEGER          NOT NULL CHECK (response_days BETWEEN 1 AND 365),
    update_time          INTEGER          NOT NULL,
    CHECK (response_days >= acknowledgement_days)
);

-- A complaint, its deadlines fixed at receipt from the charter then in force. `contact` is
-- NULL when not given. `acknowledge_time` and `answer_time` are set by the workflow.
CREATE TABLE quality_complaints (
    comune                   TEXT NOT NULL,
    complaint_id             TEXT NOT NULL,
    category                 TEXT             NOT NULL,
    channel                  TEXT             NOT NULL CHECK (channel IN ('COUNTER', 'PHONE', 'WEB', 'KIOSK', 'EMAIL')),
    text                     TEXT             NOT NULL,
    contact                  TEXT,
    status                   TEXT             NOT NULL CHECK (status IN ('RECEIVED', 'ACKNOWLEDGED', 'ASSESSED', 'ANSWERED', 'CLOSED')),
    receive_time             INTEGER          NOT NULL,
    acknowledgement_deadline TEXT             NOT NULL,
    response_deadline        TEXT             NOT NULL,
    acknowledge_time         INTEGER,
    answer_time              INTEGER,
    PRIMARY KEY (comune, complaint_id)
);

CREATE INDEX quality_complaints_by_receipt ON quality_complaints (comune, receive_time);

-- Every status a complaint entered, with when and who; rows are only ever added.
CREATE TABLE quality_complaint_history (
    comune       TEXT NOT NULL,
    complaint_id TEXT NOT NULL,
    seq          INTEGER          NOT NULL CHECK (seq >= 1),
    status       TEXT             NOT NULL,
    change_time  INTEGER          NOT NULL,
    actor        TEXT             NOT NULL,
    PRIMARY KEY (comune, complaint_id, seq),
    FOREIGN KEY (comune, complaint_id) REFERENCES quality_complaints (comune, complaint_id)
);
