-- Coexistence with pg_steadytext: its install script drops and recreates a table named
-- `steadytext_cache` in its schema (usually public), which would destroy the cache tier of
-- 0003. Our cache tables move into schema `steadytext` as `steadytext.cache` and
-- `steadytext.cache_stats`, keeping their rows. Only tables of our shape move (a 32-byte
-- `key BYTEA`); a public `steadytext_cache` of another shape is pg_steadytext's and is left
-- alone.

CREATE SCHEMA IF NOT EXISTS steadytext;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'steadytext_cache'
                 AND column_name = 'key' AND data_type = 'bytea')
       AND to_regclass('steadytext.cache') IS NULL THEN
        ALTER TABLE steadytext_cache SET SCHEMA steadytext;
        ALTER TABLE steadytext.steadytext_cache RENAME TO cache;
        ALTER INDEX steadytext.steadytext_cache_last_used RENAME TO cache_last_used;
    END IF;
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'steadytext_cache_stats'
                 AND column_name = 'evictions')
       AND to_regclass('steadytext.cache_stats') IS NULL THEN
        ALTER TABLE steadytext_cache_stats SET SCHEMA steadytext;
        ALTER TABLE steadytext.steadytext_cache_stats RENAME TO cache_stats;
    END IF;
END;
$$;

CREATE TABLE IF NOT EXISTS steadytext.cache (
    key BYTEA PRIMARY KEY CHECK (octet_length(key) = 32),
    value BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_hit_at TIMESTAMPTZ,
    hits BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cache_last_used
    ON steadytext.cache (COALESCE(last_hit_at, created_at));

CREATE TABLE IF NOT EXISTS steadytext.cache_stats (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    hits BIGINT NOT NULL DEFAULT 0,
    misses BIGINT NOT NULL DEFAULT 0,
    writes BIGINT NOT NULL DEFAULT 0,
    evictions BIGINT NOT NULL DEFAULT 0
);
INSERT INTO steadytext.cache_stats (id) VALUES (TRUE) ON CONFLICT DO NOTHING;
