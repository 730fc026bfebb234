-- Paying (payment_provider.proto; DOMAIN.md "Payments"): the validity date of a position, the
-- activations (short reservations of a notice by one PSP) and the receipts. A creditor's IUV is
-- paid at most once: UNIQUE (comune, iuv) on the receipts, inserted in the write transaction
-- that checks the position's state, so two PSPs racing for one notice cannot both be accepted.
-- Instants are microseconds since the epoch; dates are civil dates `YYYY-MM-DD`.

-- From when the notices can be paid (NULL: at once). The stored `state` is the last state
-- written (VALID, PUBLISHED, PARTIALLY_PAID, PAID, INVALID); the states that follow from the
-- clock (PUBLISHED -> VALID, EXPIRED) are derived when read (domain/state.rs).
ALTER TABLE payments_debt_positions ADD COLUMN validity_date TEXT
    CHECK (validity_date IS NULL OR length(validity_date) = 10);

-- A notice reserved for one PSP until `expire_time`. The same PSP with the same key gets the
-- same activation back.
CREATE TABLE payments_activations (
    comune          TEXT COLLATE "C" NOT NULL,
    id              TEXT COLLATE "C" NOT NULL,
    iuv             TEXT COLLATE "C" NOT NULL,
    psp_id          TEXT COLLATE "C" NOT NULL,
    idempotency_key TEXT COLLATE "C" NOT NULL,
    amount_cents    BIGINT NOT NULL CHECK (amount_cents >= 1),
    create_time     BIGINT NOT NULL,
    expire_time     BIGINT NOT NULL,
    PRIMARY KEY (comune, id),
    UNIQUE (comune, iuv, psp_id, idempotency_key),
    FOREIGN KEY (comune, iuv) REFERENCES payments_payment_options (comune, iuv)
);
CREATE INDEX payments_activations_live ON payments_activations (comune, iuv, expire_time);

-- The one receipt of a paid option. `response` is the encoded `Receipt` first returned,
-- replayed to retries; `document` is the receipt's JSON exactly as sealed, `seal` its SHA-256.
CREATE TABLE payments_receipts (
    comune        TEXT COLLATE "C" NOT NULL,
    iuv           TEXT COLLATE "C" NOT NULL,
    receipt_id    TEXT COLLATE "C" NOT NULL,
    position_id   TEXT COLLATE "C" NOT NULL,
    option_index  INTEGER NOT NULL,
    psp_id        TEXT    NOT NULL,
    amount_cents  BIGINT  NOT NULL CHECK (amount_cents >= 1),
    payment_time  BIGINT  NOT NULL,
    activation_id TEXT    NOT NULL,
    create_time   BIGINT  NOT NULL,
    response      BYTEA   NOT NULL,
    document      TEXT    NOT NULL,
    seal          TEXT    NOT NULL CHECK (length(seal) = 64),
    PRIMARY KEY (comune, iuv),
    UNIQUE (comune, iuv, receipt_id),
    FOREIGN KEY (comune, position_id, option_index)
        REFERENCES payments_payment_options (comune, position_id, option_index)
);
