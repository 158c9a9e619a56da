//! On-disk, content-addressed cache tier.
//!
//! Layout under the cache dir: `entries/<2 hex>/<64 hex>` holds one value each, written to a
//! temporary file in the same directory and renamed into place, so a crash never leaves a torn
//! entry. Each entry carries a magic, a format version and a blake3 checksum of its payload: a
//! corrupt or foreign file is a miss (and is removed), never a panic. Hit/miss/write counters live
//! in `stats.json`, updated under an exclusive file lock, so `steadytext cache stats` sees the
//! totals of every process that used the directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{CacheKey, CacheStore, StoreStats};
use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"STC1";
const HEADER: usize = 4 + 32;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `path` atomically: a temporary file in `dir` (same filesystem), flushed, then
/// renamed over `path`.
pub fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::cache_io(dir))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(Error::cache_io(path))
}

/// Counters persisted in `stats.json`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct PersistedStats {
    hits: u64,
    misses: u64,
    writes: u64,
    corrupt: u64,
}

/// The on-disk tier.
#[derive(Debug, Clone)]
pub struct DiskStore {
    dir: PathBuf,
}

impl DiskStore {
    /// A store rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entries_dir(&self) -> PathBuf {
        self.dir.join("entries")
    }

    fn entry_path(&self, key: &CacheKey) -> (PathBuf, PathBuf) {
        let hex = key.to_hex();
        let shard = self.entries_dir().join(&hex[..2]);
        let path = shard.join(&hex);
        (shard, path)
    }

    fn bump(&self, f: impl FnOnce(&mut PersistedStats)) {
        if let Err(e) = self.update_stats(f) {
            tracing::debug!("disk cache stats not updated: {e}");
        }
    }

    fn update_stats(&self, f: impl FnOnce(&mut PersistedStats)) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join("stats.json");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        file.lock()?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        let mut stats: PersistedStats = serde_json::from_slice(&buf).unwrap_or_default();
        f(&mut stats);
        let out = serde_json::to_vec(&stats).unwrap_or_default();
        file.seek(SeekFrom::Start(0))?;
        file.set_len(0)?;
        file.write_all(&out)?;
        file.unlock()
    }

    fn read_stats(&self) -> PersistedStats {
        std::fs::read(self.dir.join("stats.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn get_sync(&self, key: &CacheKey) -> Option<Vec<u8>> {
        let (_, path) = self.entry_path(key);
        let bytes = std::fs::read(&path).ok()?;
        let valid = bytes.len() >= HEADER
            && &bytes[..4] == MAGIC
            && blake3::hash(&bytes[HEADER..]).as_bytes() == &bytes[4..HEADER];
        if valid {
            Some(bytes[HEADER..].to_vec())
        } else {
            tracing::warn!("corrupt cache entry {} removed", path.display());
            let _ = std::fs::remove_file(&path);
            self.bump(|s| s.corrupt += 1);
            None
        }
    }
}

#[async_trait]
impl CacheStore for DiskStore {
    fn name(&self) -> &str {
        "disk"
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>> {
        let value = self.get_sync(key);
        match &value {
            Some(_) => self.bump(|s| s.hits += 1),
            None => self.bump(|s| s.misses += 1),
        }
        Ok(value)
    }

    async fn put(&self, key: &CacheKey, value: &[u8]) -> Result<()> {
        let (shard, path) = self.entry_path(key);
        let mut bytes = Vec::with_capacity(HEADER + value.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(blake3::hash(value).as_bytes());
        bytes.extend_from_slice(value);
        write_atomic(&shard, &path, &bytes)?;
        self.bump(|s| s.writes += 1);
        Ok(())
    }

    async fn clear(&self) -> Result<()> {
        let entries = self.entries_dir();
        if entries.exists() {
            std::fs::remove_dir_all(&entries).map_err(Error::cache_io(&entries))?;
        }
        let stats = self.dir.join("stats.json");
        if stats.exists() {
            std::fs::remove_file(&stats).map_err(Error::cache_io(&stats))?;
        }
        Ok(())
    }

    async fn stats(&self) -> Result<StoreStats> {
        let p = self.read_stats();
        let (mut entries, mut bytes) = (0u64, 0u64);
        if let Ok(shards) = std::fs::read_dir(self.entries_dir()) {
            for shard in shards.flatten() {
                for e in std::fs::read_dir(shard.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let name = e.file_name();
                    if name.to_string_lossy().starts_with(".tmp-") {
                        continue;
                    }
                    entries += 1;
                    bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                }
            }
        }
        Ok(StoreStats {
            hits: p.hits,
            misses: p.misses,
            writes: p.writes,
            evictions: 0,
            corrupt: p.corrupt,
            errors: 0,
            entries,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::KeyParts;

    fn key(s: &str) -> CacheKey {
        KeyParts {
            model: "m",
            operation: "generate",
            prompt: s,
            params: serde_json::json!({}),
        }
        .key()
    }

    #[tokio::test]
    async fn round_trip_persists_stats_across_instances() {
        let dir = tempfile::tempdir().unwrap();
        let a = DiskStore::new(dir.path());
        assert!(a.get(&key("x")).await.unwrap().is_none());
        a.put(&key("x"), b"hello").await.unwrap();
        let b = DiskStore::new(dir.path());
        assert_eq!(
            b.get(&key("x")).await.unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        let s = b.stats().await.unwrap();
        assert_eq!((s.hits, s.misses, s.writes, s.entries), (1, 1, 1, 1));
    }

    #[tokio::test]
    async fn corrupt_or_truncated_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::new(dir.path());
        store.put(&key("x"), b"hello world").await.unwrap();
        let (_, path) = store.entry_path(&key("x"));
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(store.get(&key("x")).await.unwrap().is_none());
        assert!(!path.exists(), "a corrupt entry is removed");
        std::fs::write(&path, b"ST").unwrap();
        assert!(store.get(&key("x")).await.unwrap().is_none());
        assert_eq!(store.stats().await.unwrap().corrupt, 2);
    }
}
