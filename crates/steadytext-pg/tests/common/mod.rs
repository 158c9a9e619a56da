//! Shared test helpers.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use steadytext_pg::{
    Job, JobError, JobHandler, Queue, QueueStats, Store, Worker, WorkerConfig, WorkerReport,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SEED_SCHEMA: &str = include_str!("../fixtures/seed_schema.sql");
pub const SEED_SAMPLE_DATA: &str = include_str!("../fixtures/seed_sample_data.sql");
pub const SEED_FUNCTIONS: &str = include_str!("../fixtures/seed_functions.sql");
pub const LLM_STUBS: &str = include_str!("../fixtures/llm_stubs.sql");

/// The job's effect: one `customer_interactions` row whose content is the job id, written in
/// the job's transaction.
pub async fn write_effect(
    job: &Job,
    tx: &mut Transaction<'_, Postgres>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO customer_interactions (interaction_type, channel, content, metadata) \
         VALUES ('review', 'web', $1, $2)",
    )
    .bind(job.id.to_string())
    .bind(&job.payload)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// (effect rows, distinct job ids among them).
pub async fn effects(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT content) FROM customer_interactions")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A handler that writes one effect row per job.
pub struct EffectHandler;

#[async_trait]
impl JobHandler for EffectHandler {
    async fn handle(&self, job: &Job, tx: &mut Transaction<'_, Postgres>) -> Result<(), JobError> {
        write_effect(job, tx).await?;
        Ok(())
    }
}

/// Stop data changes from enqueueing the views' insight refresh in this database (the
/// documented opt-out, a row of `steadytext.config`): for tests that count one kind's jobs.
pub async fn without_insight_refresh(pool: &PgPool) {
    exec(
        pool,
        "INSERT INTO steadytext.config (key, value) VALUES ('refresh_insights', 'off') \
         ON CONFLICT (key) DO UPDATE SET value = 'off'",
    )
    .await;
}

/// Poll `check` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Insert `n` reviews by plain SQL (each enqueues an `analyze_review` job via the trigger).
pub async fn insert_reviews(pool: &PgPool, n: i32) {
    sqlx::query(
        "INSERT INTO product_reviews (product_id, rating, title, review_text) \
         SELECT 100 + i, 1 + i % 5, 'title ' || i, 'review text ' || i \
         FROM generate_series(1, $1) AS i",
    )
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

/// A pool of `max_connections` over the test database (`#[sqlx::test]` hands out
/// `PgConnectOptions` for tests that need more connections than its default pool).
pub async fn pool_with(connect: PgConnectOptions, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(connect)
        .await
        .unwrap()
}

/// Run SQL without parameters (one or more statements).
pub async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql).execute(pool).await.unwrap();
}

/// The single `bigint` a query returns (e.g. a `count(*)`).
pub async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
    n
}

/// The queue's counts.
pub async fn stats(pool: &PgPool) -> QueueStats {
    Queue::new(pool.clone()).stats().await.unwrap()
}

/// Poll the queue's counts until `check` holds or `timeout` passes.
pub async fn wait_for_queue(
    pool: &PgPool,
    timeout: Duration,
    check: impl Fn(&QueueStats) -> bool,
) -> bool {
    wait_until(timeout, || async { check(&stats(pool).await) }).await
}

/// Do `job` the way a worker would: its effect and its completion in one transaction.
pub async fn do_job(queue: &Queue, job: &Job) {
    let mut tx = queue.begin().await.unwrap();
    write_effect(job, &mut tx).await.unwrap();
    queue.complete(job, tx).await.unwrap();
}

/// Fast worker settings for tests: 2 slots, short polls and backoffs, 3 attempts.
pub fn worker_config(id: &str) -> WorkerConfig {
    WorkerConfig {
        concurrency: 2,
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(200),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(100),
        max_attempts: 3,
        shutdown_grace: Duration::from_secs(5),
        max_runtime: Some(Duration::from_secs(60)),
        kinds: vec![],
        worker_id: Some(id.to_string()),
    }
}

/// A worker running in the background until [`RunningWorker::stop`].
pub struct RunningWorker {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<steadytext_pg::Result<WorkerReport>>,
}

impl RunningWorker {
    /// Start a worker over `pool`.
    pub fn spawn(pool: &PgPool, handler: Arc<dyn JobHandler>, config: WorkerConfig) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let worker = Worker::new(Store::from_pool(pool.clone()), handler, config);
        let handle = tokio::spawn(worker.run(async move {
            let _ = stopped.await;
        }));
        Self { stop, handle }
    }

    /// Ask it to shut down and wait for its report.
    pub async fn stop(self) -> WorkerReport {
        let _ = self.stop.send(());
        self.handle.await.unwrap().unwrap()
    }
}
