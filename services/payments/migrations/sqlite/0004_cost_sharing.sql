-- Cost sharing (cost_sharing.proto; DOMAIN.md "The setting"; domain/apportion.rs).
--
-- One apportionment per (capofila comune, id). `computation` is the encoded `Apportionment`
-- as computed (members, bases, shares and their explanation); it is never changed. Issuing
-- it sets `issue_fingerprint` (SHA-256 of the IBAN and due date used) and `issue_time` once,
-- in the transaction that creates the positions, so a second issue finds them.
CREATE TABLE payments_apportionments (
    comune            TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    function_name     TEXT    NOT NULL,
    year              INTEGER NOT NULL,
    total_cents       INTEGER NOT NULL CHECK (total_cents > 0),
    computation       BLOB    NOT NULL,
    create_by         TEXT    NOT NULL,
    create_time       INTEGER NOT NULL,
    issue_fingerprint BLOB,
    issue_by          TEXT,
    issue_time        INTEGER,
    PRIMARY KEY (comune, id)
);

-- The debt position issued to each member from an apportionment (at most one per member).
CREATE TABLE payments_apportionment_positions (
    comune           TEXT    NOT NULL,
    apportionment_id TEXT    NOT NULL,
    member_istat     TEXT    NOT NULL,
    position_id      TEXT    NOT NULL,
    amount_cents     INTEGER NOT NULL CHECK (amount_cents > 0),
    PRIMARY KEY (comune, apportionment_id, member_istat),
    FOREIGN KEY (comune, apportionment_id) REFERENCES payments_apportionments (comune, id),
    FOREIGN KEY (comune, position_id) REFERENCES payments_debt_positions (comune, id)
);
