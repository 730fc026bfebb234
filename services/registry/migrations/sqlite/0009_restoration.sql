-- A move the destination refuses for good restores the person's previous position at the
-- origin (moves.proto, households.proto RESIDENCE_EVENT_KIND_RESTORATION): residence events
-- gain the kind RESTORATION. SQLite cannot change a CHECK constraint, so the table is
-- rebuilt with the same columns, in the same order, and every row copied; nothing refers to
-- it and it has no index or trigger of its own.
CREATE TABLE registry_residence_events_new (
    comune          TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    resident_id     TEXT    NOT NULL,
    seq             INTEGER NOT NULL CHECK (seq >= 1),
    kind            TEXT    NOT NULL CHECK (kind IN
        ('REGISTRATION', 'ADDRESS_CHANGE', 'EMIGRATION', 'DEATH', 'RESTORATION')),
    effective_date  TEXT    NOT NULL,
    -- The address from this date (REGISTRATION, ADDRESS_CHANGE, RESTORATION); empty otherwise.
    street          TEXT    NOT NULL,
    house_number    TEXT    NOT NULL,
    postal_code     TEXT    NOT NULL,
    locality        TEXT    NOT NULL,
    -- EMIGRATION: the ISTAT code or country code of the destination; empty otherwise.
    destination     TEXT    NOT NULL,
    anpr_reference  TEXT    NOT NULL,
    -- The principal's opaque id; empty for registrations made before this table existed.
    recorded_by     TEXT    NOT NULL,
    create_time     INTEGER NOT NULL,
    -- The move an EMIGRATION or RESTORATION (origin) or REGISTRATION (destination) is part
    -- of; empty otherwise.
    move_id         TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (comune, id),
    UNIQUE (comune, resident_id, seq),
    FOREIGN KEY (comune, resident_id) REFERENCES registry_residents (comune, id)
);
INSERT INTO registry_residence_events_new (comune, id, resident_id, seq, kind, effective_date,
    street, house_number, postal_code, locality, destination, anpr_reference, recorded_by,
    create_time, move_id)
SELECT comune, id, resident_id, seq, kind, effective_date, street, house_number, postal_code,
    locality, destination, anpr_reference, recorded_by, create_time, move_id
FROM registry_residence_events;
DROP TABLE registry_residence_events;
ALTER TABLE registry_residence_events_new RENAME TO registry_residence_events;
