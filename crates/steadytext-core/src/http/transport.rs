//! One JSON request to the server: concurrency limit, timeouts, retries with backoff, and every
//! failure mapped to a typed [`Error`] that names the URL.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::http::config::{HttpConfig, RetryPolicy};

/// The HTTP client of one backend.
#[derive(Debug)]
pub(crate) struct Transport {
    client: reqwest::Client,
    base_url: String,
    request_timeout: Duration,
    retry: RetryPolicy,
    permits: Semaphore,
}

/// A failed attempt, and whether trying again may help.
struct Failure {
    error: Error,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Transport {
    pub(crate) fn new(config: &HttpConfig) -> Result<Self> {
        let base_url = config.normalized_base_url();
        let mut headers = HeaderMap::new();
        if let Some(key) = &config.api_key {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    Error::Unsupported(
                        "an API key with characters not allowed in HTTP headers".into(),
                    )
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| Error::ServerUnreachable {
                url: base_url.clone(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            client,
            base_url,
            request_timeout: config.request_timeout,
            retry: config.retry,
            permits: Semaphore::new(config.max_concurrency.max(1)),
        })
    }

    /// The normalised base URL.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// GET `path` (relative to the base URL) as JSON, with retries.
    pub(crate) async fn get(&self, path: &str) -> Result<Value> {
        self.send(path, None).await
    }

    /// POST `body` to `path` as JSON, with retries.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(path, Some(body)).await
    }

    async fn send(&self, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{}", self.base_url, path);
        // The permit is held across retries: a struggling server sees no more load from us.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::ServerUnreachable {
                url: url.clone(),
                reason: "the backend is shutting down".into(),
            })?;
        let mut retry = 0;
        loop {
            match self.attempt(&url, body).await {
                Ok(value) => return Ok(value),
                Err(f) if f.retryable && retry < self.retry.max_retries => {
                    let wait = f
                        .retry_after
                        .unwrap_or_else(|| {
                            self.retry.backoff(retry) + jitter(self.retry.backoff(retry))
                        })
                        .min(self.retry.max_backoff);
                    tracing::warn!(%url, retry = retry + 1, ?wait, error = %f.error, "retrying");
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                Err(f) => return Err(f.error),
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        body: Option<&Value>,
    ) -> std::result::Result<Value, Failure> {
        let request = match body {
            Some(b) => self.client.post(url).json(b),
            None => self.client.get(url),
        };
        let response = request
            .timeout(self.request_timeout)
            .send()
            .await
            .map_err(|e| self.transport_failure(url, e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_failure(url, e))?;
        if !status.is_success() {
            return Err(Failure {
                error: Error::HttpStatus {
                    url: url.to_string(),
                    status: status.as_u16(),
                    message: error_message(&bytes),
                },
                retryable: retryable_status(status),
                retry_after,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| Failure {
            error: Error::BadResponse {
                url: url.to_string(),
                reason: format!("not JSON ({e}): {}", snippet(&bytes)),
            },
            retryable: false,
            retry_after: None,
        })
    }

    fn transport_failure(&self, url: &str, e: reqwest::Error) -> Failure {
        let error = if e.is_timeout() {
            Error::Timeout {
                url: url.to_string(),
                after: self.request_timeout,
            }
        } else {
            Error::ServerUnreachable {
                url: url.to_string(),
                reason: error_chain(&e),
            }
        };
        // Refused, reset, closed mid-answer, timed out: the server may be restarting.
        Failure {
            error,
            retryable: true,
            retry_after: None,
        }
    }
}

/// 429 and 5xx are worth retrying, except 501 (not implemented: it will not start working).
fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}

/// The server's error message: OpenAI style `{"error": {"message": ..}}`, `{"error": ".."}`,
/// `{"message": ..}`, `{"detail": ..}` (vLLM/FastAPI), else the body itself.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let candidates = [
            v.pointer("/error/message"),
            v.get("error"),
            v.get("message"),
            v.get("detail"),
        ];
        for c in candidates.into_iter().flatten() {
            match c {
                Value::String(s) => return s.clone(),
                Value::Null | Value::Object(_) => {}
                other => return other.to_string(),
            }
        }
    }
    snippet(body)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    match text.char_indices().nth(500) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// `e` and its sources, e.g. "error sending request: tcp connect error: Connection refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Up to a quarter of `base`, so a fleet of clients does not retry in lock-step.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_extracted() {
        assert_eq!(
            error_message(
                br#"{"error":{"code":400,"message":"bad grammar","type":"invalid_request_error"}}"#
            ),
            "bad grammar"
        );
        assert_eq!(
            error_message(br#"{"detail":"no such model"}"#),
            "no such model"
        );
        assert_eq!(error_message(b"plain text"), "plain text");
        assert_eq!(error_message(b""), "(empty body)");
    }

    #[test]
    fn retryable_statuses() {
        assert!(retryable_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(retryable_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(retryable_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!retryable_status(StatusCode::NOT_IMPLEMENTED));
        assert!(!retryable_status(StatusCode::BAD_REQUEST));
        assert!(!retryable_status(StatusCode::NOT_FOUND));
    }
}
