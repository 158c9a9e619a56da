//! Request options and results of generation.

use serde::{Deserialize, Serialize};

/// Default number of tokens to generate.
pub const DEFAULT_MAX_TOKENS: usize = 512;

/// Options for [`crate::Engine::generate`] and the constrained calls.
///
/// Every field that can change the output is part of the cache key.
///
/// ```
/// use steadytext_core::GenerateOptions;
/// let opts = GenerateOptions::default().max_tokens(40).seed(7).stop(["\n\n"]);
/// assert_eq!(opts.max_tokens, 40);
/// assert!(opts.chat && opts.use_cache);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateOptions {
    /// Maximum number of tokens to generate (at least 1).
    pub max_tokens: usize,
    /// Generation stops before the first occurrence of any of these strings; the stop string is not
    /// part of the output.
    pub stop: Vec<String>,
    /// The request's seed. Decoding is greedy, so the seed selects among deterministic variants only
    /// where sampling is asked for; it is always part of the cache key.
    pub seed: u64,
    /// Wrap the prompt in the model's chat template as a single user message (default `true`).
    pub chat: bool,
    /// Read and write the cache (default `true`).
    pub use_cache: bool,
    /// Repetition penalty over the last 64 generated tokens (llama.cpp's `repeat_penalty`;
    /// deterministic). `None` means the default: 1.0 (pure greedy) for free generation, 1.1 for
    /// constrained generation. The effective value is part of the cache key.
    #[serde(default)]
    pub repeat_penalty: Option<f32>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_tokens: DEFAULT_MAX_TOKENS,
            stop: Vec::new(),
            seed: crate::DEFAULT_SEED,
            chat: true,
            use_cache: true,
            repeat_penalty: None,
        }
    }
}

impl GenerateOptions {
    /// Set `max_tokens`.
    pub fn max_tokens(mut self, n: usize) -> Self {
        self.max_tokens = n;
        self
    }
    /// Set the stop strings.
    pub fn stop<I: IntoIterator<Item = S>, S: Into<String>>(mut self, stop: I) -> Self {
        self.stop = stop.into_iter().map(Into::into).collect();
        self
    }
    /// Set the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Use (or not) the chat template.
    pub fn chat(mut self, chat: bool) -> Self {
        self.chat = chat;
        self
    }
    /// Set the repetition penalty (1.0 = off).
    pub fn repeat_penalty(mut self, penalty: f32) -> Self {
        self.repeat_penalty = Some(penalty);
        self
    }
    /// Use (or bypass) the cache.
    pub fn use_cache(mut self, use_cache: bool) -> Self {
        self.use_cache = use_cache;
        self
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model emitted an end-of-sequence token, a stop string was reached, or a constraint
    /// completed.
    Stop,
    /// `max_tokens` was reached.
    Length,
}

/// The result of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The generated text (without the prompt, without a stop string).
    pub text: String,
    /// Tokens in the prompt as the model saw it (after the chat template).
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Whether this result was served from the cache.
    #[serde(default)]
    pub cached: bool,
}
