//! The database's sentiment calibrations (`steadytext_calibrations`, migration 0008): the
//! feedback loop's learned state.
//!
//! [`fit_from_verdicts`] fits a calibration on the human verdicts of review sentiment stored in
//! the database; [`activate`] stores one and makes it the active one (at most one per task);
//! [`active`] reads it. Analyses read the active calibration before each review (see
//! [`crate::Intelligence`]), so running workers switch without a restart.

use std::sync::Arc;

use sqlx::PgConnection;
use steadytext_schema::calibrate::{fit_sentiment, FitReport, LabelledText};
use steadytext_schema::sentiment_model::Calibration;
use steadytext_schema::{NameDirectory, PromptBuilder, Rating, Redactor, ReviewSentiment};

use crate::error::{PgError, Result};
use crate::Intelligence;

/// The active sentiment calibration, if one is stored: `(id, calibration)`.
///
/// # Errors
/// [`PgError::BadRow`] when the stored document is not a calibration this version can apply
/// (another format or prompt version); database errors.
pub async fn active(conn: &mut PgConnection) -> Result<Option<(String, Calibration)>> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT id, body::text FROM steadytext_calibrations \
         WHERE task = 'sentiment' AND active",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, body)) = row else {
        return Ok(None);
    };
    let calibration = Calibration::from_json(&body).map_err(|e| PgError::BadRow {
        table: "steadytext_calibrations",
        id: 0,
        reason: format!("{id}: {e}"),
    })?;
    Ok(Some((id, calibration)))
}

/// The id of the active sentiment calibration, if one is stored (one indexed lookup).
pub async fn active_id(conn: &mut PgConnection) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM steadytext_calibrations WHERE task = 'sentiment' AND active",
    )
    .fetch_optional(&mut *conn)
    .await?)
}

/// Store `calibration` (if new) and make it the active sentiment calibration, in one
/// transaction on `conn`'s caller. Returns its id.
pub async fn activate(conn: &mut PgConnection, calibration: &Calibration) -> Result<String> {
    let id = calibration.id();
    let body = serde_json::to_value(calibration).expect("a calibration serialises");
    let cv = calibration.provenance.cross_validated.as_ref();
    sqlx::query("UPDATE steadytext_calibrations SET active = false WHERE task = 'sentiment' AND active AND id <> $1")
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO steadytext_calibrations \
             (id, task, body, fitted_on, examples, cv_accuracy, cv_macro_f1, activated_at, active) \
         VALUES ($1, 'sentiment', $2, $3, $4, $5, $6, now(), true) \
         ON CONFLICT (id) DO UPDATE SET active = true, activated_at = now()",
    )
    .bind(&id)
    .bind(body)
    .bind(&calibration.provenance.fitted_on)
    .bind(calibration.provenance.examples as i32)
    .bind(cv.map(|m| m.accuracy))
    .bind(cv.map(|m| m.macro_f1))
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// (review id, customer id, text, rating, the person's label).
type VerdictRow = (i32, Option<i32>, Option<String>, Option<i32>, String);

/// The reviews whose sentiment a person has set, with that label: the feedback loop's
/// training data (latest verdict per review; very_positive and positive are both positive).
/// Texts are redacted as the review's analysis redacts them (its author's names and email,
/// every customer name in `names`, cue-introduced names, contact details), so no PII reaches
/// the fitting prompts.
pub async fn verdict_examples(
    conn: &mut PgConnection,
    names: &Arc<NameDirectory>,
) -> Result<Vec<LabelledText>> {
    let rows: Vec<VerdictRow> = sqlx::query_as(
        "SELECT DISTINCT ON (r.id) r.id, r.customer_id, r.review_text, r.rating, v.value_after \
         FROM steadytext_human_verdicts v \
         JOIN product_reviews r ON v.subject_kind = 'review' AND v.subject_id = r.id::text \
         WHERE v.field = 'sentiment' \
         ORDER BY r.id, v.id DESC",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for (id, customer_id, text, rating, value) in rows {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            continue;
        };
        let bad = |reason: String| PgError::BadRow {
            table: "steadytext_human_verdicts",
            id: id.into(),
            reason,
        };
        let label: ReviewSentiment = value.parse().map_err(|e| bad(format!("{e}")))?;
        let rating = rating
            .map(Rating::try_from)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        let owner = match customer_id {
            Some(c) => crate::rows::customer(&mut *conn, c).await?,
            None => None,
        };
        let redactor = match &owner {
            Some(c) => Redactor::for_customer(c),
            None => Redactor::new(),
        }
        .with_directory(names.clone());
        out.push(LabelledText {
            text: PromptBuilder::with_redactor(redactor).redacted_text(&text),
            rating,
            label: label.polarity(),
        });
    }
    Ok(out)
}

/// Fit a calibration on the database's human verdicts of review sentiment (see
/// [`fit_sentiment`]), against the calibration the next analysis would use
/// ([`Intelligence::sentiment_model`]).
///
/// # Errors
/// [`PgError::Calibrate`] with too few verdicts (or only one label among them), or when the
/// model fails; database errors.
pub async fn fit_from_verdicts(
    intel: &Intelligence,
    folds: usize,
    concurrency: usize,
) -> Result<(Vec<LabelledText>, FitReport)> {
    let mut conn = intel.store.pool().acquire().await?;
    let names = intel.names(&mut conn).await?;
    let current = intel.sentiment_model(&mut conn).await?;
    let examples = verdict_examples(&mut conn, &names).await?;
    drop(conn);
    let report = fit_sentiment(
        &intel.engine,
        &PromptBuilder::new(),
        &current,
        &examples,
        folds,
        concurrency,
        &format!("{} human verdicts of review sentiment", examples.len()),
    )
    .await?;
    Ok((examples, report))
}

/// Queue a re-analysis of every review whose latest analysis used another calibration than
/// `id` (reviews a person labelled keep the person's sentiment anyway). Returns how many were
/// queued; model calls of the re-analyses are cache hits but for the new features.
pub async fn reanalyse_other_calibrations(conn: &mut PgConnection, id: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(steadytext_enqueue_job('analyze_review', \
                    jsonb_build_object('id', r.id), r.id::text)) \
         FROM product_reviews r \
         JOIN steadytext_analyses a ON a.subject_kind = 'review' AND a.subject_id = r.id::text \
         WHERE a.calibration_id IS DISTINCT FROM $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n as u64)
}

/// What [`activate_if_not_worse`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    /// The fitted calibration is now the active one.
    Activated {
        /// Its id.
        id: String,
        /// Reviews queued for re-analysis (analysed under another calibration).
        requeued: u64,
    },
    /// Not activated: it cross-validates worse than the current calibration scores on the
    /// same examples; nothing changed.
    Refused {
        /// Cross-validated macro-F1 of the fitted calibration minus the current one's.
        gain: f64,
    },
}

/// Activate the report's chosen calibration unless it cross-validates worse than the current
/// one on the same examples ([`FitReport::gain`] below 0), and queue a re-analysis of the
/// reviews analysed under another calibration — one transaction.
pub async fn activate_if_not_worse(store: &crate::Store, report: &FitReport) -> Result<Activation> {
    let gain = report.gain();
    if gain < 0.0 {
        return Ok(Activation::Refused { gain });
    }
    let mut tx = store.pool().begin().await?;
    let id = activate(&mut tx, &report.chosen().calibration).await?;
    let requeued = reanalyse_other_calibrations(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(Activation::Activated { id, requeued })
}
