-- An app's own call limits (ferrite_model::AppLimits) as JSON text, like the
-- other JSON columns; NULL when the app uses the server's defaults, which
-- every app created before this column does.
ALTER TABLE apps ADD COLUMN limits TEXT;

-- The count of an app's queued calls that the cap on queued async calls reads
-- (Store::count_queued_calls): only queued calls are in this index, so the
-- count costs what is queued, not the app's whole history.
CREATE INDEX calls_queued ON calls (app_name) WHERE status = 'queued';
