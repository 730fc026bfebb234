-- Moves of residents between member comuni (moves.proto; DOMAIN.md "Registry", Residents).
-- One row per side: at the origin (direction OUT) it is also the outbox that the node's
-- dispatcher delivers to the destination, written in the same transaction as the
-- EMIGRATION; at the destination (direction IN) it makes DeliverMove idempotent on the move
-- id (the same id on both sides). Civil dates TEXT, instants i64 microseconds.
CREATE TABLE registry_moves (
    comune              TEXT COLLATE "C" NOT NULL,
    id                  TEXT COLLATE "C" NOT NULL,
    direction           TEXT COLLATE "C" NOT NULL CHECK (direction IN ('OUT', 'IN')),
    origin              TEXT COLLATE "C" NOT NULL,
    destination         TEXT COLLATE "C" NOT NULL,
    -- The person's record at the origin (OUT) or at the destination (IN).
    resident_id         TEXT COLLATE "C" NOT NULL,
    origin_resident_id  TEXT COLLATE "C" NOT NULL,
    effective_date      TEXT COLLATE "C" NOT NULL,
    street              TEXT COLLATE "C" NOT NULL,
    house_number        TEXT COLLATE "C" NOT NULL,
    postal_code         TEXT COLLATE "C" NOT NULL,
    locality            TEXT COLLATE "C" NOT NULL,
    -- The destination household to join; empty: a new one with the person as head.
    household_id        TEXT COLLATE "C" NOT NULL,
    -- The tie to that household's head (domain codes); empty with a new household.
    relationship        TEXT COLLATE "C" NOT NULL,
    state               TEXT COLLATE "C" NOT NULL CHECK (state IN ('PENDING', 'COMPLETED', 'FAILED')),
    destination_resident_id TEXT COLLATE "C" NOT NULL,
    attempts            BIGINT NOT NULL CHECK (attempts >= 0),
    next_attempt_time   BIGINT NOT NULL,
    last_error          TEXT COLLATE "C" NOT NULL,
    recorded_by         TEXT COLLATE "C" NOT NULL,
    create_time         BIGINT NOT NULL,
    complete_time       BIGINT,
    PRIMARY KEY (comune, id),
    CHECK (origin <> destination)
);

-- The dispatcher's queue: pending outgoing moves by when they are due.
CREATE INDEX registry_moves_due ON registry_moves (state, next_attempt_time);

-- The move an EMIGRATION (origin) or REGISTRATION (destination) is part of; empty otherwise.
ALTER TABLE registry_residence_events ADD COLUMN move_id TEXT COLLATE "C" NOT NULL DEFAULT '';
