//! The engine's result cache over a deterministic test backend (no inference here: the cache
//! logic is what is tested; the real model is covered by `generate.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use steadytext_core::cache::{CacheKey, CacheStore, DiskStore, MemoryStore};
use steadytext_core::{
    Backend, Cache, CompletionRequest, Engine, FinishReason, GenerateOptions, Generation, Result,
};

/// Echoes the prompt reversed and counts how often it was asked.
#[derive(Default)]
struct CountingBackend {
    calls: AtomicUsize,
}

#[async_trait]
impl Backend for CountingBackend {
    fn identity(&self) -> &str {
        "test/counting-backend"
    }
    fn context_length(&self) -> usize {
        2048
    }
    fn render_chat(&self, user: &str) -> Result<String> {
        Ok(format!("<user>{user}</user>"))
    }
    fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(text.split_whitespace().count())
    }
    async fn complete(&self, request: CompletionRequest) -> Result<Generation> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Generation {
            text: request.prompt.chars().rev().collect(),
            prompt_tokens: 1,
            completion_tokens: 1,
            finish_reason: FinishReason::Stop,
            cached: false,
        })
    }
}

/// The single entry file of a disk tier and the key it is stored under.
fn only_entry(dir: &std::path::Path) -> CacheKey {
    let mut keys = Vec::new();
    for shard in std::fs::read_dir(dir.join("entries")).unwrap().flatten() {
        for e in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let hex = e.file_name().to_string_lossy().to_string();
            let mut key = [0u8; 32];
            for (i, b) in key.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
            }
            keys.push(CacheKey(key));
        }
    }
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys[0]
}

/// A stored entry that does not decode (a value written by an older, incompatible version, or
/// any other garbage with a valid checksum) is a miss: removed from every tier, recomputed,
/// stored again; it is not a permanent error for that key.
#[tokio::test]
async fn an_entry_that_does_not_decode_is_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(CountingBackend::default());
    let opts = GenerateOptions::default().max_tokens(8);
    let first = Engine::new(backend.clone(), Cache::memory_and_disk(1 << 20, dir.path()));
    let good = first.generate("hello there", &opts).await.unwrap();
    // The test backend answers its rendered prompt reversed.
    assert_eq!(
        (good.text.as_str(), good.cached),
        (">resu/<ereht olleh>resu<", false)
    );
    let key = only_entry(dir.path());

    // Another process finds garbage under the key, in its memory tier and on disk.
    let disk = Arc::new(DiskStore::new(dir.path()));
    disk.put(&key, b"{\"text\": 17").await.unwrap();
    let memory = Arc::new(MemoryStore::new(1 << 20));
    memory.put(&key, b"not json at all").await.unwrap();
    let engine = Engine::new(
        backend.clone(),
        Cache::new(vec![memory.clone(), disk.clone()]),
    );
    let again = engine.generate("hello there", &opts).await.unwrap();
    assert_eq!(again.text, good.text);
    assert!(!again.cached, "recomputed, not served from the cache");
    assert_eq!(backend.calls.load(Ordering::SeqCst), 2);
    // Both tiers now hold the recomputed value, and the next call is a hit.
    for tier in [&*memory as &dyn CacheStore, &*disk as &dyn CacheStore] {
        let stored = tier.get(&key).await.unwrap().expect("stored again");
        let g: Generation = serde_json::from_slice(&stored).unwrap();
        assert_eq!(g.text, good.text);
    }
    let hit = engine.generate("hello there", &opts).await.unwrap();
    assert!(hit.cached);
    assert_eq!(backend.calls.load(Ordering::SeqCst), 2);
    let stats = engine.cache().stats().await;
    assert_eq!(stats[0].0, "memory");
    assert_eq!(stats[0].1.as_ref().unwrap().corrupt, 1);
}

/// The builder's disk tier is bounded (default 1 GiB, or as configured) and its stats show it.
#[tokio::test]
async fn the_builders_disk_tier_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let default = Engine::builder().cache_dir(dir.path()).build_cache();
    let stats = default.stats().await;
    let disk = stats.iter().find(|(n, _)| n == "disk").unwrap();
    let expected = std::env::var("STEADYTEXT_DISK_CACHE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1u64 << 30);
    assert_eq!(disk.1.as_ref().unwrap().max_bytes, Some(expected));

    let small = Engine::builder()
        .cache_dir(dir.path())
        .memory_cache_bytes(0)
        .disk_cache_bytes(1000)
        .build_cache();
    let engine = Engine::new(Arc::new(CountingBackend::default()), small);
    for i in 0..40 {
        engine
            .generate(
                &format!("prompt number {i}"),
                &GenerateOptions::default().max_tokens(8),
            )
            .await
            .unwrap();
    }
    let stats = engine.cache().stats().await;
    let s = stats[0].1.as_ref().unwrap();
    assert_eq!(s.max_bytes, Some(1000));
    assert!(s.bytes <= 1000 && s.evictions > 0, "{s:?}");
}
