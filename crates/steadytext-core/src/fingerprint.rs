//! Model fingerprints: blake3 of the weights file, computed once and memoised on disk by
//! (canonical path, size, mtime), so a cache key always names the exact weights that produced it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Name of the memo file inside the cache dir.
const MEMO_FILE: &str = "fingerprints.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Memo {
    /// canonical path -> entry
    entries: BTreeMap<String, MemoEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct MemoEntry {
    size: u64,
    mtime_ns: u128,
    blake3: String,
}

/// Hash a whole file with blake3 (hex).
pub fn hash_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(Error::cache_io(path))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(Error::cache_io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// The blake3 fingerprint of `model`, memoised in `memo_dir` (usually the cache dir).
///
/// A memo entry is reused only while the file's size and modification time are unchanged; a
/// missing or unreadable memo just means hashing again. The memo is written atomically.
pub fn model_fingerprint(model: &Path, memo_dir: Option<&Path>) -> Result<String> {
    let canonical = std::fs::canonicalize(model).map_err(Error::cache_io(model))?;
    let meta = std::fs::metadata(&canonical).map_err(Error::cache_io(&canonical))?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let key = canonical.display().to_string();
    let memo_path: Option<PathBuf> = memo_dir.map(|d| d.join(MEMO_FILE));
    let mut memo: Memo = memo_path
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(e) = memo.entries.get(&key) {
        if e.size == meta.len() && e.mtime_ns == mtime_ns && mtime_ns != 0 {
            return Ok(e.blake3.clone());
        }
    }
    let hash = hash_file(&canonical)?;
    if let (Some(path), Some(dir)) = (memo_path, memo_dir) {
        memo.entries.insert(
            key,
            MemoEntry {
                size: meta.len(),
                mtime_ns,
                blake3: hash.clone(),
            },
        );
        // Best effort: failing to memoise only costs a re-hash next time.
        let bytes = serde_json::to_vec_pretty(&memo).unwrap_or_default();
        if let Err(e) = crate::cache::write_atomic(dir, &path, &bytes) {
            tracing::debug!("could not memoise the model fingerprint: {e}");
        }
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_is_used_and_invalidated_by_change() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"weights v1").unwrap();
        let a = model_fingerprint(&model, Some(dir.path())).unwrap();
        assert_eq!(a, blake3::hash(b"weights v1").to_hex().to_string());
        assert!(dir.path().join(MEMO_FILE).is_file());
        assert_eq!(model_fingerprint(&model, Some(dir.path())).unwrap(), a);
        std::fs::write(&model, b"weights v2, longer").unwrap();
        let b = model_fingerprint(&model, Some(dir.path())).unwrap();
        assert_eq!(b, blake3::hash(b"weights v2, longer").to_hex().to_string());
    }
}
