//! [`HttpConfig`]: where the inference server is and how to talk to it.

use std::time::Duration;

/// Environment variable the API key is read from by [`HttpConfig::new`].
pub const API_KEY_ENV: &str = "STEADYTEXT_API_KEY";

/// Default cap on one response body: 16 MiB (a whole-vocabulary log-probability answer of a
/// 262k-token model is a few MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// A bearer token. Its value is never printed: `Debug` shows `ApiKey(<redacted>)` and there is
/// no `Display`; the HTTP header carrying it is marked sensitive.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wrap a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key from `$STEADYTEXT_API_KEY`, if set and not empty.
    pub fn from_env() -> Option<Self> {
        std::env::var(API_KEY_ENV)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(|k| Self(k.trim().to_string()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Retries of failed requests: connection errors, timeouts, HTTP 429 and 5xx (except 501) are
/// retried with exponential backoff (doubling from `initial_backoff` up to `max_backoff`, with a
/// little jitter; a server's `Retry-After` is honoured up to `max_backoff`). Other HTTP errors are
/// final at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = fail at once).
    pub max_retries: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), before jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Configuration of an [`crate::http::HttpBackend`].
///
/// ```
/// use std::time::Duration;
/// use steadytext_core::http::HttpConfig;
/// let config = HttpConfig::new("http://127.0.0.1:8080")
///     .model_name("SmolLM2-135M-Instruct.Q4_1.gguf")
///     .request_timeout(Duration::from_secs(60))
///     .max_concurrency(2);
/// assert_eq!(config.base_url, "http://127.0.0.1:8080");
/// ```
///
/// The base URL may carry credentials (`http://user:secret@host`, sent as basic auth); they never
/// appear in logs, error messages or `Debug` output (see [`HttpConfig::display_url`]).
#[derive(Clone)]
pub struct HttpConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:8080` (a trailing `/v1` is accepted).
    pub base_url: String,
    /// The model to use, as the server names it in `/v1/models` (for llama-server also the file
    /// name of its model path, with or without `.gguf`). `None`: the server must serve exactly one.
    pub model_name: Option<String>,
    /// Bearer token sent with every request.
    pub api_key: Option<ApiKey>,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on one whole request (connect, generate, read the answer).
    pub request_timeout: Duration,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// Requests in flight at once from this backend (the rest wait).
    pub max_concurrency: usize,
    /// A Jinja chat template to use instead of the server's (servers without llama-server's
    /// `/props` report none, and then chat prompts need this).
    pub chat_template: Option<String>,
    /// The context window, when the server does not report it.
    pub context_length: Option<usize>,
    /// Let llama-server reuse the KV cache of a previous request's common prefix (faster, but
    /// llama.cpp does not guarantee bit-identical logits across batch shapes, so results can then
    /// depend on the previous request). Default `false`: every request is computed from scratch.
    pub reuse_prompt_cache: bool,
    /// Cap on one response body in bytes (default [`DEFAULT_MAX_RESPONSE_BYTES`]); a larger
    /// answer is an [`crate::Error::BadResponse`], read no further than the cap.
    pub max_response_bytes: usize,
    /// An identifier of the served weights supplied by whoever deploys the server (e.g. the
    /// blake3 or sha256 of the GGUF, or a release tag), made part of the backend identity. Use it
    /// when the server exposes nothing that changes with the weights (see
    /// [`crate::http::ServerInfo::identity`]).
    pub weights_id: Option<String>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &self.display_url())
            .field("model_name", &self.model_name)
            .field("api_key", &self.api_key)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("max_concurrency", &self.max_concurrency)
            .field("chat_template", &self.chat_template)
            .field("context_length", &self.context_length)
            .field("reuse_prompt_cache", &self.reuse_prompt_cache)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("weights_id", &self.weights_id)
            .finish()
    }
}

impl HttpConfig {
    /// A configuration with defaults: API key from `$STEADYTEXT_API_KEY` (if set), connect
    /// timeout 5 s, request timeout 300 s, [`RetryPolicy::default`], 4 requests in flight.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model_name: None,
            api_key: ApiKey::from_env(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            max_concurrency: 4,
            chat_template: None,
            context_length: None,
            reuse_prompt_cache: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            weights_id: None,
        }
    }

    /// Cap response bodies at `bytes`.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Name the served weights (see the field's docs).
    pub fn weights_id(mut self, id: impl Into<String>) -> Self {
        self.weights_id = Some(id.into());
        self
    }

    /// The normalised base URL with any password redacted: the form for logs and errors.
    pub fn display_url(&self) -> String {
        crate::redact::redact_url(&self.normalized_base_url())
    }

    /// Use this model.
    pub fn model_name(mut self, name: impl Into<String>) -> Self {
        self.model_name = Some(name.into());
        self
    }

    /// Send this API key (replaces one read from the environment; `None` sends none).
    pub fn api_key(mut self, key: Option<ApiKey>) -> Self {
        self.api_key = key;
        self
    }

    /// Set the connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Set the per-request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Set the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Set how many requests may be in flight at once (at least 1).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Use this chat template instead of the server's.
    pub fn chat_template(mut self, source: impl Into<String>) -> Self {
        self.chat_template = Some(source.into());
        self
    }

    /// Set the context window when the server does not report it.
    pub fn context_length(mut self, tokens: usize) -> Self {
        self.context_length = Some(tokens);
        self
    }

    /// Allow llama-server's prompt cache (see the field's docs).
    pub fn reuse_prompt_cache(mut self, reuse: bool) -> Self {
        self.reuse_prompt_cache = reuse;
        self
    }

    /// The base URL without a trailing `/` or `/v1`.
    pub fn normalized_base_url(&self) -> String {
        let mut url = self.base_url.trim().trim_end_matches('/').to_string();
        if let Some(stripped) = url.strip_suffix("/v1") {
            url = stripped.to_string();
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_is_never_printed() {
        let config = HttpConfig::new("http://x").api_key(Some(ApiKey::new("sk-secret")));
        let printed = format!("{config:?}");
        assert!(!printed.contains("sk-secret"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn url_credentials_are_never_printed() {
        let config = HttpConfig::new("http://bob:hunter2@127.0.0.1:1/v1");
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("http://bob:***@127.0.0.1:1"), "{printed}");
        assert_eq!(config.display_url(), "http://bob:***@127.0.0.1:1");
        // requests still use the real URL
        assert_eq!(
            config.normalized_base_url(),
            "http://bob:hunter2@127.0.0.1:1"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = RetryPolicy::default();
        assert_eq!(r.backoff(0), Duration::from_millis(250));
        assert_eq!(r.backoff(2), Duration::from_secs(1));
        assert_eq!(r.backoff(10), Duration::from_secs(4));
        assert_eq!(r.backoff(u32::MAX), Duration::from_secs(4));
    }

    #[test]
    fn base_url_is_normalised() {
        assert_eq!(
            HttpConfig::new("http://h:1/v1/").normalized_base_url(),
            "http://h:1"
        );
        assert_eq!(
            HttpConfig::new("http://h:1").normalized_base_url(),
            "http://h:1"
        );
    }
}
