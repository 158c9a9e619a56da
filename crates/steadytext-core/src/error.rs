//! The one error type of steadytext-core: every failure is typed and says what to do next.

use std::path::PathBuf;

/// Result alias used across steadytext-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, typed so callers can react to each case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No model file was found at any of the places looked at.
    #[error(
        "model not found; tried:\n{}\nfetch the model with: {fetch_hint}",
        format_paths(tried)
    )]
    ModelNotFound {
        /// Every path that was tried, in order.
        tried: Vec<PathBuf>,
        /// A command that fetches the default model.
        fetch_hint: String,
    },

    /// The model file exists but could not be read or parsed.
    #[error("cannot load model {path}: {reason}")]
    ModelLoad {
        /// The file that failed to load.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The GGUF declares an architecture this backend cannot run yet.
    #[error("unsupported model architecture {architecture:?} in {path} (supported: {supported})")]
    UnsupportedArchitecture {
        /// `general.architecture` from the GGUF metadata.
        architecture: String,
        /// The model file.
        path: PathBuf,
        /// The architectures this build supports.
        supported: String,
    },

    /// The prompt is empty or only whitespace.
    #[error("empty prompt: give the model some text to work on")]
    EmptyPrompt,

    /// The prompt plus the requested output does not fit in the model's context window.
    #[error(
        "prompt of {prompt_tokens} tokens plus max_tokens {max_tokens} exceeds the context of {context} tokens"
    )]
    ContextOverflow {
        /// Tokens in the (templated) prompt.
        prompt_tokens: usize,
        /// Requested output tokens.
        max_tokens: usize,
        /// The model's context window.
        context: usize,
    },

    /// `max_tokens` is zero or larger than the context window.
    #[error("max_tokens must be between 1 and the context size {context}, got {max_tokens}")]
    InvalidMaxTokens {
        /// What was asked for.
        max_tokens: usize,
        /// The model's context window.
        context: usize,
    },

    /// Tokenizer construction or encoding/decoding failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// The chat template could not be compiled or rendered.
    #[error("chat template: {0}")]
    Template(String),

    /// The model failed while computing logits.
    #[error("inference: {0}")]
    Inference(String),

    /// A cache tier failed on I/O.
    #[error("cache I/O at {path}: {source}")]
    CacheIo {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A cache tier failed for a reason other than local I/O (e.g. a database tier).
    #[error("cache store {store}: {reason}")]
    CacheStore {
        /// The tier's name.
        store: String,
        /// What went wrong.
        reason: String,
    },

    /// A choice call got fewer than two options.
    #[error("choice needs at least 2 options, got {0}")]
    TooFewChoices(usize),

    /// A choice option is the empty string.
    #[error("choice option {index} is empty")]
    EmptyChoice {
        /// Position of the empty option.
        index: usize,
    },

    /// The same option appears twice.
    #[error("choice option {option:?} appears twice (positions {first} and {second})")]
    DuplicateChoice {
        /// The repeated option.
        option: String,
        /// Its first position.
        first: usize,
        /// Its second position.
        second: usize,
    },

    /// The JSON Schema is not valid or uses something the constraint engine cannot enforce.
    #[error("invalid JSON schema: {0}")]
    InvalidSchema(String),

    /// The regular expression is not valid.
    #[error("invalid regex {pattern:?}: {reason}")]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// Why it was rejected.
        reason: String,
    },

    /// `max_tokens` ran out before a constrained value was complete.
    #[error("output truncated after {tokens} tokens before the constrained value was complete: {partial:?}")]
    Truncated {
        /// The partial output, which does not satisfy the constraint.
        partial: String,
        /// Tokens generated.
        tokens: usize,
    },

    /// The constrained output failed the engine's own validation (should never happen locally;
    /// a remote backend that ignores the constraint ends here).
    #[error("output violates the constraint: {reason}; output: {output:?}")]
    ConstraintViolated {
        /// The offending output.
        output: String,
        /// Why it does not satisfy the constraint.
        reason: String,
    },

    /// The result could not be deserialised into the requested type.
    #[error("cannot deserialise the JSON output into the requested type: {0}")]
    Deserialize(String),

    /// The operation is not available on this backend.
    #[error("{0} is not supported by this backend")]
    Unsupported(String),

    /// An inference server could not be reached (connection refused, reset or closed, DNS, TLS),
    /// after every retry.
    #[error("inference server {url} is unreachable: {reason}")]
    ServerUnreachable {
        /// The URL that was requested.
        url: String,
        /// What the transport reported.
        reason: String,
    },

    /// The inference server does not serve the requested model.
    #[error("model {requested} is not served by {url}; it serves: {}", served.join(", "))]
    ModelNotServed {
        /// The server's base URL.
        url: String,
        /// The model name that was asked for.
        requested: String,
        /// The model ids the server reports.
        served: Vec<String>,
    },

    /// The inference server answered with an HTTP error status.
    #[error("{url} answered HTTP {status}: {message}")]
    HttpStatus {
        /// The URL that was requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The server's error message (or body).
        message: String,
    },

    /// The inference server did not answer in time (after every retry).
    #[error("request to {url} timed out after {after:?}")]
    Timeout {
        /// The URL that was requested.
        url: String,
        /// The time limit that was exceeded.
        after: std::time::Duration,
    },

    /// The inference server answered with something that is not the expected response.
    #[error("unexpected response from {url}: {reason}")]
    BadResponse {
        /// The URL that was requested.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl Error {
    /// Whether the same request would fail the same way however often it is retried: the
    /// request itself is at fault (bad options, a prompt too long for the context, a
    /// constraint the output cannot meet within `max_tokens`, an operation the backend does not
    /// offer). A queue dead-letters such a job at once instead of retrying it.
    ///
    /// Everything else is transient or about the setup rather than the request — I/O, a server
    /// that is down, slow or answering 5xx/429, a missing or unreadable model, a failing cache
    /// tier — and may succeed on a later attempt (after the operator fixed the setup).
    ///
    /// HTTP statuses 400, 413 and 422 are permanent (the server rejected this request's
    /// content); other statuses are not.
    ///
    /// ```
    /// use steadytext_core::Error;
    /// assert!(Error::Unsupported("logprobs".into()).is_permanent());
    /// assert!(!Error::Inference("out of memory".into()).is_permanent());
    /// ```
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::EmptyPrompt
            | Error::ContextOverflow { .. }
            | Error::InvalidMaxTokens { .. }
            | Error::TooFewChoices(_)
            | Error::EmptyChoice { .. }
            | Error::DuplicateChoice { .. }
            | Error::InvalidSchema(_)
            | Error::InvalidRegex { .. }
            | Error::Truncated { .. }
            | Error::ConstraintViolated { .. }
            | Error::Deserialize(_)
            | Error::Unsupported(_) => true,
            Error::HttpStatus { status, .. } => matches!(status, 400 | 413 | 422),
            Error::ModelNotFound { .. }
            | Error::ModelLoad { .. }
            | Error::UnsupportedArchitecture { .. }
            | Error::Tokenizer(_)
            | Error::Template(_)
            | Error::Inference(_)
            | Error::CacheIo { .. }
            | Error::CacheStore { .. }
            | Error::ServerUnreachable { .. }
            | Error::ModelNotServed { .. }
            | Error::Timeout { .. }
            | Error::BadResponse { .. } => false,
        }
    }

    /// A closure that turns an I/O error at `path` into [`Error::CacheIo`].
    pub(crate) fn cache_io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::CacheIo {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn format_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("  - {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Inference(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn permanent_errors_are_the_requests_fault() {
        let permanent = [
            Error::Unsupported("log-probs".into()),
            Error::ContextOverflow {
                prompt_tokens: 9000,
                max_tokens: 10,
                context: 8192,
            },
            Error::Truncated {
                partial: "{".into(),
                tokens: 5,
            },
            Error::ConstraintViolated {
                output: "x".into(),
                reason: "not json".into(),
            },
            Error::InvalidSchema("bad".into()),
            Error::InvalidRegex {
                pattern: "(".into(),
                reason: "unclosed".into(),
            },
            Error::HttpStatus {
                url: "u".into(),
                status: 400,
                message: "too long".into(),
            },
        ];
        for e in &permanent {
            assert!(e.is_permanent(), "{e}");
        }
        let transient = [
            Error::Inference("oom".into()),
            Error::ServerUnreachable {
                url: "u".into(),
                reason: "refused".into(),
            },
            Error::Timeout {
                url: "u".into(),
                after: std::time::Duration::from_secs(1),
            },
            Error::HttpStatus {
                url: "u".into(),
                status: 503,
                message: "busy".into(),
            },
            Error::HttpStatus {
                url: "u".into(),
                status: 429,
                message: "slow down".into(),
            },
        ];
        for e in &transient {
            assert!(!e.is_permanent(), "{e}");
        }
    }
}
