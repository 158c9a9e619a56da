//! Shared test fixtures: one loaded model per test binary.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use steadytext_core::{Backend, Cache, Engine, LocalBackend};

/// The real default model, loaded once per test binary (its fingerprint memo and re-quantised
/// weights live in the model dir, as in production).
pub fn backend() -> Arc<LocalBackend> {
    static BACKEND: OnceLock<Arc<LocalBackend>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            Arc::new(
                Engine::builder()
                    .build_backend()
                    .expect("the default model loads (missing? run scripts/fetch-model)"),
            )
        })
        .clone()
}

/// An engine over the shared model with no cache.
pub fn uncached() -> Engine {
    Engine::new(backend() as Arc<dyn Backend>, Cache::disabled())
}

/// An engine over the shared model with a fresh memory + disk cache in `dir`.
pub fn cached(dir: &std::path::Path) -> Engine {
    Engine::new(
        backend() as Arc<dyn Backend>,
        Cache::memory_and_disk(1 << 20, dir),
    )
}
