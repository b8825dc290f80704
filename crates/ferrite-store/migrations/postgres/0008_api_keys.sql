-- Per-app API keys: who may reach one app through /v1, and how far. Only
-- the SHA-256 of a key's secret is kept, never the secret. A key goes with
-- its app, so an app deleted and made again by someone else does not
-- inherit the old app's keys.
CREATE TABLE api_keys (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    app_name    TEXT COLLATE "C" NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    access      TEXT NOT NULL,
    name        TEXT,
    secret_hash BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);

CREATE INDEX api_keys_app ON api_keys (app_name);
