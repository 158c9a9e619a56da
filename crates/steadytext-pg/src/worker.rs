//! [`Worker`]: runs a [`JobHandler`] over the queue with `concurrency` job slots.
//!
//! Each slot loops: claim a job, run the handler's [`compute`](JobHandler::compute) phase (the
//! model calls) with no transaction or connection held, then open one short transaction that
//! locks the claim, runs the handler's [`write`](JobHandler::write) phase and completes the job,
//! or fail it; when idle, wait for a `NOTIFY` on [`NOTIFY_CHANNEL`](crate::NOTIFY_CHANNEL), the
//! next due job, or the poll interval, whichever comes first. While a job runs, the slot extends
//! its lease every third of the lease (so a slow model call is not mistaken for a dead worker),
//! stops early if the lease was lost, and abandons the job as a failed attempt once it has run
//! for [`WorkerConfig::max_runtime`]. On shutdown a slot stops claiming, lets its job finish for
//! up to [`WorkerConfig::shutdown_grace`], then rolls back and releases it.

use std::any::Any;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::error::{PgError, Result};
use crate::queue::{FailOutcome, Job, JobError, Queue, RetryPolicy};
use crate::store::Store;

/// What a handler's [`compute`](JobHandler::compute) phase hands to its
/// [`write`](JobHandler::write) phase (downcast it back with [`Box::downcast`]).
pub type Computed = Box<dyn Any + Send>;

/// Does the work of a job, in two phases:
///
/// 1. [`compute`](Self::compute): the slow work outside the database (model calls). The worker
///    holds no transaction and no connection while it runs; read what you need on a pooled
///    connection and let it go before the slow part. It may run more than once for one job (a
///    lost lease, a retry): make it deterministic or idempotent.
/// 2. [`write`](Self::write): write every effect through `tx`. The worker has already checked and
///    locked the claim in `tx` ([`Queue::lock_claim`]) and commits `tx` together with marking
///    the job done, so an effect is applied exactly once. Keep it short; do not commit `tx`.
///
/// A handler with no slow part implements only [`handle`](Self::handle) (the default `compute`
/// does nothing and the default `write` calls `handle`).
///
/// ```no_run
/// use steadytext_pg::{Job, JobError, JobHandler};
/// struct LogReview;
/// #[async_trait::async_trait]
/// impl JobHandler for LogReview {
///     async fn handle(&self, job: &Job, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), JobError> {
///         let id: i64 = job.payload["id"].as_i64().ok_or_else(|| JobError::permanent("no id"))?;
///         sqlx::query("INSERT INTO customer_interactions (interaction_type, content) VALUES ('review', $1)")
///             .bind(id.to_string())
///             .execute(&mut **tx)
///             .await?;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The slow part of `job`, run with no transaction or connection held by the worker. Its
    /// output goes to [`write`](Self::write). `Err(JobError::Retryable)` retries with backoff,
    /// `Err(JobError::Permanent)` dead-letters at once. Default: nothing to compute.
    async fn compute(&self, job: &Job) -> Result<Computed, JobError> {
        let _ = job;
        Ok(Box::new(()))
    }

    /// Write `job`'s effects (from `computed`, the output of [`compute`](Self::compute)) through
    /// `tx`. Errors as for `compute`; either way `tx` is rolled back. Default:
    /// [`handle`](Self::handle).
    async fn write(
        &self,
        job: &Job,
        computed: Computed,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(), JobError> {
        drop(computed);
        self.handle(job, tx).await
    }

    /// Do all of `job` in `tx`: the one method of a handler without a slow part. Handlers with
    /// a [`compute`](Self::compute) phase implement it as compute-then-write (the worker never
    /// calls it for them: it would hold `tx` across the slow part).
    async fn handle(&self, job: &Job, tx: &mut Transaction<'_, Postgres>) -> Result<(), JobError>;
}

/// The default [`WorkerConfig::max_runtime`]: 10 minutes (a review's analysis takes seconds).
pub const DEFAULT_MAX_RUNTIME: Duration = Duration::from_secs(600);

/// The error recorded for a job that ran longer than `max`.
pub(crate) fn runtime_exceeded(max: Duration) -> String {
    format!("job exceeded its maximum runtime of {max:?} and was abandoned")
}

/// How a [`Worker`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long a claim lasts without a heart-beat; a killed worker's jobs become claimable
    /// again after this.
    pub lease: Duration,
    /// Longest idle wait between claim attempts when no notification arrives (the fallback
    /// when `LISTEN` is unavailable or a notification was missed).
    pub poll_interval: Duration,
    /// Backoff after the first failure; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_cap: Duration,
    /// Attempts before dead-lettering (jobs may carry their own limit).
    pub max_attempts: u32,
    /// On shutdown, how long a job in progress may still run before it is rolled back and
    /// released.
    pub shutdown_grace: Duration,
    /// Longest a job may run (compute and write, from its claim) before it is abandoned and
    /// recorded as a failed attempt (retried with backoff; dead-lettered once out of
    /// attempts). `None`: no bound (heart-beats keep the lease as long as the job runs).
    pub max_runtime: Option<Duration>,
    /// Kinds to take; empty takes every kind.
    pub kinds: Vec<String>,
    /// Prefix of this worker's slot ids (`{prefix}/{slot}`), recorded in `leased_by`. Default:
    /// `{host}:{pid}:{random}`.
    pub worker_id: Option<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let retry = RetryPolicy::default();
        Self {
            concurrency: 1,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(5),
            backoff_base: retry.base,
            backoff_cap: retry.cap,
            max_attempts: retry.max_attempts,
            shutdown_grace: Duration::from_secs(30),
            max_runtime: Some(DEFAULT_MAX_RUNTIME),
            kinds: Vec::new(),
            worker_id: None,
        }
    }
}

impl WorkerConfig {
    /// The retry policy these settings describe.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: self.backoff_base,
            cap: self.backoff_cap,
            max_attempts: self.max_attempts,
        }
    }
}

/// What a [`Worker::run`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Jobs completed.
    pub completed: u64,
    /// Failed attempts scheduled for retry.
    pub retried: u64,
    /// Jobs dead-lettered.
    pub dead: u64,
    /// Jobs dropped in favour of a newer pending duplicate.
    pub superseded: u64,
    /// Jobs whose lease was lost mid-way (their writes were rolled back).
    pub lease_lost: u64,
    /// Jobs released unfinished at shutdown.
    pub released: u64,
    /// Attempts abandoned for running longer than [`WorkerConfig::max_runtime`] (also counted
    /// in `retried` or `dead`).
    pub timed_out: u64,
}

#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    superseded: AtomicU64,
    lease_lost: AtomicU64,
    released: AtomicU64,
    timed_out: AtomicU64,
}

impl Counters {
    fn report(&self) -> WorkerReport {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WorkerReport {
            completed: g(&self.completed),
            retried: g(&self.retried),
            dead: g(&self.dead),
            superseded: g(&self.superseded),
            lease_lost: g(&self.lease_lost),
            released: g(&self.released),
            timed_out: g(&self.timed_out),
        }
    }

    fn count_fail(&self, outcome: FailOutcome) {
        let c = match outcome {
            FailOutcome::Retry { .. } => &self.retried,
            FailOutcome::Dead => &self.dead,
            FailOutcome::Superseded => &self.superseded,
            FailOutcome::LeaseLost => &self.lease_lost,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs a [`JobHandler`] against the queue. All state is in the database: run as many workers,
/// in as many processes and machines, as the database allows.
///
/// ```no_run
/// # async fn demo(store: steadytext_pg::Store, handler: std::sync::Arc<dyn steadytext_pg::JobHandler>) -> Result<(), steadytext_pg::PgError> {
/// use steadytext_pg::{Worker, WorkerConfig};
/// let config = WorkerConfig { concurrency: 2, ..WorkerConfig::default() };
/// let report = Worker::new(store, handler, config)
///     .run(tokio::time::sleep(std::time::Duration::from_secs(3600))) // or a ctrl-c future
///     .await?;
/// println!("{} jobs done", report.completed);
/// # Ok(()) }
/// ```
pub struct Worker {
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    config: WorkerConfig,
    id: String,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "host".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}:{}:{nanos:08x}", std::process::id())
}

impl Worker {
    /// A worker over `store` running `handler` as configured.
    pub fn new(store: Store, handler: Arc<dyn JobHandler>, config: WorkerConfig) -> Self {
        let queue = Queue::new(store.pool().clone()).with_retry(config.retry_policy());
        let id = config.worker_id.clone().unwrap_or_else(default_worker_id);
        Self {
            queue,
            handler,
            config,
            id,
        }
    }

    /// This worker's id prefix (slots record `{id}/{slot}` in `leased_by`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Run until `shutdown` resolves, then stop claiming, let jobs in progress finish (up to
    /// the grace period; the rest are rolled back and released) and return what was done.
    ///
    /// Database errors while claiming are logged and retried after the poll interval (the
    /// database may be restarting); they do not end the run.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<WorkerReport> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let wake = Arc::new(Notify::new());
        let counters = Arc::new(Counters::default());
        let listener = tokio::spawn(listen_loop(
            self.queue.clone(),
            self.config.clone(),
            wake.clone(),
        ));
        let slots: Vec<JoinHandle<()>> = (0..self.config.concurrency.max(1))
            .map(|i| {
                let slot = Slot {
                    queue: self.queue.clone(),
                    handler: self.handler.clone(),
                    config: self.config.clone(),
                    id: format!("{}/{i}", self.id),
                    wake: wake.clone(),
                    stop: stop_rx.clone(),
                    counters: counters.clone(),
                };
                tokio::spawn(slot.run())
            })
            .collect();
        tracing::info!(worker = %self.id, concurrency = slots.len(), kinds = ?self.config.kinds, "worker started");
        shutdown.await;
        tracing::info!(worker = %self.id, "worker stopping");
        let _ = stop_tx.send(true);
        let mut panicked = None;
        for slot in slots {
            if let Err(e) = slot.await {
                panicked = Some(e);
            }
        }
        listener.abort();
        let _ = listener.await;
        if let Some(e) = panicked {
            tracing::error!(worker = %self.id, "worker slot panicked: {e}");
            return Err(PgError::WorkerPanicked(e.to_string()));
        }
        let report = counters.report();
        tracing::info!(worker = %self.id, ?report, "worker stopped");
        Ok(report)
    }
}

/// Wake idle slots when a job of our kinds is enqueued. Without a listener the slots still
/// poll.
async fn listen_loop(queue: Queue, config: WorkerConfig, wake: Arc<Notify>) {
    loop {
        let mut listener = match queue.listen().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(
                    "LISTEN unavailable, polling every {:?}: {e}",
                    config.poll_interval
                );
                tokio::time::sleep(config.poll_interval).await;
                continue;
            }
        };
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if config.kinds.is_empty() || config.kinds.iter().any(|k| k == n.payload()) {
                        wake.notify_waiters();
                    }
                }
                // Connection lost and re-established: notifications may have been missed.
                Ok(None) => wake.notify_waiters(),
                Err(e) => {
                    tracing::warn!("listener failed: {e}");
                    wake.notify_waiters();
                    tokio::time::sleep(config.poll_interval).await;
                    break;
                }
            }
        }
    }
}

struct Slot {
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    config: WorkerConfig,
    id: String,
    wake: Arc<Notify>,
    stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
}

impl Slot {
    async fn run(mut self) {
        let kind_names = self.config.kinds.clone();
        let kinds: Vec<&str> = kind_names.iter().map(String::as_str).collect();
        let wake = self.wake.clone();
        loop {
            if *self.stop.borrow() {
                return;
            }
            // Register for wake-ups before looking, so a notification between an empty claim
            // and the wait is not lost.
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut wait = self.config.poll_interval;
            match self.queue.claim(&self.id, self.config.lease, &kinds).await {
                Ok(Some(job)) => {
                    self.run_job(job).await;
                    continue;
                }
                Ok(None) => match self.queue.next_due(&kinds).await {
                    Ok(Some(due)) => wait = wait.min(due + Duration::from_millis(5)),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(slot = %self.id, "next_due failed: {e}"),
                },
                Err(e) => tracing::warn!(slot = %self.id, "claim failed: {e}"),
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
                _ = wait_stop(&mut self.stop) => return,
            }
        }
    }

    /// Run one job with lease heart-beats, honouring shutdown.
    async fn run_job(&mut self, job: Job) {
        let job = Arc::new(job);
        let mut task = tokio::spawn(process(
            self.queue.clone(),
            self.handler.clone(),
            job.clone(),
        ));
        let beat = (self.config.lease / 3).max(Duration::from_millis(10));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let runtime_deadline = self
            .config
            .max_runtime
            .map(|max| tokio::time::Instant::now() + max);
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut stopping = *self.stop.borrow();
        if stopping {
            deadline = Some(tokio::time::Instant::now() + self.config.shutdown_grace);
        }
        loop {
            tokio::select! {
                res = &mut task => {
                    match res {
                        Ok(Ok(Outcome::Completed)) => {
                            self.counters.completed.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Ok(Outcome::Failed(o))) => self.counters.count_fail(o),
                        Ok(Err(e)) => tracing::error!(job = job.id, "could not record job outcome: {e}"),
                        Err(e) => {
                            // The handler panicked: count it as a failed attempt.
                            let msg = if e.is_panic() { "handler panicked" } else { "handler task cancelled" };
                            match self.queue.fail(&job, msg).await {
                                Ok(o) => self.counters.count_fail(o),
                                Err(e) => tracing::error!(job = job.id, "could not record failure: {e}"),
                            }
                        }
                    }
                    return;
                }
                _ = heartbeat.tick() => {
                    match self.queue.extend_lease(&job, self.config.lease).await {
                        Ok(true) => {}
                        // The job's own write transaction holds its row while it writes, so a
                        // heart-beat can wait for it and then find the job finished: its
                        // outcome is the task's, taken on the next turn of the loop.
                        Ok(false) if task.is_finished() => {}
                        Ok(false) => {
                            tracing::warn!(job = job.id, slot = %self.id, "lease lost; abandoning job");
                            task.abort();
                            let _ = (&mut task).await;
                            self.counters.lease_lost.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Err(e) => tracing::warn!(job = job.id, "lease heart-beat failed: {e}"),
                    }
                }
                _ = wait_stop(&mut self.stop), if !stopping => {
                    stopping = true;
                    deadline = Some(tokio::time::Instant::now() + self.config.shutdown_grace);
                }
                _ = sleep_until(runtime_deadline), if runtime_deadline.is_some() => {
                    let max = self.config.max_runtime.unwrap_or_default();
                    tracing::warn!(job = job.id, slot = %self.id, ?max, "job ran too long; abandoning it");
                    // Dropping the task rolls back a write transaction it may have open.
                    task.abort();
                    let _ = (&mut task).await;
                    self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                    match self.queue.fail(&job, &runtime_exceeded(max)).await {
                        Ok(o) => self.counters.count_fail(o),
                        Err(e) => tracing::error!(job = job.id, "could not record failure: {e}"),
                    }
                    return;
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    tracing::info!(job = job.id, slot = %self.id, "shutdown grace over; releasing job");
                    task.abort();
                    let _ = (&mut task).await;
                    match self.queue.release(&job).await {
                        Ok(true) => { self.counters.released.fetch_add(1, Ordering::Relaxed); }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(job = job.id, "release failed (the lease will expire): {e}"),
                    }
                    return;
                }
            }
        }
    }
}

/// Resolves once shutdown was requested (never, if the sender is gone without asking).
async fn wait_stop(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

enum Outcome {
    Completed,
    Failed(FailOutcome),
}

/// The handler's compute phase with no transaction held, then its write phase and the
/// completion in one short transaction that first locks the claim; failures recorded
/// separately.
async fn process(queue: Queue, handler: Arc<dyn JobHandler>, job: Arc<Job>) -> Result<Outcome> {
    let computed = match handler.compute(&job).await {
        Ok(c) => c,
        Err(err) => return Ok(Outcome::Failed(record_error(&queue, &job, &err).await?)),
    };
    let mut tx = match queue.begin().await {
        Ok(tx) => tx,
        Err(e) => return Ok(Outcome::Failed(queue.fail(&job, &e.to_string()).await?)),
    };
    match Queue::lock_claim(&mut tx, &job).await {
        Ok(true) => {}
        Ok(false) => {
            let _ = tx.rollback().await;
            tracing::warn!(job = job.id, "lease lost before writing; nothing written");
            return Ok(Outcome::Failed(FailOutcome::LeaseLost));
        }
        Err(e) => {
            let _ = tx.rollback().await;
            return Ok(Outcome::Failed(
                queue
                    .fail(&job, &format!("locking the claim failed: {e}"))
                    .await?,
            ));
        }
    }
    match handler.write(&job, computed, &mut tx).await {
        Ok(()) => match queue.complete(&job, tx).await {
            Ok(()) => Ok(Outcome::Completed),
            Err(PgError::LeaseLost { .. }) => {
                tracing::warn!(
                    job = job.id,
                    "lease lost before completion; writes rolled back"
                );
                Ok(Outcome::Failed(FailOutcome::LeaseLost))
            }
            Err(e) => Ok(Outcome::Failed(
                queue.fail(&job, &format!("completing failed: {e}")).await?,
            )),
        },
        Err(err) => {
            let _ = tx.rollback().await;
            Ok(Outcome::Failed(record_error(&queue, &job, &err).await?))
        }
    }
}

/// Record a handler's error: retry later, or dead-letter a permanent one now.
async fn record_error(queue: &Queue, job: &Job, err: &JobError) -> Result<FailOutcome> {
    Ok(match err {
        JobError::Retryable(msg) => queue.fail(job, msg).await?,
        JobError::Permanent(msg) => {
            if queue.dead_letter(job, msg).await? {
                FailOutcome::Dead
            } else {
                FailOutcome::LeaseLost
            }
        }
    })
}
