//! On-disk, content-addressed cache tier, bounded by bytes with least-recently-used eviction.
//!
//! Layout under the cache dir: `entries/<2 hex>/<64 hex>` holds one value each. An entry is
//! written to a temporary file created exclusively with an unpredictable name in the same
//! directory (`tempfile`; two processes with the same PID, e.g. in two containers sharing a
//! volume, never clash) and renamed into place, so a crash never leaves a torn entry.
//!
//! Entry format (version 2, magic `STC2`): magic, a blake3 checksum over the key **and** the
//! value, the 32-byte key, the value. An entry whose checksum fails, whose stored key differs from
//! the key looked up (e.g. a file copied or renamed over another entry) or whose format is not
//! version 2 is a miss and is removed, never a panic; entries of the previous format (`STC1`)
//! simply miss and are recomputed.
//!
//! **Bound.** The tier holds at most [`DiskStore::max_bytes`] bytes of entry files (default
//! [`DEFAULT_DISK_BYTES`] = 1 GiB; [`DISK_CACHE_BYTES_ENV`] overrides it for
//! [`crate::EngineBuilder`] and the CLI). A hit refreshes the entry's modification time; when the
//! tier grows past its bound, the least recently used entries (oldest modification time) are
//! deleted until it is back under 90 % of the bound. Deleting a file is atomic, so eviction is
//! crash-safe too. The running size is an estimate kept in `stats.json` and corrected by the
//! directory scan each eviction makes; one process evicts at a time (`evict.lock`), and
//! temporary files left by a crashed writer are removed by that scan after an hour. A value larger
//! than the whole bound is not stored.
//!
//! Hit/miss/write/eviction counters live in `stats.json`, updated under an exclusive file lock, so
//! `steadytext cache stats` sees the totals of every process that used the directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{CacheKey, CacheStore, StoreStats};
use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"STC2";
/// The previous format (checksum over the value only): a miss, removed.
const OLD_MAGIC: &[u8; 4] = b"STC1";
/// magic, checksum, key.
const HEADER: usize = 4 + 32 + 32;
const TMP_PREFIX: &str = ".tmp-";
/// Temporary files older than this are leftovers of a crashed writer.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// Default bound of the disk tier: 1 GiB of entry files.
pub const DEFAULT_DISK_BYTES: u64 = 1 << 30;

/// Environment variable overriding the disk tier's bound (bytes) for [`crate::EngineBuilder`]
/// and the CLI.
pub const DISK_CACHE_BYTES_ENV: &str = "STEADYTEXT_DISK_CACHE_BYTES";

/// The bound from [`DISK_CACHE_BYTES_ENV`] if it is set to a number, else [`DEFAULT_DISK_BYTES`].
pub fn disk_bytes_from_env() -> u64 {
    std::env::var(DISK_CACHE_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_DISK_BYTES)
}

/// Write `bytes` to `path` atomically: a temporary file created exclusively, with a random name,
/// in `dir` (same filesystem), flushed, then renamed over `path`. On failure the temporary file
/// is removed.
pub fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::cache_io(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempfile_in(dir)
        .map_err(Error::cache_io(dir))?;
    tmp.write_all(bytes).map_err(Error::cache_io(tmp.path()))?;
    tmp.as_file()
        .sync_data()
        .map_err(Error::cache_io(tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| Error::cache_io(path)(e.error))?;
    Ok(())
}

/// The checksum of an entry: blake3 over the key and the value.
fn checksum(key: &CacheKey, value: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("steadytext disk cache entry v2");
    h.update(&key.0);
    h.update(value);
    *h.finalize().as_bytes()
}

fn encode_entry(key: &CacheKey, value: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + value.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&checksum(key, value));
    bytes.extend_from_slice(&key.0);
    bytes.extend_from_slice(value);
    bytes
}

/// What a stored file holds for `key`.
enum Decoded<'a> {
    Value(&'a [u8]),
    /// The previous format: not corrupt, just stale.
    OldFormat,
    Corrupt(&'static str),
}

fn decode_entry<'a>(key: &CacheKey, bytes: &'a [u8]) -> Decoded<'a> {
    if bytes.len() >= 4 && &bytes[..4] == OLD_MAGIC {
        return Decoded::OldFormat;
    }
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Decoded::Corrupt("truncated or not a cache entry");
    }
    if bytes[36..HEADER] != key.0 {
        return Decoded::Corrupt("stored under another key");
    }
    let value = &bytes[HEADER..];
    if checksum(key, value) != bytes[4..36] {
        return Decoded::Corrupt("checksum mismatch");
    }
    Decoded::Value(value)
}

/// Counters persisted in `stats.json`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
struct PersistedStats {
    hits: u64,
    misses: u64,
    writes: u64,
    corrupt: u64,
    evictions: u64,
    /// Running estimate of the bytes of entry files (`None`: unknown, scan).
    bytes: Option<u64>,
}

/// The on-disk tier.
#[derive(Debug, Clone)]
pub struct DiskStore {
    dir: PathBuf,
    max_bytes: u64,
}

impl DiskStore {
    /// A store rooted at `dir` (created on first write), bounded by [`DEFAULT_DISK_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_max_bytes(dir, DEFAULT_DISK_BYTES)
    }

    /// A store rooted at `dir` holding at most `max_bytes` bytes of entry files.
    pub fn with_max_bytes(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            dir: dir.into(),
            max_bytes,
        }
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bound in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
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

    /// Remove the file at `path` and take its length off the running size.
    fn remove_file(&self, path: &Path, len: u64) -> bool {
        let removed = std::fs::remove_file(path).is_ok();
        if removed {
            self.bump(|s| {
                if let Some(b) = s.bytes.as_mut() {
                    *b = b.saturating_sub(len);
                }
            });
        }
        removed
    }

    fn get_sync(&self, key: &CacheKey) -> Option<Vec<u8>> {
        let (_, path) = self.entry_path(key);
        let mut file = File::open(&path).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        match decode_entry(key, &bytes) {
            Decoded::Value(value) => {
                // The modification time is the entry's last use, for eviction.
                if let Err(e) = file.set_modified(SystemTime::now()) {
                    tracing::debug!("cache entry {} not touched: {e}", path.display());
                }
                Some(value.to_vec())
            }
            Decoded::OldFormat => {
                self.remove_file(&path, bytes.len() as u64);
                None
            }
            Decoded::Corrupt(why) => {
                tracing::warn!("corrupt cache entry {} removed: {why}", path.display());
                self.remove_file(&path, bytes.len() as u64);
                self.bump(|s| s.corrupt += 1);
                None
            }
        }
    }

    /// Every entry file: (modification time, path, length). Stale temporary files are removed.
    fn scan(&self) -> Vec<(SystemTime, PathBuf, u64)> {
        let mut out = Vec::new();
        let Ok(shards) = std::fs::read_dir(self.entries_dir()) else {
            return out;
        };
        let now = SystemTime::now();
        for shard in shards.flatten() {
            for e in std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let Ok(meta) = e.metadata() else { continue };
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    if now.duration_since(mtime).unwrap_or_default() > STALE_TMP {
                        let _ = std::fs::remove_file(e.path());
                    }
                    continue;
                }
                if meta.is_file() {
                    out.push((mtime, e.path(), meta.len()));
                }
            }
        }
        out
    }

    /// Delete least recently used entries until the tier is under 90 % of its bound (when it is
    /// over the bound). Returns how many were deleted. Another process evicting at the same time
    /// makes this a no-op.
    pub fn evict(&self) -> Result<u64> {
        std::fs::create_dir_all(&self.dir).map_err(Error::cache_io(&self.dir))?;
        let lock_path = self.dir.join("evict.lock");
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(Error::cache_io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(0),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::cache_io(&lock_path)(e)),
        }
        let mut entries = self.scan();
        let mut total: u64 = entries.iter().map(|e| e.2).sum();
        let mut evicted = 0u64;
        if total > self.max_bytes {
            let low_water = self.max_bytes - self.max_bytes / 10;
            entries.sort();
            for (_, path, len) in entries {
                if total <= low_water {
                    break;
                }
                if std::fs::remove_file(&path).is_ok() {
                    total -= len;
                    evicted += 1;
                }
            }
        }
        self.bump(|s| {
            s.bytes = Some(total);
            s.evictions += evicted;
        });
        let _ = lock.unlock();
        if evicted > 0 {
            tracing::debug!(evicted, bytes = total, "disk cache evicted");
        }
        Ok(evicted)
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
        let bytes = encode_entry(key, value);
        let len = bytes.len() as u64;
        if len > self.max_bytes {
            return Ok(());
        }
        let (shard, path) = self.entry_path(key);
        let old = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        write_atomic(&shard, &path, &bytes)?;
        let mut over = false;
        self.bump(|s| {
            s.writes += 1;
            match s.bytes.as_mut() {
                Some(b) => {
                    *b = b.saturating_sub(old) + len;
                    over = *b > self.max_bytes;
                }
                // Unknown size (a directory of an older version): find it out.
                None => over = true,
            }
        });
        if over {
            self.evict()?;
        }
        Ok(())
    }

    async fn remove(&self, key: &CacheKey) -> Result<()> {
        let (_, path) = self.entry_path(key);
        if let Ok(meta) = std::fs::metadata(&path) {
            self.remove_file(&path, meta.len());
        }
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
        let entries = self.scan();
        Ok(StoreStats {
            hits: p.hits,
            misses: p.misses,
            writes: p.writes,
            evictions: p.evictions,
            corrupt: p.corrupt,
            errors: 0,
            entries: entries.len() as u64,
            bytes: entries.iter().map(|e| e.2).sum(),
            max_bytes: Some(self.max_bytes),
            max_entries: None,
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

    /// An entry file copied over another key's (valid checksum of its own value) is a miss for
    /// that key, removed; the checksum covers the key.
    #[tokio::test]
    async fn an_entry_under_the_wrong_key_is_a_miss_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::new(dir.path());
        store.put(&key("a"), b"value of a").await.unwrap();
        store.put(&key("b"), b"value of b").await.unwrap();
        let (_, pa) = store.entry_path(&key("a"));
        let (_, pb) = store.entry_path(&key("b"));
        std::fs::copy(&pa, &pb).unwrap();
        assert_eq!(store.get(&key("b")).await.unwrap(), None);
        assert!(!pb.exists(), "the swapped entry is removed");
        assert_eq!(
            store.get(&key("a")).await.unwrap().as_deref(),
            Some(&b"value of a"[..])
        );
        assert_eq!(store.stats().await.unwrap().corrupt, 1);

        // A file of the previous format (checksum over the value only) with the right value
        // still misses: old entries are recomputed.
        let mut old = b"STC1".to_vec();
        old.extend_from_slice(blake3::hash(b"value of b").as_bytes());
        old.extend_from_slice(b"value of b");
        std::fs::write(&pb, &old).unwrap();
        assert_eq!(store.get(&key("b")).await.unwrap(), None);
        assert!(!pb.exists());
    }

    fn set_mtime(path: &Path, secs_ago: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs_ago);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[tokio::test]
    async fn over_the_bound_the_least_recently_used_entries_are_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let entry = (HEADER + 100) as u64;
        // room for ten entries
        let store = DiskStore::with_max_bytes(dir.path(), 10 * entry + 50);
        for i in 0..10 {
            store
                .put(&key(&i.to_string()), &[i as u8; 100])
                .await
                .unwrap();
            // entry i was last used 100 - i seconds ago: 0 is the oldest
            set_mtime(&store.entry_path(&key(&i.to_string())).1, 100 - i);
        }
        let s = store.stats().await.unwrap();
        assert_eq!((s.entries, s.bytes, s.evictions), (10, 10 * entry, 0));
        assert_eq!(s.max_bytes, Some(10 * entry + 50));
        // a hit makes 0 the most recently used; 1 and 2 are now the oldest
        assert!(store.get(&key("0")).await.unwrap().is_some());
        store.put(&key("10"), &[10; 100]).await.unwrap();
        // over the bound: evicted down to 90 % of it (two entries)
        let s = store.stats().await.unwrap();
        assert_eq!((s.entries, s.evictions), (9, 2), "{s:?}");
        assert!(s.bytes <= (10 * entry + 50) * 9 / 10);
        for gone in ["1", "2"] {
            assert!(store.get(&key(gone)).await.unwrap().is_none(), "{gone}");
        }
        for kept in ["0", "3", "9", "10"] {
            assert!(store.get(&key(kept)).await.unwrap().is_some(), "{kept}");
        }
        // the bound holds across instances (other processes): the running size is persisted
        let other = DiskStore::with_max_bytes(dir.path(), 10 * entry + 50);
        for i in 11..30 {
            other.put(&key(&i.to_string()), &[1; 100]).await.unwrap();
            assert!(other.stats().await.unwrap().bytes <= 10 * entry + 50);
        }
        // a value larger than the whole bound is not stored
        other.put(&key("huge"), &[0; 2000]).await.unwrap();
        assert!(other.get(&key("huge")).await.unwrap().is_none());
    }

    /// A directory written before the size was tracked (no `bytes` in stats.json) is measured
    /// and brought under the bound on the first write.
    #[tokio::test]
    async fn an_untracked_directory_is_measured_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let big = DiskStore::with_max_bytes(dir.path(), u64::MAX);
        for i in 0..20 {
            big.put(&key(&i.to_string()), &[0; 100]).await.unwrap();
        }
        std::fs::write(dir.path().join("stats.json"), br#"{"hits":3}"#).unwrap();
        let small = DiskStore::with_max_bytes(dir.path(), 5 * (HEADER as u64 + 100));
        small.put(&key("new"), &[1; 100]).await.unwrap();
        let s = small.stats().await.unwrap();
        assert!(s.entries <= 5, "{s:?}");
        assert_eq!(s.hits, 3);
        assert!(small.get(&key("new")).await.unwrap().is_some());
    }

    /// Temporary files are created exclusively with random names: a file at the name the old
    /// scheme (`.tmp-<pid>-<n>`) would pick, e.g. another container's process with the same PID
    /// mid-write, is never truncated or renamed away.
    #[tokio::test]
    async fn temporary_files_never_clash_with_another_writer_of_the_same_pid() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::new(dir.path());
        let (shard, _) = store.entry_path(&key("x"));
        std::fs::create_dir_all(&shard).unwrap();
        let pid = std::process::id();
        for n in 0..512 {
            std::fs::write(shard.join(format!(".tmp-{pid}-{n}")), b"another writer").unwrap();
        }
        store.put(&key("x"), b"mine").await.unwrap();
        assert_eq!(
            store.get(&key("x")).await.unwrap().as_deref(),
            Some(&b"mine"[..])
        );
        for n in 0..512 {
            assert_eq!(
                std::fs::read(shard.join(format!(".tmp-{pid}-{n}"))).unwrap(),
                b"another writer",
                "temporary file {n} was touched"
            );
        }
    }

    /// Many writers of the same key (separate store instances, as separate processes would be)
    /// and readers at once: a reader sees one complete value or nothing, never a torn or corrupt
    /// entry, and no write fails.
    #[test]
    fn concurrent_writers_of_the_same_key_never_clash() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<Vec<u8>> = (0..4u8)
            .map(|w| vec![w; 1000 + 5000 * w as usize])
            .collect();
        std::thread::scope(|scope| {
            for w in 0..4 {
                let (dir, values) = (dir.path(), &values);
                scope.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    let store = DiskStore::new(dir);
                    for _ in 0..40 {
                        rt.block_on(store.put(&key("same"), &values[w])).unwrap();
                        if let Some(v) = rt.block_on(store.get(&key("same"))).unwrap() {
                            assert!(values.contains(&v), "a torn value of {} bytes", v.len());
                        }
                    }
                });
            }
        });
        let store = DiskStore::new(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let s = rt.block_on(store.stats()).unwrap();
        assert_eq!((s.corrupt, s.entries, s.writes), (0, 1, 160), "{s:?}");
        let left: Vec<_> = std::fs::read_dir(store.entry_path(&key("same")).0)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary files left: {left:?}");
    }
}
