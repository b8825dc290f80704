-- Route versions: each change of what a route runs (its image or a setting
-- of ferrite_model::Definition) is kept as a numbered, immutable version,
-- its definition as JSON text. `routes.version` is the newest one's number;
-- `routes.traffic` (JSON text, ferrite_model::TrafficEntry list) says which
-- versions share the route's calls, NULL when the newest takes them all.
-- Versions go with their route. A route keeps its newest versions and those
-- its traffic names (the store trims the rest: ferrite_store's
-- MAX_VERSIONS_PER_ROUTE).
ALTER TABLE routes ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE routes ADD COLUMN traffic TEXT;

CREATE TABLE route_versions (
    app_name   TEXT NOT NULL,
    path       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_name, path, version),
    FOREIGN KEY (app_name, path) REFERENCES routes (app_name, path) ON DELETE CASCADE
);

-- Every route made before versions is its version 1, as it is now.
INSERT INTO route_versions (app_name, path, version, definition, created_at)
SELECT app_name, path, 1,
       json_object('image', image, 'memory', memory, 'type', type, 'format', format,
                   'max_concurrency', max_concurrency, 'timeout', timeout,
                   'idle_timeout', idle_timeout, 'headers', json(headers),
                   'config', json(config), 'max_retries', max_retries,
                   'service', json(service), 'confinement', json(confinement)),
       updated_at
FROM routes;

-- Which version of its route served a call; NULL for calls not yet run
-- (queued) and for calls made before versions.
ALTER TABLE calls ADD COLUMN version INTEGER;
