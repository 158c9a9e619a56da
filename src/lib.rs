//! # steadytext
//!
//! A small local LLM as a deterministic, cached function, and customer intelligence over
//! PostgreSQL. This facade re-exports the workspace crates:
//!
//! - everything in [`steadytext_core`] at the root (`Engine`, `GenerateOptions`, ...);
//! - [`schema`] (feature `schema`): the customer-intelligence domain;
//! - [`pg`] (feature `pg`): the PostgreSQL adapter.
//! - `http` (feature `http`): `HttpBackend`, any OpenAI-compatible inference server as the
//!   backend (`Engine::builder().http(..)`).
//!
//! ```no_run
//! # async fn demo() -> steadytext::Result<()> {
//! let engine = steadytext::Engine::builder().build()?;
//! let g = engine.generate("Say hello.", &steadytext::GenerateOptions::default().max_tokens(8)).await?;
//! println!("{}", g.text);
//! # Ok(()) }
//! ```

pub use steadytext_core::*;

/// The customer-intelligence domain (records, scoring, prompts, analyses).
#[cfg(feature = "schema")]
pub use steadytext_schema as schema;

/// The PostgreSQL adapter (migrations, repositories, job queue, cache tier).
#[cfg(feature = "pg")]
pub use steadytext_pg as pg;
