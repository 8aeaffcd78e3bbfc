-- Which version of its plugin declared each store index last (`ensure-index`, in `migrate`
-- or while serving). After an upgrade or a rollback, the indexes that neither the version
-- replaced nor the new one declared are dropped.
ALTER TABLE store_indexes ADD COLUMN declared_by TEXT;

-- Indexes declared before this column existed count as declared by the version served now.
UPDATE store_indexes
SET declared_by = (SELECT version FROM plugins WHERE plugins.id = store_indexes.plugin_id);
