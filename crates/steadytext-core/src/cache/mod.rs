//! The result cache: tiers behind the [`CacheStore`] trait, looked up in order, with back-fill
//! of faster tiers and single-flight computation of concurrent identical requests.
//!
//! A cache tier never fails a request: a tier error is logged, counted and treated as a miss.
//! A stored value the caller cannot decode ([`Cache::get_or_compute_decoded`]) is a miss too: it
//! is removed from every tier, counted as corrupt, and recomputed.
//!
//! Every tier is bounded (defaults: memory [`DEFAULT_MEMORY_BYTES`], disk [`DEFAULT_DISK_BYTES`],
//! Postgres see `steadytext_pg::PgCache`) and evicts its least recently used entries; the bounds
//! and eviction counts are in [`StoreStats`].

mod disk;
mod key;
mod memory;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use disk::{
    disk_bytes_from_env, write_atomic, DiskStore, DEFAULT_DISK_BYTES, DISK_CACHE_BYTES_ENV,
};
pub use key::{canonical_json, CacheKey, KeyParts, KEY_VERSION};
pub use memory::{MemoryStore, DEFAULT_MEMORY_BYTES};

use crate::error::Result;

/// Counters one tier reports.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Lookups that found a value.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Values written.
    pub writes: u64,
    /// Values evicted to stay within a bound.
    pub evictions: u64,
    /// Corrupt entries found (and dropped).
    pub corrupt: u64,
    /// Tier errors (I/O, database) seen by the [`Cache`] and treated as misses.
    pub errors: u64,
    /// Entries currently held.
    pub entries: u64,
    /// Bytes currently held.
    pub bytes: u64,
    /// The tier's bound in bytes, if it has one.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// The tier's bound in entries, if it has one.
    #[serde(default)]
    pub max_entries: Option<u64>,
}

/// One cache tier. Implementations must be safe to share between tasks.
#[async_trait]
pub trait CacheStore: Send + Sync {
    /// A short name for stats and logs (`memory`, `disk`, `postgres`).
    fn name(&self) -> &str;
    /// The value stored under `key`, if any.
    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>>;
    /// Store `value` under `key` (replacing any previous value).
    async fn put(&self, key: &CacheKey, value: &[u8]) -> Result<()>;
    /// Remove the entry under `key`, if any (a stored value that does not decode).
    async fn remove(&self, key: &CacheKey) -> Result<()>;
    /// Remove every entry.
    async fn clear(&self) -> Result<()>;
    /// Current counters.
    async fn stats(&self) -> Result<StoreStats>;
}

/// A lookup's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Found, in the tier with this name.
    Hit(String, Vec<u8>),
    /// Not in any tier.
    Miss,
}

type Inflight = Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>;

/// An ordered list of tiers (fastest first) plus single-flight bookkeeping.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use steadytext_core::cache::{Cache, KeyParts};
/// let dir = tempfile::tempdir().unwrap();
/// let cache = Cache::memory_and_disk(1 << 20, dir.path());
/// let key = KeyParts { model: "m", operation: "generate", prompt: "p", params: serde_json::json!({}) }.key();
/// let (v, cached) = cache.get_or_compute(&key, || async { Ok::<_, steadytext_core::Error>(b"computed".to_vec()) }).await.unwrap();
/// assert!(!cached);
/// let (v2, cached) = cache.get_or_compute(&key, || async { Ok::<_, steadytext_core::Error>(b"recomputed".to_vec()) }).await.unwrap();
/// assert!(cached && v == v2);
/// # });
/// ```
pub struct Cache {
    tiers: Vec<Arc<dyn CacheStore>>,
    errors: Vec<AtomicU64>,
    corrupt: Vec<AtomicU64>,
    inflight: Inflight,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tiers.iter().map(|t| t.name()).collect();
        f.debug_struct("Cache").field("tiers", &names).finish()
    }
}

impl Cache {
    /// A cache over the given tiers, fastest first.
    pub fn new(tiers: Vec<Arc<dyn CacheStore>>) -> Self {
        Self {
            errors: tiers.iter().map(|_| AtomicU64::new(0)).collect(),
            corrupt: tiers.iter().map(|_| AtomicU64::new(0)).collect(),
            tiers,
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// No tiers: every lookup misses (single-flight still applies).
    pub fn disabled() -> Self {
        Self::new(Vec::new())
    }

    /// The default stack: a memory tier of `memory_bytes` over a disk tier at `dir`.
    pub fn memory_and_disk(memory_bytes: usize, dir: &Path) -> Self {
        Self::new(vec![
            Arc::new(MemoryStore::new(memory_bytes)),
            Arc::new(DiskStore::new(dir)),
        ])
    }

    /// Add a slower tier at the end (e.g. a shared Postgres tier).
    pub fn with_tier(mut self, tier: Arc<dyn CacheStore>) -> Self {
        self.tiers.push(tier);
        self.errors.push(AtomicU64::new(0));
        self.corrupt.push(AtomicU64::new(0));
        self
    }

    /// The tiers, fastest first.
    pub fn tiers(&self) -> &[Arc<dyn CacheStore>] {
        &self.tiers
    }

    fn tier_error(&self, i: usize, what: &str, e: crate::Error) {
        self.errors[i].fetch_add(1, Ordering::Relaxed);
        tracing::warn!("cache tier {} {what} failed: {e}", self.tiers[i].name());
    }

    /// Look `key` up tier by tier; a hit back-fills the faster tiers.
    pub async fn get(&self, key: &CacheKey) -> Lookup {
        match self.get_indexed(key).await {
            Some((i, value)) => Lookup::Hit(self.tiers[i].name().to_string(), value),
            None => Lookup::Miss,
        }
    }

    /// [`Cache::get`] with the index of the tier that answered.
    async fn get_indexed(&self, key: &CacheKey) -> Option<(usize, Vec<u8>)> {
        for (i, tier) in self.tiers.iter().enumerate() {
            match tier.get(key).await {
                Ok(Some(value)) => {
                    for (j, faster) in self.tiers[..i].iter().enumerate() {
                        if let Err(e) = faster.put(key, &value).await {
                            self.tier_error(j, "back-fill", e);
                        }
                    }
                    return Some((i, value));
                }
                Ok(None) => {}
                Err(e) => self.tier_error(i, "get", e),
            }
        }
        None
    }

    /// Remove `key` from every tier.
    pub async fn remove(&self, key: &CacheKey) {
        for (i, tier) in self.tiers.iter().enumerate() {
            if let Err(e) = tier.remove(key).await {
                self.tier_error(i, "remove", e);
            }
        }
    }

    /// Store `value` in every tier.
    pub async fn put(&self, key: &CacheKey, value: &[u8]) {
        for (i, tier) in self.tiers.iter().enumerate() {
            if let Err(e) = tier.put(key, value).await {
                self.tier_error(i, "put", e);
            }
        }
    }

    /// The cached value for `key`, or the result of `compute` (then stored). Concurrent calls
    /// with the same key compute once: the others wait and read the stored value. Returns the
    /// value and whether it came from the cache.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: &CacheKey,
        compute: F,
    ) -> Result<(Vec<u8>, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        self.single_flight(key, async {
            match self.get(key).await {
                Lookup::Hit(_, v) => Ok((v, true)),
                Lookup::Miss => {
                    let v = compute().await?;
                    self.put(key, &v).await;
                    Ok((v, false))
                }
            }
        })
        .await
    }

    /// [`Cache::get_or_compute`] for values stored in an encoding: `decode` turns stored bytes
    /// into the value. A stored value that does not decode is a miss: it is removed from every
    /// tier (counted as `corrupt` of the tier that held it) and recomputed. A freshly computed
    /// value that does not decode is an [`Error::CacheStore`](crate::Error::CacheStore) (store
    /// `decode`) and is not stored.
    pub async fn get_or_compute_decoded<T, D, F, Fut, E>(
        &self,
        key: &CacheKey,
        decode: D,
        compute: F,
    ) -> Result<(T, bool), E>
    where
        D: Fn(&[u8]) -> Result<T, String>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
        E: From<crate::Error>,
    {
        self.single_flight(key, async {
            if let Some((i, stored)) = self.get_indexed(key).await {
                match decode(&stored) {
                    Ok(v) => return Ok((v, true)),
                    Err(reason) => {
                        self.corrupt[i].fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "cache entry {key} from tier {} does not decode ({reason}): removed, \
                             recomputing",
                            self.tiers[i].name()
                        );
                        self.remove(key).await;
                    }
                }
            }
            let fresh = compute().await?;
            let value = decode(&fresh).map_err(|reason| crate::Error::CacheStore {
                store: "decode".into(),
                reason: format!("a computed value for {key} does not decode: {reason}"),
            })?;
            self.put(key, &fresh).await;
            Ok((value, false))
        })
        .await
    }

    /// Run `body` under `key`'s gate: one body per key at a time, so a caller that waited for
    /// another's computation finds its stored value.
    async fn single_flight<R>(&self, key: &CacheKey, body: impl Future<Output = R>) -> R {
        let gate = {
            let mut map = self.inflight.lock().expect("inflight lock");
            map.entry(*key).or_default().clone()
        };
        let guard = gate.lock().await;
        let result = body.await;
        drop(guard);
        let mut map = self.inflight.lock().expect("inflight lock");
        if Arc::strong_count(&gate) <= 2 {
            map.remove(key);
        }
        result
    }

    /// Per-tier counters (tier errors included).
    pub async fn stats(&self) -> Vec<(String, Result<StoreStats>)> {
        let mut out = Vec::new();
        for (i, tier) in self.tiers.iter().enumerate() {
            let s = tier.stats().await.map(|mut s| {
                s.errors += self.errors[i].load(Ordering::Relaxed);
                s.corrupt += self.corrupt[i].load(Ordering::Relaxed);
                s
            });
            out.push((tier.name().to_string(), s));
        }
        out
    }

    /// Clear every tier.
    pub async fn clear(&self) -> Result<()> {
        for tier in &self.tiers {
            tier.clear().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn key(s: &str) -> CacheKey {
        KeyParts {
            model: "m",
            operation: "generate",
            prompt: s,
            params: serde_json::json!({}),
        }
        .key()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_identical_requests_compute_once() {
        let cache = Arc::new(Cache::new(vec![Arc::new(MemoryStore::new(1 << 20))]));
        let computed = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, computed) = (cache.clone(), computed.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_compute(&key("same"), || async {
                        computed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        Ok::<_, crate::Error>(b"v".to_vec())
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut from_cache = 0;
        for t in tasks {
            let (v, cached) = t.await.unwrap();
            assert_eq!(v, b"v");
            from_cache += cached as usize;
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        assert_eq!(from_cache, 7);
    }

    #[tokio::test]
    async fn disk_hit_back_fills_memory() {
        let dir = tempfile::tempdir().unwrap();
        DiskStore::new(dir.path())
            .put(&key("k"), b"v")
            .await
            .unwrap();
        let cache = Cache::memory_and_disk(1 << 20, dir.path());
        assert_eq!(
            cache.get(&key("k")).await,
            Lookup::Hit("disk".into(), b"v".to_vec())
        );
        assert_eq!(
            cache.get(&key("k")).await,
            Lookup::Hit("memory".into(), b"v".to_vec())
        );
    }
}
