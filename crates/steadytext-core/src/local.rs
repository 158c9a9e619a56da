//! The in-process backend: a GGUF model run on the CPU by the crate's own kernels (candle's
//! GGUF reader loads the file).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::quantized::gguf_file::Content;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::backend::{Backend, CompletionRequest, Constraint, OptionScore};
use crate::chat_template::ChatTemplate;
use crate::choice::{log_softmax_at, log_sum_exp, score_token_options};
use crate::constraint::{ConstraintCompiler, MatcherConstraint};
use crate::decode::TokenConstraint;
use crate::decode::{greedy, DecodeParams};
use crate::error::{Error, Result};
use crate::fingerprint::model_fingerprint;
use crate::llama::{context_length, read_header, supported_architecture, CandleLlama, Kernels};
use crate::model::LanguageModel;
use crate::options::{FinishReason, Generation};
use crate::prefill::{prefill, PrefixCache, DEFAULT_PREFIX_CACHE_TOKENS, PREFILL_CHUNK};
use crate::scheduler::{Finished, GenJob, Scheduler, DEFAULT_MAX_BATCH};
use crate::tokenizer::GgufTokenizer;
use crate::transformer::{NativeModel, Weights};

/// Special tokens that end a turn or a document in the model families we run.
const END_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "</s>",
    "<|eot_id|>",
    "<|end|>",
    "<end_of_turn>",
];

/// Window of the repetition penalty.
pub const REPEAT_WINDOW: usize = 64;

/// Options for loading a local model.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Which implementation runs the model (part of the backend identity).
    pub kernels: Kernels,
    /// Where model artefacts are kept (usually [`crate::model_dir`]): the weights fingerprint
    /// memo and, under `derived/`, re-quantised weights. `None` re-hashes and re-quantises on
    /// every load.
    pub artefact_dir: Option<PathBuf>,
    /// Load the tokenizer and weights on first use instead of now (a cache hit then never
    /// touches the weights). Errors in the weights then surface on the first request.
    pub lazy: bool,
    /// Tokens of prompt-prefix KV state kept for reuse (see [`crate::prefill`]); 0 disables reuse
    /// (prefill stays chunked, so outputs are the same either way).
    pub prefix_cache_tokens: usize,
    /// With [`Kernels::Native`]: the most generation requests decoded together in one batch
    /// (continuous batching; results do not depend on it).
    pub max_batch: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            kernels: Kernels::default(),
            artefact_dir: None,
            lazy: false,
            prefix_cache_tokens: DEFAULT_PREFIX_CACHE_TOKENS,
            max_batch: DEFAULT_MAX_BATCH,
        }
    }
}

/// The model, and the KV states of recent prompt prefixes (shared with the scheduler).
struct ModelState {
    model: Box<dyn LanguageModel>,
    prefixes: Arc<Mutex<PrefixCache>>,
}

struct Loaded {
    tokenizer: GgufTokenizer,
    eos: Vec<u32>,
}

pub(crate) struct LocalInner {
    path: PathBuf,
    options: LocalOptions,
    fingerprint: String,
    identity: String,
    template: ChatTemplate,
    context: usize,
    /// Tokenizer and end ids, built from the GGUF header on first use.
    loaded: OnceLock<Loaded>,
    /// The GGUF header read by [`LocalBackend::load`], kept for the native weights load.
    header: Mutex<Option<Content>>,
    model: Mutex<Option<ModelState>>,
    /// llguidance compiler over the tokenizer, built on first constrained request.
    constraints: OnceLock<ConstraintCompiler>,
    load_time: Mutex<Duration>,
    /// The continuous-batching scheduler ([`Kernels::Native`]), started with the weights.
    scheduler: OnceLock<Scheduler>,
    /// The native weights, once loaded.
    native: OnceLock<Arc<Weights>>,
}

/// A GGUF model in this process.
///
/// One model instance serves every request: concurrent generations are batched by the
/// native runtime's scheduler into shared forward passes, with results bit-identical to
/// a request served alone.
#[derive(Clone)]
pub struct LocalBackend {
    inner: Arc<LocalInner>,
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend")
            .field("path", &self.inner.path)
            .field("identity", &self.inner.identity)
            .finish()
    }
}

fn build_tokenizer(ct: &Content) -> Result<Loaded> {
    let tokenizer = GgufTokenizer::from_gguf(ct)?;
    let specials = tokenizer.special_ids();
    let mut eos = vec![tokenizer.special().eos.0];
    for t in END_TOKENS {
        if let Some(&id) = specials.get(*t) {
            if !eos.contains(&id) {
                eos.push(id);
            }
        }
    }
    Ok(Loaded { tokenizer, eos })
}

impl LocalBackend {
    /// Open the GGUF at `path`: read its header, check the architecture, compile its chat
    /// template and fingerprint the weights; then load tokenizer and weights (unless
    /// `options.lazy`). Fails with a typed error for a missing file, a file that is not a GGUF, or
    /// an architecture this build cannot run; never falls back to another model.
    pub fn load(path: &Path, options: &LocalOptions) -> Result<Self> {
        let start = Instant::now();
        if !path.is_file() {
            return Err(Error::ModelNotFound {
                tried: vec![path.to_path_buf()],
                fetch_hint: crate::model_location::FETCH_HINT.to_string(),
            });
        }
        let (ct, _) = read_header(path)?;
        tracing::debug!("GGUF header read in {:?}", start.elapsed());
        let arch = supported_architecture(&ct, path)?;
        let md_str = |k: &str| ct.metadata.get(k).and_then(|v| v.to_string().ok());
        let token_text = |key: &str| -> String {
            let id = ct.metadata.get(key).and_then(|v| v.to_u32().ok());
            let tokens = ct
                .metadata
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.to_vec().ok());
            match (id, tokens) {
                (Some(id), Some(tokens)) => tokens
                    .get(id as usize)
                    .and_then(|t| t.to_string().ok())
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            }
        };
        let template = match md_str("tokenizer.chat_template") {
            Some(src) => ChatTemplate::new(
                src,
                &token_text("tokenizer.ggml.bos_token_id"),
                &token_text("tokenizer.ggml.eos_token_id"),
            )?,
            // A base model ships no template: it continues the raw prompt. Models of the
            // llama family without one keep ChatML (SmolLM2's own template).
            None if arch == "gemma3" => ChatTemplate::raw(),
            None => ChatTemplate::chatml(),
        };
        let fingerprint = model_fingerprint(path, options.artefact_dir.as_deref())?;
        tracing::debug!("fingerprint after {:?}", start.elapsed());
        let identity = format!(
            "gguf/{arch}/{fingerprint}/{}/prefill-chunk{PREFILL_CHUNK}",
            options.kernels.name()
        );
        let this = Self {
            inner: Arc::new(LocalInner {
                path: path.to_path_buf(),
                options: options.clone(),
                fingerprint,
                identity,
                template,
                context: context_length(&ct),
                loaded: OnceLock::new(),
                header: Mutex::new(None),
                model: Mutex::new(None),
                constraints: OnceLock::new(),
                load_time: Mutex::new(start.elapsed()),
                scheduler: OnceLock::new(),
                native: OnceLock::new(),
            }),
        };
        if !options.lazy {
            let _ = this.loaded_with(Some(&ct))?;
            if options.kernels == Kernels::Native {
                // The weights load reuses the header instead of parsing it again.
                *this.inner.header.lock().unwrap_or_else(|p| p.into_inner()) = Some(ct);
            }
            this.with_model(|_| Ok(()))?;
        }
        Ok(this)
    }

    fn loaded_with(&self, header: Option<&Content>) -> Result<&Loaded> {
        if let Some(l) = self.inner.loaded.get() {
            return Ok(l);
        }
        let start = Instant::now();
        let read;
        let ct = match header {
            Some(ct) => ct,
            None => {
                read = read_header(&self.inner.path)?.0;
                &read
            }
        };
        let loaded = build_tokenizer(ct)?;
        tracing::debug!("tokenizer built in {:?}", start.elapsed());
        *self
            .inner
            .load_time
            .lock()
            .unwrap_or_else(|p| p.into_inner()) += start.elapsed();
        Ok(self.inner.loaded.get_or_init(|| loaded))
    }

    fn loaded(&self) -> Result<&Loaded> {
        self.loaded_with(None)
    }

    /// Load tokenizer and weights now if they are not loaded yet.
    pub fn preload(&self) -> Result<()> {
        self.loaded()?;
        self.with_model(|_| Ok(()))
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Time spent loading so far (header, fingerprint, tokenizer, weights).
    pub fn load_time(&self) -> Duration {
        *self
            .inner
            .load_time
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// blake3 of the weights file.
    pub fn fingerprint(&self) -> &str {
        &self.inner.fingerprint
    }

    /// The tokenizer built from the GGUF.
    pub fn tokenizer(&self) -> Result<&GgufTokenizer> {
        Ok(&self.loaded()?.tokenizer)
    }

    /// Token ids that end generation.
    pub fn eos_ids(&self) -> Result<&[u32]> {
        Ok(&self.loaded()?.eos)
    }

    /// Run `f` with exclusive use of the model, loading the weights first if needed (blocking;
    /// call from a blocking context).
    pub fn with_model<T>(&self, f: impl FnOnce(&mut dyn LanguageModel) -> Result<T>) -> Result<T> {
        self.with_state(|state| f(state.model.as_mut()))
    }

    /// Prefill `ids` (chunked, reusing cached prefixes) and run `f` on the model holding them,
    /// with the logits after the last prompt token.
    pub fn with_prefilled<T>(
        &self,
        ids: &[u32],
        f: impl FnOnce(&mut dyn LanguageModel, Vec<f32>) -> Result<T>,
    ) -> Result<T> {
        self.with_state(|state| {
            let logits = {
                let mut prefixes = state.prefixes.lock().unwrap_or_else(|p| p.into_inner());
                prefill(&mut state.model, ids, &mut prefixes)?
            };
            f(state.model.as_mut(), logits)
        })
    }

    /// (prefix hits, prompt tokens whose prefill was skipped) since load.
    pub fn prefix_stats(&self) -> Result<(u64, u64)> {
        self.with_state(|state| {
            Ok(state
                .prefixes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .stats())
        })
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut ModelState) -> Result<T>) -> Result<T> {
        let mut guard = self
            .inner
            .model
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none() {
            let start = Instant::now();
            let derived_dir = self
                .inner
                .options
                .artefact_dir
                .as_ref()
                .map(|d| d.join("derived"));
            let prefixes = Arc::new(Mutex::new(PrefixCache::new(
                self.inner.options.prefix_cache_tokens,
            )));
            let model: Box<dyn LanguageModel> = match self.inner.options.kernels {
                Kernels::Native => {
                    let header = self
                        .inner
                        .header
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take();
                    let weights = Arc::new(match header {
                        Some(ct) => Weights::from_header(&self.inner.path, &ct)?,
                        None => Weights::load(&self.inner.path)?,
                    });
                    let loaded = self.loaded()?;
                    let scheduler = Scheduler::start(
                        weights.clone(),
                        loaded.tokenizer.clone(),
                        loaded.eos.clone(),
                        prefixes.clone(),
                        self.inner.options.max_batch,
                    )?;
                    let _ = self.inner.scheduler.set(scheduler);
                    let _ = self.inner.native.set(weights.clone());
                    Box::new(NativeModel::new(weights))
                }
                other => Box::new(CandleLlama::load(
                    &self.inner.path,
                    other,
                    derived_dir
                        .as_deref()
                        .map(|d| (d, self.inner.fingerprint.as_str())),
                )?),
            };
            let took = start.elapsed();
            *self
                .inner
                .load_time
                .lock()
                .unwrap_or_else(|p| p.into_inner()) += took;
            tracing::info!(
                "loaded weights of {} in {} ms",
                self.inner.path.display(),
                took.as_millis()
            );
            *guard = Some(ModelState { model, prefixes });
        }
        f(guard.as_mut().expect("model loaded above"))
    }

    /// Tokenize `prompt` and check it plus `max_tokens` fits in the context.
    pub fn encode_checked(&self, prompt: &str, max_tokens: usize) -> Result<Vec<u32>> {
        let ids = self.loaded()?.tokenizer.encode(prompt)?;
        if ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        if ids.len() + max_tokens > self.inner.context {
            return Err(Error::ContextOverflow {
                prompt_tokens: ids.len(),
                max_tokens,
                context: self.inner.context,
            });
        }
        Ok(ids)
    }

    /// Run `f` on a blocking thread (inference must not stall the async runtime).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| Error::Inference(format!("inference task failed: {e}")))?
    }

    fn compiler(&self) -> Result<&ConstraintCompiler> {
        if let Some(c) = self.inner.constraints.get() {
            return Ok(c);
        }
        let tokenizer = &self.loaded()?.tokenizer;
        let compiler = ConstraintCompiler::new(tokenizer, tokenizer.vocab_size())?;
        Ok(self.inner.constraints.get_or_init(|| compiler))
    }

    /// Check that `constraint` compiles (memoised), without running the model.
    pub fn compile_constraint(&self, constraint: &Constraint) -> Result<()> {
        self.compiler()?.matcher(constraint).map(|_| ())
    }

    /// The native weights (loading them if needed), or `None` when another runtime is selected.
    pub fn native_weights(&self) -> Result<Option<Arc<Weights>>> {
        if self.inner.options.kernels != Kernels::Native {
            return Ok(None);
        }
        self.preload()?;
        Ok(self.inner.native.get().cloned())
    }

    /// Complete a request through the batching scheduler (native runtime): tokenize and compile
    /// the constraint on a blocking thread, then wait for the scheduler's result.
    async fn complete_batched(&self, request: CompletionRequest) -> Result<Generation> {
        let (job, rx, prompt_tokens) = self
            .blocking(move |this| {
                this.preload()?;
                let ids = this.encode_checked(&request.prompt, request.max_tokens)?;
                let constraint = match &request.constraint {
                    Some(c) => Some(MatcherConstraint::new(this.compiler()?.matcher(c)?)),
                    None => None,
                };
                let (reply, rx) = tokio::sync::oneshot::channel();
                let n = ids.len();
                let job = GenJob {
                    ids,
                    max_tokens: request.max_tokens,
                    stop: request.stop,
                    repeat_penalty: request.repeat_penalty,
                    repeat_window: REPEAT_WINDOW,
                    constraint,
                    reply,
                };
                Ok((job, rx, n))
            })
            .await?;
        let scheduler = self
            .inner
            .scheduler
            .get()
            .ok_or_else(|| Error::Inference("the inference scheduler is not running".into()))?;
        scheduler.submit(job)?;
        let Finished { decoded, accepting } = rx
            .await
            .map_err(|_| Error::Inference("the inference scheduler has stopped".into()))??;
        if accepting == Some(false) && decoded.finish == FinishReason::Length {
            return Err(Error::Truncated {
                partial: decoded.text,
                tokens: decoded.ids.len(),
            });
        }
        Ok(Generation {
            text: decoded.text,
            prompt_tokens,
            completion_tokens: decoded.ids.len(),
            finish_reason: decoded.finish,
            cached: false,
        })
    }

    /// Complete a request on the calling thread (blocking), without batching.
    pub fn complete_blocking(&self, request: &CompletionRequest) -> Result<Generation> {
        let ids = self.encode_checked(&request.prompt, request.max_tokens)?;
        let loaded = self.loaded()?;
        let mut constraint = match &request.constraint {
            Some(c) => Some(MatcherConstraint::new(self.compiler()?.matcher(c)?)),
            None => None,
        };
        // Stop strings do not apply to constrained output: the constraint decides where it ends.
        let no_stop: [String; 0] = [];
        let params = DecodeParams {
            max_tokens: request.max_tokens,
            stop: if constraint.is_some() {
                &no_stop
            } else {
                &request.stop
            },
            eos: &loaded.eos,
            repeat_penalty: request.repeat_penalty,
            repeat_window: REPEAT_WINDOW,
        };
        let decoded = self.with_prefilled(&ids, |m, logits| {
            greedy(
                m,
                &loaded.tokenizer,
                logits,
                ids.len(),
                &params,
                constraint.as_mut().map(|c| c as &mut dyn TokenConstraint),
            )
        })?;
        if let Some(c) = &constraint {
            if decoded.finish == FinishReason::Length && !c.is_accepting() {
                return Err(Error::Truncated {
                    partial: decoded.text,
                    tokens: decoded.ids.len(),
                });
            }
        }
        Ok(Generation {
            text: decoded.text,
            prompt_tokens: ids.len(),
            completion_tokens: decoded.ids.len(),
            finish_reason: decoded.finish,
            cached: false,
        })
    }

    /// Next-token log-probabilities of each candidate's first token after `prompt` (blocking).
    pub fn next_token_logprobs_blocking(
        &self,
        prompt: &str,
        candidates: &[String],
    ) -> Result<Vec<f64>> {
        let loaded = self.loaded()?;
        let first: Vec<u32> = candidates
            .iter()
            .map(|c| {
                loaded
                    .tokenizer
                    .encode_continuation(c)?
                    .first()
                    .copied()
                    .ok_or_else(|| Error::EmptyChoice {
                        index: candidates.iter().position(|x| x == c).unwrap_or(0),
                    })
            })
            .collect::<Result<_>>()?;
        let ids = self.encode_checked(prompt, 1)?;
        self.with_prefilled(&ids, |_, logits| {
            let lse = log_sum_exp(&logits);
            Ok(first
                .iter()
                .map(|&t| log_softmax_at(&logits, lse, t))
                .collect())
        })
    }

    /// Score options after a prompt on the calling thread (blocking); see [`crate::choice`].
    pub fn score_options_blocking(
        &self,
        prompt: &str,
        options: &[String],
    ) -> Result<Vec<OptionScore>> {
        let loaded = self.loaded()?;
        let tokenized: Vec<Vec<u32>> = options
            .iter()
            .map(|o| loaded.tokenizer.encode_continuation(o))
            .collect::<Result<_>>()?;
        let longest = tokenized.iter().map(Vec::len).max().unwrap_or(0);
        let ids = self.encode_checked(prompt, longest + 1)?;
        let end = loaded.tokenizer.special().eos.0;
        let scores = self.with_prefilled(&ids, |m, logits| {
            score_token_options(m, &logits, ids.len(), &tokenized, end)
        })?;
        Ok(scores
            .into_iter()
            .map(|(logprob, tokens)| OptionScore { logprob, tokens })
            .collect())
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn identity(&self) -> &str {
        &self.inner.identity
    }

    fn context_length(&self) -> usize {
        self.inner.context
    }

    fn contains_control_text(&self, text: &str) -> bool {
        match self.loaded() {
            Ok(loaded) => loaded.tokenizer.contains_control_text(text),
            // The vocabulary is unreadable: the shape test, and the error comes with the call.
            Err(_) => crate::prompt::looks_like_control_text(text),
        }
    }

    fn render_chat(&self, user: &str) -> Result<String> {
        self.inner.template.render_user(user)
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.loaded()?.tokenizer.encode(text)?.len())
    }

    async fn complete(&self, request: CompletionRequest) -> Result<Generation> {
        if self.inner.options.kernels == Kernels::Native {
            return self.complete_batched(request).await;
        }
        self.blocking(move |this| this.complete_blocking(&request))
            .await
    }

    async fn score_options(&self, prompt: &str, options: &[String]) -> Result<Vec<OptionScore>> {
        let (prompt, options) = (prompt.to_string(), options.to_vec());
        self.blocking(move |this| this.score_options_blocking(&prompt, &options))
            .await
    }

    async fn next_token_logprobs(&self, prompt: &str, candidates: &[String]) -> Result<Vec<f64>> {
        let (prompt, candidates) = (prompt.to_string(), candidates.to_vec());
        self.blocking(move |this| this.next_token_logprobs_blocking(&prompt, &candidates))
            .await
    }

    fn check_constraint(&self, constraint: &Constraint) -> Result<()> {
        self.compile_constraint(constraint)
    }
}
