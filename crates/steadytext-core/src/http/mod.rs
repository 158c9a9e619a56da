//! [`HttpBackend`]: any OpenAI-compatible inference server as the engine's backend (feature
//! `http`): llama.cpp's `llama-server`, vLLM, TGI, SGLang.
//!
//! The engine's guarantees hold unchanged: decoding is greedy (`temperature: 0`, the request's
//! seed passed on), constraints are sent in the form the server enforces (see [`protocol`] for
//! the mapping) and the engine still validates every result itself, so a server that ignores a
//! constraint gives a typed error ([`Error::ConstraintViolated`] or [`Error::Truncated`]), never
//! an invalid value. The backend identity names the server kind, its build and the served model
//! (see [`ServerInfo::identity`]), so results of different engines never share cache entries.
//!
//! Failures are typed and name the URL: [`Error::ServerUnreachable`], [`Error::ModelNotServed`],
//! [`Error::HttpStatus`] (with the server's message), [`Error::Timeout`],
//! [`Error::BadResponse`]. Connection errors, timeouts, 429 and 5xx are retried with exponential
//! backoff ([`RetryPolicy`]); at most [`HttpConfig::max_concurrency`] requests are in flight.
//! Nothing ever falls back to a local model.
//!
//! ```no_run
//! # async fn demo() -> steadytext_core::Result<()> {
//! use std::sync::Arc;
//! use steadytext_core::http::{HttpBackend, HttpConfig};
//! use steadytext_core::{Cache, Engine, GenerateOptions};
//! let backend = HttpBackend::connect(HttpConfig::new("http://127.0.0.1:8080")).await?;
//! let engine = Engine::new(Arc::new(backend), Cache::disabled());
//! let g = engine.generate("Name three colours.", &GenerateOptions::default().max_tokens(20)).await?;
//! # Ok(()) }
//! ```
//!
//! **Determinism on the server side.** llama-server with one slot (its default) and the prompt
//! cache off ([`HttpConfig::reuse_prompt_cache`], default) computes every request from scratch
//! with the same batch shapes, so the same request gives the same output. With several slots
//! decoding concurrent requests in one batch, llama.cpp does not promise bit-identical logits;
//! the result cache still makes every repeated call return the first answer.

pub mod config;
pub mod gbnf;
pub mod protocol;
pub mod server;
mod transport;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

pub use config::{ApiKey, HttpConfig, RetryPolicy, API_KEY_ENV};
pub use protocol::{gbnf_literal, UNSCORED};
pub use server::{ServerInfo, ServerKind};

use crate::backend::{Backend, CompletionRequest, OptionScore};
use crate::chat_template::ChatTemplate;
use crate::error::{Error, Result};
use crate::options::Generation;
use crate::prompt::{self, Piece};
use transport::Transport;

const COMPLETIONS: &str = "/v1/completions";

/// Top alternatives asked for first when looking up next-token log-probabilities; candidates
/// outside them trigger one request for the whole vocabulary (the values are the same).
const NEXT_TOKEN_TOP: usize = 512;

/// A [`Backend`] that sends every request to an OpenAI-compatible inference server.
pub struct HttpBackend {
    transport: Transport,
    info: ServerInfo,
    identity: String,
    template: Option<ChatTemplate>,
    reuse_prompt_cache: bool,
    first_tokens: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackend")
            .field("base_url", &self.transport.shown_url())
            .field("identity", &self.identity)
            .finish()
    }
}

impl HttpBackend {
    /// Connect: ask the server which models it serves (`/v1/models`) and what it is (llama-server
    /// `/props`), and check the configured model is among them.
    ///
    /// Errors: [`Error::ServerUnreachable`] (with the URL), [`Error::ModelNotServed`],
    /// [`Error::HttpStatus`], [`Error::Timeout`], [`Error::Template`] for a template that does
    /// not compile.
    pub async fn connect(config: HttpConfig) -> Result<Self> {
        let transport = Transport::new(&config)?;
        let info = server::discover(&transport, &config).await?;
        Self::from_parts(transport, info, &config)
    }

    /// [`HttpBackend::connect`] for synchronous callers, also from inside an async runtime (the
    /// discovery runs on a short-lived thread of its own).
    pub fn connect_blocking(config: HttpConfig) -> Result<Self> {
        let discovery_config = config.clone();
        let info = std::thread::spawn(move || -> Result<ServerInfo> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::ServerUnreachable {
                    url: discovery_config.display_url(),
                    reason: format!("cannot start a runtime for discovery: {e}"),
                })?;
            runtime.block_on(async {
                let transport = Transport::new(&discovery_config)?;
                server::discover(&transport, &discovery_config).await
            })
        })
        .join()
        .map_err(|_| Error::ServerUnreachable {
            url: config.display_url(),
            reason: "the discovery thread panicked".into(),
        })??;
        // A fresh client for the caller's runtime (pooled connections belong to one runtime).
        let transport = Transport::new(&config)?;
        Self::from_parts(transport, info, &config)
    }

    fn from_parts(transport: Transport, info: ServerInfo, config: &HttpConfig) -> Result<Self> {
        let (bos, eos) = info
            .chat_template
            .as_ref()
            .map(|(_, b, e)| (b.clone(), e.clone()))
            .unwrap_or_default();
        let template = match (&config.chat_template, &info.chat_template) {
            (Some(source), _) => Some(ChatTemplate::new(source, &bos, &eos)?),
            (None, Some((source, _, _))) => Some(ChatTemplate::new(source, &bos, &eos)?),
            (None, None) => None,
        };
        let identity = info.identity();
        tracing::info!(base_url = transport.shown_url(), %identity, "connected to inference server");
        Ok(Self {
            transport,
            info,
            identity,
            template,
            reuse_prompt_cache: config.reuse_prompt_cache,
            first_tokens: Mutex::default(),
        })
    }

    /// What the server reported when connecting.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The server's base URL (normalised, any password redacted).
    pub fn base_url(&self) -> &str {
        self.transport.shown_url()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.transport.shown_url(), path)
    }

    /// The prompt as it goes on the wire, checked to fit (see [`HttpBackend::check_fits`]).
    ///
    /// A prompt without literal spans ([`crate::prompt`]) goes as its text, exactly as always
    /// (`None`: the body keeps the text). One with literal spans goes as token ids to
    /// llama-server: markup tokenized with control-token parsing on, literal text with it off
    /// (`/tokenize` with `parse_special: false`), so the server never reads a control token in
    /// untrusted text. Should a server ignore `parse_special`, the literal text is tokenized
    /// again with its control-token shapes broken ([`prompt::neutralize`]). Other servers get
    /// the text with the literal spans neutralised: they parse control tokens in prompt text and
    /// offer no way to turn that off.
    async fn wire_prompt(&self, rendered: &str, max_tokens: usize) -> Result<Option<Value>> {
        if !rendered.contains([prompt::LITERAL_OPEN, prompt::LITERAL_CLOSE]) {
            self.check_fits(rendered, max_tokens).await?;
            return Ok(None);
        }
        let pieces = prompt::pieces(rendered);
        if self.info.kind != ServerKind::LlamaServer {
            let text: String = pieces
                .iter()
                .map(|p| match p {
                    Piece::Markup(t) => std::borrow::Cow::Borrowed(*t),
                    Piece::Literal(t) => prompt::neutralize(t),
                })
                .collect();
            return Ok(Some(Value::String(text)));
        }
        let mut ids: Vec<u64> = Vec::new();
        for (index, piece) in pieces.iter().enumerate() {
            let first = index == 0;
            let tokens = match piece {
                Piece::Markup(t) => self.tokenize(t, first, true).await?.0,
                Piece::Literal(t) => {
                    let (tokens, parsed_control) = self.tokenize(t, first, false).await?;
                    if parsed_control {
                        tracing::warn!(
                            base_url = self.transport.shown_url(),
                            "the server parsed control tokens despite parse_special: false; \
                             sending the untrusted text with its markers broken"
                        );
                        self.tokenize(&prompt::neutralize(t), first, false).await?.0
                    } else {
                        tokens
                    }
                }
            };
            ids.extend(tokens);
        }
        self.check_count(ids.len(), max_tokens)?;
        Ok(Some(serde_json::json!(ids)))
    }

    /// llama-server `/tokenize`: the ids of `text`, and whether any token is a whole
    /// control-token-shaped piece (a control token the server parsed).
    async fn tokenize(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<(Vec<u64>, bool)> {
        let answer = self
            .transport
            .post(
                "/tokenize",
                &serde_json::json!({
                    "content": text,
                    "add_special": add_special,
                    "parse_special": parse_special,
                    "with_pieces": true,
                }),
            )
            .await?;
        let bad = || Error::BadResponse {
            url: self.url("/tokenize"),
            reason: "no tokens in the answer".into(),
        };
        let tokens = answer
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or_else(bad)?;
        let mut ids = Vec::with_capacity(tokens.len());
        let mut control = false;
        for t in tokens {
            // With `with_pieces`: {"id", "piece"}; older servers: bare ids.
            let id = t
                .get("id")
                .and_then(Value::as_u64)
                .or_else(|| t.as_u64())
                .ok_or_else(bad)?;
            if let Some(piece) = t.get("piece").and_then(Value::as_str) {
                control |= piece.len() > 2 && prompt::looks_like_control_text(piece);
            }
            ids.push(id);
        }
        Ok((ids, control))
    }

    /// llama-server: the prompt's tokens plus `max_tokens` must fit the context (the server would
    /// otherwise silently cut the prompt); the same [`Error::ContextOverflow`] as locally.
    async fn check_fits(&self, prompt: &str, max_tokens: usize) -> Result<()> {
        if self.info.kind != ServerKind::LlamaServer {
            return Ok(()); // other servers answer HTTP 400 for a prompt that does not fit
        }
        let answer = self
            .transport
            .post(
                "/tokenize",
                &serde_json::json!({"content": prompt, "add_special": true}),
            )
            .await?;
        let prompt_tokens = answer
            .get("tokens")
            .and_then(serde_json::Value::as_array)
            .map(Vec::len)
            .ok_or_else(|| Error::BadResponse {
                url: self.url("/tokenize"),
                reason: "no tokens in the answer".into(),
            })?;
        self.check_count(prompt_tokens, max_tokens)
    }

    fn check_count(&self, prompt_tokens: usize, max_tokens: usize) -> Result<()> {
        let context = self.info.context_length;
        if prompt_tokens + max_tokens > context {
            return Err(Error::ContextOverflow {
                prompt_tokens,
                max_tokens,
                context,
            });
        }
        Ok(())
    }

    /// llama-server: the first token id of each candidate (`/tokenize`, memoised).
    async fn first_token_ids(&self, candidates: &[String]) -> Result<Vec<u64>> {
        let mut ids = Vec::with_capacity(candidates.len());
        for (index, c) in candidates.iter().enumerate() {
            let known = self
                .first_tokens
                .lock()
                .expect("token memo")
                .get(c)
                .copied();
            let id = match known {
                Some(id) => id,
                None => {
                    let answer = self
                        .transport
                        .post(
                            "/tokenize",
                            &serde_json::json!({"content": c, "add_special": false}),
                        )
                        .await?;
                    let id = answer
                        .pointer("/tokens/0")
                        .and_then(serde_json::Value::as_u64)
                        .ok_or(Error::EmptyChoice { index })?;
                    self.first_tokens
                        .lock()
                        .expect("token memo")
                        .insert(c.clone(), id);
                    id
                }
            };
            ids.push(id);
        }
        Ok(ids)
    }
}

#[async_trait]
impl Backend for HttpBackend {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn context_length(&self) -> usize {
        self.info.context_length
    }

    fn render_chat(&self, user: &str) -> Result<String> {
        match &self.template {
            Some(t) => t.render_user(user),
            None => Err(Error::Template(format!(
                "{} reports no chat template: set HttpConfig::chat_template, or send raw prompts",
                self.transport.shown_url()
            ))),
        }
    }

    /// Not available: the server counts tokens itself and reports a prompt that does not fit
    /// as an HTTP error with its message.
    fn count_tokens(&self, _text: &str) -> Result<usize> {
        Err(Error::Unsupported(
            "local token counting (the HTTP backend's server counts tokens)".into(),
        ))
    }

    async fn complete(&self, request: CompletionRequest) -> Result<Generation> {
        let wire = self
            .wire_prompt(&request.prompt, request.max_tokens)
            .await?;
        let mut body = protocol::completion_body(&self.info, self.reuse_prompt_cache, &request)?;
        if let Some(p) = wire {
            body["prompt"] = p;
        }
        let response = self.transport.post(COMPLETIONS, &body).await?;
        protocol::parse_completion(&self.url(COMPLETIONS), &self.info, &request, &response)
    }

    async fn next_token_logprobs(&self, prompt: &str, candidates: &[String]) -> Result<Vec<f64>> {
        if self.info.kind != ServerKind::LlamaServer {
            return Err(Error::Unsupported(format!(
                "next-token log-probabilities over {} (an {} server)",
                self.transport.shown_url(),
                self.info.kind.name()
            )));
        }
        let wire = self.wire_prompt(prompt, 1).await?;
        let ids = self.first_token_ids(candidates).await?;
        let url = self.url(COMPLETIONS);
        let vocab = self
            .info
            .model_meta
            .as_ref()
            .and_then(|m| m.get("n_vocab"))
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| usize::try_from(n).ok());
        let mut top = NEXT_TOKEN_TOP;
        loop {
            let n = vocab.map_or(top, |v| top.min(v));
            let mut body =
                protocol::next_token_body(&self.info, self.reuse_prompt_cache, prompt, n);
            if let Some(p) = &wire {
                body["prompt"] = p.clone();
            }
            let response = self.transport.post(COMPLETIONS, &body).await?;
            let table: HashMap<u64, f64> = protocol::parse_next_token(&url, &response)?
                .into_iter()
                .collect();
            let found: Option<Vec<f64>> = ids.iter().map(|id| table.get(id).copied()).collect();
            match found {
                Some(values) => return Ok(values),
                None if vocab.is_some_and(|v| n < v) => top = usize::MAX,
                None => {
                    return Err(Error::BadResponse {
                        url,
                        reason: "the server did not report every candidate's probability".into(),
                    })
                }
            }
        }
    }

    async fn score_options(&self, prompt: &str, options: &[String]) -> Result<Vec<OptionScore>> {
        let url = self.url(COMPLETIONS);
        match self.info.kind {
            ServerKind::LlamaServer => {
                let longest = options.iter().map(String::len).max().unwrap_or(0);
                let wire = self.wire_prompt(prompt, longest + 2).await?;
                // One request per option, in order: requests are computed one at a time and
                // identically on every call.
                let mut scores = Vec::with_capacity(options.len());
                for option in options {
                    let mut body = protocol::option_body(
                        &self.info,
                        self.reuse_prompt_cache,
                        prompt,
                        option,
                        crate::DEFAULT_SEED,
                    );
                    if let Some(p) = &wire {
                        body["prompt"] = p.clone();
                    }
                    let response = self.transport.post(COMPLETIONS, &body).await?;
                    scores.push(protocol::parse_option_score(&url, option, &response)?);
                }
                Ok(scores)
            }
            ServerKind::OpenAi => {
                let mut body =
                    protocol::guided_choice_body(&self.info, prompt, options, crate::DEFAULT_SEED);
                if let Some(p) = self.wire_prompt(prompt, 1).await? {
                    body["prompt"] = p;
                }
                let response = self.transport.post(COMPLETIONS, &body).await?;
                protocol::parse_guided_choice(&url, options, &response)
            }
        }
    }
}
