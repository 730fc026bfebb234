-- The audit log: append-only and hash-chained (each entry's hash covers the previous hash and
-- its own fields), so a modified, inserted or deleted entry is detected by verification.
CREATE TABLE audit_log (
    sequence       BIGINT PRIMARY KEY,  -- 1, 2, ...: gapless
    at             BIGINT NOT NULL,     -- microseconds since the Unix epoch
    gateway        TEXT   NOT NULL,
    principal      TEXT   NOT NULL,
    role           TEXT   NOT NULL,
    comune         TEXT   NOT NULL,
    method         TEXT   NOT NULL,
    node           TEXT   NOT NULL,
    code           INTEGER NOT NULL,
    latency_micros BIGINT NOT NULL,
    previous_hash  TEXT   NOT NULL,
    hash           TEXT   NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Calls per comune, function and month, for cost sharing by usage.
CREATE TABLE usage_meters (
    comune   TEXT COLLATE "C" NOT NULL,
    function TEXT COLLATE "C" NOT NULL,
    month    TEXT COLLATE "C" NOT NULL,  -- YYYY-MM
    calls    BIGINT NOT NULL,
    errors   BIGINT NOT NULL,
    PRIMARY KEY (month, comune, function)
);
