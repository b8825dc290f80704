-- The route's service section (ferrite_model::ServiceSpec) as JSON text; NULL
-- for routes that run in containers, which every route created before this
-- column does.
ALTER TABLE routes ADD COLUMN service TEXT;
