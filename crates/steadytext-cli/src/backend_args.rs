//! Global options that select the backend: the local model or an inference server.

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use steadytext_core::EngineBuilder;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The GGUF model in this process (see --model).
    Local,
    /// An OpenAI-compatible inference server (llama-server, vLLM, TGI) at --base-url.
    Http,
}

/// `--backend`, `--base-url`, `--model-name`, `--request-timeout` (every command).
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Where inference runs: `local` (the GGUF model in-process) or `http` (an OpenAI-compatible
    /// server at --base-url). Never falls back from one to the other.
    #[arg(long, global = true, env = "STEADYTEXT_BACKEND", value_enum, default_value_t = BackendKind::Local)]
    pub backend: BackendKind,

    /// Base URL of the inference server for --backend http, e.g. http://127.0.0.1:8080. An API
    /// key, if the server wants one, is read from $STEADYTEXT_API_KEY (never printed).
    #[arg(long, global = true, env = "STEADYTEXT_BASE_URL")]
    pub base_url: Option<String>,

    /// The model to use on the server, as its /v1/models names it (for llama-server also the
    /// model's file name). Default: the one model the server serves.
    #[arg(long, global = true, env = "STEADYTEXT_MODEL_NAME")]
    pub model_name: Option<String>,

    /// Seconds one request to the server may take (--backend http): greater than 0, at most
    /// 604800 (one week).
    #[arg(
        long,
        global = true,
        env = "STEADYTEXT_REQUEST_TIMEOUT",
        default_value_t = 300.0,
        value_parser = crate::numbers::seconds
    )]
    pub request_timeout: f64,
}

impl BackendArgs {
    /// Reject combinations that would otherwise be ignored silently.
    pub fn validate(&self) -> Result<()> {
        match self.backend {
            BackendKind::Local => {
                if let Some(url) = &self.base_url {
                    bail!(
                        "--base-url {url} is only used with --backend http (or STEADYTEXT_BACKEND=http); \
                         the local backend never talks to a server"
                    );
                }
                if self.model_name.is_some() {
                    bail!("--model-name names a model on a server: use it with --backend http (locally, use --model PATH)");
                }
            }
            BackendKind::Http => {
                if self.base_url.is_none() {
                    bail!("--backend http needs --base-url URL (or STEADYTEXT_BASE_URL)");
                }
                if std::time::Duration::try_from_secs_f64(self.request_timeout).is_err()
                    || self.request_timeout <= 0.0
                {
                    bail!("--request-timeout must be a positive number of seconds");
                }
            }
        }
        Ok(())
    }

    /// Configure `builder` for the selected backend (after [`BackendArgs::validate`]).
    pub fn apply(&self, builder: EngineBuilder) -> EngineBuilder {
        match (self.backend, &self.base_url) {
            (BackendKind::Http, Some(url)) => {
                // Never panics: `validate` (and the option's parser) keep the value in range.
                let timeout = std::time::Duration::try_from_secs_f64(self.request_timeout)
                    .unwrap_or(std::time::Duration::from_secs(300));
                let mut config =
                    steadytext_core::http::HttpConfig::new(url).request_timeout(timeout);
                if let Some(name) = &self.model_name {
                    config = config.model_name(name);
                }
                builder.http(config)
            }
            _ => builder,
        }
    }

    /// A short description for progress messages: "the local model" or the server URL.
    pub fn describe(&self) -> String {
        match (self.backend, &self.base_url) {
            (BackendKind::Http, Some(url)) => format!("the inference server at {url}"),
            _ => "the local model".into(),
        }
    }
}
