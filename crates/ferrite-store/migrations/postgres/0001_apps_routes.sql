-- Apps and their routes: the same tables and columns as the SQLite schema,
-- in PostgreSQL's types (times as BIGINT milliseconds since the Unix epoch,
-- JSON as text). Keys and paths compare byte by byte (COLLATE "C"), as in
-- SQLite, so listings sort the same whatever the database's locale.
CREATE TABLE apps (
    name       TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    config     TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE routes (
    app_name        TEXT COLLATE "C" NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    path            TEXT COLLATE "C" NOT NULL,
    image           TEXT NOT NULL,
    memory          BIGINT NOT NULL,
    type            TEXT NOT NULL,
    format          TEXT NOT NULL,
    max_concurrency BIGINT NOT NULL,
    timeout         BIGINT NOT NULL,
    idle_timeout    BIGINT NOT NULL,
    headers         TEXT,
    config          TEXT,
    jwt_key         TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (app_name, path)
);
