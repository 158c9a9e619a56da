//! A durable job queue in PostgreSQL: enqueue, claim under a lease with `FOR UPDATE SKIP LOCKED`,
//! complete in the handler's own transaction, retry with exponential backoff, dead-letter.
//!
//! All state lives in the `steadytext_jobs` / `steadytext_dead_jobs` tables (migration
//! `0002_job_queue.sql`), so any number of workers in any number of processes and machines can
//! share one database:
//!
//! * **No job is done twice.** A claim locks the row with `FOR UPDATE SKIP LOCKED`, so two
//!   claimers never get the same job, and completing is fenced: [`Queue::complete`] only marks
//!   the job done if the claim is still current (same `leased_by` and claim number `attempts`),
//!   in the same transaction as the handler's writes. A worker whose lease expired and whose job
//!   was re-claimed gets [`PgError::LeaseLost`] and its writes are rolled back.
//! * **No job is lost.** A killed worker's job stays `leased` until its lease runs out and is
//!   then claimable again. A job whose worker keeps dying is dead-lettered after
//!   `max_attempts` claims.
//! * Database time (`now()`) is the only clock used, so machines' clocks need not agree.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), steadytext_pg::PgError> {
//! use std::time::Duration;
//! use steadytext_pg::Queue;
//! let queue = Queue::new(pool);
//! queue.enqueue("analyze_review", &serde_json::json!({"id": 7}), Some("7")).await?;
//! if let Some(job) = queue.claim("worker-1", Duration::from_secs(60), &["analyze_review"]).await? {
//!     let mut tx = queue.begin().await?;
//!     sqlx::query("UPDATE product_reviews SET sentiment = 'positive' WHERE id = $1")
//!         .bind(job.payload["id"].as_i64())
//!         .execute(&mut *tx)
//!         .await?;
//!     queue.complete(&job, tx).await?; // writes + completion commit together
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::error::{PgError, Result};

/// The `LISTEN`/`NOTIFY` channel on which enqueues announce themselves (payload: the job kind).
pub const NOTIFY_CHANNEL: &str = "steadytext_jobs";

/// Intervals longer than this are clamped (keeps interval arithmetic far from overflow).
const MAX_INTERVAL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn millis(d: Duration) -> i64 {
    d.min(MAX_INTERVAL).as_millis() as i64
}

/// A job this worker has claimed. Obtained from [`Queue::claim`]; pass it back to
/// [`Queue::complete`], [`Queue::fail`], [`Queue::release`] or [`Queue::dead_letter`].
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize, Deserialize)]
pub struct Job {
    /// Row id in `steadytext_jobs`.
    pub id: i64,
    /// What to do, e.g. `analyze_review`.
    pub kind: String,
    /// Arguments, e.g. `{"id": 42}`.
    pub payload: serde_json::Value,
    /// Pending jobs with equal `(kind, dedupe_key)` are merged.
    pub dedupe_key: Option<String>,
    /// Claims so far, this one included (1 on the first run). Also fences this claim.
    pub attempts: i32,
    /// This job's attempt limit; `None` means the queue's [`RetryPolicy::max_attempts`].
    pub max_attempts: Option<i32>,
    /// When the job became (or becomes) runnable.
    pub run_at: DateTime<Utc>,
    /// The worker holding the claim.
    pub leased_by: String,
    /// When the claim runs out unless extended ([`Queue::extend_lease`]).
    pub leased_until: DateTime<Utc>,
    /// The error of the previous attempt, if it failed.
    pub last_error: Option<String>,
    /// When the job was first enqueued.
    pub created_at: DateTime<Utc>,
}

impl Job {
    /// The payload deserialised as `T`; a payload of the wrong shape is a permanent error
    /// (retrying cannot fix it).
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.payload.clone()).map_err(|e| {
            JobError::Permanent(format!("job {} ({}): bad payload: {e}", self.id, self.kind))
        })
    }
}

/// Why a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Try again later (with backoff), up to the attempt limit.
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help: dead-letter the job now.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl JobError {
    /// A retryable error from anything displayable.
    pub fn retryable(e: impl std::fmt::Display) -> Self {
        Self::Retryable(e.to_string())
    }

    /// A permanent error from anything displayable.
    pub fn permanent(e: impl std::fmt::Display) -> Self {
        Self::Permanent(e.to_string())
    }
}

/// Database errors inside a handler are retryable by default.
impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Retryable(e.to_string())
    }
}

/// Retry schedule: after the `n`-th failed attempt the job waits `base * 2^(n-1)`, at most
/// `cap`; after `max_attempts` attempts it is dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Attempts (claims) before dead-lettering, for jobs without their own `max_attempts`.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 s, 2 s, 4 s, 8 s (cap 5 min), dead after 5 attempts.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            max_attempts: 5,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): `base * 2^(attempt-1)`, capped.
    pub fn delay(&self, attempt: i32) -> Duration {
        let exp = attempt.saturating_sub(1).clamp(0, 30) as u32;
        self.base.saturating_mul(1u32 << exp).min(self.cap)
    }
}

/// Options for [`Queue::enqueue_in`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnqueueOptions {
    /// Merge with a pending job of the same kind and key instead of adding another.
    pub dedupe_key: Option<String>,
    /// Attempt limit for this job (default: the worker's policy).
    pub max_attempts: Option<i32>,
    /// Do not run before this much time has passed.
    pub delay: Option<Duration>,
}

/// What [`Queue::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id (the existing pending job's id when merged).
    pub id: i64,
    /// `false` when merged into an existing pending job with the same dedupe key.
    pub created: bool,
}

/// What [`Queue::fail`] did with the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back to pending; runnable again at `run_at`.
    Retry {
        /// The attempt that failed (1-based).
        attempt: i32,
        /// When it may run again.
        run_at: DateTime<Utc>,
    },
    /// Out of attempts (or a permanent error): moved to `steadytext_dead_jobs`.
    Dead,
    /// A newer pending job with the same dedupe key exists and will do the work; this one was
    /// dropped.
    Superseded,
    /// The claim was no longer ours; nothing changed.
    LeaseLost,
}

/// Job counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Waiting (including those backing off).
    pub pending: i64,
    /// Pending and runnable now.
    pub ready: i64,
    /// Claimed by a worker.
    pub leased: i64,
    /// Claimed, but the lease ran out (the worker probably died): claimable again.
    pub expired: i64,
    /// Finished.
    pub done: i64,
    /// In the dead-letter table.
    pub dead: i64,
}

/// A dead-lettered job.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize, Deserialize)]
pub struct DeadJob {
    /// The id it had in `steadytext_jobs`.
    pub id: i64,
    /// Its kind.
    pub kind: String,
    /// Its payload.
    pub payload: serde_json::Value,
    /// Its dedupe key.
    pub dedupe_key: Option<String>,
    /// Attempts made.
    pub attempts: i32,
    /// Its own attempt limit, if any.
    pub max_attempts: Option<i32>,
    /// The last worker that held it.
    pub leased_by: Option<String>,
    /// The error that killed it.
    pub last_error: Option<String>,
    /// When it was first enqueued.
    pub created_at: DateTime<Utc>,
    /// When it was dead-lettered.
    pub died_at: DateTime<Utc>,
}

/// The job queue over a pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Queue {
    pool: PgPool,
    retry: RetryPolicy,
}

impl Queue {
    /// A queue over `pool` with the default [`RetryPolicy`]. The migrations must have run.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            retry: RetryPolicy::default(),
        }
    }

    /// Use `retry` for [`fail`](Self::fail) and for crash-looping jobs in [`claim`](Self::claim).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The retry policy in use.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Start a transaction for a handler's writes; finish it with [`complete`](Self::complete).
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Add a job (runnable now) and notify listeners. With `dedupe`, a pending job of the same
    /// kind and key absorbs this one (its payload is replaced).
    pub async fn enqueue(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        dedupe: Option<&str>,
    ) -> Result<Enqueued> {
        let mut conn = self.pool.acquire().await?;
        let options = EnqueueOptions {
            dedupe_key: dedupe.map(str::to_owned),
            ..EnqueueOptions::default()
        };
        Self::enqueue_in(&mut conn, kind, payload, &options).await
    }

    /// Add a job on the caller's connection, typically inside its transaction (the job then
    /// exists, and listeners are notified, only if that transaction commits). A handler can
    /// chain work this way: `Queue::enqueue_in(&mut **tx, ...)`.
    pub async fn enqueue_in(
        conn: &mut PgConnection,
        kind: &str,
        payload: &serde_json::Value,
        options: &EnqueueOptions,
    ) -> Result<Enqueued> {
        let (id, created): (i64, bool) = sqlx::query_as(
            "SELECT job_id, inserted FROM steadytext_enqueue_job($1, $2, $3, $4, \
             now() + $5 * interval '1 millisecond')",
        )
        .bind(kind)
        .bind(payload)
        .bind(options.dedupe_key.as_deref())
        .bind(options.max_attempts)
        .bind(millis(options.delay.unwrap_or_default()))
        .fetch_one(conn)
        .await?;
        Ok(Enqueued { id, created })
    }

    fn max_attempts_for(&self, job: &Job) -> i32 {
        job.max_attempts
            .unwrap_or(self.retry.max_attempts.min(i32::MAX as u32) as i32)
            .max(1)
    }

    /// Claim the next runnable job of one of `kinds` (any kind if empty) for `lease`: a pending
    /// job whose `run_at` has come, or a leased job whose lease ran out (its worker died). The
    /// claim counts as an attempt. Returns `None` when nothing is runnable.
    ///
    /// A job claimed more than its attempt limit times without ever completing or failing (its
    /// workers keep dying) is dead-lettered here instead of being returned.
    pub async fn claim(
        &self,
        worker_id: &str,
        lease: Duration,
        kinds: &[&str],
    ) -> Result<Option<Job>> {
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        loop {
            let job: Option<Job> = sqlx::query_as(
                "WITH next AS ( \
                   SELECT id FROM steadytext_jobs \
                   WHERE ((state = 'pending' AND run_at <= now()) \
                          OR (state = 'leased' AND leased_until < now())) \
                     AND (cardinality($3::text[]) = 0 OR kind = ANY($3::text[])) \
                   ORDER BY run_at, id \
                   LIMIT 1 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE steadytext_jobs j \
                 SET state = 'leased', leased_by = $1, \
                     leased_until = now() + $2 * interval '1 millisecond', \
                     attempts = j.attempts + 1, updated_at = now() \
                 FROM next WHERE j.id = next.id \
                 RETURNING j.id, j.kind, j.payload, j.dedupe_key, j.attempts, j.max_attempts, \
                           j.run_at, j.leased_by, j.leased_until, j.last_error, j.created_at",
            )
            .bind(worker_id)
            .bind(millis(lease))
            .bind(&kinds)
            .fetch_optional(&self.pool)
            .await?;
            let Some(job) = job else { return Ok(None) };
            if job.attempts > self.max_attempts_for(&job) {
                let error = format!(
                    "abandoned {} times (lease expired without completion: worker killed?); \
                     last error: {}",
                    job.attempts - 1,
                    job.last_error.as_deref().unwrap_or("none")
                );
                tracing::warn!(job = job.id, kind = %job.kind, "{error}");
                self.dead_letter(&job, &error).await?;
                continue;
            }
            tracing::debug!(job = job.id, kind = %job.kind, attempt = job.attempts, worker = worker_id, "claimed");
            return Ok(Some(job));
        }
    }

    /// Mark `job` done inside `tx` — the transaction holding the handler's writes — and commit
    /// both together. If the claim is no longer current (lease expired and the job was
    /// re-claimed, or already finished), `tx` is rolled back, so the handler's writes are
    /// discarded, and [`PgError::LeaseLost`] is returned.
    pub async fn complete(&self, job: &Job, mut tx: Transaction<'_, Postgres>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE steadytext_jobs \
             SET state = 'done', finished_at = now(), updated_at = now(), leased_until = NULL \
             WHERE id = $1 AND leased_by = $2 AND attempts = $3 AND state = 'leased'",
        )
        .bind(job.id)
        .bind(&job.leased_by)
        .bind(job.attempts)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(lease_lost(job));
        }
        tx.commit().await?;
        tracing::debug!(job = job.id, kind = %job.kind, "completed");
        Ok(())
    }

    /// Lock `job`'s row on `conn` (inside the transaction that will write the job's effects and
    /// [`complete`](Self::complete) it) if the claim is still ours; `false` if it is not (the
    /// lease ran out and another worker claimed the job, or the job is finished): write nothing
    /// then. While the lock is held no one else can claim the job, so checking first and
    /// completing last in one transaction keeps the effect exactly-once without doing doomed
    /// writes.
    pub async fn lock_claim(conn: &mut PgConnection, job: &Job) -> Result<bool> {
        let held: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM steadytext_jobs \
             WHERE id = $1 AND leased_by = $2 AND attempts = $3 AND state = 'leased' \
             FOR UPDATE",
        )
        .bind(job.id)
        .bind(&job.leased_by)
        .bind(job.attempts)
        .fetch_optional(conn)
        .await?;
        Ok(held.is_some())
    }

    /// Record a failed attempt: back to pending after the policy's backoff, or to the
    /// dead-letter table once the attempt limit is reached.
    pub async fn fail(&self, job: &Job, error: &str) -> Result<FailOutcome> {
        if job.attempts >= self.max_attempts_for(job) {
            return Ok(if self.dead_letter(job, error).await? {
                FailOutcome::Dead
            } else {
                FailOutcome::LeaseLost
            });
        }
        let delay = self.retry.delay(job.attempts);
        let res: std::result::Result<Option<(DateTime<Utc>,)>, sqlx::Error> = sqlx::query_as(
            "UPDATE steadytext_jobs \
             SET state = 'pending', run_at = now() + $4 * interval '1 millisecond', \
                 leased_by = NULL, leased_until = NULL, last_error = $5, updated_at = now() \
             WHERE id = $1 AND leased_by = $2 AND attempts = $3 AND state = 'leased' \
             RETURNING run_at",
        )
        .bind(job.id)
        .bind(&job.leased_by)
        .bind(job.attempts)
        .bind(millis(delay))
        .bind(error)
        .fetch_optional(&self.pool)
        .await;
        match res {
            Ok(Some((run_at,))) => {
                tracing::info!(job = job.id, kind = %job.kind, attempt = job.attempts, ?delay, "failed, will retry: {error}");
                Ok(FailOutcome::Retry {
                    attempt: job.attempts,
                    run_at,
                })
            }
            Ok(None) => Ok(FailOutcome::LeaseLost),
            Err(e) if is_unique_violation(&e) => Ok(if self.drop_superseded(job).await? {
                FailOutcome::Superseded
            } else {
                FailOutcome::LeaseLost
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Move `job` to `steadytext_dead_jobs` with `error`. Returns `false` if the claim was no
    /// longer ours (nothing changed).
    pub async fn dead_letter(&self, job: &Job, error: &str) -> Result<bool> {
        let moved = sqlx::query(
            "WITH moved AS ( \
               DELETE FROM steadytext_jobs \
               WHERE id = $1 AND leased_by = $2 AND attempts = $3 AND state = 'leased' \
               RETURNING id, kind, payload, dedupe_key, attempts, max_attempts, run_at, \
                         leased_by, created_at, updated_at) \
             INSERT INTO steadytext_dead_jobs (id, kind, payload, dedupe_key, attempts, \
                 max_attempts, run_at, leased_by, last_error, created_at, updated_at, died_at) \
             SELECT id, kind, payload, dedupe_key, attempts, max_attempts, run_at, leased_by, \
                    $4, created_at, updated_at, now() FROM moved \
             ON CONFLICT (id) DO UPDATE SET last_error = EXCLUDED.last_error, \
                 attempts = EXCLUDED.attempts, died_at = EXCLUDED.died_at",
        )
        .bind(job.id)
        .bind(&job.leased_by)
        .bind(job.attempts)
        .bind(error)
        .execute(&self.pool)
        .await?;
        let ok = moved.rows_affected() > 0;
        if ok {
            tracing::warn!(job = job.id, kind = %job.kind, attempts = job.attempts, "dead-lettered: {error}");
        }
        Ok(ok)
    }

    /// Give `job` back unfinished (graceful shutdown): pending again, runnable now, and the
    /// attempt is not counted. Returns `false` if the claim was no longer ours.
    pub async fn release(&self, job: &Job) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE steadytext_jobs \
             SET state = 'pending', run_at = now(), attempts = GREATEST(attempts - 1, 0), \
                 leased_by = NULL, leased_until = NULL, updated_at = now() \
             WHERE id = $1 AND leased_by = $2 AND attempts = $3 AND state = 'leased'",
        )
        .bind(job.id)
        .bind(&job.leased_by)
        .bind(job.attempts)
        .execute(&self.pool)
        .await;
        let released = match res {
            Ok(r) => r.rows_affected() > 0,
            Err(e) if is_unique_violation(&e) => self.drop_superseded(job).await?,
            Err(e) => return Err(e.into()),
        };
        if released {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(&job.kind)
                .execute(&self.pool)
                .await?;
        }
        Ok(released)
    }

    /// Push the lease of a job in progress to `now() + lease`. Returns `false` if the claim is
    /// no longer ours (the handler's work will be rejected at completion: stop early).
    pub async fn extend_lease(&self, job: &Job, lease: Duration) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE steadytext_jobs \
             SET leased_until = now() + $4 * interval '1 millisecond', updated_at = now() \
             WHERE id = $1 AND leased_by = $2 AND attempts = $3 AND state = 'leased'",
        )
        .bind(job.id)
        .bind(&job.leased_by)
        .bind(job.attempts)
        .bind(millis(lease))
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() > 0)
    }

    /// A job could not go back to pending because a newer pending job with the same dedupe key
    /// exists; that one will do the work, so drop ours.
    async fn drop_superseded(&self, job: &Job) -> Result<bool> {
        let res = sqlx::query(
            "DELETE FROM steadytext_jobs \
             WHERE id = $1 AND leased_by = $2 AND attempts = $3 AND state = 'leased'",
        )
        .bind(job.id)
        .bind(&job.leased_by)
        .bind(job.attempts)
        .execute(&self.pool)
        .await?;
        let dropped = res.rows_affected() > 0;
        if dropped {
            tracing::info!(job = job.id, kind = %job.kind, "superseded by a newer pending job with the same dedupe key");
        }
        Ok(dropped)
    }

    /// How long until the next job of `kinds` (any if empty) becomes claimable: a pending job's
    /// `run_at` or a lease's expiry. `Some(ZERO)` if one is claimable now, `None` if there is
    /// nothing pending or leased.
    pub async fn next_due(&self, kinds: &[&str]) -> Result<Option<Duration>> {
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        let (secs,): (Option<f64>,) = sqlx::query_as(
            "SELECT EXTRACT(EPOCH FROM (LEAST( \
                 (SELECT min(run_at) FROM steadytext_jobs WHERE state = 'pending' \
                    AND (cardinality($1::text[]) = 0 OR kind = ANY($1::text[]))), \
                 (SELECT min(leased_until) FROM steadytext_jobs WHERE state = 'leased' \
                    AND (cardinality($1::text[]) = 0 OR kind = ANY($1::text[]))) \
             ) - now()))::float8",
        )
        .bind(&kinds)
        .fetch_one(&self.pool)
        .await?;
        Ok(secs.map(|s| Duration::from_secs_f64(s.clamp(0.0, MAX_INTERVAL.as_secs_f64()))))
    }

    /// How many jobs of `kinds` (any if empty) are claimable now: pending and due, or leased
    /// with an expired lease.
    pub async fn ready_count(&self, kinds: &[&str]) -> Result<u64> {
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM steadytext_jobs \
             WHERE ((state = 'pending' AND run_at <= now()) \
                    OR (state = 'leased' AND leased_until < now())) \
               AND (cardinality($1::text[]) = 0 OR kind = ANY($1::text[]))",
        )
        .bind(&kinds)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.max(0) as u64)
    }

    /// Job counts by state.
    pub async fn stats(&self) -> Result<QueueStats> {
        let (pending, ready, leased, expired, done, dead): (i64, i64, i64, i64, i64, i64) =
            sqlx::query_as(
                "SELECT count(*) FILTER (WHERE state = 'pending'), \
                        count(*) FILTER (WHERE state = 'pending' AND run_at <= now()), \
                        count(*) FILTER (WHERE state = 'leased'), \
                        count(*) FILTER (WHERE state = 'leased' AND leased_until < now()), \
                        count(*) FILTER (WHERE state = 'done'), \
                        (SELECT count(*) FROM steadytext_dead_jobs) \
                 FROM steadytext_jobs",
            )
            .fetch_one(&self.pool)
            .await?;
        Ok(QueueStats {
            pending,
            ready,
            leased,
            expired,
            done,
            dead,
        })
    }

    /// The most recently dead-lettered jobs, newest first.
    pub async fn dead_jobs(&self, limit: i64) -> Result<Vec<DeadJob>> {
        Ok(sqlx::query_as(
            "SELECT id, kind, payload, dedupe_key, attempts, max_attempts, leased_by, \
                    last_error, created_at, died_at \
             FROM steadytext_dead_jobs ORDER BY died_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Put dead job `id` back in the queue as a fresh job (attempts reset). `None` if there is
    /// no such dead job.
    pub async fn retry_dead(&self, id: i64) -> Result<Option<Enqueued>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, serde_json::Value, Option<String>, Option<i32>)> = sqlx::query_as(
            "DELETE FROM steadytext_dead_jobs WHERE id = $1 \
                 RETURNING kind, payload, dedupe_key, max_attempts",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((kind, payload, dedupe_key, max_attempts)) = row else {
            return Ok(None);
        };
        let options = EnqueueOptions {
            dedupe_key,
            max_attempts,
            delay: None,
        };
        let enqueued = Self::enqueue_in(&mut tx, &kind, &payload, &options).await?;
        tx.commit().await?;
        Ok(Some(enqueued))
    }

    /// Delete done jobs finished more than `older_than` ago. Returns how many.
    pub async fn purge_done(&self, older_than: Duration) -> Result<u64> {
        let res = sqlx::query(
            "DELETE FROM steadytext_jobs WHERE state = 'done' \
             AND finished_at < now() - $1 * interval '1 millisecond'",
        )
        .bind(millis(older_than))
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected())
    }

    /// A listener subscribed to [`NOTIFY_CHANNEL`] (it holds one pool connection). Each
    /// notification's payload is the kind of the job enqueued.
    pub async fn listen(&self) -> Result<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(listener)
    }
}

fn lease_lost(job: &Job) -> PgError {
    PgError::LeaseLost {
        id: job.id,
        worker: job.leased_by.clone(),
        attempt: job.attempts,
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_attempts: 10,
        };
        let delays: Vec<u128> = (1..=6).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(0), Duration::from_millis(100));
        assert_eq!(p.delay(i32::MAX), Duration::from_secs(1));
    }
}
