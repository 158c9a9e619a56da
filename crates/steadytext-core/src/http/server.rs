//! What the server is: its kind, the model it serves, its context and chat template, learned once
//! when the backend connects (`/v1/models`, and llama-server's `/props`).
//!
//! **Tracking the served weights.** The backend identity (part of every cache key) must change
//! when the weights behind a model name change, or a cache would keep serving the old model's
//! answers. What an OpenAI-compatible server reports is used, most specific first, and recorded
//! in the identity's metadata under [`WEIGHTS_META_KEY`]:
//!
//! 1. [`HttpConfig::weights_id`], when whoever deploys the server names the weights (a hash or a
//!    release tag): `id:<value>`.
//! 2. The weights file itself, when the server is on this machine (a loopback base URL) and tells
//!    where its model is (llama-server: `/props` `model_path`, or a `.gguf` path as model id) and
//!    that file is readable here: `blake3:<hash of the file>` (memoised by path, size and mtime,
//!    as for the local backend).
//! 3. A content digest the server reports for the model (Ollama-style `models[].digest` in
//!    `/v1/models`): `digest:<value>`.
//!
//! Without any of them the identity still holds the model's name and the metadata the server
//! reports (llama-server 0.3.16: `n_params`, `size` in bytes, `n_vocab`, `n_embd`, `n_ctx_train`,
//! `vocab_type`), which changes with a different architecture, size or quantisation but not with
//! retrained weights of the same shape: a remote server should then be given a
//! [`HttpConfig::weights_id`]. llama-server exposes no modification time or hash of its model.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::config::HttpConfig;
use crate::http::transport::Transport;

/// The key of [`ServerInfo::model_meta`] that identifies the served weights (see the module docs).
pub const WEIGHTS_META_KEY: &str = "steadytext_weights";

/// Bump when the request mapping changes in a way that changes outputs (it is part of the
/// backend identity, hence of every cache key).
pub const PROTOCOL_VERSION: u32 = 1;

/// Which dialect of the OpenAI-compatible API the server speaks beyond the common core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// llama.cpp's `llama-server` (answers `/props` with `build_info`): constraints as
    /// `json_schema` / GBNF `grammar`, log-probabilities as `n_probs`.
    LlamaServer,
    /// Any other OpenAI-compatible server: constraints as vLLM's `guided_json` / `guided_regex` /
    /// `guided_choice` extension parameters.
    OpenAi,
}

impl ServerKind {
    /// The name used in the backend identity.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::LlamaServer => "llama-server",
            ServerKind::OpenAi => "openai",
        }
    }
}

/// Everything learned about the server when connecting.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Its dialect.
    pub kind: ServerKind,
    /// The model id to send in requests, exactly as the server reports it.
    pub model_id: String,
    /// Build or version information the server reports (llama-server `build_info`), if any.
    pub build: Option<String>,
    /// The model's metadata as reported (llama-server: parameters, size, vocabulary), if any,
    /// plus what identifies the served weights under [`WEIGHTS_META_KEY`] when known (see the
    /// module docs).
    pub model_meta: Option<Value>,
    /// Context window per request.
    pub context_length: usize,
    /// The server's chat template, BOS and EOS token text, if it reports them.
    pub chat_template: Option<(String, String, String)>,
    /// Concurrent sequences the server decodes (llama-server `total_slots`), if reported.
    pub slots: Option<usize>,
}

impl ServerInfo {
    /// The backend identity: protocol version, server kind and build, and the served model
    /// (its id, by file name for a path, plus the reported metadata and the weights' identity
    /// when known, see the module docs). Two engines or two models
    /// never share an identity; the URL is not part of it, so a fleet of identical servers
    /// shares cache entries.
    pub fn identity(&self) -> String {
        let model = model_display_name(&self.model_id);
        let meta = self
            .model_meta
            .as_ref()
            .filter(|m| !m.is_null())
            .map(crate::cache::canonical_json)
            .unwrap_or_default();
        format!(
            "http/v{PROTOCOL_VERSION}/{}/{}/{model}/{meta}",
            self.kind.name(),
            self.build.as_deref().unwrap_or("unknown-build"),
        )
    }
}

/// A model id as a person names it: the file name of a path, else the id.
pub fn model_display_name(id: &str) -> &str {
    if id.ends_with(".gguf") {
        id.rsplit(['/', '\\']).next().unwrap_or(id)
    } else {
        id
    }
}

/// Whether `requested` names the served model `id`: the id itself, or (for a path) its file
/// name with or without `.gguf`.
fn names_model(requested: &str, id: &str) -> bool {
    let file = model_display_name(id);
    requested == id || requested == file || Some(requested) == file.strip_suffix(".gguf")
}

/// Ask the server what it is and pick the model.
pub(crate) async fn discover(transport: &Transport, config: &HttpConfig) -> Result<ServerInfo> {
    let models_url = format!("{}/v1/models", transport.shown_url());
    let models = transport.get("/v1/models").await?;
    let entries: Vec<&Value> = models
        .get("data")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .ok_or_else(|| Error::BadResponse {
            url: models_url.clone(),
            reason: "no `data` list of models".into(),
        })?;
    let served: Vec<String> = entries
        .iter()
        .filter_map(|e| e.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let entry = match &config.model_name {
        Some(name) => entries.iter().find(|e| {
            e.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| names_model(name, id))
        }),
        None if entries.len() == 1 => entries.first(),
        None => None,
    }
    .ok_or_else(|| Error::ModelNotServed {
        url: transport.shown_url().to_string(),
        requested: match &config.model_name {
            Some(n) => format!("{n:?}"),
            None => {
                "(none given, and the server serves several: choose one with --model-name)".into()
            }
        },
        served: served.clone(),
    })?;
    let model_id = entry
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut model_meta = entry.get("meta").cloned();

    // llama-server answers /props; others answer 404 (or something without build_info). Any
    // other failure (e.g. 401 for a missing API key) is reported, not taken as "another server".
    let props = match transport.get("/props").await {
        Ok(p) if p.get("build_info").is_some() => Some(p),
        Ok(_) | Err(Error::BadResponse { .. }) => None,
        Err(Error::HttpStatus {
            status: 404 | 405 | 501,
            ..
        }) => None,
        Err(e) => return Err(e),
    };
    let kind = if props.is_some() {
        ServerKind::LlamaServer
    } else {
        ServerKind::OpenAi
    };
    let props = props.unwrap_or(Value::Null);
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(weights) = weights_identity(config, kind, &model_id, &props, &models).await {
        let mut meta = match model_meta.take() {
            Some(Value::Object(m)) => Value::Object(m),
            Some(Value::Null) | None => Value::Object(Default::default()),
            Some(other) => serde_json::json!({ "reported": other }),
        };
        meta[WEIGHTS_META_KEY] = Value::String(weights);
        model_meta = Some(meta);
    }
    let build = text(&props, "build_info").or_else(|| text(entry, "owned_by"));
    let chat_template = text(&props, "chat_template")
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            (
                t,
                text(&props, "bos_token").unwrap_or_default(),
                text(&props, "eos_token").unwrap_or_default(),
            )
        });
    let as_usize = |v: Option<&Value>| {
        v.and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    let context_length = config
        .context_length
        .or_else(|| as_usize(props.pointer("/default_generation_settings/n_ctx")))
        .or_else(|| as_usize(entry.get("max_model_len")))
        .or_else(|| as_usize(model_meta.as_ref().and_then(|m| m.get("n_ctx_train"))))
        .unwrap_or(DEFAULT_CONTEXT);
    Ok(ServerInfo {
        kind,
        model_id,
        build,
        model_meta,
        context_length,
        chat_template,
        slots: as_usize(props.get("total_slots")),
    })
}

/// What identifies the served weights, most specific first (see the module docs).
async fn weights_identity(
    config: &HttpConfig,
    kind: ServerKind,
    model_id: &str,
    props: &Value,
    models: &Value,
) -> Option<String> {
    if let Some(id) = config
        .weights_id
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        return Some(format!("id:{}", id.trim()));
    }
    if is_loopback(&config.normalized_base_url()) {
        let path = props
            .get("model_path")
            .and_then(Value::as_str)
            .or(
                (kind == ServerKind::LlamaServer && model_id.ends_with(".gguf"))
                    .then_some(model_id),
            )
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute() && p.is_file());
        if let Some(path) = path {
            let hashed = tokio::task::spawn_blocking(move || {
                crate::fingerprint::model_fingerprint(&path, Some(&crate::model_dir()))
            })
            .await;
            match hashed {
                Ok(Ok(hash)) => return Some(format!("blake3:{hash}")),
                Ok(Err(e)) => tracing::warn!("the served model file is not readable: {e}"),
                Err(e) => tracing::warn!("hashing the served model file failed: {e}"),
            }
        }
    }
    models
        .get("models")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| {
            [m.get("model"), m.get("name")]
                .into_iter()
                .flatten()
                .any(|n| n.as_str() == Some(model_id))
        })
        .find_map(|m| m.get("digest").and_then(Value::as_str))
        .filter(|d| !d.trim().is_empty())
        .map(|d| format!("digest:{}", d.trim()))
}

/// Whether `url`'s host is this machine (`localhost`, `127.0.0.0/8`, `[::1]`).
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The context window assumed when neither the server nor the configuration says.
pub const DEFAULT_CONTEXT: usize = 2048;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_match_ids_and_file_names() {
        let id = "/root/.cache/steadytext/models/SmolLM2-135M-Instruct.Q4_1.gguf";
        assert!(names_model(id, id));
        assert!(names_model("SmolLM2-135M-Instruct.Q4_1.gguf", id));
        assert!(names_model("SmolLM2-135M-Instruct.Q4_1", id));
        assert!(!names_model("SmolLM2", id));
        assert!(names_model("org/model", "org/model"));
        assert!(!names_model("model", "org/model"));
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:8080"));
        assert!(is_loopback("http://u:p@localhost/v1"));
        assert!(is_loopback("http://[::1]:1"));
        assert!(is_loopback("http://127.1.2.3"));
        assert!(!is_loopback("http://10.0.0.1:8080"));
        assert!(!is_loopback("https://models.example.com"));
        assert!(!is_loopback("http://localhost.example.com"));
    }

    #[test]
    fn identity_names_kind_build_and_model() {
        let info = ServerInfo {
            kind: ServerKind::LlamaServer,
            model_id: "/m/a.gguf".into(),
            build: Some("b1-abc".into()),
            model_meta: Some(serde_json::json!({"n_params": 1, "size": 2})),
            context_length: 2048,
            chat_template: None,
            slots: None,
        };
        assert_eq!(
            info.identity(),
            r#"http/v1/llama-server/b1-abc/a.gguf/{"n_params":1,"size":2}"#
        );
    }
}
