-- Call records (the call history) and their logs. Ids are UUIDv7 strings, so
-- ordering by id (byte by byte) is ordering by creation time; times are
-- BIGINT milliseconds since the Unix epoch, NULL until they happen.
CREATE TABLE calls (
    id           TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    app_name     TEXT COLLATE "C" NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    path         TEXT COLLATE "C" NOT NULL,
    type         TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    completed_at BIGINT,
    error        TEXT,
    attempts     BIGINT NOT NULL,
    -- An async call's stdout (capped by the caller); NULL for sync calls.
    output       BYTEA
);

CREATE INDEX calls_by_app ON calls (app_name, id);
-- For purging old final calls.
CREATE INDEX calls_by_completion ON calls (completed_at);

CREATE TABLE call_logs (
    call_id TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    log     BYTEA NOT NULL
);
