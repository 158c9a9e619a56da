//! # steadytext-core
//!
//! A small local LLM as a deterministic, cached function: the same input gives the same output
//! on every run and thread count, and a repeated call costs a hash lookup.
//!
//! - [`Engine`] is the front door: [`Engine::generate`].
//! - [`Backend`] is the pluggable part; [`LocalBackend`] runs a GGUF model in this process on
//!   the crate's own quantised kernels and forward passes ([`transformer`]: llama, e.g. the
//!   default SmolLM2, and Gemma 3; candle reads the file and serves as the accuracy reference),
//!   and `http::HttpBackend` (feature `http`) any OpenAI-compatible inference server.
//! - [`cache`] holds the content-addressed cache (memory and disk tiers, single-flight).
//! - Models are found by [`resolve_model`]; errors are typed ([`Error`]).
//!
//! ```no_run
//! # async fn demo() -> steadytext_core::Result<()> {
//! use steadytext_core::{Engine, GenerateOptions};
//! let engine = Engine::builder().build()?;
//! let g = engine.generate("Name three colours.", &GenerateOptions::default().max_tokens(20)).await?;
//! println!("{} ({} tokens, {:?})", g.text, g.completion_tokens, g.finish_reason);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod cache;
pub mod chat_template;
pub mod choice;
pub mod constraint;
pub mod decode;
pub mod engine;
pub mod error;
pub mod fingerprint;
#[cfg(feature = "http")]
pub mod http;
pub mod llama;
pub mod local;
pub mod model;
pub mod model_location;
pub mod options;
pub mod prefill;
pub mod prompt;
pub mod quant;
pub mod redact;
mod scheduler;
pub mod tokenizer;
pub mod transformer;

pub use backend::{Backend, CompletionRequest, Constraint, OptionScore};
pub use cache::Cache;
pub use chat_template::ChatTemplate;
pub use choice::{Choice, ChoiceScore};
pub use engine::{BackendConfig, Engine, EngineBuilder};
pub use error::{Error, Result};
pub use llama::Kernels;
pub use local::{LocalBackend, LocalOptions};
pub use model::LanguageModel;
pub use model_location::{cache_dir, model_dir, resolve_model, DEFAULT_MODEL_FILE};
pub use options::{FinishReason, GenerateOptions, Generation, DEFAULT_MAX_TOKENS};
pub use redact::redact_url;
pub use tokenizer::GgufTokenizer;

/// The seed used when none is given (the value SteadyText uses).
pub const DEFAULT_SEED: u64 = 42;
