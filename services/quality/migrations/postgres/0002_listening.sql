-- Listening to citizens (surveys.proto, complaints.proto): satisfaction surveys with their
-- anonymous responses, and complaints (ISO 10002) with their history and each comune's service
-- charter. Keyed by comune first, as in 0001; instants are microseconds since the epoch, dates
-- `YYYY-MM-DD` text (Europe/Rome); enum columns hold the stable codes of domain.rs.
-- Keys sort by byte (COLLATE "C"), as in SQLite and in Rust.

CREATE TABLE quality_surveys (
    comune          TEXT COLLATE "C" NOT NULL,
    survey_id       TEXT COLLATE "C" NOT NULL,
    title           TEXT             NOT NULL,
    channel         TEXT             NOT NULL CHECK (channel IN ('COUNTER', 'PHONE', 'WEB', 'KIOSK')),
    min_sample_size BIGINT           NOT NULL CHECK (min_sample_size >= 2),
    create_time     BIGINT           NOT NULL,
    PRIMARY KEY (comune, survey_id)
);

CREATE TABLE quality_survey_questions (
    comune     TEXT COLLATE "C" NOT NULL,
    survey_id  TEXT COLLATE "C" NOT NULL,
    position   BIGINT           NOT NULL CHECK (position >= 0),
    text       TEXT             NOT NULL,
    scale      TEXT             NOT NULL CHECK (scale IN ('LIKERT_5', 'NPS_0_10')),
    importance DOUBLE PRECISION NOT NULL CHECK (importance > 0),
    PRIMARY KEY (comune, survey_id, position),
    FOREIGN KEY (comune, survey_id) REFERENCES quality_surveys (comune, survey_id)
);

-- A response is anonymous: its answers and when it came, nothing about who gave it.
CREATE TABLE quality_survey_responses (
    comune      TEXT COLLATE "C" NOT NULL,
    survey_id   TEXT COLLATE "C" NOT NULL,
    response_id TEXT COLLATE "C" NOT NULL,
    submit_time BIGINT           NOT NULL,
    PRIMARY KEY (comune, survey_id, response_id),
    FOREIGN KEY (comune, survey_id) REFERENCES quality_surveys (comune, survey_id)
);

CREATE INDEX quality_survey_responses_by_time
    ON quality_survey_responses (comune, survey_id, submit_time);

CREATE TABLE quality_survey_answers (
    comune      TEXT COLLATE "C" NOT NULL,
    survey_id   TEXT COLLATE "C" NOT NULL,
    response_id TEXT COLLATE "C" NOT NULL,
    position    BIGINT           NOT NULL CHECK (position >= 0),
    answer      BIGINT           NOT NULL CHECK (answer BETWEEN 0 AND 10),
    PRIMARY KEY (comune, survey_id, response_id, position),
    FOREIGN KEY (comune, survey_id, response_id)
        REFERENCES quality_survey_responses (comune, survey_id, response_id)
);

-- A comune's service charter commitments for complaints; without a row, 5 and 30 days.
CREATE TABLE quality_service_charters (
    comune               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    acknowledgement_days BIGINT           NOT NULL CHECK (acknowledgement_days BETWEEN 1 AND 365),
    response_days        BIGINT           NOT NULL CHECK (response_days BETWEEN 1 AND 365),
    update_time          BIGINT           NOT NULL,
    CHECK (response_days >= acknowledgement_days)
);

-- A complaint, its deadlines fixed at receipt from the charter then in force. `contact` is
-- NULL when not given. `acknowledge_time` and `answer_time` are set by the workflow.
CREATE TABLE quality_complaints (
    comune                   TEXT COLLATE "C" NOT NULL,
    complaint_id             TEXT COLLATE "C" NOT NULL,
    category                 TEXT             NOT NULL,
    channel                  TEXT             NOT NULL CHECK (channel IN ('COUNTER', 'PHONE', 'WEB', 'KIOSK', 'EMAIL')),
    text                     TEXT             NOT NULL,
    contact                  TEXT,
    status                   TEXT             NOT NULL CHECK (status IN ('RECEIVED', 'ACKNOWLEDGED', 'ASSESSED', 'ANSWERED', 'CLOSED')),
    receive_time             BIGINT           NOT NULL,
    acknowledgement_deadline TEXT             NOT NULL,
    response_deadline        TEXT             NOT NULL,
    acknowledge_time         BIGINT,
    answer_time              BIGINT,
    PRIMARY KEY (comune, complaint_id)
);

CREATE INDEX quality_complaints_by_receipt ON quality_complaints (comune, receive_time);

-- Every status a complaint entered, with when and who; rows are only ever added.
CREATE TABLE quality_complaint_history (
    comune       TEXT COLLATE "C" NOT NULL,
    complaint_id TEXT COLLATE "C" NOT NULL,
    seq          BIGINT           NOT NULL CHECK (seq >= 1),
    status       TEXT             NOT NULL,
    change_time  BIGINT           NOT NULL,
    actor        TEXT             NOT NULL,
    PRIMARY KEY (comune, complaint_id, seq),
    FOREIGN KEY (comune, complaint_id) REFERENCES quality_complaints (comune, complaint_id)
);
