//! PostgreSQL adapter for steadytext.
//!
//! * [`Store`]: a connection pool plus the embedded [`MIGRATOR`] — the seed tutorial's
//!   customer-intelligence schema (tables and indexes exactly as in the seed), the job queue
//!   with its enqueue triggers, and the cache tables.
//! * [`Queue`]: a durable job queue (`FOR UPDATE SKIP LOCKED` claims under a lease, completion
//!   in the handler's transaction, exponential backoff, dead letters, `LISTEN`/`NOTIFY`).
//! * [`Worker`] and [`JobHandler`]: run jobs with a number of slots until shutdown.
//! * [`PgCache`]: the shared database tier of the core's result cache.
//! * [`Intelligence`]: the seed's analyses over a [`Store`] and an engine; company-wide inputs
//!   are SQL aggregates ([`aggregates`]), bulk runs keep several model calls in flight
//!   ([`batch`]) and report [`Progress`].
//! * [`resolutions`]: the resolution playbook as the table `steadytext.resolution_playbook`,
//!   which ticket analyses choose their suggested resolution from.
//! * [`human_review`]: human review in SQL — every stored analysis's flag, reasons and
//!   provenance (`steadytext_analyses`), the queue of what needs a person
//!   (`steadytext_review_queue`), and verdicts recorded with `steadytext_record_verdict` (who,
//!   when, before and after) that no re-analysis overwrites.
//! * [`calibrations`]: the feedback loop's learned state, `steadytext_calibrations` — a
//!   sentiment calibration fitted on the human verdicts, activated only when it is not worse
//!   than the active one, read by every review analysis before it runs.
//! * The seed's SQL surface (migration `0009_sql_surface.sql`): its functions
//!   `calculate_churn_risk()`, `analyze_customer_segments()`, `analyze_support_ticket(id)`,
//!   `generate_customer_recommendations(id, n)` and views `customer_sentiment_dashboard`,
//!   `executive_customer_summary`, plus pg_steadytext's async API
//!   (`steadytext.steadytext_generate_async`, `..._json_async`, `..._regex_async`,
//!   `..._choice_async`, `steadytext_check_async`, `steadytext_get_async_result`,
//!   `steadytext_cancel_async`). No model runs in a PostgreSQL backend: the functions enqueue
//!   a job and wait for a worker ([`AnalysisJobHandler`] runs every kind,
//!   [`SQL_SURFACE_KINDS`]); the views read what the workers stored.
//! * [`taxonomy`]: the feedback taxonomy as the table `steadytext_taxonomy`, which review
//!   themes and tickets are filed under.
//!
//! Inserting a row into `product_reviews` or `support_tickets`, or changing what its analysis
//! reads (a review's title, text, rating, customer or product; a ticket's category, subject,
//! description or customer), enqueues an `analyze_review` / `analyze_ticket` job with payload
//! `{"id": <row id>}` and notifies channel [`NOTIFY_CHANNEL`], inside the inserting
//! transaction: the insert never waits on a model. An analysis is written only if the row
//! still holds what was analysed; one overtaken by an edit finishes without writing (the
//! edit's own job writes the current version's analysis).
//!
//! ```no_run
//! # async fn demo() -> Result<(), steadytext_pg::PgError> {
//! use steadytext_pg::Store;
//! let store = Store::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
//! store.migrate().await?;
//! sqlx::query("INSERT INTO product_reviews (customer_id, product_id, rating, review_text) \
//!              VALUES (NULL, 1, 5, 'Great')")
//!     .execute(store.pool())
//!     .await?;
//! assert_eq!(store.queue().stats().await?.pending, 1);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod aggregates;
pub mod batch;
pub mod cache;
pub mod calibrations;
pub mod error;
pub mod human_review;
pub mod intelligence;
pub mod resolutions;
pub use steadytext_schema::progress;
pub mod queue;
pub mod rows;
pub mod store;
pub mod taxonomy;
pub mod worker;

pub use batch::DEFAULT_CONCURRENCY;
pub use cache::{PgCache, PG_CACHE_NAME};
pub use error::{redact_url, PgError, Result};
pub use human_review::{
    NewVerdict, QueueItem, SubjectKind, Verdict, VerdictProblem, VERDICT_FIELDS,
};
pub use intelligence::{
    AnalysisJobHandler, ChurnReport, InsightsRun, Intelligence, Processed, ReviewJobHandler,
    SeedLoad, SentimentTrend, TicketJobHandler, TrendBucket, ANALYZE_CUSTOMER_SEGMENTS,
    ANALYZE_REVIEW, ANALYZE_TICKET, CALCULATE_CHURN_RISK, CUSTOMER_RECOMMENDATIONS,
    DEFAULT_JOB_LEASE, GENERATE, GENERATE_CHOICE, GENERATE_JSON, GENERATE_REGEX, REFRESH_INSIGHTS,
    SQL_SURFACE_KINDS,
};
pub use progress::{NoProgress, Progress};
pub use queue::{
    DeadJob, EnqueueOptions, Enqueued, FailOutcome, Job, JobError, Queue, QueueStats, RetryPolicy,
    NOTIFY_CHANNEL,
};
pub use store::{Store, StoreOptions, MIGRATOR};
pub use worker::{Computed, JobHandler, Worker, WorkerConfig, WorkerReport, DEFAULT_MAX_RUNTIME};

/// Re-exported so users name the same sqlx version as this crate.
pub use sqlx;
