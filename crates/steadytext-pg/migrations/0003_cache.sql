-- The shared Postgres tier of the result cache: content-addressed (32-byte blake3 keys), so any
-- process with the same model and request reads what another computed.
CREATE TABLE IF NOT EXISTS steadytext_cache (
    key BYTEA PRIMARY KEY CHECK (octet_length(key) = 32),
    value BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_hit_at TIMESTAMPTZ,
    hits BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS steadytext_cache_last_used
    ON steadytext_cache (COALESCE(last_hit_at, created_at));

-- Counters shared by every process using the tier (a single row).
CREATE TABLE IF NOT EXISTS steadytext_cache_stats (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    hits BIGINT NOT NULL DEFAULT 0,
    misses BIGINT NOT NULL DEFAULT 0,
    writes BIGINT NOT NULL DEFAULT 0,
    evictions BIGINT NOT NULL DEFAULT 0
);
INSERT INTO steadytext_cache_stats (id) VALUES (TRUE) ON CONFLICT DO NOTHING;
