//! The Worker runner: exactly-once effects across workers, LISTEN wake-ups, retries, dead
//! letters, lease heart-beats, shutdown.
//!
//! The views' insight refreshes, which data changes also enqueue, are switched off in these
//! databases (`steadytext.config`): the tests count the jobs and effects of other kinds.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgPool, Postgres, Transaction};
use steadytext_pg::{Job, JobError, JobHandler, Queue, MIGRATOR};

/// Review analysis stand-in: marks the review analysed and logs one interaction, in the job's
/// transaction.
struct AnalyseReview;

#[async_trait]
impl JobHandler for AnalyseReview {
    async fn handle(&self, job: &Job, tx: &mut Transaction<'_, Postgres>) -> Result<(), JobError> {
        #[derive(serde::Deserialize)]
        struct Payload {
            id: i32,
        }
        let p: Payload = job.payload_as()?;
        sqlx::query("UPDATE product_reviews SET sentiment = 'neutral' WHERE id = $1")
            .bind(p.id)
            .execute(&mut **tx)
            .await?;
        write_effect(job, tx).await?;
        Ok(())
    }
}

/// Two workers × 2 slots, 50 reviews inserted by plain SQL: every job done exactly once.
#[sqlx::test(migrator = "MIGRATOR")]
async fn workers_do_every_job_exactly_once(
    _opts: sqlx::pool::PoolOptions<Postgres>,
    connect: PgConnectOptions,
) {
    let pool = pool_with(connect, 16).await;
    without_insight_refresh(&pool).await;
    insert_reviews(&pool, 50).await;
    let w1 = RunningWorker::spawn(&pool, Arc::new(AnalyseReview), worker_config("w1"));
    let w2 = RunningWorker::spawn(&pool, Arc::new(AnalyseReview), worker_config("w2"));
    assert!(wait_for_queue(&pool, Duration::from_secs(60), |s| s.done == 50).await);
    let (r1, r2) = (w1.stop().await, w2.stop().await);
    assert_eq!(r1.completed + r2.completed, 50, "{r1:?} {r2:?}");
    assert_eq!(effects(&pool).await, (50, 50));
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM product_reviews WHERE sentiment = 'neutral'"
        )
        .await,
        50
    );
}

/// With a long poll interval, a job is picked up promptly: the worker LISTENs.
#[sqlx::test(migrator = "MIGRATOR")]
async fn the_worker_wakes_on_notify(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let mut cfg = worker_config("w");
    cfg.concurrency = 1;
    cfg.poll_interval = Duration::from_secs(600);
    let worker = RunningWorker::spawn(&pool, Arc::new(AnalyseReview), cfg);
    tokio::time::sleep(Duration::from_millis(300)).await; // let it go idle
    insert_reviews(&pool, 1).await;
    assert!(wait_for_queue(&pool, Duration::from_secs(5), |s| s.done == 1).await);
    assert_eq!(worker.stop().await.completed, 1);
}

/// A job held by a killed worker (claimed, never finished) is taken over by a running worker
/// as soon as the lease runs out — it sleeps until the next lease expiry, not the poll interval.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_running_worker_takes_over_a_dead_workers_job(pool: PgPool) {
    without_insight_refresh(&pool).await;
    insert_reviews(&pool, 1).await;
    let dead = Queue::new(pool.clone())
        .claim("killed-process/0", Duration::from_millis(500), &[])
        .await
        .unwrap()
        .unwrap();
    let mut cfg = worker_config("w");
    cfg.poll_interval = Duration::from_secs(600);
    let worker = RunningWorker::spawn(&pool, Arc::new(EffectHandler), cfg);
    assert!(wait_for_queue(&pool, Duration::from_secs(3), |s| s.done == 1).await);
    assert_eq!(worker.stop().await.completed, 1);
    let (attempts, by): (i32, String) =
        sqlx::query_as("SELECT attempts, leased_by FROM steadytext_jobs WHERE id = $1")
            .bind(dead.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, 2);
    assert!(by.starts_with("w/"), "{by}");
    assert_eq!(effects(&pool).await, (1, 1));
}

struct AlwaysFails(JobError, Arc<AtomicUsize>);

#[async_trait]
impl JobHandler for AlwaysFails {
    async fn handle(&self, job: &Job, tx: &mut Transaction<'_, Postgres>) -> Result<(), JobError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        write_effect(job, tx).await?; // rolled back
        Err(match &self.0 {
            JobError::Retryable(m) => JobError::Retryable(format!("{m} #{}", job.attempts)),
            e => e.clone(),
        })
    }
}

/// Run `handler` on one inserted review until the job is dead-lettered; the worker's report.
async fn run_until_dead(
    pool: &PgPool,
    handler: Arc<dyn JobHandler>,
) -> steadytext_pg::WorkerReport {
    let worker = RunningWorker::spawn(pool, handler, worker_config("w"));
    insert_reviews(pool, 1).await;
    assert!(wait_for_queue(pool, Duration::from_secs(10), |s| s.dead == 1).await);
    worker.stop().await
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_failing_handler_is_retried_with_backoff_then_dead_lettered(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = AlwaysFails(JobError::retryable("model timed out"), calls.clone());
    let report = run_until_dead(&pool, Arc::new(handler)).await;
    assert_eq!((report.retried, report.dead, report.completed), (2, 1, 0));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        effects(&pool).await,
        (0, 0),
        "failed attempts wrote nothing"
    );
    let dead = Queue::new(pool.clone()).dead_jobs(1).await.unwrap();
    assert_eq!(dead[0].last_error.as_deref(), Some("model timed out #3"));
    assert_eq!(dead[0].attempts, 3);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_permanent_error_dead_letters_at_once(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = AlwaysFails(JobError::permanent("review has no text"), calls.clone());
    let report = run_until_dead(&pool, Arc::new(handler)).await;
    assert_eq!((report.retried, report.dead), (0, 1));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

struct Panics;

#[async_trait]
impl JobHandler for Panics {
    async fn handle(&self, _: &Job, _: &mut Transaction<'_, Postgres>) -> Result<(), JobError> {
        panic!("handler bug");
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_panicking_handler_counts_as_a_failed_attempt(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let report = run_until_dead(&pool, Arc::new(Panics)).await;
    assert_eq!((report.retried, report.dead), (2, 1));
}

/// Sleeps, then writes its effect.
struct Slow(Duration);

#[async_trait]
impl JobHandler for Slow {
    async fn handle(&self, job: &Job, tx: &mut Transaction<'_, Postgres>) -> Result<(), JobError> {
        tokio::time::sleep(self.0).await;
        write_effect(job, tx).await?;
        Ok(())
    }
}

/// Start a worker with `handler` and `cfg`, insert one review, wait until its job is leased.
async fn worker_holding_a_job(
    pool: &PgPool,
    handler: Arc<dyn JobHandler>,
    cfg: steadytext_pg::WorkerConfig,
) -> RunningWorker {
    let worker = RunningWorker::spawn(pool, handler, cfg);
    insert_reviews(pool, 1).await;
    assert!(wait_for_queue(pool, Duration::from_secs(5), |s| s.leased == 1).await);
    worker
}

/// A handler slower than the lease keeps its job: the worker extends the lease while it runs.
#[sqlx::test(migrator = "MIGRATOR")]
async fn heartbeats_keep_a_slow_job_leased(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let mut cfg = worker_config("w");
    cfg.concurrency = 1;
    cfg.lease = Duration::from_secs(1);
    let slow = Arc::new(Slow(Duration::from_millis(2500)));
    let worker = worker_holding_a_job(&pool, slow, cfg).await;
    let queue = Queue::new(pool.clone());
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(queue
            .claim("thief", Duration::from_secs(10), &[])
            .await
            .unwrap()
            .is_none());
    }
    assert!(wait_for_queue(&pool, Duration::from_secs(5), |s| s.done == 1).await);
    assert_eq!(worker.stop().await.completed, 1);
    assert_eq!(
        scalar(&pool, "SELECT attempts::int8 FROM steadytext_jobs").await,
        1
    );
    assert_eq!(effects(&pool).await, (1, 1));
}

/// On shutdown, a job that finishes within the grace period is completed...
#[sqlx::test(migrator = "MIGRATOR")]
async fn shutdown_lets_the_job_in_hand_finish(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let slow = Arc::new(Slow(Duration::from_millis(500)));
    let worker = worker_holding_a_job(&pool, slow, worker_config("w")).await;
    let report = worker.stop().await;
    assert_eq!((report.completed, report.released), (1, 0));
    assert_eq!(effects(&pool).await, (1, 1));
}

/// ...and one that does not is rolled back and released, ready for the next worker.
#[sqlx::test(migrator = "MIGRATOR")]
async fn shutdown_releases_a_job_that_outlives_the_grace_period(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let mut cfg = worker_config("w");
    cfg.shutdown_grace = Duration::from_millis(100);
    let slow = Arc::new(Slow(Duration::from_secs(30)));
    let worker = worker_holding_a_job(&pool, slow, cfg).await;
    let started = std::time::Instant::now();
    let report = worker.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!((report.completed, report.released), (0, 1));
    assert_eq!(effects(&pool).await, (0, 0));
    let s = stats(&pool).await;
    assert_eq!((s.ready, s.leased), (1, 0));

    // The next worker does it.
    let next = RunningWorker::spawn(&pool, Arc::new(EffectHandler), worker_config("next"));
    assert!(wait_for_queue(&pool, Duration::from_secs(5), |s| s.done == 1).await);
    assert_eq!(next.stop().await.completed, 1);
    assert_eq!(
        scalar(&pool, "SELECT attempts::int8 FROM steadytext_jobs").await,
        1,
        "the released attempt was not counted"
    );
}

/// A worker only takes the kinds it was configured for.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_worker_takes_only_its_kinds(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let mut cfg = worker_config("w");
    cfg.kinds = vec!["analyze_ticket".into()];
    let worker = RunningWorker::spawn(&pool, Arc::new(EffectHandler), cfg);
    insert_reviews(&pool, 2).await;
    exec(
        &pool,
        "INSERT INTO support_tickets (ticket_number) VALUES ('T-1')",
    )
    .await;
    assert!(wait_for_queue(&pool, Duration::from_secs(5), |s| s.done == 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(worker.stop().await.completed, 1);
    assert_eq!(stats(&pool).await.pending, 2);
}

/// Writes its effect, then has the server end its own session (a dropped connection mid-job)
/// on the first attempt; works normally after that.
struct DropsConnectionOnce(AtomicUsize);

#[async_trait]
impl JobHandler for DropsConnectionOnce {
    async fn handle(&self, job: &Job, tx: &mut Transaction<'_, Postgres>) -> Result<(), JobError> {
        write_effect(job, tx).await?;
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            sqlx::query("SELECT pg_terminate_backend(pg_backend_pid())")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// A connection dropped in the middle of a job loses nothing and applies nothing twice: the
/// attempt's writes die with the session, the failure is recorded with the driver's error,
/// and the retry does the job once. The worker keeps running.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_connection_dropped_mid_job_is_retried_once(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let handler = Arc::new(DropsConnectionOnce(AtomicUsize::new(0)));
    let worker = RunningWorker::spawn(&pool, handler.clone(), worker_config("w"));
    insert_reviews(&pool, 1).await;
    assert!(wait_for_queue(&pool, Duration::from_secs(10), |s| s.done == 1).await);
    let report = worker.stop().await;
    assert_eq!((report.completed, report.retried, report.dead), (1, 1, 0));
    assert_eq!(handler.0.load(Ordering::SeqCst), 2);
    assert_eq!(
        effects(&pool).await,
        (1, 1),
        "the dropped attempt wrote nothing"
    );
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM steadytext_jobs")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, 2);
    let error = error.unwrap_or_default();
    assert!(
        error.contains("terminating connection") || error.contains("connection"),
        "{error}"
    );
}
