//! In-memory cache tier, bounded by bytes, least-recently-used eviction.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use std::sync::Mutex;

use super::{CacheKey, CacheStore, StoreStats};
use crate::error::Result;

/// Default bound: 64 MiB.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;

struct Entry {
    value: Arc<[u8]>,
    tick: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<CacheKey, Entry>,
    order: BTreeMap<u64, CacheKey>,
    bytes: usize,
    tick: u64,
    stats: StoreStats,
}

/// A byte-bounded LRU map. Values larger than the bound are not stored.
///
/// ```
/// # tokio_test_block_on(async {
/// use steadytext_core::cache::{CacheStore, MemoryStore, KeyParts};
/// let store = MemoryStore::new(1024);
/// let key = KeyParts { model: "m", operation: "generate", prompt: "p", params: serde_json::json!({}) }.key();
/// store.put(&key, b"value").await.unwrap();
/// assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"value"[..]));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct MemoryStore {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// A store holding at most `max_bytes` of values (keys and bookkeeping are not counted).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }
}

impl Inner {
    fn touch(&mut self, key: &CacheKey) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(e) = self.map.get_mut(key) {
            self.order.remove(&e.tick);
            e.tick = tick;
            self.order.insert(tick, *key);
        }
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    fn name(&self) -> &str {
        "memory"
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>> {
        let mut inner = self.inner.lock().expect("memory cache lock");
        let value = inner.map.get(key).map(|e| e.value.to_vec());
        match value {
            Some(v) => {
                inner.touch(key);
                inner.stats.hits += 1;
                Ok(Some(v))
            }
            None => {
                inner.stats.misses += 1;
                Ok(None)
            }
        }
    }

    async fn put(&self, key: &CacheKey, value: &[u8]) -> Result<()> {
        if value.len() > self.max_bytes {
            return Ok(());
        }
        let mut inner = self.inner.lock().expect("memory cache lock");
        if let Some(old) = inner.map.remove(key) {
            inner.order.remove(&old.tick);
            inner.bytes -= old.value.len();
        }
        while inner.bytes + value.len() > self.max_bytes {
            let Some((_, victim)) = inner.order.pop_first() else {
                break;
            };
            if let Some(e) = inner.map.remove(&victim) {
                inner.bytes -= e.value.len();
                inner.stats.evictions += 1;
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.order.insert(tick, *key);
        inner.bytes += value.len();
        inner.map.insert(
            *key,
            Entry {
                value: value.into(),
                tick,
            },
        );
        inner.stats.writes += 1;
        Ok(())
    }

    async fn remove(&self, key: &CacheKey) -> Result<()> {
        let mut inner = self.inner.lock().expect("memory cache lock");
        if let Some(old) = inner.map.remove(key) {
            inner.order.remove(&old.tick);
            inner.bytes -= old.value.len();
        }
        Ok(())
    }

    async fn clear(&self) -> Result<()> {
        let mut inner = self.inner.lock().expect("memory cache lock");
        inner.map.clear();
        inner.order.clear();
        inner.bytes = 0;
        Ok(())
    }

    async fn stats(&self) -> Result<StoreStats> {
        let inner = self.inner.lock().expect("memory cache lock");
        Ok(StoreStats {
            entries: inner.map.len() as u64,
            bytes: inner.bytes as u64,
            max_bytes: Some(self.max_bytes as u64),
            ..inner.stats.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::KeyParts;

    fn key(i: usize) -> CacheKey {
        KeyParts {
            model: "m",
            operation: "generate",
            prompt: &i.to_string(),
            params: serde_json::json!({}),
        }
        .key()
    }

    #[tokio::test]
    async fn evicts_least_recently_used_within_the_byte_bound() {
        let store = MemoryStore::new(30);
        store.put(&key(1), &[1; 10]).await.unwrap();
        store.put(&key(2), &[2; 10]).await.unwrap();
        store.put(&key(3), &[3; 10]).await.unwrap();
        // touch 1 so 2 is the oldest
        assert!(store.get(&key(1)).await.unwrap().is_some());
        store.put(&key(4), &[4; 10]).await.unwrap();
        assert!(store.get(&key(2)).await.unwrap().is_none());
        assert!(store.get(&key(1)).await.unwrap().is_some());
        let s = store.stats().await.unwrap();
        assert_eq!((s.entries, s.bytes, s.evictions), (3, 30, 1));
        // too large for the bound: not stored, nothing evicted
        store.put(&key(5), &[5; 31]).await.unwrap();
        assert!(store.get(&key(5)).await.unwrap().is_none());
        assert_eq!(store.stats().await.unwrap().entries, 3);
        assert_eq!(store.stats().await.unwrap().max_bytes, Some(30));
    }

    #[tokio::test]
    async fn remove_frees_the_entry_and_its_bytes() {
        let store = MemoryStore::new(30);
        store.put(&key(1), &[1; 10]).await.unwrap();
        store.put(&key(2), &[2; 10]).await.unwrap();
        store.remove(&key(1)).await.unwrap();
        store.remove(&key(9)).await.unwrap();
        assert!(store.get(&key(1)).await.unwrap().is_none());
        let s = store.stats().await.unwrap();
        assert_eq!((s.entries, s.bytes), (1, 10));
        // the freed bytes are usable without evicting the other entry
        store.put(&key(3), &[3; 20]).await.unwrap();
        assert!(store.get(&key(2)).await.unwrap().is_some());
    }
}
