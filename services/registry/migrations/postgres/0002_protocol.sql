-- The protocol register (protocol.proto; DPR 445/2000 artt. 53-57, DPCM 3/12/2013 art. 8).
-- Append-only: a registration row is never updated; changes, corrections and annulments are
-- rows of protocol_events, and the current values are folded from them. Keys start with the
-- comune so that each town's data stays strictly apart. Instants are microseconds since the
-- epoch; days are TEXT `YYYY-MM-DD` in Italy (Europe/Rome); flags are integers 0/1.

-- One row per register that has been written: every write locks it first, so that the writes
-- of a register (and the seal of a day) are serialized and read the clock in order.
CREATE TABLE protocol_registers (
    comune   TEXT COLLATE "C" NOT NULL,
    register TEXT COLLATE "C" NOT NULL,
    writes   BIGINT           NOT NULL,
    PRIMARY KEY (comune, register)
);

-- The last number given per comune, register and year, taken in the registration's own
-- transaction: a rolled-back registration gives its number back, so numbers have no gaps.
CREATE TABLE protocol_counters (
    comune      TEXT COLLATE "C" NOT NULL,
    register    TEXT COLLATE "C" NOT NULL,
    year        BIGINT           NOT NULL,
    last_number BIGINT           NOT NULL CHECK (last_number >= 1),
    PRIMARY KEY (comune, register, year)
);

-- Documents and attachments, content-addressed by SHA-256 (lower-case hex).
CREATE TABLE protocol_blobs (
    comune  TEXT COLLATE "C" NOT NULL,
    sha256  TEXT COLLATE "C" NOT NULL CHECK (length(sha256) = 64),
    size    BIGINT           NOT NULL CHECK (size BETWEEN 1 AND 10485760),
    content BYTEA            NOT NULL,
    PRIMARY KEY (comune, sha256)
);

-- The registrations as registered (immutable).
CREATE TABLE protocol_registrations (
    comune            TEXT COLLATE "C" NOT NULL,
    id                TEXT COLLATE "C" NOT NULL,
    register          TEXT COLLATE "C" NOT NULL,
    year              BIGINT           NOT NULL,
    number            BIGINT           NOT NULL CHECK (number >= 1),
    registered_at     BIGINT           NOT NULL,
    registration_date TEXT COLLATE "C" NOT NULL,
    direction         TEXT             NOT NULL CHECK (direction IN ('INCOMING', 'OUTGOING', 'INTERNAL')),
    subject           TEXT             NOT NULL,
    sender            TEXT             NOT NULL,
    -- One recipient per line.
    recipients        TEXT             NOT NULL,
    classification    TEXT             NOT NULL,
    assignment        TEXT             NOT NULL,
    -- JSON array of {file_name, media_type, sha256, size_bytes}: the document first, then the
    -- attachments in order.
    documents         TEXT             NOT NULL,
    operator          TEXT             NOT NULL,
    PRIMARY KEY (comune, id),
    UNIQUE (comune, register, year, number)
);

CREATE INDEX protocol_registrations_by_day
    ON protocol_registrations (comune, register, registration_date);

-- Changes of classification and assignment, corrections and annulments, in order per
-- registration (seq from 1).
CREATE TABLE protocol_events (
    comune          TEXT COLLATE "C" NOT NULL,
    registration_id TEXT COLLATE "C" NOT NULL,
    seq             BIGINT           NOT NULL CHECK (seq >= 1),
    register        TEXT COLLATE "C" NOT NULL,
    at              BIGINT           NOT NULL,
    day             TEXT COLLATE "C" NOT NULL,
    kind            TEXT             NOT NULL CHECK (kind IN ('CLASSIFICATION_CHANGED',
        'ASSIGNMENT_CHANGED', 'SUBJECT_CORRECTED', 'SENDER_CORRECTED', 'RECIPIENTS_CORRECTED',
        'ANNULLED')),
    old_value       TEXT             NOT NULL,
    new_value       TEXT             NOT NULL,
    operator        TEXT             NOT NULL,
    reason          TEXT             NOT NULL,
    authorising_act TEXT             NOT NULL,
    PRIMARY KEY (comune, registration_id, seq),
    FOREIGN KEY (comune, registration_id) REFERENCES protocol_registrations (comune, id)
);

CREATE INDEX protocol_events_by_day ON protocol_events (comune, register, day);

-- The seals of the daily registers: seal = sha256(previous_seal || content), chained day by
-- day per register.
CREATE TABLE protocol_seals (
    comune         TEXT COLLATE "C" NOT NULL,
    register       TEXT COLLATE "C" NOT NULL,
    day            TEXT COLLATE "C" NOT NULL,
    previous_seal  TEXT             NOT NULL,
    content_sha256 TEXT             NOT NULL,
    seal           TEXT             NOT NULL,
    sealed_at      BIGINT           NOT NULL,
    sealed_by      TEXT             NOT NULL,
    PRIMARY KEY (comune, register, day)
);
