-- The registry office (residents.proto): the individual records of each comune's residents
-- (DPR 223/1989), keyed by comune first so that each town's data stays strictly apart.
-- Ids are opaque (never a codice fiscale or a name). Civil dates are TEXT `YYYY-MM-DD`;
-- instants are microseconds since the epoch; enum columns hold the codes of domain/resident.rs.
-- `family_key` and `given_key` are the names' sort keys (domain::sort_key); lists are ordered
-- by (family_key, given_key, id), compared byte by byte as in PostgreSQL's COLLATE "C".
CREATE TABLE registry_residents (
    comune              TEXT    NOT NULL,
    id                  TEXT    NOT NULL,
    codice_fiscale      TEXT    NOT NULL CHECK (length(codice_fiscale) = 16),
    given_name          TEXT    NOT NULL,
    family_name         TEXT    NOT NULL,
    given_key           TEXT    NOT NULL,
    family_key          TEXT    NOT NULL,
    birth_date          TEXT    NOT NULL,
    birth_place_code    TEXT    NOT NULL,
    sex                 TEXT    NOT NULL CHECK (sex IN ('MALE', 'FEMALE')),
    citizenship         TEXT    NOT NULL,
    street              TEXT    NOT NULL,
    house_number        TEXT    NOT NULL,
    postal_code         TEXT    NOT NULL,
    locality            TEXT    NOT NULL,
    registration_date   TEXT    NOT NULL,
    registration_reason TEXT    NOT NULL CHECK (registration_reason IN
        ('BIRTH', 'IMMIGRATION_FROM_COMUNE', 'IMMIGRATION_FROM_ABROAD', 'REINSTATEMENT')),
    -- NULL while the person is resident; the date the record was struck off (emigration,
    -- death) otherwise. The record itself is never deleted.
    deregistration_date TEXT,
    revision            INTEGER NOT NULL CHECK (revision >= 1),
    create_time         INTEGER NOT NULL,
    update_time         INTEGER NOT NULL,
    PRIMARY KEY (comune, id),
    CHECK (registration_date >= birth_date)
);

-- A codice fiscale is resident at most once in a comune.
CREATE UNIQUE INDEX registry_residents_current_cf
    ON registry_residents (comune, codice_fiscale) WHERE deregistration_date IS NULL;

-- ListResidents: keyset pages in name order.
CREATE INDEX registry_residents_by_name
    ON registry_residents (comune, family_key, given_key, id);
