-- The federation directory as the gateway last loaded it, and the history of its versions.
-- The whole directory is replaced in one transaction when the loaded file's content changes.

CREATE TABLE directory_versions (
    version      INTEGER PRIMARY KEY,  -- 1, 2, ...: bumped when the content changes
    loaded_at    INTEGER NOT NULL,     -- microseconds since the Unix epoch
    content_hash TEXT    NOT NULL,     -- SHA-256 (hex) of the canonical directory
    source       TEXT    NOT NULL,     -- where it was loaded from (a file path)
    members      INTEGER NOT NULL,
    nodes        INTEGER NOT NULL,
    provisions   INTEGER NOT NULL
);

CREATE TABLE members (
    istat            TEXT    PRIMARY KEY,  -- six digits
    name             TEXT    NOT NULL,
    fiscal_code      TEXT    NOT NULL,
    cadastral_code   TEXT    NOT NULL,
    population       INTEGER NOT NULL,
    province         TEXT    NOT NULL,
    peer_group       TEXT    NOT NULL,
    ipa_code         TEXT    NOT NULL,
    segregation_code TEXT    NOT NULL
);

CREATE TABLE nodes (
    node_id  TEXT PRIMARY KEY,  -- also the identity in its certificate
    endpoint TEXT NOT NULL      -- https://host:port
);

CREATE TABLE provisions (
    comune   TEXT NOT NULL REFERENCES members (istat),
    function TEXT NOT NULL CHECK (function IN ('registry', 'payments', 'quality')),
    node     TEXT NOT NULL REFERENCES nodes (node_id),
    PRIMARY KEY (comune, function)  -- at most one provider per comune and function
);

CREATE INDEX provisions_by_node ON provisions (node);
