//! [`Intelligence`]: the seed tutorial's functions and views as async methods over a [`Store`]
//! and an [`Engine`].
//!
//! | seed | here |
//! |---|---|
//! | `analyze_review_on_insert()` trigger | [`Intelligence::analyze_review`] (run from the `analyze_review` job the insert enqueues: [`ReviewJobHandler`]) |
//! | `analyze_support_ticket(id)` | [`Intelligence::analyze_ticket`] ([`TicketJobHandler`]) |
//! | `customer_sentiment_dashboard` view | [`Intelligence::sentiment_dashboard`] (every customer, none dropped) |
//! | `calculate_churn_risk()` | [`Intelligence::calculate_churn_risk`] (stores every score) |
//! | `analyze_customer_segments()` | [`Intelligence::analyze_customer_segments`] |
//! | `generate_customer_recommendations(id, n)` | [`Intelligence::customer_recommendations`] |
//! | `executive_customer_summary` view | [`Intelligence::executive_summary`] |
//! | "track sentiment trends over time" | [`Intelligence::sentiment_trends`] |
//! | the sample `INSERT`s | [`Intelligence::load_seed_sample`] (idempotent) |
//!
//! The same analyses back the seed's SQL functions and views in the database (migration
//! `0009_sql_surface.sql`): a psql user's call enqueues a job that a worker runs through these
//! methods (`sql_surface`: [`SQL_SURFACE_KINDS`], [`Intelligence::refresh_insights`]).
//!
//! The domain rules (scores, statuses, priorities, prompts) are [`steadytext_schema`]'s; this
//! module only reads rows (company-wide inputs as SQL aggregates: [`crate::aggregates`]), runs
//! the [`Analyst`], and writes results. Model calls run before the writes, and each analysis
//! writes in one transaction — for a job, the job's own transaction, so its effects and the
//! job's completion commit together (exactly once).
//!
//! Bulk runs (churn strategies, segment profiles, dashboard insights, the queued reviews and
//! tickets) issue their model calls concurrently, at most [`Intelligence::concurrency`] at a
//! time ([`crate::batch`]), and write the results in input order: the same rows, in the same
//! order, as one call after another. They report progress to [`Intelligence::with_progress`].
//!
//! Every write also records the analysis — its human-review flag and reasons, prompt version
//! and model — in `steadytext_analyses`, in the same transaction, and keeps any human verdict
//! in place ([`crate::human_review`]).
//!
//! Re-analysing a review or ticket *replaces* its logged interaction (found by
//! `metadata->>'review_id'` / `metadata->>'ticket_id'`): there is always exactly one per review
//! or ticket, however often it is analysed.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, Transaction};
use steadytext_core::Engine;
use steadytext_schema::churn::churn_risk;
use steadytext_schema::human_review::{assess, ReviewSignals};
use steadytext_schema::prompts::{ReviewInput, TicketInput};
use steadytext_schema::scenario::seed_sample;
use steadytext_schema::taxonomy::Taxonomy;
use steadytext_schema::{
    AnalysisError, Analyst, AnalyzedTicket, ChurnRisk, Customer, CustomerInsight,
    CustomerRecommendations, ExecutiveSummary, HumanReview, NameDirectory, Playbooks,
    ProductReview, RecommendationInputs, ResolutionPlaybook, RetentionStrategy, ReviewAnalysis,
    ReviewSentiment, SegmentProfile, SentimentModel, SupportTicket, TicketAnalysis, PROMPT_VERSION,
};

use crate::aggregates;
use crate::batch::{self, DEFAULT_CONCURRENCY};
use crate::error::{PgError, Result};
use crate::human_review::{self, NewAnalysis, SubjectKind};
use crate::progress::{
    NoProgress, Progress, Stage, STAGE_CHURN, STAGE_DASHBOARD, STAGE_PENDING, STAGE_SEGMENTS,
};
use crate::queue::{FailOutcome, Job, JobError, Queue};
use crate::rows;
use crate::store::Store;
use crate::worker::{runtime_exceeded, Computed, JobHandler, DEFAULT_MAX_RUNTIME};

mod sql_surface;
use sql_surface::{AsyncOutcome, ChurnRun};
pub use sql_surface::{
    InsightsRun, ANALYZE_CUSTOMER_SEGMENTS, CALCULATE_CHURN_RISK, CUSTOMER_RECOMMENDATIONS,
    GENERATE, GENERATE_CHOICE, GENERATE_JSON, GENERATE_REGEX, REFRESH_INSIGHTS, SQL_SURFACE_KINDS,
};

/// Job kind of a review analysis (enqueued by the `product_reviews` triggers).
pub const ANALYZE_REVIEW: &str = "analyze_review";
/// Job kind of a ticket analysis (enqueued by the `support_tickets` trigger).
pub const ANALYZE_TICKET: &str = "analyze_ticket";

/// Bucket width of [`Intelligence::sentiment_trends`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendBucket {
    /// Calendar days (`date_trunc('day', ...)`).
    Day,
    /// ISO weeks, starting Monday (`date_trunc('week', ...)`).
    Week,
}

impl TrendBucket {
    fn sql(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
        }
    }
}

/// Average interaction sentiment of one segment in one time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SentimentTrend {
    /// The customers' segment (`None`: no segment, or no customer).
    pub segment: Option<String>,
    /// Start of the bucket.
    pub bucket_start: DateTime<Utc>,
    /// Average `sentiment_score` of the bucket's scored interactions.
    pub avg_sentiment: f64,
    /// Scored interactions in the bucket.
    pub interactions: i64,
}

/// A churn-risk row: the seed's `(customer_id, risk_score, risk_factors, retention_strategy)`.
pub type ChurnReport = RetentionStrategy;

/// What [`Intelligence::load_seed_sample`] inserted (0s when everything was already there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedLoad {
    /// New customers.
    pub customers: u64,
    /// New reviews (each enqueues an analysis job).
    pub reviews: u64,
    /// New tickets (each enqueues an analysis job).
    pub tickets: u64,
}

/// What [`Intelligence::process_pending`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processed {
    /// Jobs completed with their analysis written.
    pub completed: u64,
    /// Jobs that failed (retried later or dead-lettered).
    pub failed: u64,
    /// Jobs finished without writing because their row was edited while it was being
    /// analysed (the edit enqueued a new analysis of the current version).
    #[serde(default)]
    pub stale: u64,
    /// Jobs whose lease was lost (another worker took them over): nothing written, left to
    /// the new owner.
    #[serde(default)]
    pub lease_lost: u64,
}

/// The default lease of [`Intelligence::process_pending`]'s claims (extended every third of
/// it while the model runs).
pub const DEFAULT_JOB_LEASE: StdDuration = StdDuration::from_secs(60);

/// The seed's analyses over a database and a model. Cheap to share behind an `Arc`.
///
/// Bulk runs keep up to [`concurrency`](Self::concurrency) model calls in flight
/// ([`with_concurrency`](Self::with_concurrency), default [`DEFAULT_CONCURRENCY`]) and report
/// to a [`Progress`] ([`with_progress`](Self::with_progress)).
///
/// ```no_run
/// # async fn demo(engine: steadytext_core::Engine) -> Result<(), steadytext_pg::PgError> {
/// use steadytext_pg::{Intelligence, Store};
/// let store = Store::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
/// store.migrate().await?;
/// let intel = std::sync::Arc::new(Intelligence::new(store, engine));
/// intel.load_seed_sample().await?;
/// intel.process_pending().await?; // the review and ticket jobs the inserts enqueued
/// for row in intel.calculate_churn_risk().await? {
///     println!("customer {}: {:.2} {}", row.customer_id, row.risk.score, row.strategy);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Intelligence {
    /// The database.
    pub store: Store,
    /// The model.
    pub engine: Engine,
    concurrency: usize,
    progress: Arc<dyn Progress>,
    job_lease: StdDuration,
    max_job_runtime: Option<StdDuration>,
    playbooks: Arc<Playbooks>,
    names: Arc<Mutex<Option<CachedNames>>>,
    /// A calibration set by the caller ([`Intelligence::with_sentiment`]): used always.
    pinned_sentiment: Option<SentimentModel>,
    /// Another model's engine for review sentiment, with its calibration
    /// ([`Intelligence::with_classifier`]).
    classifier: Option<(Engine, SentimentModel)>,
    /// The database's active calibration, as last read (re-read when its id changes).
    active_sentiment: Arc<Mutex<Option<SentimentModel>>>,
}

/// How long the customers' names are reused before they are read again, even when no
/// customer was added or removed (a rename).
pub const NAMES_REFRESH: StdDuration = StdDuration::from_secs(60);

/// Every customer's names, as last read.
struct CachedNames {
    /// `(count(*), max(id))` of `customers` when read: a new or deleted customer reloads.
    signature: (i64, i32),
    read_at: Instant,
    directory: Arc<NameDirectory>,
}

impl std::fmt::Debug for Intelligence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intelligence")
            .field("store", &self.store)
            .field("engine", &self.engine)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// A review and its owner, read for an analysis, with every customer name the database knows.
struct ReviewSubject {
    review: ProductReview,
    owner: Option<Customer>,
    names: Arc<NameDirectory>,
    taxonomy: Arc<Taxonomy>,
    sentiment: SentimentModel,
}

/// A ticket and its owner, read for an analysis, with every customer name the database knows
/// and the resolution playbook and taxonomy as the tables hold them now.
struct TicketSubject {
    ticket: SupportTicket,
    owner: Option<Customer>,
    names: Arc<NameDirectory>,
    playbook: Arc<ResolutionPlaybook>,
    taxonomy: Arc<Taxonomy>,
}

/// A queued job's analysis, computed and not yet written, with the identity of the model that
/// computed it.
pub(crate) enum JobAnalysis {
    Review(ProductReview, ReviewAnalysis, String),
    Ticket(SupportTicket, AnalyzedTicket, String),
    Churn(ChurnRun),
    Segments(Vec<SegmentProfile>, String),
    Recommendations(CustomerRecommendations),
    Insights(InsightsRun),
    Async(AsyncOutcome),
}

impl Intelligence {
    /// Analyses over `store` with `engine`, [`DEFAULT_CONCURRENCY`] model calls in flight per
    /// bulk run, no progress reports.
    pub fn new(store: Store, engine: Engine) -> Self {
        Self {
            store,
            engine,
            concurrency: DEFAULT_CONCURRENCY,
            progress: Arc::new(NoProgress),
            names: Arc::new(Mutex::new(None)),
            job_lease: DEFAULT_JOB_LEASE,
            max_job_runtime: Some(DEFAULT_MAX_RUNTIME),
            playbooks: Arc::new(Playbooks::default()),
            pinned_sentiment: None,
            classifier: None,
            active_sentiment: Arc::new(Mutex::new(None)),
        }
    }

    /// Classify review sentiment with this calibration always, instead of the database's
    /// active one (`steadytext_calibrations`, see [`crate::calibrations`]).
    pub fn with_sentiment(mut self, model: SentimentModel) -> Self {
        self.pinned_sentiment = Some(model);
        self
    }

    /// Classify review sentiment on another model's engine, read through `sentiment` (a
    /// calibration fitted on that model, e.g. `SentimentModel::shipped_for` its identity);
    /// the other analyses stay on [`Intelligence::engine`]. The database's active calibration
    /// is then not used: it was fitted on the scores of the main model.
    pub fn with_classifier(mut self, engine: Engine, sentiment: SentimentModel) -> Self {
        self.classifier = Some((engine, sentiment));
        self
    }

    /// The sentiment classifier the next review analysis uses: the pinned one, else the
    /// classifier model's ([`Intelligence::with_classifier`]), else the database's active
    /// calibration (one indexed lookup; parsed again only when its id
    /// changed), else the built-in default. A stored calibration this version cannot apply
    /// (fitted for another prompt version) is skipped with a warning: the built-in one runs,
    /// and results record which.
    pub async fn sentiment_model(&self, conn: &mut PgConnection) -> Result<SentimentModel> {
        if let Some(m) = &self.pinned_sentiment {
            return Ok(m.clone());
        }
        if let Some((_, m)) = &self.classifier {
            return Ok(m.clone());
        }
        let Some(id) = crate::calibrations::active_id(&mut *conn).await? else {
            return Ok(SentimentModel::default());
        };
        {
            let cached = self
                .active_sentiment
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(m) = cached.as_ref().filter(|m| m.calibration_id() == id) {
                return Ok(m.clone());
            }
        }
        let model = match crate::calibrations::active(&mut *conn).await {
            Ok(Some((_, c))) => match SentimentModel::new(c) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(calibration = %id, error = %e, "active calibration unusable; using the built-in one");
                    SentimentModel::default()
                }
            },
            Ok(None) => SentimentModel::default(),
            Err(PgError::BadRow { reason, .. }) => {
                tracing::warn!(calibration = %id, %reason, "active calibration unusable; using the built-in one");
                SentimentModel::default()
            }
            Err(e) => return Err(e),
        };
        *self
            .active_sentiment
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(model.clone());
        Ok(model)
    }

    /// Choose retention, upsell, marketing and company-wide actions from these playbooks
    /// instead of the shipped defaults (see [`steadytext_schema::playbooks`]).
    pub fn with_playbooks(mut self, playbooks: Playbooks) -> Self {
        self.playbooks = Arc::new(playbooks);
        self
    }

    /// Claim [`process_pending`](Self::process_pending)'s jobs for `lease` (at least 30 ms),
    /// extended every third of it while they compute (default [`DEFAULT_JOB_LEASE`]). A
    /// killed drain's jobs are claimable again once it runs out.
    pub fn with_job_lease(mut self, lease: StdDuration) -> Self {
        self.job_lease = lease.max(StdDuration::from_millis(30));
        self
    }

    /// Abandon a job of [`process_pending`](Self::process_pending) whose model calls run longer
    /// than `max` (counted from its claim) as a failed attempt: retried with backoff,
    /// dead-lettered once out of attempts. `None`: no bound. Default [`DEFAULT_MAX_RUNTIME`].
    pub fn with_max_job_runtime(mut self, max: Option<StdDuration>) -> Self {
        self.max_job_runtime = max;
        self
    }

    /// Keep at most `n` (at least 1) model calls in flight in bulk runs. Results do not depend
    /// on it; speed does, with an engine that batches concurrent requests.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Report bulk runs' progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Model calls in flight per bulk run.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The identity of the model the analyses run on (recorded with every stored analysis).
    fn model_id(&self) -> String {
        let main = self.engine.backend().identity();
        match &self.classifier {
            Some((e, _)) => format!("{main}; sentiment on {}", e.backend().identity()),
            None => main.to_string(),
        }
    }

    fn analyst(&self) -> Analyst<'_> {
        let analyst = Analyst::new(&self.engine).with_playbooks(self.playbooks.clone());
        match &self.classifier {
            Some((engine, sentiment)) => analyst.with_classifier(engine, sentiment.clone()),
            None => analyst,
        }
    }

    /// The analyst for a row owned by `owner` (if any): prompts redacted of the owner's names
    /// and email, of every customer name in `names`, and of cue-introduced names ("by Maria
    /// Garcia") — a ticket without a customer gets all but the first.
    fn analyst_for(&self, owner: Option<&Customer>, names: &Arc<NameDirectory>) -> Analyst<'_> {
        self.analyst().for_author(owner, names)
    }

    /// Every customer name in the database, read once and reused (a customer added or removed
    /// reloads it; so does [`NAMES_REFRESH`] passing).
    pub(crate) async fn names(&self, conn: &mut PgConnection) -> Result<Arc<NameDirectory>> {
        let signature: (i64, i32) =
            sqlx::query_as("SELECT count(*), coalesce(max(id), 0) FROM customers")
                .fetch_one(&mut *conn)
                .await?;
        {
            let cached = self.names.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cached.as_ref() {
                if c.signature == signature && c.read_at.elapsed() < NAMES_REFRESH {
                    return Ok(c.directory.clone());
                }
            }
        }
        let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT first_name, last_name FROM customers \
             WHERE first_name IS NOT NULL OR last_name IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut *conn)
        .await?;
        let directory = Arc::new(NameDirectory::new(
            rows.iter().map(|(f, l)| (f.as_deref(), l.as_deref())),
        ));
        *self.names.lock().unwrap_or_else(|p| p.into_inner()) = Some(CachedNames {
            signature,
            read_at: Instant::now(),
            directory: directory.clone(),
        });
        Ok(directory)
    }

    fn stage(&self, name: &'static str, total: usize) -> Stage<'_> {
        Stage::start(self.progress.as_ref(), name, total as u64)
    }

    async fn db_now(conn: &mut PgConnection) -> Result<DateTime<Utc>> {
        let (now,): (DateTime<Utc>,) = sqlx::query_as("SELECT now()").fetch_one(conn).await?;
        Ok(now)
    }

    /// Analyse review `review_id` and write the result in its own transaction. See
    /// [`analyze_review_in`](Self::analyze_review_in).
    /// The model runs with no connection held; the write is one short transaction.
    pub async fn analyze_review(&self, review_id: i32) -> Result<ReviewAnalysis> {
        let mut conn = self.store.pool().acquire().await?;
        let subject = self.load_review(&mut conn, review_id).await?;
        drop(conn);
        let analysis = self.review_model(&subject).await?;
        let mut tx = self.store.pool().begin().await?;
        if !Self::write_review(&mut tx, subject.review, &analysis, &self.model_id()).await? {
            tx.rollback().await?;
            return Err(changed("review", review_id));
        }
        tx.commit().await?;
        Ok(analysis)
    }

    /// The seed's review trigger, on `conn` (typically a job's transaction): sentiment, summary
    /// and themes into the review row, and exactly one `review` interaction for it (metadata
    /// `{rating, product_id, themes, review_id}`), replacing any earlier one.
    ///
    /// Prompts are redacted of the customer's own names and email. The model runs while `conn`
    /// is held (prefer [`analyze_review`](Self::analyze_review) or a queued job, which hold no
    /// transaction across the model).
    ///
    /// # Errors
    /// [`PgError::NotFound`] if there is no such review; [`PgError::Changed`] if its title,
    /// text, rating, customer or product changed (committed by someone else) while the model
    /// ran — nothing is written then; [`PgError::Analysis`] if the model failed; database
    /// errors.
    pub async fn analyze_review_in(
        &self,
        conn: &mut PgConnection,
        review_id: i32,
    ) -> Result<ReviewAnalysis> {
        let subject = self.load_review(&mut *conn, review_id).await?;
        let analysis = self.review_model(&subject).await?;
        if !Self::write_review(conn, subject.review, &analysis, &self.model_id()).await? {
            return Err(changed("review", review_id));
        }
        Ok(analysis)
    }

    async fn load_review(&self, conn: &mut PgConnection, review_id: i32) -> Result<ReviewSubject> {
        let review = rows::review(&mut *conn, review_id)
            .await?
            .ok_or(PgError::NotFound {
                what: "review",
                id: review_id.into(),
            })?;
        let owner = match review.customer_id {
            Some(id) => rows::customer(&mut *conn, id).await?,
            None => None,
        };
        let names = self.names(&mut *conn).await?;
        let taxonomy = Arc::new(crate::taxonomy::load(&mut *conn).await?);
        let sentiment = self.sentiment_model(&mut *conn).await?;
        Ok(ReviewSubject {
            review,
            owner,
            names,
            taxonomy,
            sentiment,
        })
    }

    async fn review_model(&self, s: &ReviewSubject) -> Result<ReviewAnalysis> {
        Ok(self
            .analyst_for(s.owner.as_ref(), &s.names)
            .with_taxonomy(s.taxonomy.clone())
            .with_sentiment(s.sentiment.clone())
            .review(&ReviewInput::from_review(&s.review))
            .await?)
    }

    /// Write `analysis` of `review` (as read before the model ran) on `conn`, only if the row
    /// still holds what was analysed (title, text, rating, customer, product); `Ok(false)`,
    /// nothing written, if not. Records the analysis (flag, reasons, provenance) in
    /// `steadytext_analyses`; a human's sentiment verdict stays in the row and scores the
    /// logged interaction ([`crate::human_review`]).
    async fn write_review(
        conn: &mut PgConnection,
        mut review: ProductReview,
        analysis: &ReviewAnalysis,
        model_id: &str,
    ) -> Result<bool> {
        let review_id = review.id;
        // Lock the review and compare: concurrent analyses of it replace the interaction one
        // after the other, and an edit committed since the read wins over this analysis (the
        // edit's trigger enqueued a new one). An edit that waits on this lock enqueues its
        // analysis after this write.
        let current: Option<(bool,)> = sqlx::query_as(
            "SELECT customer_id IS NOT DISTINCT FROM $2 AND product_id IS NOT DISTINCT FROM $3 \
                    AND rating IS NOT DISTINCT FROM $4 AND title IS NOT DISTINCT FROM $5 \
                    AND review_text IS NOT DISTINCT FROM $6 \
             FROM product_reviews WHERE id = $1 FOR UPDATE",
        )
        .bind(review_id)
        .bind(review.customer_id)
        .bind(review.product_id)
        .bind(review.rating.map(|r| i32::from(r.get())))
        .bind(review.title.as_deref())
        .bind(review.review_text.as_deref())
        .fetch_optional(&mut *conn)
        .await?;
        match current {
            None => {
                return Err(PgError::NotFound {
                    what: "review",
                    id: review_id.into(),
                })
            }
            Some((false,)) => {
                tracing::info!(
                    review = review_id,
                    "review changed while it was being analysed; stale analysis not written"
                );
                return Ok(false);
            }
            Some((true,)) => {}
        }
        analysis.apply_to(&mut review);
        // The stored sentiment: a human's verdict, if one was recorded, else this analysis's.
        let (stored,): (Option<String>,) = sqlx::query_as(
            "UPDATE product_reviews SET sentiment = $2, ai_summary = $3, key_themes = $4, \
             review_aspects = $5 WHERE id = $1 RETURNING sentiment",
        )
        .bind(review_id)
        .bind(analysis.sentiment.as_str())
        .bind(&analysis.summary)
        .bind(&analysis.themes)
        .bind(sqlx::types::Json(&analysis.aspects))
        .fetch_one(&mut *conn)
        .await?;
        let stored = match stored.as_deref().map(str::parse::<ReviewSentiment>) {
            Some(Ok(s)) => s,
            _ => analysis.sentiment,
        };
        human_review::record_analyses(
            conn,
            &[NewAnalysis::new(
                SubjectKind::Review,
                review_id.to_string(),
                &analysis.human_review,
                serde_json::json!({ "sentiment": analysis.sentiment }),
                &analysis.prompt_version,
                model_id,
            )
            .with_calibration(analysis.calibration.clone())],
        )
        .await?;
        sqlx::query(
            "DELETE FROM customer_interactions \
             WHERE interaction_type = 'review' AND metadata->>'review_id' = $1::text",
        )
        .bind(review_id.to_string())
        .execute(&mut *conn)
        .await?;
        let mut new = analysis.interaction(&review);
        new.sentiment_score = Some(stored.score());
        if let Some(m) = new.metadata.as_object_mut() {
            m.insert("review_id".into(), review_id.into());
        }
        rows::insert_interaction(&mut *conn, &new).await?;
        Ok(true)
    }

    /// Analyse ticket `ticket_id` and write the result in its own transaction. See
    /// [`analyze_ticket_in`](Self::analyze_ticket_in).
    /// The model runs with no connection held; the write is one short transaction.
    pub async fn analyze_ticket(&self, ticket_id: i32) -> Result<AnalyzedTicket> {
        let mut conn = self.store.pool().acquire().await?;
        let subject = self.load_ticket(&mut conn, ticket_id).await?;
        drop(conn);
        let analysed = self.ticket_model(&subject).await?;
        let mut tx = self.store.pool().begin().await?;
        if !Self::write_ticket(&mut tx, &subject.ticket, &analysed, &self.model_id()).await? {
            tx.rollback().await?;
            return Err(changed("ticket", ticket_id));
        }
        tx.commit().await?;
        Ok(analysed)
    }

    /// The seed's `analyze_support_ticket`, on `conn`: `ai_analysis` (the six keys, plus
    /// `category` and `rules`; the resolution from `steadytext.resolution_playbook` as it is
    /// now, see [`crate::resolutions`]),
    /// `priority = COALESCE(priority, urgency)`, and exactly one `support`/`ticket` interaction
    /// (metadata: the analysis plus `ticket_id`), replacing any earlier one.
    ///
    /// # Errors
    /// As [`analyze_review_in`](Self::analyze_review_in) ([`PgError::Changed`]: its category,
    /// subject, description or customer changed while the model ran).
    pub async fn analyze_ticket_in(
        &self,
        conn: &mut PgConnection,
        ticket_id: i32,
    ) -> Result<AnalyzedTicket> {
        let subject = self.load_ticket(&mut *conn, ticket_id).await?;
        let analysed = self.ticket_model(&subject).await?;
        if !Self::write_ticket(conn, &subject.ticket, &analysed, &self.model_id()).await? {
            return Err(changed("ticket", ticket_id));
        }
        Ok(analysed)
    }

    async fn load_ticket(&self, conn: &mut PgConnection, ticket_id: i32) -> Result<TicketSubject> {
        let ticket = rows::ticket(&mut *conn, ticket_id)
            .await?
            .ok_or(PgError::NotFound {
                what: "ticket",
                id: ticket_id.into(),
            })?;
        let owner = match ticket.customer_id {
            Some(id) => rows::customer(&mut *conn, id).await?,
            None => None,
        };
        let names = self.names(&mut *conn).await?;
        let playbook = Arc::new(crate::resolutions::load(&mut *conn).await?);
        let taxonomy = Arc::new(crate::taxonomy::load(&mut *conn).await?);
        Ok(TicketSubject {
            ticket,
            owner,
            names,
            playbook,
            taxonomy,
        })
    }

    async fn ticket_model(&self, s: &TicketSubject) -> Result<AnalyzedTicket> {
        let analysis = self
            .analyst_for(s.owner.as_ref(), &s.names)
            .with_playbook(s.playbook.clone())
            .with_taxonomy(s.taxonomy.clone())
            .ticket(&TicketInput::from_ticket(&s.ticket))
            .await?;
        Ok(AnalyzedTicket::new(&s.ticket, analysis))
    }

    /// Write `analysed` for `ticket` (as read before the model ran) on `conn`, only if the row
    /// still holds what was analysed (category, subject, description, customer); `Ok(false)`,
    /// nothing written, if not. Records the analysis in `steadytext_analyses`; a human's
    /// verdicts stay in `ai_analysis` and in the logged interaction ([`crate::human_review`]).
    async fn write_ticket(
        conn: &mut PgConnection,
        ticket: &SupportTicket,
        analysed: &AnalyzedTicket,
        model_id: &str,
    ) -> Result<bool> {
        let ticket_id = ticket.id;
        let current: Option<(bool,)> = sqlx::query_as(
            "SELECT customer_id IS NOT DISTINCT FROM $2 AND category IS NOT DISTINCT FROM $3 \
                    AND subject IS NOT DISTINCT FROM $4 AND description IS NOT DISTINCT FROM $5 \
             FROM support_tickets WHERE id = $1 FOR UPDATE",
        )
        .bind(ticket_id)
        .bind(ticket.customer_id)
        .bind(ticket.category.as_deref())
        .bind(ticket.subject.as_deref())
        .bind(ticket.description.as_deref())
        .fetch_optional(&mut *conn)
        .await?;
        match current {
            None => {
                return Err(PgError::NotFound {
                    what: "ticket",
                    id: ticket_id.into(),
                })
            }
            Some((false,)) => {
                tracing::info!(
                    ticket = ticket_id,
                    "ticket changed while it was being analysed; stale analysis not written"
                );
                return Ok(false);
            }
            Some((true,)) => {}
        }
        // A human's urgency, if recorded, fills an empty priority instead of the model's.
        let stored: Option<(Option<serde_json::Value>,)> = sqlx::query_as(
            "UPDATE support_tickets SET ai_analysis = $2, priority = COALESCE(priority, \
               steadytext_latest_verdict('ticket', id::text, 'urgency'), $3) \
             WHERE id = $1 RETURNING ai_analysis",
        )
        .bind(ticket_id)
        .bind(
            serde_json::to_value(&analysed.analysis).map_err(|e| PgError::BadRow {
                table: "support_tickets",
                id: ticket_id.into(),
                reason: e.to_string(),
            })?,
        )
        .bind(analysed.analysis.urgency.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let Some((stored,)) = stored else {
            return Err(PgError::NotFound {
                what: "ticket",
                id: ticket_id.into(),
            });
        };
        // The analysis as stored: with a human's urgency, sentiment or category, if recorded.
        let stored: TicketAnalysis = stored
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_else(|| analysed.analysis.clone());
        human_review::record_analyses(
            conn,
            &[NewAnalysis::new(
                SubjectKind::Ticket,
                ticket_id.to_string(),
                &analysed.human_review,
                ticket_ai_values(&analysed.analysis),
                &analysed.prompt_version,
                model_id,
            )],
        )
        .await?;
        sqlx::query(
            "DELETE FROM customer_interactions \
             WHERE interaction_type = 'support' AND metadata->>'ticket_id' = $1::text",
        )
        .bind(ticket_id.to_string())
        .execute(&mut *conn)
        .await?;
        let mut new = stored.interaction(ticket);
        if let Some(m) = new.metadata.as_object_mut() {
            m.insert("ticket_id".into(), ticket_id.into());
        }
        rows::insert_interaction(&mut *conn, &new).await?;
        Ok(true)
    }

    /// The seed's sentiment dashboard for **every** customer (the seed's `WHERE` after the
    /// `LEFT JOIN` dropped customers without recent interactions): 90-day sentiment, 30-day
    /// issues, the status of [`steadytext_schema::customer_status`], and a generated insight.
    ///
    /// The customers' numbers are aggregated in SQL ([`aggregates::dashboard_snapshots`]); the
    /// insights are generated concurrently (stage [`STAGE_DASHBOARD`]).
    pub async fn sentiment_dashboard(&self) -> Result<Vec<CustomerInsight>> {
        let mut tx = self.store.pool().begin().await?;
        let now = Self::db_now(&mut tx).await?;
        let snapshots = aggregates::dashboard_snapshots(&mut tx, now).await?;
        tx.commit().await?;
        let analyst = self.analyst();
        let stage = self.stage(STAGE_DASHBOARD, snapshots.len());
        batch::ordered(&snapshots, self.concurrency, &stage, |(c, snapshot)| {
            let analyst = &analyst;
            async move {
                Ok(analyst
                    .customer_insight(snapshot, c.churn_risk_score)
                    .await?)
            }
        })
        .await
    }

    /// Every customer's churn risk, without generating anything: the per-customer inputs are
    /// aggregated in SQL ([`aggregates::churn_inputs`]) and scored by
    /// [`steadytext_schema::churn::churn_risk`].
    pub async fn churn_scores(&self) -> Result<Vec<(Customer, ChurnRisk)>> {
        // One transaction: `now()` is the same in both statements.
        let mut tx = self.store.pool().begin().await?;
        let now = Self::db_now(&mut tx).await?;
        let inputs = aggregates::churn_inputs(&mut tx, now).await?;
        tx.commit().await?;
        Ok(inputs
            .into_iter()
            .map(|(c, inputs)| (c, churn_risk(&inputs)))
            .collect())
    }

    /// The seed's `calculate_churn_risk()`, working: scores every customer, stores every score
    /// in `customers.churn_risk_score` (2 decimals, one transaction), and returns the customers
    /// above 0.3 with their factors and a generated retention strategy (generated
    /// concurrently, stage [`STAGE_CHURN`]).
    pub async fn calculate_churn_risk(&self) -> Result<Vec<ChurnReport>> {
        let run = self.compute_churn().await?;
        let mut tx = self.store.pool().begin().await?;
        Self::write_churn(&mut tx, &run).await?;
        tx.commit().await?;
        Ok(run.reports)
    }

    /// The model part of [`calculate_churn_risk`](Self::calculate_churn_risk): every score and
    /// the reportable customers' strategies, nothing written.
    pub(crate) async fn compute_churn(&self) -> Result<ChurnRun> {
        let scored = self.churn_scores().await?;
        let reportable: Vec<&(Customer, ChurnRisk)> = scored
            .iter()
            .filter(|(_, risk)| risk.is_reportable())
            .collect();
        let analyst = self.analyst();
        let stage = self.stage(STAGE_CHURN, reportable.len());
        let reports: Vec<ChurnReport> =
            batch::ordered(&reportable, self.concurrency, &stage, |(c, risk)| {
                let analyst = &analyst;
                async move { Ok(analyst.retention_strategy(c.id, risk).await?) }
            })
            .await?
            .into_iter()
            .flatten()
            .collect();
        Ok(ChurnRun {
            scored,
            reports,
            model_id: self.model_id(),
        })
    }

    /// Write a churn run: every score into `customers.churn_risk_score` (a human-set one stays),
    /// the reports into `steadytext.churn_reports` (replacing the previous run's), and the
    /// analyses' provenance.
    pub(crate) async fn write_churn(conn: &mut PgConnection, run: &ChurnRun) -> Result<()> {
        let ChurnRun {
            scored,
            reports,
            model_id,
        } = run;
        let ids: Vec<i32> = scored.iter().map(|(c, _)| c.id).collect();
        let scores: Vec<f64> = scored.iter().map(|(_, r)| r.rounded_score()).collect();
        let by_customer: std::collections::HashMap<i32, &ChurnReport> =
            reports.iter().map(|r| (r.customer_id, r)).collect();
        let analyses: Vec<NewAnalysis> = scored
            .iter()
            .map(|(c, risk)| {
                let report = by_customer.get(&c.id).copied();
                let flag = report.map_or_else(
                    || {
                        assess(&ReviewSignals {
                            churn_risk: Some(risk.score),
                            ..Default::default()
                        })
                    },
                    |r| r.human_review.clone(),
                );
                NewAnalysis::new(
                    SubjectKind::Churn,
                    c.id.to_string(),
                    &flag,
                    serde_json::json!({ "churn_risk_score": risk.rounded_score() }),
                    report.map_or(PROMPT_VERSION, |r| r.prompt_version.as_str()),
                    model_id,
                )
            })
            .collect();
        // A customer's human-set score stays (steadytext_keep_churn_verdicts).
        sqlx::query(
            "UPDATE customers c SET churn_risk_score = s.score::numeric(3, 2), updated_at = now() \
             FROM unnest($1::int[], $2::float8[]) AS s(id, score) WHERE c.id = s.id",
        )
        .bind(&ids)
        .bind(&scores)
        .execute(&mut *conn)
        .await?;
        human_review::record_analyses(&mut *conn, &analyses).await?;
        sql_surface::store_churn_reports(conn, reports).await
    }

    /// The seed's `analyze_customer_segments()`: one `customer_segments_analysis` row per
    /// segment with a generated profile and `{"strategies": [exactly 3]}`; rows of segments no
    /// customer has any more are removed (the seed truncated the table). Written in one
    /// transaction after all generations. The segments' numbers are aggregated in SQL
    /// ([`aggregates::segment_stats`]); the profiles are generated concurrently (stage
    /// [`STAGE_SEGMENTS`]).
    pub async fn analyze_customer_segments(&self) -> Result<Vec<SegmentProfile>> {
        let profiles = self.compute_segments().await?;
        let mut tx = self.store.pool().begin().await?;
        Self::write_segments(&mut tx, &profiles, &self.model_id()).await?;
        tx.commit().await?;
        Ok(profiles)
    }

    /// The model part of [`analyze_customer_segments`](Self::analyze_customer_segments).
    pub(crate) async fn compute_segments(&self) -> Result<Vec<SegmentProfile>> {
        let mut conn = self.store.pool().acquire().await?;
        let stats = aggregates::segment_stats(&mut conn).await?;
        drop(conn);
        let analyst = self.analyst();
        let stage = self.stage(STAGE_SEGMENTS, stats.len());
        batch::ordered(&stats, self.concurrency, &stage, |s| {
            let analyst = &analyst;
            async move { Ok(analyst.segment_profile(s).await?) }
        })
        .await
    }

    /// Write segment profiles into `customer_segments_analysis` (rows of segments no customer
    /// has any more are removed) and record their provenance.
    pub(crate) async fn write_segments(
        conn: &mut PgConnection,
        profiles: &[SegmentProfile],
        model_id: &str,
    ) -> Result<()> {
        let names: Vec<&str> = profiles.iter().map(|p| p.segment_name.as_str()).collect();
        sqlx::query(
            "DELETE FROM customer_segments_analysis \
             WHERE segment_name IS NULL OR NOT (segment_name = ANY($1::text[]))",
        )
        .bind(&names)
        .execute(&mut *conn)
        .await?;
        for p in profiles {
            let recommendations =
                serde_json::to_value(&p.strategies).map_err(|e| PgError::BadRow {
                    table: "customer_segments_analysis",
                    id: 0,
                    reason: e.to_string(),
                })?;
            sqlx::query(
                "INSERT INTO customer_segments_analysis AS s (segment_name, customer_count, \
                   avg_lifetime_value, common_behaviors, ai_profile, recommendations, last_updated) \
                 VALUES ($1, $2, $3::float8::numeric(10, 2), $4, $5, $6, now()) \
                 ON CONFLICT (segment_name) DO UPDATE SET \
                   customer_count = EXCLUDED.customer_count, \
                   avg_lifetime_value = EXCLUDED.avg_lifetime_value, \
                   common_behaviors = EXCLUDED.common_behaviors, \
                   ai_profile = EXCLUDED.ai_profile, \
                   recommendations = EXCLUDED.recommendations, \
                   last_updated = now()",
            )
            .bind(&p.segment_name)
            .bind(i32::try_from(p.customer_count).unwrap_or(i32::MAX))
            .bind(p.avg_lifetime_value)
            .bind(&p.common_behaviors)
            .bind(&p.ai_profile)
            .bind(recommendations)
            .execute(&mut *conn)
            .await?;
        }
        // Segment profiles raise no review rule (their text is checked or facts) and have no
        // field a verdict sets; recorded for their provenance.
        let analyses: Vec<NewAnalysis> = profiles
            .iter()
            .map(|p| {
                NewAnalysis::new(
                    SubjectKind::Segment,
                    p.segment_name.clone(),
                    &HumanReview::none(),
                    serde_json::json!({}),
                    &p.prompt_version,
                    model_id,
                )
            })
            .collect();
        human_review::record_analyses(conn, &analyses).await
    }

    /// The seed's `generate_customer_recommendations(id, n)`: product recommendations from
    /// the products rated highly in the customer's segment (then by anyone) that the customer
    /// has not reviewed ([`aggregates::product_ratings`]), retention and upsell plays chosen
    /// from the customer's facts, ranked by the seed's priorities, at most `n`
    /// ([`Analyst::recommendations`]).
    pub async fn customer_recommendations(
        &self,
        customer_id: i32,
        n: usize,
    ) -> Result<CustomerRecommendations> {
        let mut conn = self.store.pool().acquire().await?;
        let customer = rows::customer(&mut *conn, customer_id)
            .await?
            .ok_or(PgError::NotFound {
                what: "customer",
                id: customer_id.into(),
            })?;
        let reviews = rows::reviews(&mut *conn, Some(customer_id)).await?;
        let segment_products = match customer.segment.as_deref() {
            Some(s) => aggregates::product_ratings(&mut conn, Some(s)).await?,
            None => Vec::new(),
        };
        let all_products = aggregates::product_ratings(&mut conn, None).await?;
        let (open,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM support_tickets WHERE customer_id = $1 AND resolved_at IS NULL",
        )
        .bind(customer_id)
        .fetch_one(&mut *conn)
        .await?;
        drop(conn);
        let mut inputs =
            RecommendationInputs::new(&customer, &reviews, &[], segment_products, all_products);
        inputs.open_tickets = open.max(0) as u64;
        Ok(self
            .analyst()
            .recommendations(customer_id, &inputs, n)
            .await?)
    }

    /// The seed's executive summary: counts and averages (each over its own table, no join
    /// fan-out, aggregated in SQL: [`aggregates::executive_stats`]) and a generated summary.
    pub async fn executive_summary(&self) -> Result<ExecutiveSummary> {
        let mut conn = self.store.pool().acquire().await?;
        let stats = aggregates::executive_stats(&mut conn).await?;
        drop(conn);
        Ok(self.analyst().executive_summary(&stats).await?)
    }

    /// Average interaction sentiment per customer segment per day or week (a plain SQL
    /// aggregate; interactions without a score are left out), oldest bucket first.
    pub async fn sentiment_trends(&self, bucket: TrendBucket) -> Result<Vec<SentimentTrend>> {
        Ok(sqlx::query_as(
            "SELECT c.segment::text AS segment, \
                    date_trunc($1, ci.timestamp) AS bucket_start, \
                    AVG(ci.sentiment_score)::float8 AS avg_sentiment, \
                    COUNT(*) AS interactions \
             FROM customer_interactions ci \
             LEFT JOIN customers c ON c.id = ci.customer_id \
             WHERE ci.sentiment_score IS NOT NULL AND ci.timestamp IS NOT NULL \
             GROUP BY 1, 2 ORDER BY 2, 1 NULLS LAST",
        )
        .bind(bucket.sql())
        .fetch_all(self.store.pool())
        .await?)
    }

    /// Insert the seed's sample rows — 3 customers, 3 reviews, 2 tickets — unless present:
    /// customers by email, tickets by ticket number, reviews by (customer, product). Safe to run
    /// any number of times; new reviews and tickets enqueue their analysis jobs.
    pub async fn load_seed_sample(&self) -> Result<SeedLoad> {
        let sample = seed_sample(Utc::now());
        let mut tx = self.store.pool().begin().await?;
        let mut load = SeedLoad::default();
        let mut ids = std::collections::HashMap::new();
        for c in &sample.customers {
            let inserted = sqlx::query(
                "INSERT INTO customers (email, first_name, last_name, segment, lifetime_value, \
                   acquisition_date) VALUES ($1, $2, $3, $4, $5::float8::numeric(10, 2), $6) \
                 ON CONFLICT (email) DO NOTHING",
            )
            .bind(&c.email)
            .bind(&c.first_name)
            .bind(&c.last_name)
            .bind(&c.segment)
            .bind(c.lifetime_value)
            .bind(c.acquisition_date)
            .execute(&mut *tx)
            .await?;
            load.customers += inserted.rows_affected();
            let (id,): (i32,) = sqlx::query_as("SELECT id FROM customers WHERE email = $1")
                .bind(&c.email)
                .fetch_one(&mut *tx)
                .await?;
            ids.insert(c.id, id);
        }
        for r in &sample.reviews {
            let customer = r.customer_id.and_then(|id| ids.get(&id).copied());
            let inserted = sqlx::query(
                "INSERT INTO product_reviews (customer_id, product_id, rating, title, review_text) \
                 SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS ( \
                   SELECT 1 FROM product_reviews \
                   WHERE customer_id IS NOT DISTINCT FROM $1 AND product_id IS NOT DISTINCT FROM $2)",
            )
            .bind(customer)
            .bind(r.product_id)
            .bind(r.rating.map(|x| i32::from(x.get())))
            .bind(&r.title)
            .bind(&r.review_text)
            .execute(&mut *tx)
            .await?;
            load.reviews += inserted.rows_affected();
        }
        for t in &sample.tickets {
            let customer = t.customer_id.and_then(|id| ids.get(&id).copied());
            let inserted = sqlx::query(
                "INSERT INTO support_tickets (ticket_number, customer_id, category, subject, \
                   description) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ticket_number) DO NOTHING",
            )
            .bind(&t.ticket_number)
            .bind(customer)
            .bind(&t.category)
            .bind(&t.subject)
            .bind(&t.description)
            .execute(&mut *tx)
            .await?;
            load.tickets += inserted.rows_affected();
        }
        tx.commit().await?;
        Ok(load)
    }

    /// Run the queued jobs of every kind [`AnalysisJobHandler::KINDS`] names (the review and
    /// ticket analyses, the SQL surface's jobs) on this task until none is runnable: claim up to [`concurrency`](Self::concurrency) jobs, run their model calls
    /// concurrently with no connection held, then write each job's result and complete it in
    /// its own short transaction, in claim order. Jobs that fail are retried later or
    /// dead-lettered as usual. Progress: stage [`STAGE_PENDING`]. For demos, tests and one-off
    /// backfills; production runs a [`Worker`](crate::Worker) with [`AnalysisJobHandler`].
    ///
    /// While the model runs, the claims' leases ([`with_job_lease`](Self::with_job_lease)) are
    /// extended every third of the lease, so a slow batch is not taken over. A job whose lease
    /// was lost anyway (the drain stalled, another worker claimed it) is not written and is
    /// left to its new owner; the rest carry on. A job whose model calls outlast
    /// [`with_max_job_runtime`](Self::with_max_job_runtime) fails as a retryable attempt.
    pub async fn process_pending(self: &Arc<Self>) -> Result<Processed> {
        let queue = Queue::new(self.store.pool().clone());
        let kinds = AnalysisJobHandler::KINDS;
        let worker_id = format!("inline:{}", std::process::id());
        let stage = self.stage(STAGE_PENDING, queue.ready_count(&kinds).await? as usize);
        let mut done = Processed::default();
        loop {
            let mut jobs = Vec::with_capacity(self.concurrency);
            while jobs.len() < self.concurrency {
                match queue.claim(&worker_id, self.job_lease, &kinds).await {
                    Ok(Some(job)) => jobs.push(job),
                    Ok(None) => break,
                    Err(e) => return Err(release_all(&queue, &jobs, e).await),
                }
            }
            if jobs.is_empty() {
                return Ok(done);
            }
            let deadline = self
                .max_job_runtime
                .map(|max| (tokio::time::Instant::now() + max, max));
            stage.grow_to(
                done.completed + done.failed + done.stale + done.lease_lost + jobs.len() as u64,
            );
            let jobs = Arc::new(jobs);
            let leases = Arc::new(LeaseStates::new(jobs.len()));
            let heartbeat = tokio::spawn(heartbeat(
                queue.clone(),
                jobs.clone(),
                leases.clone(),
                self.job_lease,
            ));
            let result = self
                .run_batch(&queue, &jobs, &leases, deadline, &stage, &mut done)
                .await;
            heartbeat.abort();
            let _ = heartbeat.await;
            if let Err((first_unfinished, e)) = result {
                return Err(release_all(&queue, &jobs[first_unfinished..], e).await);
            }
        }
    }

    /// Compute a claimed batch, then write and complete each job in claim order. On a database
    /// error, the index of the first job not finished and the error.
    async fn run_batch<'j>(
        &self,
        queue: &Queue,
        jobs: &'j [Job],
        leases: &LeaseStates,
        deadline: Option<(tokio::time::Instant, StdDuration)>,
        stage: &Stage<'_>,
        done: &mut Processed,
    ) -> Result<(), (usize, PgError)> {
        // `job`'s lifetime is spelled out: an inferred, higher-ranked closure makes the drain's
        // future unprovably `Send` ("FnOnce is not general enough") for `tokio::spawn`.
        let analyses = batch::ordered(jobs, self.concurrency, stage, |job: &'j Job| async move {
            Ok(match deadline {
                Some((at, max)) => tokio::time::timeout_at(at, self.analyse_job(job))
                    .await
                    .unwrap_or_else(|_| Err(JobError::retryable(runtime_exceeded(max)))),
                None => self.analyse_job(job).await,
            })
        })
        .await
        .map_err(|e| (0, e))?;
        for (i, analysis) in analyses.into_iter().enumerate() {
            let outcome = if leases.is_lost(i) {
                tracing::warn!(
                    job = jobs[i].id,
                    "lease lost while computing; nothing written"
                );
                Finished::LeaseLost
            } else {
                leases.finish(i);
                Self::finish_job(queue, &jobs[i], analysis)
                    .await
                    .map_err(|e| (i, e))?
            };
            match outcome {
                Finished::Completed => done.completed += 1,
                Finished::Stale => done.stale += 1,
                Finished::Failed => done.failed += 1,
                Finished::LeaseLost => done.lease_lost += 1,
            }
        }
        Ok(())
    }

    /// Write a job's analysis and complete it in one transaction that first locks the claim,
    /// or record its failure (retry later or dead letter).
    async fn finish_job(
        queue: &Queue,
        job: &Job,
        analysis: Result<JobAnalysis, JobError>,
    ) -> Result<Finished> {
        let failure = match analysis {
            Ok(a) => {
                let mut tx = queue.begin().await?;
                if !Queue::lock_claim(&mut tx, job).await? {
                    tx.rollback().await?;
                    tracing::warn!(job = job.id, "lease lost; nothing written");
                    return Ok(Finished::LeaseLost);
                }
                match Self::write_job(&mut tx, &a).await {
                    Ok(written) => {
                        return match queue.complete(job, tx).await {
                            Ok(()) if written => Ok(Finished::Completed),
                            Ok(()) => Ok(Finished::Stale),
                            Err(PgError::LeaseLost { .. }) => Ok(Finished::LeaseLost),
                            Err(e) => Err(e),
                        };
                    }
                    Err(e) => {
                        let _ = tx.rollback().await;
                        job_error(e)
                    }
                }
            }
            Err(e) => e,
        };
        let recorded = match failure {
            JobError::Retryable(msg) => queue.fail(job, &msg).await? != FailOutcome::LeaseLost,
            JobError::Permanent(msg) => queue.dead_letter(job, &msg).await?,
        };
        Ok(if recorded {
            Finished::Failed
        } else {
            Finished::LeaseLost
        })
    }

    /// Read a job's row and run its model calls (nothing written, no connection held while
    /// the model runs).
    async fn analyse_job(&self, job: &Job) -> Result<JobAnalysis, JobError> {
        match job.kind.as_str() {
            ANALYZE_REVIEW => self.analyse_review_job(job).await,
            ANALYZE_TICKET => self.analyse_ticket_job(job).await,
            other => match self.analyse_sql_job(job).await {
                Some(result) => result,
                None => Err(JobError::permanent(format!("unknown job kind {other:?}"))),
            },
        }
    }

    async fn analyse_review_job(&self, job: &Job) -> Result<JobAnalysis, JobError> {
        let p: IdPayload = job.payload_as()?;
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(JobError::retryable)?;
        let s = self.load_review(&mut conn, p.id).await.map_err(job_error)?;
        drop(conn);
        let a = self.review_model(&s).await.map_err(job_error)?;
        Ok(JobAnalysis::Review(s.review, a, self.model_id()))
    }

    async fn analyse_ticket_job(&self, job: &Job) -> Result<JobAnalysis, JobError> {
        let p: IdPayload = job.payload_as()?;
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(JobError::retryable)?;
        let s = self.load_ticket(&mut conn, p.id).await.map_err(job_error)?;
        drop(conn);
        let a = self.ticket_model(&s).await.map_err(job_error)?;
        Ok(JobAnalysis::Ticket(s.ticket, a, self.model_id()))
    }

    /// Write a computed analysis; `Ok(false)` if its row changed since it was read (nothing
    /// written).
    async fn write_job(conn: &mut PgConnection, analysis: &JobAnalysis) -> Result<bool> {
        match analysis {
            JobAnalysis::Review(review, a, model) => {
                Self::write_review(conn, review.clone(), a, model).await
            }
            JobAnalysis::Ticket(ticket, a, model) => {
                Self::write_ticket(conn, ticket, a, model).await
            }
            JobAnalysis::Churn(run) => Self::write_churn(conn, run).await.map(|()| true),
            JobAnalysis::Segments(profiles, model) => Self::write_segments(conn, profiles, model)
                .await
                .map(|()| true),
            JobAnalysis::Recommendations(recs) => sql_surface::write_recommendations(conn, recs)
                .await
                .map(|()| true),
            JobAnalysis::Insights(run) => {
                sql_surface::write_insights(conn, run).await.map(|()| true)
            }
            JobAnalysis::Async(outcome) => {
                sql_surface::write_async(conn, outcome).await.map(|()| true)
            }
        }
    }
}

/// How [`Intelligence::finish_job`] ended.
enum Finished {
    Completed,
    Stale,
    Failed,
    LeaseLost,
}

/// Per job of a [`Intelligence::process_pending`] batch: still computing, finished (no more
/// heart-beats), or lost (a heart-beat found the claim gone).
struct LeaseStates(Vec<AtomicU8>);

const LEASE_HELD: u8 = 0;
const LEASE_FINISHED: u8 = 1;
const LEASE_LOST: u8 = 2;

impl LeaseStates {
    fn new(n: usize) -> Self {
        Self((0..n).map(|_| AtomicU8::new(LEASE_HELD)).collect())
    }

    fn is_lost(&self, i: usize) -> bool {
        self.0[i].load(Ordering::SeqCst) == LEASE_LOST
    }

    fn finish(&self, i: usize) {
        let _ = self.0[i].compare_exchange(
            LEASE_HELD,
            LEASE_FINISHED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

/// Extend the leases of a batch's unfinished jobs every third of `lease`, until aborted.
async fn heartbeat(
    queue: Queue,
    jobs: Arc<Vec<Job>>,
    leases: Arc<LeaseStates>,
    lease: StdDuration,
) {
    let beat = (lease / 3).max(StdDuration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for (i, job) in jobs.iter().enumerate() {
            if leases.0[i].load(Ordering::SeqCst) != LEASE_HELD {
                continue;
            }
            match queue.extend_lease(job, lease).await {
                Ok(true) => {}
                Ok(false) => {
                    if leases.0[i]
                        .compare_exchange(
                            LEASE_HELD,
                            LEASE_LOST,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        )
                        .is_ok()
                    {
                        tracing::warn!(job = job.id, "lease lost; the result will not be written");
                    }
                }
                Err(e) => tracing::warn!(job = job.id, "lease heart-beat failed: {e}"),
            }
        }
    }
}

/// A ticket analysis's values of the fields a verdict can set.
fn ticket_ai_values(a: &TicketAnalysis) -> serde_json::Value {
    serde_json::json!({
        "urgency": a.urgency,
        "sentiment": a.sentiment,
        "category": a.category,
    })
}

fn changed(what: &'static str, id: i32) -> PgError {
    PgError::Changed {
        what,
        id: id.into(),
    }
}

/// Give claimed, unfinished `jobs` back to the queue after `e` stopped a run (best effort: a
/// job not released is claimable again when its lease runs out); returns `e`.
async fn release_all(queue: &Queue, jobs: &[Job], e: PgError) -> PgError {
    for job in jobs {
        if let Err(release) = queue.release(job).await {
            tracing::warn!(
                job = job.id,
                "release failed (the lease will expire): {release}"
            );
        }
    }
    e
}

/// How a failed analysis maps to a job outcome: a missing row, a domain violation or a model
/// error that the same request would hit again ([`steadytext_core::Error::is_permanent`]:
/// unsupported operation, context overflow, truncated or violated constraint, invalid schema or
/// regex, ...) cannot be fixed by retrying (the model is deterministic) and dead-letters at
/// once; other model errors and database errors may pass and are retried.
/// The message is [`PgError::summary`]: no prompt or model output reaches `last_error` or the
/// dead-letter table.
pub fn job_error(e: PgError) -> JobError {
    let message = e.summary();
    match e {
        PgError::NotFound { .. } | PgError::BadRow { .. } | PgError::Changed { .. } => {
            JobError::Permanent(message)
        }
        PgError::Analysis(AnalysisError::Domain(_)) => JobError::Permanent(message),
        PgError::Analysis(AnalysisError::Model(ref m)) if m.is_permanent() => {
            JobError::Permanent(message)
        }
        _ => JobError::Retryable(message),
    }
}

#[derive(Deserialize)]
struct IdPayload {
    id: i32,
}

/// Write a computed analysis in the job's transaction (the worker has locked the claim); a row
/// edited since it was read is left alone and the job finishes (the edit enqueued a new job).
async fn write_computed(
    job: &Job,
    computed: Computed,
    tx: &mut Transaction<'_, Postgres>,
) -> Result<(), JobError> {
    let analysis = computed.downcast::<JobAnalysis>().map_err(|_| {
        JobError::permanent(format!(
            "job {} ({}): computed value is not an analysis",
            job.id, job.kind
        ))
    })?;
    Intelligence::write_job(tx, &analysis)
        .await
        .map(drop)
        .map_err(job_error)
}

/// Runs `analyze_review` jobs (payload `{"id": <review id>}`): the model with no transaction
/// held, then the write in the job's transaction.
#[derive(Debug, Clone)]
pub struct ReviewJobHandler {
    intel: Arc<Intelligence>,
}

impl ReviewJobHandler {
    /// A handler over `intel`.
    pub fn new(intel: Arc<Intelligence>) -> Self {
        Self { intel }
    }
}

#[async_trait]
impl JobHandler for ReviewJobHandler {
    async fn compute(&self, job: &Job) -> Result<Computed, JobError> {
        Ok(Box::new(self.intel.analyse_review_job(job).await?))
    }

    async fn write(
        &self,
        job: &Job,
        computed: Computed,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(), JobError> {
        write_computed(job, computed, tx).await
    }

    async fn handle(&self, job: &Job, tx: &mut Transaction<'_, Postgres>) -> Result<(), JobError> {
        let computed = self.compute(job).await?;
        self.write(job, computed, tx).await
    }
}

/// Runs `analyze_ticket` jobs (payload `{"id": <ticket id>}`): the model with no transaction
/// held, then the write in the job's transaction.
#[derive(Debug, Clone)]
pub struct TicketJobHandler {
    intel: Arc<Intelligence>,
}

impl TicketJobHandler {
    /// A handler over `intel`.
    pub fn new(intel: Arc<Intelligence>) -> Self {
        Self { intel }
    }
}

#[async_trait]
impl JobHandler for TicketJobHandler {
    async fn compute(&self, job: &Job) -> Result<Computed, JobError> {
        Ok(Box::new(self.intel.analyse_ticket_job(job).await?))
    }

    async fn write(
        &self,
        job: &Job,
        computed: Computed,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(), JobError> {
        write_computed(job, computed, tx).await
    }

    async fn handle(&self, job: &Job, tx: &mut Transaction<'_, Postgres>) -> Result<(), JobError> {
        let computed = self.compute(job).await?;
        self.write(job, computed, tx).await
    }
}

/// Every job kind of this crate behind one handler — the review and ticket analyses and the
/// SQL surface's jobs ([`SQL_SURFACE_KINDS`]) — dispatching on the job's kind (a
/// [`Worker`](crate::Worker) takes one handler). Other kinds are dead-lettered: give the worker
/// [`AnalysisJobHandler::KINDS`] as its `kinds`.
#[derive(Debug, Clone)]
pub struct AnalysisJobHandler {
    intel: Arc<Intelligence>,
}

impl AnalysisJobHandler {
    /// The kinds this handler runs: the review and ticket analyses and the SQL surface's jobs
    /// ([`SQL_SURFACE_KINDS`]).
    pub const KINDS: [&'static str; 2 + SQL_SURFACE_KINDS.len()] = {
        let mut kinds = [ANALYZE_REVIEW; 2 + SQL_SURFACE_KINDS.len()];
        kinds[1] = ANALYZE_TICKET;
        let mut i = 0;
        while i < SQL_SURFACE_KINDS.len() {
            kinds[2 + i] = SQL_SURFACE_KINDS[i];
            i += 1;
        }
        kinds
    };

    /// A handler over `intel`.
    pub fn new(intel: Arc<Intelligence>) -> Self {
        Self { intel }
    }
}

#[async_trait]
impl JobHandler for AnalysisJobHandler {
    async fn compute(&self, job: &Job) -> Result<Computed, JobError> {
        Ok(Box::new(self.intel.analyse_job(job).await?))
    }

    async fn write(
        &self,
        job: &Job,
        computed: Computed,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(), JobError> {
        write_computed(job, computed, tx).await
    }

    async fn handle(&self, job: &Job, tx: &mut Transaction<'_, Postgres>) -> Result<(), JobError> {
        let computed = self.compute(job).await?;
        self.write(job, computed, tx).await
    }
}
