-- Call records (the call history) and their logs. Ids are UUIDv7 strings, so
-- ordering by id is ordering by creation time; times are integer
-- milliseconds since the Unix epoch, NULL until they happen.
CREATE TABLE calls (
    id           TEXT PRIMARY KEY NOT NULL,
    app_name     TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    path         TEXT NOT NULL,
    type         TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    completed_at INTEGER,
    error        TEXT,
    attempts     INTEGER NOT NULL,
    -- An async call's stdout (capped by the caller); NULL for sync calls.
    output       BLOB
);

CREATE INDEX calls_by_app ON calls (app_name, id);
-- For purging old final calls.
CREATE INDEX calls_by_completion ON calls (completed_at);

CREATE TABLE call_logs (
    call_id TEXT PRIMARY KEY NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    log     BLOB NOT NULL
);
