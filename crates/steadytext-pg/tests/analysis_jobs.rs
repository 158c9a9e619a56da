//! Analysis jobs against a real database: stale analyses are not written, edits that change a
//! prompt re-enqueue, permanent model errors dead-letter at once, no transaction is held while
//! the model runs, a job's runtime is bounded, and a drain heart-beats its leases and survives
//! losing one.
//!
//! The views' insight refreshes, which data changes also enqueue, are switched off in these
//! databases (`steadytext.config`): the tests count review and ticket jobs.
//!
//! Inference is the real default model behind a test wrapper ([`Gated`]) that can hold the
//! model calls until the test has looked at the database; model errors come from a
//! deterministic backend ([`Failing`]).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgPool, Postgres};
use steadytext_core::backend::{CompletionRequest, Constraint, OptionScore};
use steadytext_core::{Backend, Cache, Engine, Error, Generation, LocalBackend};
use steadytext_pg::{AnalysisJobHandler, Intelligence, Queue, Store, MIGRATOR};

fn local() -> Arc<LocalBackend> {
    static BACKEND: OnceLock<Arc<LocalBackend>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            Arc::new(
                Engine::builder()
                    .build_backend()
                    .expect("model loads (run scripts/fetch-model)"),
            )
        })
        .clone()
}

/// Model-heavy tests run one at a time (parallel decoding on 2 cores only oversubscribes).
async fn model_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// The real model, but every call waits until the gate is opened (then sleeps `delay`).
struct Gated {
    inner: Arc<LocalBackend>,
    calls: AtomicUsize,
    open: tokio::sync::watch::Sender<bool>,
    delay: Duration,
}

impl Gated {
    fn new(open: bool, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: local(),
            calls: AtomicUsize::new(0),
            open: tokio::sync::watch::Sender::new(open),
            delay,
        })
    }

    /// Let every held and future call through.
    fn open(&self) {
        self.open.send_replace(true);
    }

    /// Model calls started so far (held ones included).
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn wait_for_call(&self) {
        assert!(
            wait_until(Duration::from_secs(60), || async { self.calls() > 0 }).await,
            "the model was never called"
        );
    }

    async fn pass(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|o| *o).await;
        tokio::time::sleep(self.delay).await;
    }
}

#[async_trait]
impl Backend for Gated {
    fn identity(&self) -> &str {
        self.inner.identity()
    }
    fn context_length(&self) -> usize {
        self.inner.context_length()
    }
    fn render_chat(&self, user: &str) -> steadytext_core::Result<String> {
        self.inner.render_chat(user)
    }
    fn count_tokens(&self, text: &str) -> steadytext_core::Result<usize> {
        self.inner.count_tokens(text)
    }
    fn check_constraint(&self, constraint: &Constraint) -> steadytext_core::Result<()> {
        self.inner.check_constraint(constraint)
    }
    async fn complete(&self, request: CompletionRequest) -> steadytext_core::Result<Generation> {
        self.pass().await;
        self.inner.complete(request).await
    }
    async fn next_token_logprobs(
        &self,
        prompt: &str,
        candidates: &[String],
    ) -> steadytext_core::Result<Vec<f64>> {
        self.pass().await;
        self.inner.next_token_logprobs(prompt, candidates).await
    }
    async fn score_options(
        &self,
        prompt: &str,
        options: &[String],
    ) -> steadytext_core::Result<Vec<OptionScore>> {
        self.pass().await;
        self.inner.score_options(prompt, options).await
    }
}

/// A backend whose every model call fails with the same error.
struct Failing(fn() -> Error);

#[async_trait]
impl Backend for Failing {
    fn identity(&self) -> &str {
        "failing-test-backend"
    }
    fn context_length(&self) -> usize {
        8192
    }
    fn render_chat(&self, user: &str) -> steadytext_core::Result<String> {
        Ok(format!("<user>{user}</user>"))
    }
    fn count_tokens(&self, text: &str) -> steadytext_core::Result<usize> {
        Ok(text.len() / 4 + 1)
    }
    async fn complete(&self, _: CompletionRequest) -> steadytext_core::Result<Generation> {
        Err((self.0)())
    }
    async fn next_token_logprobs(
        &self,
        _: &str,
        _: &[String],
    ) -> steadytext_core::Result<Vec<f64>> {
        Err((self.0)())
    }
    async fn score_options(
        &self,
        _: &str,
        _: &[String],
    ) -> steadytext_core::Result<Vec<OptionScore>> {
        Err((self.0)())
    }
}

/// Analyses over `pool` with `backend` and no result cache (every analysis calls the model).
fn intel_with(pool: &PgPool, backend: Arc<dyn Backend>) -> Intelligence {
    Intelligence::new(
        Store::from_pool(pool.clone()),
        Engine::new(backend, Cache::disabled()),
    )
}

async fn insert_review(pool: &PgPool, title: &str, text: &str) -> i32 {
    let (id,): (i32,) = sqlx::query_as(
        "INSERT INTO product_reviews (product_id, rating, title, review_text) \
         VALUES (7, 2, $1, $2) RETURNING id",
    )
    .bind(title)
    .bind(text)
    .fetch_one(pool)
    .await
    .unwrap();
    id
}

/// Pending jobs may not run for an hour (keeps the job an edit enqueued out of the way).
async fn postpone_pending(pool: &PgPool) {
    exec(
        pool,
        "UPDATE steadytext_jobs SET run_at = now() + interval '1 hour' WHERE state = 'pending'",
    )
    .await;
}

async fn run_postponed_now(pool: &PgPool) {
    exec(
        pool,
        "UPDATE steadytext_jobs SET run_at = now() WHERE state = 'pending'",
    )
    .await;
}

/// (state, attempts) of every job, oldest first.
async fn jobs(pool: &PgPool) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT state, attempts FROM steadytext_jobs ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Review interaction contents for review `id`.
async fn review_contents(pool: &PgPool, id: i32) -> Vec<Option<String>> {
    sqlx::query_scalar(
        "SELECT content FROM customer_interactions \
         WHERE interaction_type = 'review' AND metadata->>'review_id' = $1::text ORDER BY id",
    )
    .bind(id.to_string())
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn review_summary(pool: &PgPool, id: i32) -> Option<String> {
    sqlx::query_scalar("SELECT ai_summary FROM product_reviews WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

// ---- item 3: stale analyses ----------------------------------------------------------------

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_drain_does_not_write_an_analysis_of_an_edited_review(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let gate = Gated::new(false, Duration::ZERO);
    let intel = Arc::new(intel_with(&pool, gate.clone()).with_concurrency(1));
    let id = insert_review(
        &pool,
        "Flimsy",
        "The hinge snapped on the second day and the seller never answered my emails.",
    )
    .await;

    // The drain runs beside the test's own steps (joined in this task).
    let (processed, ()) = tokio::join!(intel.process_pending(), async {
        // The job has read the old text and is in the model: edit the review.
        gate.wait_for_call().await;
        exec(
            &pool,
            &format!("UPDATE product_reviews SET review_text = 'Works fine now, the replacement hinge holds.' WHERE id = {id}"),
        )
        .await;
        postpone_pending(&pool).await;
        gate.open();
    });
    let processed = processed.unwrap();

    assert_eq!(
        (processed.completed, processed.stale, processed.failed),
        (0, 1, 0)
    );
    assert_eq!(
        review_summary(&pool, id).await,
        None,
        "stale analysis written"
    );
    assert!(
        review_contents(&pool, id).await.is_empty(),
        "stale interaction written"
    );
    // The stale job is finished; the edit's job waits.
    assert_eq!(
        jobs(&pool).await,
        vec![("done".to_string(), 1), ("pending".to_string(), 0)]
    );

    // The edit's job analyses the current text.
    run_postponed_now(&pool).await;
    let processed = intel.process_pending().await.unwrap();
    assert_eq!((processed.completed, processed.stale), (1, 0));
    assert!(review_summary(&pool, id).await.is_some());
    assert_eq!(
        review_contents(&pool, id).await,
        vec![Some(
            "Works fine now, the replacement hinge holds.".to_string()
        )]
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_worker_does_not_write_an_analysis_of_an_edited_ticket(
    _opts: sqlx::pool::PoolOptions<Postgres>,
    connect: PgConnectOptions,
) {
    let pool = pool_with(connect, 8).await;
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let gate = Gated::new(false, Duration::ZERO);
    let intel = Arc::new(intel_with(&pool, gate.clone()));
    let mut config = worker_config("ticket-analyst");
    config.concurrency = 1;
    config.kinds = AnalysisJobHandler::KINDS.map(String::from).to_vec();
    let worker = RunningWorker::spawn(&pool, Arc::new(AnalysisJobHandler::new(intel)), config);
    exec(
        &pool,
        "INSERT INTO support_tickets (ticket_number, category, subject, description) \
         VALUES ('T-1', 'billing', 'Charged twice', 'My card was charged twice for one order.')",
    )
    .await;

    gate.wait_for_call().await;
    exec(
        &pool,
        "UPDATE support_tickets SET description = 'Sorry, the second charge was a different order.'",
    )
    .await;
    postpone_pending(&pool).await;
    gate.open();
    assert!(
        wait_for_queue(&pool, Duration::from_secs(180), |s| s.done == 1).await,
        "the stale job did not finish"
    );
    let report = worker.stop().await;
    assert_eq!((report.completed, report.retried, report.dead), (1, 0, 0));
    let analysis: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT ai_analysis FROM support_tickets")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(analysis, None, "stale ticket analysis written");
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM customer_interactions").await,
        0,
        "stale interaction written"
    );
    assert_eq!(
        jobs(&pool).await,
        vec![("done".to_string(), 1), ("pending".to_string(), 0)]
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn edits_of_prompt_fields_enqueue_an_analysis(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone());
    let id = insert_review(&pool, "Fine", "It works.").await;
    exec(
        &pool,
        "INSERT INTO support_tickets (ticket_number, category, subject, description) \
         VALUES ('T-9', 'shipping', 'Late', 'Where is my parcel?')",
    )
    .await;
    // Both insert jobs done.
    while let Some(job) = queue
        .claim("w", Duration::from_secs(60), &[])
        .await
        .unwrap()
    {
        queue
            .complete(&job, queue.begin().await.unwrap())
            .await
            .unwrap();
    }
    let pending = |kind: &'static str| {
        let pool = pool.clone();
        async move {
            scalar(
                &pool,
                &format!(
                    "SELECT count(*) FROM steadytext_jobs WHERE state = 'pending' AND kind = '{kind}'"
                ),
            )
            .await
        }
    };
    assert_eq!(
        (
            pending("analyze_review").await,
            pending("analyze_ticket").await
        ),
        (0, 0)
    );

    // Fields outside the prompts, and writes that change nothing, enqueue nothing.
    exec(
        &pool,
        &format!("UPDATE product_reviews SET helpful_count = 3, title = 'Fine' WHERE id = {id}"),
    )
    .await;
    exec(
        &pool,
        "UPDATE support_tickets SET resolution = 'sent', satisfaction_score = 4, subject = 'Late'",
    )
    .await;
    assert_eq!(
        (
            pending("analyze_review").await,
            pending("analyze_ticket").await
        ),
        (0, 0)
    );

    // A review title edit enqueues (the title is in the prompt).
    exec(
        &pool,
        &format!("UPDATE product_reviews SET title = 'Great' WHERE id = {id}"),
    )
    .await;
    assert_eq!(pending("analyze_review").await, 1);
    // Ticket subject, description and category edits enqueue (merged into one pending job).
    exec(&pool, "UPDATE support_tickets SET subject = 'Very late'").await;
    assert_eq!(pending("analyze_ticket").await, 1);
    let job = queue
        .claim("w", Duration::from_secs(60), &["analyze_ticket"])
        .await
        .unwrap()
        .unwrap();
    queue
        .complete(&job, queue.begin().await.unwrap())
        .await
        .unwrap();
    exec(
        &pool,
        "UPDATE support_tickets SET description = 'Still no parcel.'",
    )
    .await;
    exec(&pool, "UPDATE support_tickets SET category = 'delivery'").await;
    assert_eq!(pending("analyze_ticket").await, 1);
    let payload: serde_json::Value = sqlx::query_scalar(
        "SELECT payload FROM steadytext_jobs WHERE state = 'pending' AND kind = 'analyze_ticket'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(payload["id"], 1);
}

// ---- item 4: permanent model errors --------------------------------------------------------

fn unsupported() -> Error {
    Error::Unsupported("next-token log-probabilities".into())
}
fn context_overflow() -> Error {
    Error::ContextOverflow {
        prompt_tokens: 9000,
        max_tokens: 64,
        context: 8192,
    }
}
fn truncated() -> Error {
    Error::Truncated {
        partial: "{\"themes\": [".into(),
        tokens: 64,
    }
}
fn constraint_violated() -> Error {
    Error::ConstraintViolated {
        output: "hello".into(),
        reason: "not JSON".into(),
    }
}
fn invalid_schema() -> Error {
    Error::InvalidSchema("type must be a string".into())
}
fn invalid_regex() -> Error {
    Error::InvalidRegex {
        pattern: "(".into(),
        reason: "unclosed group".into(),
    }
}
fn out_of_memory() -> Error {
    Error::Inference("out of memory".into())
}

/// A named way to make an error.
type ErrorCase = (&'static str, fn() -> Error);

fn permanent_errors() -> Vec<ErrorCase> {
    vec![
        ("unsupported", unsupported as fn() -> Error),
        ("context overflow", context_overflow as fn() -> Error),
        ("truncated", truncated as fn() -> Error),
        ("constraint violated", constraint_violated as fn() -> Error),
        ("invalid schema", invalid_schema as fn() -> Error),
        ("invalid regex", invalid_regex as fn() -> Error),
    ]
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn permanent_model_errors_dead_letter_after_one_attempt(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone());
    for (i, (name, make)) in permanent_errors().into_iter().enumerate() {
        let intel = Arc::new(intel_with(&pool, Arc::new(Failing(make))));
        insert_review(&pool, name, &format!("review {i}")).await;
        let processed = intel.process_pending().await.unwrap();
        assert_eq!((processed.completed, processed.failed), (0, 1), "{name}");
        let dead = queue.dead_jobs(1).await.unwrap();
        assert_eq!(dead.len(), 1, "{name}");
        assert_eq!(
            dead[0].attempts, 1,
            "{name}: dead-lettered after one attempt"
        );
        let reason = dead[0].last_error.as_deref().unwrap_or("");
        // The reason, as stored: without prompt or output text.
        let summary = steadytext_schema::model_error_summary(&make());
        assert!(reason.contains(&summary), "{name}: {reason}");
        assert_eq!(stats(&pool).await.pending, 0, "{name}: not retried");
    }
    assert_eq!(stats(&pool).await.dead, 6);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_worker_dead_letters_a_permanent_model_error_at_once(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let intel = Arc::new(intel_with(&pool, Arc::new(Failing(unsupported))));
    let worker = RunningWorker::spawn(
        &pool,
        Arc::new(AnalysisJobHandler::new(intel)),
        worker_config("permanent"),
    );
    insert_review(&pool, "Meh", "Nothing to say.").await;
    assert!(wait_for_queue(&pool, Duration::from_secs(30), |s| s.dead == 1).await);
    let report = worker.stop().await;
    assert_eq!((report.dead, report.retried), (1, 0));
    let dead = Queue::new(pool.clone()).dead_jobs(1).await.unwrap();
    assert_eq!(dead[0].attempts, 1);
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("not supported by this backend"));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_transient_model_error_is_retried(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let intel = Arc::new(intel_with(&pool, Arc::new(Failing(out_of_memory))));
    insert_review(&pool, "Meh", "Nothing to say.").await;
    let processed = intel.process_pending().await.unwrap();
    assert_eq!(processed.failed, 1);
    let s = stats(&pool).await;
    assert_eq!((s.pending, s.dead), (1, 0), "retried later, not dead");
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM steadytext_jobs")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.unwrap().contains("out of memory"));

    // A worker retries it up to its attempt limit (3), then dead-letters it.
    let worker = RunningWorker::spawn(
        &pool,
        Arc::new(AnalysisJobHandler::new(intel)),
        worker_config("transient"),
    );
    assert!(wait_for_queue(&pool, Duration::from_secs(30), |s| s.dead == 1).await);
    let report = worker.stop().await;
    assert_eq!((report.retried, report.dead), (1, 1));
    assert_eq!(
        Queue::new(pool.clone()).dead_jobs(1).await.unwrap()[0].attempts,
        3
    );
}

// ---- item 5: no transaction across the model, runtime bound, heart-beats, lost leases ------

/// Sessions of this test's database that sit in an open transaction.
async fn open_transactions(pool: &PgPool) -> i64 {
    scalar(
        pool,
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND state LIKE 'idle in transaction%'",
    )
    .await
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn no_transaction_is_open_while_the_model_runs(
    _opts: sqlx::pool::PoolOptions<Postgres>,
    connect: PgConnectOptions,
) {
    let pool = pool_with(connect, 8).await;
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let gate = Gated::new(false, Duration::ZERO);
    let intel = Arc::new(intel_with(&pool, gate.clone()));
    let mut config = worker_config("no-tx");
    config.concurrency = 1;
    let worker = RunningWorker::spawn(&pool, Arc::new(AnalysisJobHandler::new(intel)), config);
    let id = insert_review(
        &pool,
        "Lovely",
        "Soft fabric, true to size, and it survived twenty washes without fading.",
    )
    .await;

    gate.wait_for_call().await;
    // Held in the model call: give a transaction time to show up if one were open.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        open_transactions(&pool).await,
        0,
        "a transaction is open during the model call"
    );
    assert_eq!(stats(&pool).await.leased, 1);
    gate.open();
    assert!(wait_for_queue(&pool, Duration::from_secs(180), |s| s.done == 1).await);
    assert_eq!(worker.stop().await.completed, 1);
    assert!(review_summary(&pool, id).await.is_some());
    assert_eq!(review_contents(&pool, id).await.len(), 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_jobs_runtime_is_bounded(pool: PgPool) {
    without_insight_refresh(&pool).await;
    // The model never answers.
    let gate = Gated::new(false, Duration::ZERO);

    // A worker abandons the attempt after max_runtime; out of attempts, it is dead.
    let intel = Arc::new(intel_with(&pool, gate.clone()));
    let mut config = worker_config("bounded");
    config.max_runtime = Some(Duration::from_millis(300));
    config.max_attempts = 2;
    let worker = RunningWorker::spawn(&pool, Arc::new(AnalysisJobHandler::new(intel)), config);
    insert_review(&pool, "Slow", "A review the model never finishes.").await;
    assert!(wait_for_queue(&pool, Duration::from_secs(30), |s| s.dead == 1).await);
    let report = worker.stop().await;
    assert_eq!((report.timed_out, report.retried, report.dead), (2, 1, 1));
    let dead = Queue::new(pool.clone()).dead_jobs(1).await.unwrap();
    assert_eq!(dead[0].attempts, 2);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("maximum runtime"),
        "{:?}",
        dead[0].last_error
    );

    // A drain fails the attempt (retryable) and returns.
    let intel = Arc::new(
        intel_with(&pool, gate.clone()).with_max_job_runtime(Some(Duration::from_millis(300))),
    );
    insert_review(
        &pool,
        "Slow too",
        "Another review the model never finishes.",
    )
    .await;
    let started = std::time::Instant::now();
    let processed = tokio::time::timeout(Duration::from_secs(30), intel.process_pending())
        .await
        .expect("the drain is bounded")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!((processed.completed, processed.failed), (0, 1));
    let (state, error): (String, Option<String>) =
        sqlx::query_as("SELECT state, last_error FROM steadytext_jobs")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, "pending");
    assert!(error.unwrap().contains("maximum runtime"));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_drain_heartbeats_a_lease_shorter_than_its_computation(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    // Every model call takes at least 2 s; the lease is 1.5 s (generous against the
    // synchronous steps a loaded machine stretches on the test's one-thread runtime).
    let gate = Gated::new(true, Duration::from_millis(2000));
    let intel =
        Arc::new(intel_with(&pool, gate.clone()).with_job_lease(Duration::from_millis(1500)));
    let id = insert_review(
        &pool,
        "Solid",
        "Heavy steel pan, heats evenly, and the handle stays cool.",
    )
    .await;
    // Another worker keeps trying to take the job over while it computes (joined in this task).
    let queue = Queue::new(pool.clone());
    let finished = std::sync::atomic::AtomicBool::new(false);
    let (processed, tries) = tokio::join!(
        async {
            let r = intel.process_pending().await;
            finished.store(true, std::sync::atomic::Ordering::SeqCst);
            r
        },
        async {
            // Only once the drain holds the job (its model call started).
            gate.wait_for_call().await;
            let mut tries = 0;
            while !finished.load(std::sync::atomic::Ordering::SeqCst) {
                let stolen = queue
                    .claim("thief", Duration::from_secs(3600), &[])
                    .await
                    .unwrap();
                assert!(
                    stolen.is_none(),
                    "the lease ran out while the job computed: {stolen:?}"
                );
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tries
        }
    );
    let processed = processed.unwrap();
    assert!(gate.calls() >= 3, "calls: {}", gate.calls());
    assert!(tries > 20, "tries: {tries}");
    assert_eq!((processed.completed, processed.lease_lost), (1, 0));
    assert_eq!(jobs(&pool).await, vec![("done".to_string(), 1)]);
    assert_eq!(review_contents(&pool, id).await.len(), 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_drain_does_not_write_a_job_whose_lease_was_lost(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let gate = Gated::new(false, Duration::ZERO);
    let intel = Arc::new(intel_with(&pool, gate.clone()).with_concurrency(2));
    let lost = insert_review(&pool, "Noisy", "The fan rattles at every speed.").await;
    let kept = insert_review(&pool, "Quiet", "Silent even on the highest setting.").await;
    let (processed, ()) = tokio::join!(intel.process_pending(), async {
        gate.wait_for_call().await;
        assert_eq!(stats(&pool).await.leased, 2);
        // Another worker takes the first job over (as if the lease had run out).
        exec(
            &pool,
            &format!(
                "UPDATE steadytext_jobs SET leased_by = 'thief', attempts = attempts + 1, \
                 leased_until = now() + interval '1 hour' WHERE payload->>'id' = '{lost}'"
            ),
        )
        .await;
        gate.open();
    });
    let processed = processed.expect("the drain carries on");
    assert_eq!(
        (processed.completed, processed.lease_lost, processed.failed),
        (1, 1, 0)
    );
    assert_eq!(review_summary(&pool, lost).await, None, "lost job written");
    assert!(review_contents(&pool, lost).await.is_empty());
    assert!(review_summary(&pool, kept).await.is_some());
    assert_eq!(review_contents(&pool, kept).await.len(), 1);
    let (state, owner): (String, String) =
        sqlx::query_as("SELECT state, leased_by FROM steadytext_jobs WHERE payload->>'id' = $1")
            .bind(lost.to_string())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), owner.as_str()), ("leased", "thief"));
}
