-- The ledger and reconciliation (ledger.proto, reconciliation.proto; DOMAIN.md "Payments").
--
-- The journal is double entry and append-only: a transaction is a header row and two or more
-- entries, each a debit or a credit in integer cents on one account (domain/ledger.rs has the
-- chart of accounts). Rows are only ever inserted, in the same database transaction as the
-- fact they record (a position created, a receipt stored, a flow settled); no statement of
-- the service updates or deletes them, and triggers (at the end) refuse it. `reference`
-- names the fact: the position id, the IUV of a receipt, the flow id. Keys sort by byte
-- (COLLATE "C"), as in SQLite.
CREATE TABLE payments_journal_transactions (
    comune      TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('POSITION_CREATED', 'PLAN_CHANGED',
                    'RECEIPT_RECORDED', 'FLOW_SETTLED')),
    reference   TEXT COLLATE "C" NOT NULL,
    create_time BIGINT  NOT NULL,
    PRIMARY KEY (comune, id)
);
CREATE INDEX payments_journal_transactions_reference
    ON payments_journal_transactions (comune, kind, reference);

CREATE TABLE payments_journal_entries (
    comune         TEXT COLLATE "C" NOT NULL,
    transaction_id TEXT COLLATE "C" NOT NULL,
    line           INTEGER NOT NULL CHECK (line >= 1),
    account        TEXT COLLATE "C" NOT NULL,
    debit_cents    BIGINT  NOT NULL CHECK (debit_cents >= 0),
    credit_cents   BIGINT  NOT NULL CHECK (credit_cents >= 0),
    PRIMARY KEY (comune, transaction_id, line),
    FOREIGN KEY (comune, transaction_id) REFERENCES payments_journal_transactions (comune, id)
);
CREATE INDEX payments_journal_entries_account ON payments_journal_entries (comune, account);

-- One imported reconciliation flow per (comune, flow id). `fingerprint` is the SHA-256 of the
-- flow's canonical content, so the same flow again replays `response` (the encoded
-- `ReconciliationFlow` first returned) and another content under the same id is refused.
CREATE TABLE payments_reconciliation_flows (
    comune               TEXT COLLATE "C" NOT NULL,
    flow_id              TEXT COLLATE "C" NOT NULL,
    fingerprint          BYTEA   NOT NULL,
    flow_date            TEXT    NOT NULL CHECK (length(flow_date) = 10),
    psp_id               TEXT COLLATE "C" NOT NULL,
    settlement_reference TEXT    NOT NULL,
    line_count           INTEGER NOT NULL CHECK (line_count >= 0),
    amount_cents         BIGINT  NOT NULL,
    matched_count        INTEGER NOT NULL CHECK (matched_count >= 0),
    matched_cents        BIGINT  NOT NULL,
    exception_count      INTEGER NOT NULL CHECK (exception_count >= 0),
    create_time          BIGINT  NOT NULL,
    response             BYTEA   NOT NULL,
    PRIMARY KEY (comune, flow_id)
);

-- The exceptions of a flow, one per line that could not be reconciled.
CREATE TABLE payments_reconciliation_exceptions (
    comune         TEXT COLLATE "C" NOT NULL,
    flow_id        TEXT COLLATE "C" NOT NULL,
    number         INTEGER NOT NULL CHECK (number >= 1),
    kind           TEXT COLLATE "C" NOT NULL,
    iuv            TEXT COLLATE "C" NOT NULL,
    receipt_id     TEXT COLLATE "C" NOT NULL,
    transfer_index INTEGER NOT NULL,
    amount_cents   BIGINT  NOT NULL,
    outcome        INTEGER NOT NULL,
    PRIMARY KEY (comune, flow_id, number),
    FOREIGN KEY (comune, flow_id) REFERENCES payments_reconciliation_flows (comune, flow_id)
);

-- A transfer reported by a flow line (REPORTED): at most once, by the first flow that did.
CREATE TABLE payments_reported_transfers (
    comune         TEXT COLLATE "C" NOT NULL,
    iuv            TEXT COLLATE "C" NOT NULL,
    transfer_index INTEGER NOT NULL CHECK (transfer_index BETWEEN 1 AND 5),
    flow_id        TEXT COLLATE "C" NOT NULL,
    amount_cents   BIGINT  NOT NULL CHECK (amount_cents >= 1),
    create_time    BIGINT  NOT NULL,
    PRIMARY KEY (comune, iuv, transfer_index),
    FOREIGN KEY (comune, iuv) REFERENCES payments_receipts (comune, iuv),
    FOREIGN KEY (comune, flow_id) REFERENCES payments_reconciliation_flows (comune, flow_id)
);

-- Append-only, enforced by the database too: updating or deleting a journal row fails. (Whoever
-- can drop these triggers can still alter the journal; VerifyLedger is there to notice.)
CREATE FUNCTION payments_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only';
END
$$;
CREATE TRIGGER payments_journal_transactions_append_only
    BEFORE UPDATE OR DELETE ON payments_journal_transactions
    FOR EACH ROW EXECUTE FUNCTION payments_journal_append_only();
CREATE TRIGGER payments_journal_entries_append_only
    BEFORE UPDATE OR DELETE ON payments_journal_entries
    FOR EACH ROW EXECUTE FUNCTION payments_journal_append_only();
