//! [`PgCache`]: the shared PostgreSQL tier of steadytext's result cache.

use async_trait::async_trait;
use sqlx::{PgPool, Postgres};
use steadytext_core::cache::{CacheKey, CacheStore, StoreStats};
use steadytext_core::Error;

/// The tier's name in stats and logs.
pub const PG_CACHE_NAME: &str = "postgres";

/// Default bound of the tier: 100,000 entries (the least recently used beyond it are evicted).
pub const DEFAULT_PG_MAX_ENTRIES: u64 = 100_000;

/// Default eviction period: the bound is enforced after every 64th write (counted over every
/// process sharing the database).
pub const DEFAULT_PG_EVICT_EVERY: u64 = 64;

/// Advisory lock key serialising evictions (two concurrent `DELETE`s could deadlock).
const EVICT_LOCK: i64 = 0x5374_6561_6479_4576; // "SteadyEv"

/// A [`CacheStore`] over the `steadytext.cache` table: every process pointed at the same
/// database shares entries and counters (hits, misses, writes live in `steadytext.cache_stats`).
///
/// Database failures are reported as [`Error::CacheStore`]; the core's
/// [`Cache`](steadytext_core::cache::Cache) counts them and treats them as misses.
///
/// **Bound.** The table holds at most [`PgCache::max_entries`] entries (default
/// [`DEFAULT_PG_MAX_ENTRIES`]), least recently used (`COALESCE(last_hit_at, created_at)`) evicted
/// first. The bound is enforced automatically: the write that makes the shared `writes` counter
/// a multiple of [`DEFAULT_PG_EVICT_EVERY`] (see [`PgCache::with_evict_every`]) evicts down to the
/// bound, so between two enforcements the table may exceed it by fewer than that many entries.
/// One process evicts at a time (an advisory lock); the others skip.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) {
/// use std::sync::Arc;
/// use steadytext_core::cache::Cache;
/// let dir = std::path::Path::new("/tmp/steadytext-cache");
/// let cache = Cache::memory_and_disk(64 << 20, dir)
///     .with_tier(Arc::new(steadytext_pg::PgCache::new(pool)));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PgCache {
    pool: PgPool,
    max_entries: u64,
    evict_every: u64,
}

impl PgCache {
    /// A tier over `pool` with the default bound. The migrations must have run.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            max_entries: DEFAULT_PG_MAX_ENTRIES,
            evict_every: DEFAULT_PG_EVICT_EVERY,
        }
    }

    /// Hold at most `max_entries` entries.
    pub fn with_max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Enforce the bound after every `n`th write (at least 1).
    pub fn with_evict_every(mut self, n: u64) -> Self {
        self.evict_every = n.max(1);
        self
    }

    /// The bound in entries.
    pub fn max_entries(&self) -> u64 {
        self.max_entries
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Keep the `keep` most recently used entries and delete the rest (counted as evictions).
    /// Returns how many were deleted.
    pub async fn evict_to(&self, keep: u64) -> steadytext_core::Result<u64> {
        Ok(self.evict(keep, true).await?.unwrap_or(0))
    }

    /// Evict under the advisory lock: wait for it, or (`wait` false) return `None` when another
    /// process holds it.
    async fn evict(&self, keep: u64, wait: bool) -> steadytext_core::Result<Option<u64>> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        if wait {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(EVICT_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        } else {
            let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
                .bind(EVICT_LOCK)
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
            if !locked {
                return Ok(None);
            }
        }
        let evicted = Self::evict_in(&mut tx, keep).await?;
        tx.commit().await.map_err(store_error)?;
        if evicted > 0 {
            tracing::debug!(evicted, keep, "postgres cache evicted");
        }
        Ok(Some(evicted))
    }

    async fn evict_in(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        keep: u64,
    ) -> steadytext_core::Result<u64> {
        let (evicted,): (i64,) = sqlx::query_as(
            "WITH gone AS ( \
               DELETE FROM steadytext.cache WHERE key IN ( \
                 SELECT key FROM steadytext.cache \
                 ORDER BY COALESCE(last_hit_at, created_at) DESC OFFSET $1) \
               RETURNING 1), \
             counted AS ( \
               UPDATE steadytext.cache_stats SET evictions = evictions + (SELECT count(*) FROM gone) \
               WHERE id) \
             SELECT count(*) FROM gone",
        )
        .bind(keep.min(i64::MAX as u64) as i64)
        .fetch_one(&mut **tx)
        .await
        .map_err(store_error)?;
        Ok(evicted as u64)
    }
}

fn store_error(e: sqlx::Error) -> Error {
    Error::CacheStore {
        store: PG_CACHE_NAME.to_string(),
        reason: e.to_string(),
    }
}

#[async_trait]
impl CacheStore for PgCache {
    fn name(&self) -> &str {
        PG_CACHE_NAME
    }

    /// The value under `key`; a hit bumps the entry's `hits` and `last_hit_at`. The shared
    /// hit/miss counters are updated in the same statement.
    async fn get(&self, key: &CacheKey) -> steadytext_core::Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as(
            "WITH hit AS ( \
               UPDATE steadytext.cache SET hits = hits + 1, last_hit_at = now() \
               WHERE key = $1 RETURNING value), \
             counted AS ( \
               UPDATE steadytext.cache_stats \
               SET hits = hits + (SELECT count(*) FROM hit), \
                   misses = misses + 1 - (SELECT count(*) FROM hit) \
               WHERE id) \
             SELECT value FROM hit",
        )
        .bind(&key.0[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(row.map(|(v,)| v))
    }

    /// Insert or replace the value under `key`; every [`PgCache::with_evict_every`]th write
    /// (over all processes) then enforces the bound.
    async fn put(&self, key: &CacheKey, value: &[u8]) -> steadytext_core::Result<()> {
        let writes: Option<(i64,)> = sqlx::query_as(
            "WITH written AS ( \
               INSERT INTO steadytext.cache (key, value) VALUES ($1, $2) \
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value \
               RETURNING 1) \
             UPDATE steadytext.cache_stats SET writes = writes + (SELECT count(*) FROM written) \
             WHERE id RETURNING writes",
        )
        .bind(&key.0[..])
        .bind(value)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let writes = writes.map_or(0, |(w,)| w.max(0) as u64);
        if writes > 0 && writes.is_multiple_of(self.evict_every) {
            self.evict(self.max_entries, false).await?;
        }
        Ok(())
    }

    /// Delete the entry under `key` (a value that did not decode).
    async fn remove(&self, key: &CacheKey) -> steadytext_core::Result<()> {
        sqlx::query("DELETE FROM steadytext.cache WHERE key = $1")
            .bind(&key.0[..])
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Delete every entry and reset the shared counters.
    async fn clear(&self) -> steadytext_core::Result<()> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        sqlx::query("DELETE FROM steadytext.cache")
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query(
            "UPDATE steadytext.cache_stats SET hits = 0, misses = 0, writes = 0, evictions = 0 \
             WHERE id",
        )
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)
    }

    /// Shared counters plus the current entry count and bytes (keys and values).
    async fn stats(&self) -> steadytext_core::Result<StoreStats> {
        let (hits, misses, writes, evictions, entries, bytes): (i64, i64, i64, i64, i64, i64) =
            sqlx::query_as(
                "SELECT s.hits, s.misses, s.writes, s.evictions, c.entries, c.bytes \
                 FROM steadytext.cache_stats s, \
                      (SELECT count(*) AS entries, \
                              COALESCE(sum(octet_length(key) + octet_length(value)), 0)::bigint \
                                AS bytes \
                       FROM steadytext.cache) c \
                 WHERE s.id",
            )
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        let n = |v: i64| v.max(0) as u64;
        Ok(StoreStats {
            hits: n(hits),
            misses: n(misses),
            writes: n(writes),
            evictions: n(evictions),
            entries: n(entries),
            bytes: n(bytes),
            max_entries: Some(self.max_entries),
            ..StoreStats::default()
        })
    }
}
