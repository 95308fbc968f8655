-- 0001_initial: drop everything it created (schema_migrations belongs to the migrator and stays).
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS model_backends;
DROP TABLE IF EXISTS models;
