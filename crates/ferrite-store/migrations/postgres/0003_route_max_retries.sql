-- How many times an async call whose function fails is run again. Routes
-- created before this column run failed calls once, as before.
ALTER TABLE routes ADD COLUMN max_retries BIGINT NOT NULL DEFAULT 0;
