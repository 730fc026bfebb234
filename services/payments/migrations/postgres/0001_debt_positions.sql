-- The payments desk (debt_positions.proto; DOMAIN.md "Payments"): debt positions, their payment
-- options (each with its IUV and notice number) and the transfers of each option, plus the
-- counter from which IUVs are drawn. Every table is keyed by the comune first, so that each
-- town's data stays strictly apart. Amounts are integer cents; instants are microseconds since
-- the epoch; due dates are civil dates `YYYY-MM-DD`; states are the codes of
-- domain/position.rs. Keys sort by byte (COLLATE "C"), as in SQLite and in Rust, so that
-- keyset pages agree.

CREATE TABLE payments_debt_positions (
    comune             TEXT COLLATE "C" NOT NULL,
    id                 TEXT COLLATE "C" NOT NULL,
    debtor_fiscal_code TEXT    NOT NULL,
    description        TEXT    NOT NULL,
    state              TEXT    NOT NULL CHECK (state IN ('DRAFT', 'PUBLISHED', 'VALID',
                           'PARTIALLY_PAID', 'PAID', 'REPORTED', 'EXPIRED', 'INVALID')),
    revision           BIGINT  NOT NULL CHECK (revision >= 1),
    create_time        BIGINT  NOT NULL,
    update_time        BIGINT  NOT NULL,
    PRIMARY KEY (comune, id)
);
-- ListDebtPositions: newest first, keyset on (create_time, id).
CREATE INDEX payments_debt_positions_newest
    ON payments_debt_positions (comune, create_time DESC, id DESC);

-- One way to pay: in full, or one installment. `option_index` is the 0-based order in the
-- position; `installment` is 0 or 1 (an integer, as in SQLite). A creditor never issues the
-- same IUV twice.
CREATE TABLE payments_payment_options (
    comune        TEXT COLLATE "C" NOT NULL,
    position_id   TEXT COLLATE "C" NOT NULL,
    option_index  INTEGER NOT NULL CHECK (option_index >= 0),
    iuv           TEXT    NOT NULL CHECK (length(iuv) = 17),
    notice_number TEXT    NOT NULL CHECK (length(notice_number) = 18),
    amount_cents  BIGINT  NOT NULL CHECK (amount_cents BETWEEN 1 AND 99999999999),
    due_date      TEXT    NOT NULL CHECK (length(due_date) = 10),
    installment   INTEGER NOT NULL CHECK (installment IN (0, 1)),
    PRIMARY KEY (comune, position_id, option_index),
    UNIQUE (comune, iuv),
    FOREIGN KEY (comune, position_id) REFERENCES payments_debt_positions (comune, id)
);

-- The part of an option that goes to one creditor body, numbered 1 to 5.
CREATE TABLE payments_transfers (
    comune                 TEXT COLLATE "C" NOT NULL,
    position_id            TEXT COLLATE "C" NOT NULL,
    option_index           INTEGER NOT NULL,
    transfer_index         INTEGER NOT NULL CHECK (transfer_index BETWEEN 1 AND 5),
    creditor_fiscal_code   TEXT    NOT NULL CHECK (length(creditor_fiscal_code) = 11),
    iban                   TEXT    NOT NULL CHECK (length(iban) = 27),
    amount_cents           BIGINT  NOT NULL CHECK (amount_cents >= 1),
    remittance_information TEXT    NOT NULL,
    PRIMARY KEY (comune, position_id, option_index, transfer_index),
    FOREIGN KEY (comune, position_id, option_index)
        REFERENCES payments_payment_options (comune, position_id, option_index)
);

-- The last IUV sequence number issued per comune and year; the IUV base is the 4-digit year
-- and the 9-digit sequence number. Incremented in the transaction that inserts the position.
CREATE TABLE payments_iuv_sequences (
    comune     TEXT COLLATE "C" NOT NULL,
    year       INTEGER NOT NULL CHECK (year BETWEEN 1000 AND 9999),
    last_value BIGINT  NOT NULL CHECK (last_value >= 0),
    PRIMARY KEY (comune, year)
);
