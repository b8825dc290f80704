-- Apps and their routes. Portable types: text ids, JSON as text, times as
-- integer milliseconds since the Unix epoch.
CREATE TABLE apps (
    name       TEXT PRIMARY KEY NOT NULL,
    config     TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE routes (
    app_name        TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    path            TEXT NOT NULL,
    image           TEXT NOT NULL,
    memory          INTEGER NOT NULL,
    type            TEXT NOT NULL,
    format          TEXT NOT NULL,
    max_concurrency INTEGER NOT NULL,
    timeout         INTEGER NOT NULL,
    idle_timeout    INTEGER NOT NULL,
    headers         TEXT,
    config          TEXT,
    jwt_key         TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (app_name, path)
);
