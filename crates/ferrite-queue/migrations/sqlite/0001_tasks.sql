-- Queued async calls. A task is visible to `reserve` once `visible_at` has
-- passed; a lease moves `visible_at` to the lease's expiry, so a task whose
-- worker died comes back on its own. Times are integer milliseconds since the
-- Unix epoch; `seq` keeps push order among tasks visible at the same time.
CREATE TABLE tasks (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    payload     BLOB NOT NULL,
    visible_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    leased_by   TEXT,
    created_at  INTEGER NOT NULL
);

CREATE INDEX tasks_by_visibility ON tasks (visible_at, seq);
