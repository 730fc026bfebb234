-- Cost sharing (cost_sharing.proto; DOMAIN.md "The setting"; domain/apportion.rs).
--
-- One apportionment per (capofila comune, id). `computation` is the encoded `Apportionment`
-- as computed (members, bases, shares and their explanation); it is never changed. Issuing
-- it sets `issue_fingerprint` (SHA-256 of the IBAN and due date used) and `issue_time` once,
-- in the transaction that creates the positions, so a second issue finds them.
CREATE TABLE payments_apportionments (
    comune            TEXT COLLATE "C" NOT NULL,
    id                TEXT COLLATE "C" NOT NULL,
    function_name     TEXT    NOT NULL,
    year              INTEGER NOT NULL,
    total_cents       BIGINT  NOT NULL CHECK (total_cents > 0),
    computation       BYTEA   NOT NULL,
    create_by         TEXT COLLATE "C" NOT NULL,
    create_time       BIGINT  NOT NULL,
    issue_fingerprint BYTEA,
    issue_by          TEXT COLLATE "C",
    issue_time        BIGINT,
    PRIMARY KEY (comune, id)
);

-- The debt position issued to each member from an apportionment (at most one per member).
CREATE TABLE payments_apportionment_positions (
    comune           TEXT COLLATE "C" NOT NULL,
    apportionment_id TEXT COLLATE "C" NOT NULL,
    member_istat     TEXT COLLATE "C" NOT NULL,
    position_id      TEXT COLLATE "C" NOT NULL,
    amount_cents     BIGINT  NOT NULL CHECK (amount_cents > 0),
    PRIMARY KEY (comune, apportionment_id, member_istat),
    FOREIGN KEY (comune, apportionment_id) REFERENCES payments_apportionments (comune, id),
    FOREIGN KEY (comune, position_id) REFERENCES payments_debt_positions (comune, id)
);
