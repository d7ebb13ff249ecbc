-- The order history keeps one document per order: the folded aggregate
-- state. The API view is computed from it when an order is read, so a
-- projector batch encodes and stores each order once, and a row stays small
-- enough to be stored inline without compression. `json` rather than `jsonb`:
-- the state is only ever read whole, so there is nothing to index or query
-- inside it and no binary form to build.
ALTER TABLE rm_orders DROP COLUMN view;
ALTER TABLE rm_orders ALTER COLUMN state TYPE json USING state::json;

-- A rebuild of the orders read model interrupted before this migration has
-- shadow tables of the old shape; dropping them makes it start afresh.
DROP SCHEMA IF EXISTS shop_rebuild_orders CASCADE;
