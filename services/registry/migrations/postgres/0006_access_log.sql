-- The log of personal-data reads (issue 3, "Access and privacy"): one row for each record a
-- read returned (a resident, a household, a certificate's resident, a case), with who read it,
-- when, through which method and why. Append-only: no row is ever changed or removed.
CREATE TABLE registry_access_log (
    comune    TEXT COLLATE "C" NOT NULL,
    id        TEXT COLLATE "C" NOT NULL,  -- opaque
    at        BIGINT NOT NULL,            -- microseconds since the Unix epoch
    principal TEXT COLLATE "C" NOT NULL,  -- the user's opaque id, or the peer's certificate identity
    role      TEXT COLLATE "C" NOT NULL,  -- the user's role, or `peer`
    method    TEXT COLLATE "C" NOT NULL,  -- the full gRPC method
    record    TEXT COLLATE "C" NOT NULL,  -- the record's resource name
    purpose   TEXT COLLATE "C" NOT NULL,  -- the `x-unione-purpose` header; empty when not given
    PRIMARY KEY (comune, id)
);
-- Newest first, for a comune and for one record.
CREATE INDEX registry_access_log_by_time ON registry_access_log (comune, at, id);
CREATE INDEX registry_access_log_by_record ON registry_access_log (comune, record, at, id);

CREATE FUNCTION registry_access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the personal-data access log is append-only';
END
$$;
CREATE TRIGGER registry_access_log_no_change BEFORE UPDATE OR DELETE ON registry_access_log
    FOR EACH ROW EXECUTE FUNCTION registry_access_log_append_only();
CREATE TRIGGER registry_access_log_no_truncate BEFORE TRUNCATE ON registry_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION registry_access_log_append_only();
