-- The audit log: append-only and hash-chained (each entry's hash covers the previous hash and
-- its own fields), so a modified, inserted or deleted entry is detected by verification.
CREATE TABLE audit_log (
    sequence       INTEGER PRIMARY KEY,  -- 1, 2, ...: gapless
    at             INTEGER NOT NULL,     -- microseconds since the Unix epoch
    gateway        TEXT    NOT NULL,
    principal      TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    comune         TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    node           TEXT    NOT NULL,
    code           INTEGER NOT NULL,
    latency_micros INTEGER NOT NULL,
    previous_hash  TEXT    NOT NULL,
    hash           TEXT    NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- Calls per comune, function and month, for cost sharing by usage.
CREATE TABLE usage_meters (
    comune   TEXT    NOT NULL,
    function TEXT    NOT NULL,
    month    TEXT    NOT NULL,  -- YYYY-MM
    calls    INTEGER NOT NULL,
    errors   INTEGER NOT NULL,
    PRIMARY KEY (month, comune, function)
);
