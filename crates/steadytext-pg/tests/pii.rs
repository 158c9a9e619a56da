//! Personal data against a real database: what reaches the model for a ticket with no
//! customer, and what a failed job leaves in `last_error` and the dead-letter table.
//!
//! The backend here is a deterministic stand-in that records every prompt and fails the way a
//! remote server that ignores the constraint does: with the prompt echoed in its output (no
//! inference is tested here, only what is sent and what is stored).
//!
//! The views' insight refreshes, which data changes also enqueue, are switched off in these
//! databases (`steadytext.config`): the tests count the jobs and effects of other kinds.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sqlx::PgPool;
use steadytext_core::{Backend, Cache, CompletionRequest, Engine, Error, Generation, OptionScore};
use steadytext_pg::{Intelligence, Store, MIGRATOR};
use steadytext_schema::privacy::fold;

use common::without_insight_refresh;

/// Records prompts; every model call fails with a constraint violation quoting the prompt.
#[derive(Default)]
struct EchoingBackend {
    prompts: Mutex<Vec<String>>,
}

#[async_trait]
impl Backend for EchoingBackend {
    fn identity(&self) -> &str {
        "test:echoing-backend"
    }

    fn context_length(&self) -> usize {
        8192
    }

    fn render_chat(&self, user: &str) -> steadytext_core::Result<String> {
        Ok(format!("<user>{user}</user>"))
    }

    fn count_tokens(&self, text: &str) -> steadytext_core::Result<usize> {
        Ok(text.len().div_ceil(4))
    }

    async fn complete(&self, request: CompletionRequest) -> steadytext_core::Result<Generation> {
        Err(self.echo(&request.prompt))
    }

    async fn next_token_logprobs(
        &self,
        prompt: &str,
        _candidates: &[String],
    ) -> steadytext_core::Result<Vec<f64>> {
        Err(self.echo(prompt))
    }

    async fn score_options(
        &self,
        prompt: &str,
        _options: &[String],
    ) -> steadytext_core::Result<Vec<OptionScore>> {
        Err(self.echo(prompt))
    }
}

impl EchoingBackend {
    /// Record `prompt` and fail quoting it (every model call, generation or scoring).
    fn echo(&self, prompt: &str) -> Error {
        self.prompts.lock().unwrap().push(prompt.to_string());
        Error::ConstraintViolated {
            output: format!("ECHO {prompt}"),
            reason: format!("REASON {prompt}"),
        }
    }
}

fn intel(pool: &PgPool, backend: Arc<EchoingBackend>) -> Intelligence {
    let engine = Engine::new(backend as Arc<dyn Backend>, Cache::new(vec![]));
    Intelligence::new(Store::from_pool(pool.clone()), engine)
}

const TICKET: &str =
    "Guest order by Tomás Ruiz. MARIA GARCIA and anna_oneil helped; José was rude.\n\
    Call 06 12 34 56 78, ０６–１２–３４–５６–７９ or Tel.090-1234-5678, write tomás@correo.es.\n\
    Regards,\nLuz Peña";

/// Customers the database knows (none of them owns the ticket) and a ticket with no customer.
async fn setup(pool: &PgPool) -> i32 {
    sqlx::query(
        "INSERT INTO customers (email, first_name, last_name) VALUES \
         ('maria@example.es', 'María', 'García'), ('anna@example.ie', 'Anna', 'O''Neil'), \
         ('jose@example.es', 'Jose', 'Núñez')",
    )
    .execute(pool)
    .await
    .unwrap();
    let (id,): (i32,) = sqlx::query_as(
        "INSERT INTO support_tickets (category, subject, description) \
         VALUES ('delivery', 'Late order for Maria', $1) RETURNING id",
    )
    .bind(TICKET)
    .fetch_one(pool)
    .await
    .unwrap();
    id
}

/// No name, phone or email of `TICKET` in `text` (folded).
fn assert_no_pii(text: &str) {
    let folded = fold(text);
    for word in [
        "tomas", "ruiz", "maria", "garcia", "anna", "oneil", "jose", "luz", "pena", "correo",
    ] {
        let whole = folded
            .split(|c: char| !c.is_alphabetic())
            .any(|w| w == word);
        assert!(!whole, "{word:?} in {text:?}");
    }
    let digits: String = folded.chars().filter(char::is_ascii_digit).collect();
    for phone in ["0612345678", "0612345679", "09012345678"] {
        assert!(!digits.contains(phone), "{phone} in {text:?}");
    }
    assert!(!text.contains('@'), "{text:?}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_ticket_without_customer_reaches_the_model_without_names(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let id = setup(&pool).await;
    let backend = Arc::new(EchoingBackend::default());
    let intel = intel(&pool, backend.clone());
    let err = intel.analyze_ticket(id).await.unwrap_err();
    // The error itself is the caller's: it keeps the details (of a redacted prompt).
    assert!(err.to_string().contains("ECHO"), "{err}");
    let prompts = backend.prompts.lock().unwrap().clone();
    assert!(!prompts.is_empty());
    for p in &prompts {
        assert!(p.contains("Guest order by [name] [name]"), "{p}");
        assert_no_pii(p);
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn failed_jobs_store_no_prompt_or_output_text(pool: PgPool) {
    without_insight_refresh(&pool).await;
    setup(&pool).await;
    let backend = Arc::new(EchoingBackend::default());
    let intel = Arc::new(intel(&pool, backend.clone()));

    // The insert enqueued the ticket's job; it fails with a violated constraint quoting the
    // prompt, an error that would repeat: dead-lettered at once, with a summary as its reason.
    let processed = intel.process_pending().await.unwrap();
    assert_eq!((processed.completed, processed.failed), (0, 1));
    let dead: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT last_error FROM steadytext_dead_jobs")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(dead.len(), 1);
    let dead_error = dead[0].0.clone().unwrap_or_default();
    assert!(dead_error.contains("withheld"), "{dead_error}");
    for text in [
        "ECHO",
        "REASON",
        "Guest order",
        "<user>",
        "[name]",
        "[phone]",
    ] {
        assert!(!dead_error.contains(text), "{text:?} in {dead_error:?}");
    }
    // Every prompt the model saw was redacted as well.
    for p in backend.prompts.lock().unwrap().iter() {
        assert_no_pii(p);
    }
}
