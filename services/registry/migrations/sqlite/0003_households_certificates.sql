-- Residence events, households and certificates (households.proto, certificates.proto;
-- DPR 223/1989, DOMAIN.md "Registry"). Nothing here is ever updated in place except a
-- membership's end date: history is read back by effective date.

-- Each resident's residence events in order (`seq` 1 is the registration), so that the
-- residence at any past date is the last event effective on or before it.
CREATE TABLE registry_residence_events (
    comune          TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    resident_id     TEXT    NOT NULL,
    seq             INTEGER NOT NULL CHECK (seq >= 1),
    kind            TEXT    NOT NULL CHECK (kind IN
        ('REGISTRATION', 'ADDRESS_CHANGE', 'EMIGRATION', 'DEATH')),
    effective_date  TEXT    NOT NULL,
    -- The address from this date (REGISTRATION, ADDRESS_CHANGE); empty otherwise.
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
    PRIMARY KEY (comune, id),
    UNIQUE (comune, resident_id, seq),
    FOREIGN KEY (comune, resident_id) REFERENCES registry_residents (comune, id)
);

-- The registrations already stored become each resident's first event (same id).
INSERT INTO registry_residence_events (comune, id, resident_id, seq, kind, effective_date,
    street, house_number, postal_code, locality, destination, anpr_reference, recorded_by,
    create_time)
SELECT comune, id, id, 1, 'REGISTRATION', registration_date, street, house_number,
    postal_code, locality, '', '', '', create_time
FROM registry_residents;

CREATE TABLE registry_households (
    comune      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    start_date  TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (comune, id)
);

-- Memberships as intervals [start_date, end_date): end_date NULL while a member.
CREATE TABLE registry_household_members (
    comune          TEXT    NOT NULL,
    household_id    TEXT    NOT NULL,
    resident_id     TEXT    NOT NULL,
    relationship    TEXT    NOT NULL CHECK (relationship IN ('HEAD', 'SPOUSE',
        'CIVIL_PARTNER', 'CHILD', 'PARENT', 'SIBLING', 'OTHER_RELATIVE', 'IN_LAW', 'WARD',
        'COHABITANT')),
    start_date      TEXT    NOT NULL,
    end_date        TEXT,
    recorded_by     TEXT    NOT NULL,
    create_time     INTEGER NOT NULL,
    PRIMARY KEY (comune, household_id, resident_id, start_date),
    FOREIGN KEY (comune, household_id) REFERENCES registry_households (comune, id),
    FOREIGN KEY (comune, resident_id) REFERENCES registry_residents (comune, id),
    CHECK (end_date IS NULL OR end_date >= start_date)
);

-- A person belongs to at most one household at a time.
CREATE UNIQUE INDEX registry_household_members_current
    ON registry_household_members (comune, resident_id) WHERE end_date IS NULL;
CREATE INDEX registry_household_members_by_resident
    ON registry_household_members (comune, resident_id, start_date);

-- Each comune's certificate seal key (Ed25519, PKCS#8), made on first use.
CREATE TABLE registry_certificate_keys (
    comune      TEXT    NOT NULL PRIMARY KEY,
    pkcs8       BLOB    NOT NULL,
    public_key  BLOB    NOT NULL,
    create_time INTEGER NOT NULL
);

-- Issued certificates: the sealed content exactly as signed, never changed.
CREATE TABLE registry_certificates (
    comune              TEXT    NOT NULL,
    id                  TEXT    NOT NULL,
    verification_code   TEXT    NOT NULL,
    kind                TEXT    NOT NULL CHECK (kind IN
        ('RESIDENCE', 'HOUSEHOLD_STATUS', 'HISTORICAL_RESIDENCE')),
    resident_id         TEXT    NOT NULL,
    as_of               TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    content             TEXT    NOT NULL,
    seal                BLOB    NOT NULL,
    issued_by           TEXT    NOT NULL,
    issue_time          INTEGER NOT NULL,
    PRIMARY KEY (comune, id),
    FOREIGN KEY (comune, resident_id) REFERENCES registry_residents (comune, id)
);

-- A verification code names one certificate, whatever the comune.
CREATE UNIQUE INDEX registry_certificates_code ON registry_certificates (verification_code);
