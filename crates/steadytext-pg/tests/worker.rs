//! The Worker runner: exactly-once effects across workers, LISTEN wake-ups, retries, dead
//! letters, lease heart-beats, shutdown.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use steadytext_pg::{Job, JobError, JobHandler, Queue, Store, Worker, WorkerConfig, MIGRATOR};
use tokio::sync::oneshot;

fn config(id: &str) -> WorkerConfig {
    WorkerConfig {
        concurrency: 2,
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(200),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(100),
        max_attempts: 3,
        shutdown_grace: Duration::from_secs(5),
        kinds: vec![],
        worker_id: Some(id.to_string()),
    }
}

/// Run a worker in the background; returns a stop button and the join handle.
fn spawn(
    pool: &PgPool,
    handler: Arc<dyn JobHandler>,
    config: WorkerConfig,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<steadytext_pg::Result<steadytext_pg::WorkerReport>>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = Worker::new(Store::from_pool(pool.clone()), handler, config);
    let handle = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    (stop, handle)
}

async fn stats(pool: &PgPool) -> steadytext_pg::QueueStats {
    Queue::new(pool.clone()).stats().await.unwrap()
}

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
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(connect)
        .await
        .unwrap();
    insert_reviews(&pool, 50).await;
    let (s1, w1) = spawn(&pool, Arc::new(AnalyseReview), config("w1"));
    let (s2, w2) = spawn(&pool, Arc::new(AnalyseReview), config("w2"));
    assert!(
        wait_until(Duration::from_secs(60), || async {
            stats(&pool).await.done == 50
        })
        .await
    );
    s1.send(()).unwrap();
    s2.send(()).unwrap();
    let (r1, r2) = (w1.await.unwrap().unwrap(), w2.await.unwrap().unwrap());
    assert_eq!(r1.completed + r2.completed, 50, "{r1:?} {r2:?}");
    assert_eq!(effects(&pool).await, (50, 50));
    let (analysed,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM product_reviews WHERE sentiment = 'neutral'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(analysed, 50);
}

/// With a long poll interval, a job is picked up promptly: the worker LISTENs.
#[sqlx::test(migrator = "MIGRATOR")]
async fn the_worker_wakes_on_notify(pool: PgPool) {
    let mut cfg = config("w");
    cfg.concurrency = 1;
    cfg.poll_interval = Duration::from_secs(600);
    let (stop, worker) = spawn(&pool, Arc::new(AnalyseReview), cfg);
    tokio::time::sleep(Duration::from_millis(300)).await; // let it go idle
    insert_reviews(&pool, 1).await;
    assert!(
        wait_until(Duration::from_secs(5), || async {
            stats(&pool).await.done == 1
        })
        .await
    );
    stop.send(()).unwrap();
    assert_eq!(worker.await.unwrap().unwrap().completed, 1);
}

/// A job held by a killed worker (claimed, never finished) is taken over by a running worker
/// as soon as the lease runs out — it sleeps until the next lease expiry, not the poll interval.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_running_worker_takes_over_a_dead_workers_job(pool: PgPool) {
    insert_reviews(&pool, 1).await;
    let dead = Queue::new(pool.clone())
        .claim("killed-process/0", Duration::from_millis(500), &[])
        .await
        .unwrap()
        .unwrap();
    let mut cfg = config("w");
    cfg.poll_interval = Duration::from_secs(600);
    let (stop, worker) = spawn(&pool, Arc::new(EffectHandler), cfg);
    assert!(
        wait_until(Duration::from_secs(3), || async {
            stats(&pool).await.done == 1
        })
        .await
    );
    stop.send(()).unwrap();
    assert_eq!(worker.await.unwrap().unwrap().completed, 1);
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

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_failing_handler_is_retried_with_backoff_then_dead_lettered(pool: PgPool) {
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = AlwaysFails(JobError::retryable("model timed out"), calls.clone());
    let (stop, worker) = spawn(&pool, Arc::new(handler), config("w"));
    insert_reviews(&pool, 1).await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            stats(&pool).await.dead == 1
        })
        .await
    );
    stop.send(()).unwrap();
    let report = worker.await.unwrap().unwrap();
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
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = AlwaysFails(JobError::permanent("review has no text"), calls.clone());
    let (stop, worker) = spawn(&pool, Arc::new(handler), config("w"));
    insert_reviews(&pool, 1).await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            stats(&pool).await.dead == 1
        })
        .await
    );
    stop.send(()).unwrap();
    let report = worker.await.unwrap().unwrap();
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
    let (stop, worker) = spawn(&pool, Arc::new(Panics), config("w"));
    insert_reviews(&pool, 1).await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            stats(&pool).await.dead == 1
        })
        .await
    );
    stop.send(()).unwrap();
    let report = worker.await.unwrap().unwrap();
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

/// A handler slower than the lease keeps its job: the worker extends the lease while it runs.
#[sqlx::test(migrator = "MIGRATOR")]
async fn heartbeats_keep_a_slow_job_leased(pool: PgPool) {
    let mut cfg = config("w");
    cfg.concurrency = 1;
    cfg.lease = Duration::from_secs(1);
    let (stop, worker) = spawn(&pool, Arc::new(Slow(Duration::from_millis(2500))), cfg);
    insert_reviews(&pool, 1).await;
    let queue = Queue::new(pool.clone());
    assert!(
        wait_until(Duration::from_secs(5), || async {
            stats(&pool).await.leased == 1
        })
        .await
    );
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(queue
            .claim("thief", Duration::from_secs(10), &[])
            .await
            .unwrap()
            .is_none());
    }
    assert!(
        wait_until(Duration::from_secs(5), || async {
            stats(&pool).await.done == 1
        })
        .await
    );
    stop.send(()).unwrap();
    assert_eq!(worker.await.unwrap().unwrap().completed, 1);
    let (attempts,): (i32,) = sqlx::query_as("SELECT attempts FROM steadytext_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1);
    assert_eq!(effects(&pool).await, (1, 1));
}

/// On shutdown, a job that finishes within the grace period is completed...
#[sqlx::test(migrator = "MIGRATOR")]
async fn shutdown_lets_the_job_in_hand_finish(pool: PgPool) {
    let (stop, worker) = spawn(
        &pool,
        Arc::new(Slow(Duration::from_millis(500))),
        config("w"),
    );
    insert_reviews(&pool, 1).await;
    assert!(
        wait_until(Duration::from_secs(5), || async {
            stats(&pool).await.leased == 1
        })
        .await
    );
    stop.send(()).unwrap();
    let report = worker.await.unwrap().unwrap();
    assert_eq!((report.completed, report.released), (1, 0));
    assert_eq!(effects(&pool).await, (1, 1));
}

/// ...and one that does not is rolled back and released, ready for the next worker.
#[sqlx::test(migrator = "MIGRATOR")]
async fn shutdown_releases_a_job_that_outlives_the_grace_period(pool: PgPool) {
    let mut cfg = config("w");
    cfg.shutdown_grace = Duration::from_millis(100);
    let (stop, worker) = spawn(&pool, Arc::new(Slow(Duration::from_secs(30))), cfg);
    insert_reviews(&pool, 1).await;
    assert!(
        wait_until(Duration::from_secs(5), || async {
            stats(&pool).await.leased == 1
        })
        .await
    );
    let started = std::time::Instant::now();
    stop.send(()).unwrap();
    let report = worker.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!((report.completed, report.released), (0, 1));
    assert_eq!(effects(&pool).await, (0, 0));
    let s = stats(&pool).await;
    assert_eq!((s.ready, s.leased), (1, 0));

    // The next worker does it.
    let (stop, worker) = spawn(&pool, Arc::new(EffectHandler), config("next"));
    assert!(
        wait_until(Duration::from_secs(5), || async {
            stats(&pool).await.done == 1
        })
        .await
    );
    stop.send(()).unwrap();
    assert_eq!(worker.await.unwrap().unwrap().completed, 1);
    let (attempts,): (i32,) = sqlx::query_as("SELECT attempts FROM steadytext_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1, "the released attempt was not counted");
}

/// A worker only takes the kinds it was configured for.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_worker_takes_only_its_kinds(pool: PgPool) {
    let mut cfg = config("w");
    cfg.kinds = vec!["analyze_ticket".into()];
    let (stop, worker) = spawn(&pool, Arc::new(EffectHandler), cfg);
    insert_reviews(&pool, 2).await;
    sqlx::query("INSERT INTO support_tickets (ticket_number) VALUES ('T-1')")
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            stats(&pool).await.done == 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();
    assert_eq!(worker.await.unwrap().unwrap().completed, 1);
    assert_eq!(stats(&pool).await.pending, 2);
}
