-- The dead-letter list: async calls that ended in error or timeout for good,
-- each with the request that made it (the queued call, encoded), so that it
-- can be looked at and replayed. A row goes with its call: deleted with its
-- app, purged with the history.
CREATE TABLE dead_letters (
    call_id TEXT PRIMARY KEY NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    request BLOB NOT NULL
);
