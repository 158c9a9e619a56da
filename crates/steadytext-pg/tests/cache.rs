//! PgCache: the shared Postgres tier of the result cache.

mod common;

use std::sync::Arc;

use common::*;
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgPool, Postgres};
use steadytext_core::cache::{Cache, CacheKey, CacheStore, KeyParts, Lookup, MemoryStore};
use steadytext_core::Error;
use steadytext_pg::{PgCache, MIGRATOR};

fn key(s: &str) -> CacheKey {
    KeyParts {
        model: "m",
        operation: "generate",
        prompt: s,
        params: serde_json::json!({}),
    }
    .key()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn round_trip_counts_and_clear(pool: PgPool) {
    let cache = PgCache::new(pool.clone());
    assert_eq!(cache.name(), "postgres");
    assert_eq!(cache.get(&key("a")).await.unwrap(), None);
    cache.put(&key("a"), b"value a").await.unwrap();
    cache.put(&key("a"), b"value A").await.unwrap(); // upsert
    assert_eq!(
        cache.get(&key("a")).await.unwrap().as_deref(),
        Some(&b"value A"[..])
    );
    assert_eq!(
        cache.get(&key("a")).await.unwrap().as_deref(),
        Some(&b"value A"[..])
    );

    let (hits, hit_at): (i64, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT hits, last_hit_at FROM steadytext.cache WHERE key = $1")
            .bind(&key("a").0[..])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(hits, 2);
    assert!(hit_at.is_some());

    let s = cache.stats().await.unwrap();
    assert_eq!((s.hits, s.misses, s.writes, s.entries), (2, 1, 2, 1));
    assert_eq!(s.bytes, 32 + 7);

    cache.clear().await.unwrap();
    assert_eq!(cache.get(&key("a")).await.unwrap(), None);
    let s = cache.stats().await.unwrap();
    assert_eq!(
        (s.hits, s.misses, s.writes, s.entries, s.bytes),
        (0, 1, 0, 0, 0)
    );
}

/// Two processes (two pools) share entries and counters.
#[sqlx::test(migrator = "MIGRATOR")]
async fn entries_and_stats_are_shared_between_pools(
    _opts: sqlx::pool::PoolOptions<Postgres>,
    connect: PgConnectOptions,
) {
    let pool_a = pool_with(connect.clone(), 2).await;
    let pool_b = pool_with(connect, 2).await;
    let (a, b) = (PgCache::new(pool_a), PgCache::new(pool_b));
    a.put(&key("shared"), b"computed once").await.unwrap();
    assert_eq!(
        b.get(&key("shared")).await.unwrap().as_deref(),
        Some(&b"computed once"[..])
    );
    assert_eq!(b.get(&key("missing")).await.unwrap(), None);
    let (sa, sb) = (a.stats().await.unwrap(), b.stats().await.unwrap());
    assert_eq!(sa, sb);
    assert_eq!((sa.hits, sa.misses, sa.writes, sa.entries), (1, 1, 1, 1));

    // Behind the core's Cache: a second "process" with a cold memory tier hits Postgres and
    // back-fills its memory.
    let stack = |t: PgCache| Cache::new(vec![Arc::new(MemoryStore::new(1 << 20)), Arc::new(t)]);
    let (first, second) = (stack(a.clone()), stack(b.clone()));
    let (v, cached) = first
        .get_or_compute(&key("p"), || async { Ok::<_, Error>(b"out".to_vec()) })
        .await
        .unwrap();
    assert!(!cached);
    assert_eq!(
        second.get(&key("p")).await,
        Lookup::Hit("postgres".into(), v.clone())
    );
    assert_eq!(second.get(&key("p")).await, Lookup::Hit("memory".into(), v));
}

/// A database failure is `Error::CacheStore`; the core's Cache treats it as a miss.
#[sqlx::test(migrator = "MIGRATOR")]
async fn database_errors_are_cache_store_errors(pool: PgPool) {
    let cache = PgCache::new(pool.clone());
    exec(&pool, "DROP TABLE steadytext.cache").await;
    match cache.get(&key("a")).await {
        Err(Error::CacheStore { store, reason }) => {
            assert_eq!(store, "postgres");
            assert!(reason.contains("steadytext.cache"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        cache.put(&key("a"), b"v").await,
        Err(Error::CacheStore { .. })
    ));
    let stack = Cache::new(vec![Arc::new(cache)]);
    assert_eq!(stack.get(&key("a")).await, Lookup::Miss);
    let stats = stack.stats().await;
    assert!(stats[0].1.is_err());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn evict_keeps_the_most_recently_used(pool: PgPool) {
    let cache = PgCache::new(pool.clone());
    for k in ["a", "b", "c"] {
        cache.put(&key(k), k.as_bytes()).await.unwrap();
    }
    exec(
        &pool,
        "UPDATE steadytext.cache SET created_at = now() - interval '1 hour'",
    )
    .await;
    cache.get(&key("b")).await.unwrap();
    assert_eq!(cache.evict_to(1).await.unwrap(), 2);
    assert!(cache.get(&key("b")).await.unwrap().is_some());
    assert!(cache.get(&key("a")).await.unwrap().is_none());
    let s = cache.stats().await.unwrap();
    assert_eq!((s.evictions, s.entries), (2, 1));
}

/// The bound is enforced automatically: every `evict_every`th write evicts down to the bound,
/// least recently used first.
#[sqlx::test(migrator = "MIGRATOR")]
async fn the_entry_bound_is_enforced_by_writes(pool: PgPool) {
    let cache = PgCache::new(pool.clone())
        .with_max_entries(10)
        .with_evict_every(5);
    assert_eq!(PgCache::new(pool.clone()).max_entries(), 100_000);
    for i in 0..30 {
        cache.put(&key(&i.to_string()), b"v").await.unwrap();
        // a hit after every write keeps 0 the most recently used
        assert!(cache.get(&key("0")).await.unwrap().is_some(), "{i}");
    }
    let s = cache.stats().await.unwrap();
    assert_eq!((s.entries, s.evictions, s.writes), (10, 20, 30), "{s:?}");
    assert_eq!(s.max_entries, Some(10));
    assert!(cache.get(&key("0")).await.unwrap().is_some());
    for gone in ["1", "10", "20"] {
        assert!(cache.get(&key(gone)).await.unwrap().is_none(), "{gone}");
    }
    for kept in ["21", "29"] {
        assert!(cache.get(&key(kept)).await.unwrap().is_some(), "{kept}");
    }
}

/// A stored value the caller cannot decode is a miss: removed from Postgres (and every other
/// tier) and recomputed.
#[sqlx::test(migrator = "MIGRATOR")]
async fn an_undecodable_value_is_removed_and_recomputed(pool: PgPool) {
    let pg = PgCache::new(pool.clone());
    pg.put(&key("j"), b"{not json").await.unwrap();
    let cache = Cache::new(vec![
        Arc::new(MemoryStore::new(1 << 20)),
        Arc::new(pg.clone()),
    ]);
    let decode = |b: &[u8]| serde_json::from_slice::<u32>(b).map_err(|e| e.to_string());
    let (v, hit) = cache
        .get_or_compute_decoded(&key("j"), decode, || async {
            Ok::<_, Error>(b"7".to_vec())
        })
        .await
        .unwrap();
    assert_eq!((v, hit), (7, false));
    assert_eq!(pg.get(&key("j")).await.unwrap().as_deref(), Some(&b"7"[..]));
    let stats = cache.stats().await;
    assert_eq!(stats[1].1.as_ref().unwrap().corrupt, 1);
    pg.remove(&key("j")).await.unwrap();
    assert_eq!(pg.get(&key("j")).await.unwrap(), None);
}
