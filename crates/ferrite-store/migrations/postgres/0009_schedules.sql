-- Schedules: cron expressions that enqueue an async call of a route at each
-- tick. A schedule goes with its route (and so with its app). `next_run` is
-- the next tick not yet enqueued (ms since the Unix epoch; NULL while the
-- schedule is paused or has no tick left): the nodes' schedulers claim a
-- tick by moving it on with a compare-and-set.
CREATE TABLE schedules (
    id         TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    app_name   TEXT COLLATE "C" NOT NULL,
    path       TEXT COLLATE "C" NOT NULL,
    cron       TEXT NOT NULL,
    timezone   TEXT NOT NULL,
    payload    BYTEA NOT NULL,
    -- Request headers of each tick's call, a JSON object of strings.
    headers    TEXT NOT NULL,
    catch_up   TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    next_run   BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (app_name, path) REFERENCES routes (app_name, path) ON DELETE CASCADE
);

CREATE INDEX schedules_by_app ON schedules (app_name, id);
-- The schedulers' query: what is due.
CREATE INDEX schedules_due ON schedules (next_run) WHERE enabled;
