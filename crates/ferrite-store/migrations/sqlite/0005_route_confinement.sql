-- The route's confinement section (ferrite_model::ConfinementSpec) as JSON
-- text, like the other JSON columns (portable with SQLite); NULL for routes
-- with the default confinement, which every route created before this column has.
ALTER TABLE routes ADD COLUMN confinement TEXT;
