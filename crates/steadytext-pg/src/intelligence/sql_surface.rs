//! The jobs behind the SQL surface (migration `0009_sql_surface.sql`): what a worker computes
//! when a psql user calls one of the seed's functions, reads one of its views, or queues an
//! async request.
//!
//! | SQL | job kind | computed by | stored in |
//! |---|---|---|---|
//! | `calculate_churn_risk()` | [`CALCULATE_CHURN_RISK`] | [`Intelligence::calculate_churn_risk`] | `customers.churn_risk_score`, `steadytext.churn_reports` |
//! | `analyze_customer_segments()` | [`ANALYZE_CUSTOMER_SEGMENTS`] | [`Intelligence::analyze_customer_segments`] | `customer_segments_analysis` |
//! | `analyze_support_ticket(id)` | `analyze_ticket` ([`ANALYZE_TICKET`](super::ANALYZE_TICKET)) | [`Intelligence::analyze_ticket`] | `support_tickets.ai_analysis`, ... |
//! | `generate_customer_recommendations(id, n)` | [`CUSTOMER_RECOMMENDATIONS`] | [`Intelligence::customer_recommendations`] | `steadytext.customer_recommendations` |
//! | views `customer_sentiment_dashboard`, `executive_customer_summary` | [`REFRESH_INSIGHTS`] (enqueued by every data change) | [`Intelligence::refresh_insights`] | `steadytext.customer_insights`, `steadytext.executive_summary` |
//! | `steadytext.steadytext_generate_async(...)` and its json, regex and choice forms | [`GENERATE`], [`GENERATE_JSON`], [`GENERATE_REGEX`], [`GENERATE_CHOICE`] | [`Engine`](steadytext_core::Engine), cached as any call | `steadytext.async_requests` |
//!
//! Every job computes with no transaction held and writes in the job's own transaction, like
//! the review and ticket analyses, so its effects and its completion commit together.

use serde::Deserialize;
use sqlx::PgConnection;
use steadytext_core::GenerateOptions;
use steadytext_schema::{Customer, CustomerInsight, CustomerRecommendations, ExecutiveSummary};

use super::{job_error, ChurnReport, Intelligence, JobAnalysis};
use crate::error::{PgError, Result};
use crate::queue::{Job, JobError};

/// Job kind of `calculate_churn_risk()`.
pub const CALCULATE_CHURN_RISK: &str = "calculate_churn_risk";
/// Job kind of `analyze_customer_segments()`.
pub const ANALYZE_CUSTOMER_SEGMENTS: &str = "analyze_customer_segments";
/// Job kind of `generate_customer_recommendations(id, n)` (payload `{"customer_id": id}`).
pub const CUSTOMER_RECOMMENDATIONS: &str = "customer_recommendations";
/// Job kind of the views' insights, enqueued by every change to customers, interactions,
/// reviews or tickets.
pub const REFRESH_INSIGHTS: &str = "refresh_insights";
/// Job kind of `steadytext_generate_async` (payload `{"request_id": uuid}`).
pub const GENERATE: &str = "generate";
/// Job kind of `steadytext_generate_json_async`.
pub const GENERATE_JSON: &str = "generate_json";
/// Job kind of `steadytext_generate_regex_async`.
pub const GENERATE_REGEX: &str = "generate_regex";
/// Job kind of `steadytext_generate_choice_async`.
pub const GENERATE_CHOICE: &str = "generate_choice";

/// The kinds of the SQL surface's jobs.
pub const SQL_SURFACE_KINDS: [&str; 8] = [
    CALCULATE_CHURN_RISK,
    ANALYZE_CUSTOMER_SEGMENTS,
    CUSTOMER_RECOMMENDATIONS,
    REFRESH_INSIGHTS,
    GENERATE,
    GENERATE_JSON,
    GENERATE_REGEX,
    GENERATE_CHOICE,
];

/// A churn run before it is written: every customer's score and the reportable ones' reports.
#[derive(Debug)]
pub(crate) struct ChurnRun {
    pub(crate) scored: Vec<(Customer, steadytext_schema::ChurnRisk)>,
    pub(crate) reports: Vec<ChurnReport>,
    pub(crate) model_id: String,
}

/// The views' insights of one refresh: every customer's dashboard row and the executive
/// summary ([`Intelligence::refresh_insights`]).
#[derive(Debug, Clone)]
pub struct InsightsRun {
    /// Every customer's dashboard row with its insight, by customer id.
    pub dashboard: Vec<CustomerInsight>,
    /// The company-wide summary.
    pub executive: ExecutiveSummary,
}

#[derive(Deserialize)]
struct CustomerPayload {
    customer_id: i32,
}

#[derive(Deserialize)]
struct RequestPayload {
    request_id: String,
}

/// An async request's parameters, as `steadytext.enqueue_async` stored them.
#[derive(Deserialize)]
struct RequestParams {
    prompt: String,
    max_tokens: Option<usize>,
    #[serde(default = "default_true")]
    use_cache: bool,
    seed: Option<u64>,
    schema: Option<serde_json::Value>,
    pattern: Option<String>,
    choices: Option<Vec<String>>,
}

fn default_true() -> bool {
    true
}

/// What an async request came to.
#[derive(Debug)]
pub(crate) enum AsyncOutcome {
    /// Cancelled (or gone) before it ran: nothing to write.
    Skipped,
    /// The result text and whether it came from the cache (unknown for some operations).
    Completed {
        request_id: uuid::Uuid,
        result: String,
        cached: Option<bool>,
    },
    /// A request the model cannot serve however often it is retried (empty prompt, context
    /// overflow, invalid schema or regex, truncated constrained output, ...).
    Failed {
        request_id: uuid::Uuid,
        error: String,
    },
}

impl Intelligence {
    /// Recompute the insights the views `customer_sentiment_dashboard` and
    /// `executive_customer_summary` show, and store them with the facts they were stated from
    /// (what the [`REFRESH_INSIGHTS`] job runs). Customers whose facts did not change cost a
    /// cache lookup each.
    pub async fn refresh_insights(&self) -> Result<InsightsRun> {
        let run = self.compute_insights().await?;
        let mut tx = self.store.pool().begin().await?;
        write_insights(&mut tx, &run).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// The model part of [`refresh_insights`](Self::refresh_insights).
    pub(crate) async fn compute_insights(&self) -> Result<InsightsRun> {
        let dashboard = self.sentiment_dashboard().await?;
        let executive = self.executive_summary().await?;
        Ok(InsightsRun {
            dashboard,
            executive,
        })
    }

    /// Compute a customer's recommendations (every one, ranked) and store them as
    /// `generate_customer_recommendations` returns them.
    pub async fn store_recommendations(&self, customer_id: i32) -> Result<CustomerRecommendations> {
        let recs = self
            .customer_recommendations(customer_id, usize::MAX)
            .await?;
        let mut tx = self.store.pool().begin().await?;
        write_recommendations(&mut tx, &recs).await?;
        tx.commit().await?;
        Ok(recs)
    }

    /// Read and compute one of the SQL surface's jobs; `None` for a kind it does not hold.
    pub(crate) async fn analyse_sql_job(
        &self,
        job: &Job,
    ) -> Option<std::result::Result<JobAnalysis, JobError>> {
        Some(match job.kind.as_str() {
            CALCULATE_CHURN_RISK => off_thread(self.clone(), |me| async move {
                me.compute_churn().await.map(JobAnalysis::Churn)
            })
            .await
            .map_err(job_error),
            ANALYZE_CUSTOMER_SEGMENTS => off_thread(self.clone(), |me| async move {
                let profiles = me.compute_segments().await?;
                Ok(JobAnalysis::Segments(profiles, me.model_id()))
            })
            .await
            .map_err(job_error),
            CUSTOMER_RECOMMENDATIONS => match job.payload_as::<CustomerPayload>() {
                Ok(p) => self
                    .customer_recommendations(p.customer_id, usize::MAX)
                    .await
                    .map(JobAnalysis::Recommendations)
                    .map_err(job_error),
                Err(e) => Err(e),
            },
            REFRESH_INSIGHTS => off_thread(self.clone(), |me| async move {
                me.compute_insights().await.map(JobAnalysis::Insights)
            })
            .await
            .map_err(job_error),
            GENERATE | GENERATE_JSON | GENERATE_REGEX | GENERATE_CHOICE => {
                self.compute_async(job).await.map(JobAnalysis::Async)
            }
            _ => return None,
        })
    }

    /// Run an async request's model call. A request cancelled before it ran is skipped; a
    /// permanent model error is its result (`failed`); other errors retry the job.
    async fn compute_async(&self, job: &Job) -> std::result::Result<AsyncOutcome, JobError> {
        let p: RequestPayload = job.payload_as()?;
        let request_id = uuid::Uuid::parse_str(&p.request_id)
            .map_err(|e| JobError::permanent(format!("job {}: bad request id: {e}", job.id)))?;
        let row: Option<(String, serde_json::Value, String)> = sqlx::query_as(
            "SELECT request_type, params, status FROM steadytext.async_requests \
             WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(self.store.pool())
        .await?;
        let Some((kind, params, status)) = row else {
            return Ok(AsyncOutcome::Skipped);
        };
        if status != "pending" {
            return Ok(AsyncOutcome::Skipped);
        }
        let params: RequestParams = serde_json::from_value(params).map_err(|e| {
            JobError::permanent(format!("async request {}: bad parameters: {e}", request_id))
        })?;
        let mut opts = GenerateOptions::default().use_cache(params.use_cache);
        if let Some(n) = params.max_tokens {
            opts = opts.max_tokens(n);
        }
        if let Some(seed) = params.seed {
            opts = opts.seed(seed);
        }
        let engine = &self.engine;
        let prompt = params.prompt.as_str();
        let result: steadytext_core::Result<(String, Option<bool>)> = match kind.as_str() {
            GENERATE => engine
                .generate(prompt, &opts)
                .await
                .map(|g| (g.text, Some(g.cached))),
            GENERATE_JSON => {
                let schema = params.schema.unwrap_or(serde_json::Value::Null);
                engine
                    .generate_json(prompt, &schema, &opts)
                    .await
                    .map(|v| (v.to_string(), None))
            }
            GENERATE_REGEX => {
                let pattern = params.pattern.unwrap_or_default();
                engine
                    .generate_regex(prompt, &pattern, &opts)
                    .await
                    .map(|t| (t, None))
            }
            GENERATE_CHOICE => {
                let choices = params.choices.unwrap_or_default();
                engine
                    .choice(prompt, &choices, &opts)
                    .await
                    .map(|c| (c.choice, Some(c.cached)))
            }
            other => {
                return Err(JobError::permanent(format!(
                    "async request {}: unknown type {other:?}",
                    request_id
                )))
            }
        };
        match result {
            Ok((result, cached)) => Ok(AsyncOutcome::Completed {
                request_id,
                result,
                cached,
            }),
            Err(e) if e.is_permanent() => Ok(AsyncOutcome::Failed {
                request_id,
                error: e.to_string(),
            }),
            Err(e) => Err(JobError::retryable(e)),
        }
    }
}

/// Run `work` on a blocking-pool thread that drives the current runtime, and wait for it.
///
/// The bulk generations (many customers' or segments' texts through `batch::ordered`) are
/// futures rustc cannot prove `Send` ("implementation of `Send` is not general enough", for
/// the borrowed items inside a buffered stream), and a worker's job future must be `Send`.
/// Built and polled on its own thread, the future never has to be.
async fn off_thread<R, F, Fut>(me: Intelligence, work: F) -> Result<R>
where
    R: Send + 'static,
    F: FnOnce(Intelligence) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R>>,
{
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || runtime.block_on(work(me)))
        .await
        .map_err(|e| {
            PgError::WorkerPanicked(format!("a bulk analysis panicked or was cancelled: {e}"))
        })?
}

/// Replace the stored churn reports with a run's (the rows `calculate_churn_risk()` returns).
pub(crate) async fn store_churn_reports(
    conn: &mut PgConnection,
    reports: &[ChurnReport],
) -> Result<()> {
    sqlx::query("DELETE FROM steadytext.churn_reports")
        .execute(&mut *conn)
        .await?;
    for (position, r) in reports.iter().enumerate() {
        sqlx::query(
            "INSERT INTO steadytext.churn_reports (customer_id, position, risk_score, \
               risk_factors, retention_strategy, grounding, actions, prompt_version) \
             VALUES ($1, $2, $3::float8::numeric(3, 2), $4, $5, $6, $7, $8)",
        )
        .bind(r.customer_id)
        .bind(position as i32)
        .bind(r.risk.rounded_score())
        .bind(to_json(&r.risk.factors, "churn_reports")?)
        .bind(&r.strategy)
        .bind(r.grounding.as_str())
        .bind(to_json(&r.actions, "churn_reports")?)
        .bind(&r.prompt_version)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Replace a customer's stored recommendations.
pub(crate) async fn write_recommendations(
    conn: &mut PgConnection,
    recs: &CustomerRecommendations,
) -> Result<()> {
    sqlx::query("DELETE FROM steadytext.customer_recommendations WHERE customer_id = $1")
        .bind(recs.customer_id)
        .execute(&mut *conn)
        .await?;
    for (position, r) in recs.recommendations.iter().enumerate() {
        sqlx::query(
            "INSERT INTO steadytext.customer_recommendations (customer_id, position, \
               recommendation_type, title, description, priority, product_id, play, \
               prompt_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(recs.customer_id)
        .bind(position as i32)
        .bind(r.recommendation_type.as_str())
        .bind(&r.title)
        .bind(&r.description)
        .bind(i32::from(r.priority))
        .bind(r.product_id)
        .bind(&r.play)
        .bind(&recs.prompt_version)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Store a refresh's insights: one row per customer (customers gone since are dropped) and
/// the executive row.
pub(crate) async fn write_insights(conn: &mut PgConnection, run: &InsightsRun) -> Result<()> {
    let ids: Vec<i32> = run
        .dashboard
        .iter()
        .map(|i| i.snapshot.customer_id)
        .collect();
    sqlx::query("DELETE FROM steadytext.customer_insights WHERE NOT (customer_id = ANY($1))")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    for i in &run.dashboard {
        let s = &i.snapshot;
        let types: Vec<&str> = s.interaction_types.iter().map(|t| t.as_str()).collect();
        // A customer deleted since the facts were read has no row to hang them on.
        sqlx::query(
            "INSERT INTO steadytext.customer_insights AS i (customer_id, avg_sentiment, \
               interaction_count, last_interaction, interaction_types, issue_count, \
               avg_satisfaction, customer_status, ai_insights, grounding, prompt_version) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             WHERE EXISTS (SELECT 1 FROM customers WHERE id = $1) \
             ON CONFLICT (customer_id) DO UPDATE SET \
               avg_sentiment = EXCLUDED.avg_sentiment, \
               interaction_count = EXCLUDED.interaction_count, \
               last_interaction = EXCLUDED.last_interaction, \
               interaction_types = EXCLUDED.interaction_types, \
               issue_count = EXCLUDED.issue_count, \
               avg_satisfaction = EXCLUDED.avg_satisfaction, \
               customer_status = EXCLUDED.customer_status, \
               ai_insights = EXCLUDED.ai_insights, grounding = EXCLUDED.grounding, \
               prompt_version = EXCLUDED.prompt_version, computed_at = now()",
        )
        .bind(s.customer_id)
        .bind(s.avg_sentiment)
        .bind(count(s.interaction_count))
        .bind(s.last_interaction)
        .bind(&types)
        .bind(count(s.issue_count))
        .bind(s.avg_satisfaction)
        .bind(s.status.as_str())
        .bind(&i.insight)
        .bind(i.grounding.as_str())
        .bind(&i.prompt_version)
        .execute(&mut *conn)
        .await?;
    }
    let e = &run.executive;
    sqlx::query(
        "INSERT INTO steadytext.executive_summary AS s (id, total_customers, \
           high_risk_customers, avg_ltv, total_reviews, avg_rating, open_tickets, \
           executive_insights, actions, grounding, prompt_version) \
         VALUES (TRUE, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (id) DO UPDATE SET \
           total_customers = EXCLUDED.total_customers, \
           high_risk_customers = EXCLUDED.high_risk_customers, avg_ltv = EXCLUDED.avg_ltv, \
           total_reviews = EXCLUDED.total_reviews, avg_rating = EXCLUDED.avg_rating, \
           open_tickets = EXCLUDED.open_tickets, \
           executive_insights = EXCLUDED.executive_insights, actions = EXCLUDED.actions, \
           grounding = EXCLUDED.grounding, prompt_version = EXCLUDED.prompt_version, \
           computed_at = now()",
    )
    .bind(count(e.stats.total_customers))
    .bind(count(e.stats.high_risk_customers))
    .bind(e.stats.avg_lifetime_value)
    .bind(count(e.stats.total_reviews))
    .bind(e.stats.avg_rating)
    .bind(count(e.stats.open_tickets))
    .bind(&e.insights)
    .bind(to_json(&e.actions, "executive_summary")?)
    .bind(e.grounding.as_str())
    .bind(&e.prompt_version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Write an async request's outcome, unless it was cancelled meanwhile.
pub(crate) async fn write_async(conn: &mut PgConnection, outcome: &AsyncOutcome) -> Result<()> {
    match outcome {
        AsyncOutcome::Skipped => {}
        AsyncOutcome::Completed {
            request_id,
            result,
            cached,
        } => {
            sqlx::query(
                "UPDATE steadytext.async_requests SET status = 'completed', result = $2, \
                   cached = $3, completed_at = now() \
                 WHERE request_id = $1 AND status = 'pending'",
            )
            .bind(request_id)
            .bind(result)
            .bind(cached)
            .execute(&mut *conn)
            .await?;
        }
        AsyncOutcome::Failed { request_id, error } => {
            sqlx::query(
                "UPDATE steadytext.async_requests SET status = 'failed', error = $2, \
                   completed_at = now() \
                 WHERE request_id = $1 AND status = 'pending'",
            )
            .bind(request_id)
            .bind(error)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_json<T: serde::Serialize>(v: &T, table: &'static str) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| PgError::BadRow {
        table,
        id: 0,
        reason: e.to_string(),
    })
}
