//! The pluggable part of the engine: something that completes a prompt deterministically.
//!
//! [`crate::LocalBackend`] runs a GGUF model in-process. Every backend reports an
//! [`Backend::identity`] that names the exact model (and how it is run); it is part of every cache
//! key, so results of different models or engines never mix.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::options::Generation;

/// A constraint on the output, in the form the caller wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Constraint {
    /// The output must fully match this regular expression.
    Regex(String),
    /// The output must be one JSON value valid against this JSON Schema.
    JsonSchema(serde_json::Value),
}

/// One request to a backend: the prompt exactly as the model should see it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// The final prompt text (chat template already applied when wanted); spans marked literal
    /// ([`crate::prompt`]) are encoded as plain text.
    pub prompt: String,
    /// Upper bound on generated tokens.
    pub max_tokens: usize,
    /// Stop strings.
    pub stop: Vec<String>,
    /// The request's seed (decoding is greedy; the seed is passed on for backends that sample).
    pub seed: u64,
    /// An optional output constraint.
    pub constraint: Option<Constraint>,
    /// Repetition penalty over recent generated tokens (1.0 = pure greedy).
    pub repeat_penalty: f32,
}

/// The model's log-probability of one option's tokens following a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionScore {
    /// Sum of the log-probabilities of the option's tokens.
    pub logprob: f64,
    /// Number of tokens the option took.
    pub tokens: usize,
}

/// A model that completes prompts. Implementations must be deterministic: the same request gives
/// the same output on every call.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A stable string naming the model and how it is run (weights fingerprint, load variant or
    /// server and model). Part of every cache key.
    fn identity(&self) -> &str;

    /// The context window in tokens.
    fn context_length(&self) -> usize;

    /// Whether `text` holds the text of one of the model's control tokens, which must then be
    /// sent as a literal span ([`crate::prompt`]). The default recognises the common chat
    /// formats' marker shapes ([`crate::prompt::looks_like_control_text`]); a backend that knows
    /// its vocabulary answers exactly.
    fn contains_control_text(&self, text: &str) -> bool {
        crate::prompt::looks_like_control_text(text)
    }

    /// Wrap `user` in the model's chat template as one user turn ready for the assistant's reply.
    fn render_chat(&self, user: &str) -> Result<String>;

    /// Number of tokens `text` takes.
    fn count_tokens(&self, text: &str) -> Result<usize>;

    /// Complete `request`.
    async fn complete(&self, request: CompletionRequest) -> Result<Generation>;

    /// Check that `constraint` can be enforced by this backend (e.g. compiles), without
    /// generating. The default accepts everything and leaves errors to [`Backend::complete`].
    fn check_constraint(&self, constraint: &Constraint) -> Result<()> {
        let _ = constraint;
        Ok(())
    }

    /// The log-probability of the first token of each candidate as the next token after
    /// `prompt` (one prefill).
    async fn next_token_logprobs(&self, prompt: &str, candidates: &[String]) -> Result<Vec<f64>> {
        let _ = (prompt, candidates);
        Err(Error::Unsupported("next-token log-probabilities".into()))
    }

    /// Score each option as a continuation of `prompt` (one shared prefill where possible):
    /// the log-probability of the option's tokens plus the end-of-turn token after them.
    async fn score_options(&self, prompt: &str, options: &[String]) -> Result<Vec<OptionScore>> {
        let _ = (prompt, options);
        Err(Error::Unsupported("option scoring".into()))
    }
}
