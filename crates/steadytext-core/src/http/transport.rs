//! One JSON request to the server: concurrency limit, timeouts, retries with backoff, a cap on
//! the response body, and every failure mapped to a typed [`Error`] that names the URL (with any
//! credentials redacted: a password in the base URL never reaches an error or a log line).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::http::config::{HttpConfig, RetryPolicy};

/// The HTTP client of one backend. `Debug` shows the redacted URL only.
pub(crate) struct Transport {
    client: reqwest::Client,
    /// The URL requests go to (may carry credentials).
    base_url: String,
    /// `base_url` redacted, for errors and logs.
    shown_url: String,
    /// Secrets of the base URL (its user info), scrubbed from any error text.
    secrets: Vec<String>,
    max_response_bytes: usize,
    request_timeout: Duration,
    retry: RetryPolicy,
    permits: Semaphore,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("base_url", &self.shown_url)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .finish()
    }
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
        let shown_url = config.display_url();
        let secrets = url_secrets(&base_url);
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
                url: shown_url.clone(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            client,
            base_url,
            shown_url,
            secrets,
            max_response_bytes: config.max_response_bytes,
            request_timeout: config.request_timeout,
            retry: config.retry,
            permits: Semaphore::new(config.max_concurrency.max(1)),
        })
    }

    /// The normalised base URL as shown in errors and logs (credentials redacted).
    pub(crate) fn shown_url(&self) -> &str {
        &self.shown_url
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
        let target = format!("{}{}", self.base_url, path);
        let url = format!("{}{}", self.shown_url, path);
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
            match self.attempt(&target, &url, body).await {
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

    /// One request to `target`; errors name `url` (its redacted form).
    async fn attempt(
        &self,
        target: &str,
        url: &str,
        body: Option<&Value>,
    ) -> std::result::Result<Value, Failure> {
        let request = match body {
            Some(b) => self.client.post(target).json(b),
            None => self.client.get(target),
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
        let bytes = self.read_body(url, response).await?;
        if !status.is_success() {
            return Err(Failure {
                error: Error::HttpStatus {
                    url: url.to_string(),
                    status: status.as_u16(),
                    message: self.scrub(error_message(&bytes)),
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

    /// The body, read chunk by chunk and abandoned as soon as it exceeds the cap (a declared
    /// `Content-Length` over the cap is refused before reading).
    async fn read_body(
        &self,
        url: &str,
        mut response: reqwest::Response,
    ) -> std::result::Result<Vec<u8>, Failure> {
        let cap = self.max_response_bytes;
        let too_large = |what: String| Failure {
            error: Error::BadResponse {
                url: url.to_string(),
                reason: format!("response body {what}, over the cap of {cap} bytes"),
            },
            retryable: false,
            retry_after: None,
        };
        if let Some(len) = response.content_length() {
            if len > cap as u64 {
                return Err(too_large(format!("of {len} bytes (Content-Length)")));
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_failure(url, e))?
        {
            if body.len() + chunk.len() > cap {
                return Err(too_large(format!(
                    "of more than {} bytes",
                    body.len() + chunk.len()
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// `text` with the base URL's secrets replaced by `***`.
    fn scrub(&self, text: String) -> String {
        let text = text.replace(&self.base_url, &self.shown_url);
        self.secrets
            .iter()
            .fold(text, |t, secret| t.replace(secret.as_str(), "***"))
    }

    fn transport_failure(&self, url: &str, e: reqwest::Error) -> Failure {
        // reqwest names the URL it requested; ours (redacted) is in the error already.
        let e = e.without_url();
        let error = if e.is_timeout() {
            Error::Timeout {
                url: url.to_string(),
                after: self.request_timeout,
            }
        } else {
            Error::ServerUnreachable {
                url: url.to_string(),
                reason: self.scrub(error_chain(&e)),
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

/// The secrets in a URL's user info: the password (raw and percent-decoded forms are the same
/// text for the usual characters), e.g. `hunter2` of `http://bob:hunter2@host`.
fn url_secrets(url: &str) -> Vec<String> {
    let Some(scheme_end) = url.find("://") else {
        return Vec::new();
    };
    let rest = &url[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return Vec::new();
    };
    match authority[..at].split_once(':') {
        Some((_, password)) if !password.is_empty() => vec![password.to_string()],
        _ => Vec::new(),
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
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A one-connection-at-a-time HTTP server on 127.0.0.1 that reads a request's head and lets
    /// `answer` write the response. Returns its URL and the request heads it saw.
    fn tiny_server(
        answer: impl Fn(&mut std::net::TcpStream) + Send + 'static,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                seen.lock().unwrap().push(head);
                answer(&mut stream);
            }
        });
        (url, heads)
    }

    fn no_retry(url: &str) -> HttpConfig {
        HttpConfig::new(url)
            .api_key(None)
            .retry(RetryPolicy {
                max_retries: 0,
                ..RetryPolicy::default()
            })
            .request_timeout(Duration::from_secs(30))
            .max_response_bytes(1 << 20)
    }

    /// An endless body without a length (chunked): reading stops at the cap with a typed error,
    /// long before the request timeout.
    #[tokio::test]
    async fn an_endless_body_stops_at_the_cap() {
        let (url, _) = tiny_server(|s| {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                  Transfer-Encoding: chunked\r\n\r\n",
            );
            let chunk = vec![b' '; 64 * 1024];
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            // up to 1 GiB, or until the client hangs up
            for _ in 0..16 * 1024 {
                if s.write_all(&framed).is_err() {
                    return;
                }
            }
        });
        let transport = Transport::new(&no_retry(&url)).unwrap();
        let started = std::time::Instant::now();
        let err = transport.get("/v1/models").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(20), "{err}");
        match &err {
            Error::BadResponse { url: u, reason } => {
                assert_eq!(u, &format!("{url}/v1/models"));
                assert!(reason.contains("over the cap of 1048576 bytes"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A declared length over the cap is refused before reading; a body under it is read.
    #[tokio::test]
    async fn a_declared_length_over_the_cap_is_refused() {
        let (url, _) = tiny_server(|s| {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                  Content-Length: 100000000\r\n\r\n{\"data\": [",
            );
        });
        let transport = Transport::new(&no_retry(&url)).unwrap();
        match transport.get("/v1/models").await.unwrap_err() {
            Error::BadResponse { reason, .. } => {
                assert!(
                    reason.contains("100000000 bytes (Content-Length)"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        let (url, _) = tiny_server(|s| {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                  Content-Length: 11\r\nConnection: close\r\n\r\n{\"data\":[]}",
            );
        });
        let transport = Transport::new(&no_retry(&url)).unwrap();
        assert_eq!(
            transport.get("/v1/models").await.unwrap(),
            serde_json::json!({"data": []})
        );
    }

    /// Credentials in the base URL are sent (basic auth) but never appear in an error.
    #[tokio::test]
    async fn url_credentials_never_appear_in_errors() {
        let (url, heads) = tiny_server(|s| {
            let body = b"{\"error\":{\"message\":\"nope\"}}";
            let _ = write!(
                s,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        });
        let with_password = url.replace("http://", "http://bob:hunter2@");
        let transport = Transport::new(&no_retry(&with_password)).unwrap();
        let err = transport.get("/v1/models").await.unwrap_err();
        let shown = format!("{err} {err:?} {transport:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("bob:***@127.0.0.1"), "{shown}");
        assert!(
            matches!(err, Error::HttpStatus { status: 401, .. }),
            "{err:?}"
        );
        let head = heads.lock().unwrap()[0].clone();
        assert!(
            head.contains("authorization: Basic Ym9iOmh1bnRlcjI=")
                || head.contains("Authorization: Basic Ym9iOmh1bnRlcjI="),
            "{head}"
        );

        // Nothing listens: a connection error names the redacted URL only.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let down =
            Transport::new(&no_retry(&format!("http://bob:hunter2@127.0.0.1:{port}"))).unwrap();
        let err = down.get("/v1/models").await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(matches!(err, Error::ServerUnreachable { .. }), "{err:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

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
