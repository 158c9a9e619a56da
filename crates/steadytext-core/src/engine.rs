//! [`Engine`]: the front door. It owns a backend and a cache and turns every call into a pure,
//! cached function of its inputs.

use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::{Backend, CompletionRequest};
use crate::cache::{Cache, KeyParts, DEFAULT_MEMORY_BYTES};
use crate::error::{Error, Result};
use crate::llama::Requantize;
use crate::local::{LocalBackend, LocalOptions};
use crate::model_location::{cache_dir, model_dir, resolve_model};
use crate::options::{GenerateOptions, Generation};

/// Deterministic, cached generation over a [`Backend`].
///
/// ```no_run
/// # async fn demo() -> steadytext_core::Result<()> {
/// use steadytext_core::{Engine, GenerateOptions};
/// let engine = Engine::builder().build()?; // finds the default model, see `resolve_model`
/// let out = engine
///     .generate("Summarize in one sentence: great product, slow shipping.", &GenerateOptions::default().max_tokens(40))
///     .await?;
/// println!("{}", out.text);
/// // The same call again is a cache hit with the same text.
/// assert!(engine.generate("Summarize in one sentence: great product, slow shipping.", &GenerateOptions::default().max_tokens(40)).await?.cached);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Engine {
    backend: Arc<dyn Backend>,
    cache: Arc<Cache>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.backend.identity())
            .field("cache", &self.cache)
            .finish()
    }
}

impl Engine {
    /// A builder that loads a local GGUF model.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// An engine over any backend and cache.
    pub fn new(backend: Arc<dyn Backend>, cache: Cache) -> Self {
        Self {
            backend,
            cache: Arc::new(cache),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// The prompt as the model will see it.
    pub fn render_prompt(&self, prompt: &str, chat: bool) -> Result<String> {
        if prompt.trim().is_empty() {
            return Err(Error::EmptyPrompt);
        }
        if chat {
            self.backend.render_chat(prompt)
        } else {
            Ok(prompt.to_string())
        }
    }

    pub(crate) fn check_max_tokens(&self, max_tokens: usize) -> Result<()> {
        let context = self.backend.context_length();
        if max_tokens == 0 || max_tokens > context {
            return Err(Error::InvalidMaxTokens {
                max_tokens,
                context,
            });
        }
        Ok(())
    }

    /// Run `compute` through the cache under `parts` (unless `use_cache` is false), serialising
    /// the value as JSON. Returns the value and whether it was a cache hit.
    pub(crate) async fn cached<T, F, Fut>(
        &self,
        parts: KeyParts<'_>,
        use_cache: bool,
        compute: F,
    ) -> Result<(T, bool)>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        if !use_cache {
            return Ok((compute().await?, false));
        }
        let key = parts.key();
        let (bytes, hit) = self
            .cache
            .get_or_compute(&key, || async {
                let value = compute().await?;
                serde_json::to_vec(&value).map_err(|e| Error::CacheStore {
                    store: "encode".into(),
                    reason: e.to_string(),
                })
            })
            .await?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok((v, hit)),
            Err(e) => Err(Error::CacheStore {
                store: "decode".into(),
                reason: format!("entry {key} does not decode: {e}"),
            }),
        }
    }

    /// Generate text for `prompt`. Identical inputs give identical outputs; a repeated call is a
    /// cache lookup.
    ///
    /// Errors: [`Error::EmptyPrompt`], [`Error::InvalidMaxTokens`], [`Error::ContextOverflow`],
    /// and backend errors.
    pub async fn generate(&self, prompt: &str, opts: &GenerateOptions) -> Result<Generation> {
        self.check_max_tokens(opts.max_tokens)?;
        let rendered = self.render_prompt(prompt, opts.chat)?;
        let parts = KeyParts {
            model: self.backend.identity(),
            operation: "generate",
            prompt: &rendered,
            params: serde_json::json!({
                "max_tokens": opts.max_tokens,
                "stop": opts.stop,
                "seed": opts.seed,
            }),
        };
        let request = CompletionRequest {
            prompt: rendered.clone(),
            max_tokens: opts.max_tokens,
            stop: opts.stop.clone(),
            seed: opts.seed,
            constraint: None,
        };
        let (mut generation, hit): (Generation, bool) = self
            .cached(parts, opts.use_cache, || self.backend.complete(request))
            .await?;
        generation.cached = hit;
        Ok(generation)
    }
}

/// Configures and loads an [`Engine`] over a local GGUF model.
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    model_path: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    memory_cache_bytes: usize,
    disk_cache: bool,
    requantize: Requantize,
    lazy: bool,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            model_path: None,
            cache_dir: None,
            memory_cache_bytes: DEFAULT_MEMORY_BYTES,
            disk_cache: true,
            requantize: Requantize::default(),
            lazy: false,
        }
    }
}

impl EngineBuilder {
    /// Use this model file (highest priority; a missing file is an error naming it).
    pub fn model_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.model_path = Some(path.into());
        self
    }

    /// Put the disk cache here instead of [`cache_dir`].
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Bound of the in-memory tier in bytes (0 disables it).
    pub fn memory_cache_bytes(mut self, bytes: usize) -> Self {
        self.memory_cache_bytes = bytes;
        self
    }

    /// Enable or disable the on-disk tier.
    pub fn disk_cache(mut self, enabled: bool) -> Self {
        self.disk_cache = enabled;
        self
    }

    /// Weight format in memory (see [`Requantize`]).
    pub fn requantize(mut self, requantize: Requantize) -> Self {
        self.requantize = requantize;
        self
    }

    /// Load tokenizer and weights on first use rather than in `build` (a process that only hits
    /// the cache then never loads the weights).
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// The cache dir this builder will use.
    pub fn resolved_cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(cache_dir)
    }

    /// The cache this builder describes.
    pub fn build_cache(&self) -> Cache {
        let mut tiers: Vec<Arc<dyn crate::cache::CacheStore>> = Vec::new();
        if self.memory_cache_bytes > 0 {
            tiers.push(Arc::new(crate::cache::MemoryStore::new(
                self.memory_cache_bytes,
            )));
        }
        if self.disk_cache {
            tiers.push(Arc::new(crate::cache::DiskStore::new(
                self.resolved_cache_dir(),
            )));
        }
        Cache::new(tiers)
    }

    /// Load the local backend (blocking: parses and re-quantises the weights).
    pub fn build_backend(&self) -> Result<LocalBackend> {
        let path = resolve_model(self.model_path.as_deref())?;
        LocalBackend::load(
            &path,
            &LocalOptions {
                requantize: self.requantize,
                artefact_dir: Some(model_dir()),
                lazy: self.lazy,
            },
        )
    }

    /// Resolve and load the model, and build the cache (blocking).
    pub fn build(self) -> Result<Engine> {
        let backend = self.build_backend()?;
        Ok(Engine::new(Arc::new(backend), self.build_cache()))
    }
}
