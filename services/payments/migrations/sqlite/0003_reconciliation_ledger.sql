-- The ledger and reconciliation (ledger.proto, reconciliation.proto; DOMAIN.md "Payments").
--
-- The journal is double entry and append-only: a transaction is a header row and two or more
-- entries, each a debit or a credit in integer cents on one account (domain/ledger.rs has the
-- chart of accounts). Rows are only ever inserted, in the same database transaction as the
-- fact they record (a position created, a receipt stored, a flow settled); no statement of
-- the service updates or deletes them, and triggers (at the end) refuse it. `reference`
-- names the fact: the position id, the IUV of a receipt, the flow id.
CREATE TABLE payments_journal_transactions (
    comune      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('POSITION_CREATED', 'PLAN_CHANGED',
                    'RECEIPT_RECORDED', 'FLOW_SETTLED')),
    reference   TEXT    NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (comune, id)
);
CREATE INDEX payments_journal_transactions_reference
    ON payments_journal_transactions (comune, kind, reference);

CREATE TABLE payments_journal_entries (
    comune         TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL,
    line           INTEGER NOT NULL CHECK (line >= 1),
    account        TEXT    NOT NULL,
    debit_cents    INTEGER NOT NULL CHECK (debit_cents >= 0),
    credit_cents   INTEGER NOT NULL CHECK (credit_cents >= 0),
    PRIMARY KEY (comune, transaction_id, line),
    FOREIGN KEY (comune, transaction_id) REFERENCES payments_journal_transactions (comune, id)
);
CREATE INDEX payments_journal_entries_account ON payments_journal_entries (comune, account);

-- One imported reconciliation flow per (comune, flow id). `fingerprint` is the SHA-256 of the
-- flow's canonical content, so the same flow again replays `response` (the encoded
-- `ReconciliationFlow` first returned) and another content under the same id is refused.
CREATE TABLE payments_reconciliation_flows (
    comune               TEXT    NOT NULL,
    flow_id              TEXT    NOT NULL,
    fingerprint          BLOB    NOT NULL,
    flow_date            TEXT    NOT NULL CHECK (length(flow_date) = 10),
    psp_id               TEXT    NOT NULL,
    settlement_reference TEXT    NOT NULL,
    line_count           INTEGER NOT NULL CHECK (line_count >= 0),
    amount_cents         INTEGER NOT NULL,
    matched_count        INTEGER NOT NULL CHECK (matched_count >= 0),
    matched_cents        INTEGER NOT NULL,
    exception_count      INTEGER NOT NULL CHECK (exception_count >= 0),
    create_time          INTEGER NOT NULL,
    response             BLOB    NOT NULL,
    PRIMARY KEY (comune, flow_id)
);

-- The exceptions of a flow, one per line that could not be reconciled.
CREATE TABLE payments_reconciliation_exceptions (
    comune         TEXT    NOT NULL,
    flow_id        TEXT    NOT NULL,
    number         INTEGER NOT NULL CHECK (number >= 1),
    kind           TEXT    NOT NULL,
    iuv            TEXT    NOT NULL,
    receipt_id     TEXT    NOT NULL,
    transfer_index INTEGER NOT NULL,
    amount_cents   INTEGER NOT NULL,
    outcome        INTEGER NOT NULL,
    PRIMARY KEY (comune, flow_id, number),
    FOREIGN KEY (comune, flow_id) REFERENCES payments_reconciliation_flows (comune, flow_id)
);

-- A transfer reported by a flow line (REPORTED): at most once, by the first flow that did.
CREATE TABLE payments_reported_transfers (
    comune         TEXT    NOT NULL,
    iuv            TEXT    NOT NULL,
    transfer_index INTEGER NOT NULL CHECK (transfer_index BETWEEN 1 AND 5),
    flow_id        TEXT    NOT NULL,
    amount_cents   INTEGER NOT NULL CHECK (amount_cents >= 1),
    create_time    INTEGER NOT NULL,
    PRIMARY KEY (comune, iuv, transfer_index),
    FOREIGN KEY (comune, iuv) REFERENCES payments_receipts (comune, iuv),
    FOREIGN KEY (comune, flow_id) REFERENCES payments_reconciliation_flows (comune, flow_id)
);

-- Append-only, enforced by the database too: updating or deleting a journal row fails. (Whoever
-- can drop these triggers can still alter the journal; VerifyLedger is there to notice.)
CREATE TRIGGER payments_journal_transactions_append_only
    BEFORE UPDATE ON payments_journal_transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER payments_journal_transactions_no_delete
    BEFORE DELETE ON payments_journal_transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER payments_journal_entries_append_only
    BEFORE UPDATE ON payments_journal_entries
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER payments_journal_entries_no_delete
    BEFORE DELETE ON payments_journal_entries
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
