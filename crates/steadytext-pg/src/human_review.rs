//! Human review in PostgreSQL (migration `0007_human_review.sql`): what every stored analysis
//! was flagged for, the queue of what needs a person, and verdicts that no re-analysis undoes.
//!
//! # The SQL surface
//!
//! | object | what it is |
//! |---|---|
//! | table `steadytext_analyses` | one row per analysed subject: `subject_kind` (`review`, `ticket`, `churn`, `segment`), `subject_id` (review id, ticket id, customer id, segment name), `needs_human_review`, `reasons text[]`, `ai_values jsonb` (the analysis's own values of the fields below), `prompt_version`, `model_id` (the backend's identity), `calibration_id` (NULL: none recorded), `computed_at`, `changed_at` (when the outcome last changed). Written in the same transaction as the analysis; deleted with its subject. |
//! | table `steadytext_human_verdicts` | append-only (UPDATE and DELETE raise): `id`, `subject_kind`, `subject_id`, `field`, `value_before`, `value_after`, `reviewer` (required, non-blank), `note`, `decided_at` |
//! | function `steadytext_record_verdict(kind, id, field, value, reviewer, note DEFAULT NULL) RETURNS bigint` | validates, locks the subject, records the verdict with the seed column's value before it, and sets the seed's column; an `INSERT INTO steadytext_human_verdicts` does exactly the same |
//! | view `steadytext_review_queue` | subjects whose latest analysis needs a human and that have no verdict since that analysis's outcome last changed, oldest first: kind, id, reasons, a short text of the subject, the AI's and the current values, provenance |
//! | view `steadytext_verdict_fields` | the closed set of fields below, with their allowed values |
//!
//! The fields a verdict can set ([`VERDICT_FIELDS`]):
//!
//! | kind.field | seed column | values |
//! |---|---|---|
//! | `review.sentiment` | `product_reviews.sentiment` | [`ReviewSentiment`](steadytext_schema::ReviewSentiment): `very_positive`, `positive`, `neutral`, `negative`, `very_negative` |
//! | `ticket.urgency` | `support_tickets.ai_analysis->'urgency'` | [`Urgency`](steadytext_schema::Urgency): `low`, `medium`, `high`, `critical` |
//! | `ticket.sentiment` | `support_tickets.ai_analysis->'sentiment'` | [`TicketSentiment`](steadytext_schema::TicketSentiment): `angry`, `frustrated`, `neutral`, `satisfied`, `happy` |
//! | `ticket.category` | `support_tickets.ai_analysis->'category'` | a key of `steadytext_taxonomy` (the tags keep the category first) |
//! | `churn.churn_risk_score` | `customers.churn_risk_score` | a number from 0 to 1, stored with 2 decimals |
//!
//! Kinds, fields and closed-set values are case-insensitive. A refused verdict records nothing
//! and raises SQLSTATE 42704 (unknown kind or field), 22023 (invalid value), P0002 (no such
//! subject) or 22004 (no reviewer); [`record_verdict`] maps them to
//! [`PgError::InvalidVerdict`] with a [`VerdictProblem`].
//!
//! ```sql
//! SELECT subject_kind, subject_id, reasons, subject_text FROM steadytext_review_queue;
//! SELECT steadytext_record_verdict('review', '12', 'sentiment', 'negative', 'alice', 'sarcasm');
//! SELECT * FROM steadytext_human_verdicts WHERE subject_kind = 'review' AND subject_id = '12';
//! ```
//!
//! **Verdicts stick.** BEFORE UPDATE triggers on `product_reviews`, `support_tickets` and
//! `customers` put the latest verdict's value back whenever an update would change a labelled
//! field, so no re-analysis — by this crate, the seed's own functions or any other writer —
//! overwrites a human's value; to change it, record another verdict. A review verdict also sets
//! the sentiment score of the review's logged interaction, a ticket verdict the keys of its
//! interaction's metadata, and the analysis writes log the protected values. A ticket's
//! `priority` is left as it is (the seed only fills it when empty, and then from a human's
//! urgency if there is one).
//!
//! **The queue.** A subject leaves the queue once any verdict on it is recorded (to confirm the
//! AI's value, record it as the verdict). It comes back only when a later analysis changes its
//! outcome — the flag, the reasons, the AI's values, the prompt version, the model or the
//! calibration; re-analysing to the same outcome keeps it settled. Customers appear by id only.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use steadytext_schema::{HumanReview, HumanReviewReason};

use crate::error::{PgError, Result};

/// What an analysis (and a verdict) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A `product_reviews` row (id: its `id`).
    Review,
    /// A `support_tickets` row (id: its `id`).
    Ticket,
    /// A customer's churn risk (id: `customers.id`).
    Churn,
    /// A `customer_segments_analysis` row (id: the segment's name).
    Segment,
}

impl SubjectKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::Review, Self::Ticket, Self::Churn, Self::Segment];

    /// The stored string (`review`, `ticket`, `churn`, `segment`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Review => "review",
            Self::Ticket => "ticket",
            Self::Churn => "churn",
            Self::Segment => "segment",
        }
    }

    /// The fields of this kind a verdict can set (none for a segment).
    pub fn verdict_fields(self) -> impl Iterator<Item = &'static str> {
        VERDICT_FIELDS
            .iter()
            .filter(move |(k, _)| *k == self)
            .map(|(_, f)| *f)
    }
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of `review`, `ticket`, `churn`, `segment`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown subject kind {0:?}: one of review, ticket, churn, segment")]
pub struct UnknownKind(pub String);

impl FromStr for SubjectKind {
    type Err = UnknownKind;

    /// Case-insensitive, surrounding whitespace ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_lowercase();
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == key)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// The closed set of `(kind, field)` a verdict can set (see the [module docs](self)).
pub const VERDICT_FIELDS: [(SubjectKind, &str); 5] = [
    (SubjectKind::Review, "sentiment"),
    (SubjectKind::Ticket, "urgency"),
    (SubjectKind::Ticket, "sentiment"),
    (SubjectKind::Ticket, "category"),
    (SubjectKind::Churn, "churn_risk_score"),
];

/// Why `steadytext_record_verdict` refused a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictProblem {
    /// The kind or the field is not in [`VERDICT_FIELDS`] (SQLSTATE 42704).
    UnknownField,
    /// The value is outside the field's set (SQLSTATE 22023).
    InvalidValue,
    /// No review, ticket or customer has that id (SQLSTATE P0002).
    UnknownSubject,
    /// The reviewer is missing or blank (SQLSTATE 22004).
    MissingReviewer,
}

impl VerdictProblem {
    /// The problem a SQLSTATE raised by the verdict triggers stands for.
    pub fn from_sqlstate(code: &str) -> Option<Self> {
        Some(match code {
            "42704" => Self::UnknownField,
            "22023" => Self::InvalidValue,
            "P0002" => Self::UnknownSubject,
            "22004" => Self::MissingReviewer,
            _ => return None,
        })
    }
}

impl fmt::Display for VerdictProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownField => "unknown field",
            Self::InvalidValue => "invalid value",
            Self::UnknownSubject => "unknown subject",
            Self::MissingReviewer => "missing reviewer",
        })
    }
}

/// An analysis to record in `steadytext_analyses` (in the analysis write's transaction).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAnalysis {
    /// What was analysed.
    pub subject_kind: SubjectKind,
    /// Its id (a segment's name).
    pub subject_id: String,
    /// The result's flag.
    pub needs_human_review: bool,
    /// Its reasons.
    pub reasons: Vec<HumanReviewReason>,
    /// The analysis's values of the fields a verdict can set (`{}` for none).
    pub ai_values: serde_json::Value,
    /// The prompt set used.
    pub prompt_version: String,
    /// The backend's identity (`Backend::identity`).
    pub model_id: String,
    /// The calibration used, if one is recorded.
    pub calibration_id: Option<String>,
}

impl NewAnalysis {
    /// An analysis of `(kind, id)` flagged as `review` says.
    pub fn new(
        subject_kind: SubjectKind,
        subject_id: impl Into<String>,
        review: &HumanReview,
        ai_values: serde_json::Value,
        prompt_version: &str,
        model_id: &str,
    ) -> Self {
        Self {
            subject_kind,
            subject_id: subject_id.into(),
            needs_human_review: !review.reasons.is_empty(),
            reasons: review.reasons.clone(),
            ai_values,
            prompt_version: prompt_version.to_string(),
            model_id: model_id.to_string(),
            calibration_id: None,
        }
    }

    /// With the calibration's id.
    pub fn with_calibration(mut self, calibration_id: Option<String>) -> Self {
        self.calibration_id = calibration_id;
        self
    }
}

/// Upsert `analyses` into `steadytext_analyses` in one statement: `computed_at` becomes now,
/// `changed_at` too when the outcome (flag, reasons, AI values, prompt version, model,
/// calibration) differs from the stored one. Call it on the analysis write's transaction.
pub async fn record_analyses(conn: &mut PgConnection, analyses: &[NewAnalysis]) -> Result<()> {
    if analyses.is_empty() {
        return Ok(());
    }
    let rows = serde_json::to_value(analyses).map_err(|e| PgError::BadRow {
        table: "steadytext_analyses",
        id: 0,
        reason: e.to_string(),
    })?;
    sqlx::query(
        "INSERT INTO steadytext_analyses AS a (subject_kind, subject_id, needs_human_review, \
           reasons, ai_values, prompt_version, model_id, calibration_id, computed_at, changed_at) \
         SELECT x.subject_kind, x.subject_id, x.needs_human_review, x.reasons, x.ai_values, \
                x.prompt_version, x.model_id, x.calibration_id, clock_timestamp(), clock_timestamp() \
         FROM jsonb_to_recordset($1) AS x (subject_kind text, subject_id text, \
           needs_human_review boolean, reasons text[], ai_values jsonb, prompt_version text, \
           model_id text, calibration_id text) \
         ON CONFLICT (subject_kind, subject_id) DO UPDATE SET \
           needs_human_review = EXCLUDED.needs_human_review, reasons = EXCLUDED.reasons, \
           ai_values = EXCLUDED.ai_values, prompt_version = EXCLUDED.prompt_version, \
           model_id = EXCLUDED.model_id, calibration_id = EXCLUDED.calibration_id, \
           computed_at = EXCLUDED.computed_at, \
           changed_at = CASE WHEN (a.needs_human_review, a.reasons, a.ai_values, \
                                   a.prompt_version, a.model_id, a.calibration_id) \
                                  IS DISTINCT FROM \
                                  (EXCLUDED.needs_human_review, EXCLUDED.reasons, \
                                   EXCLUDED.ai_values, EXCLUDED.prompt_version, \
                                   EXCLUDED.model_id, EXCLUDED.calibration_id) \
                             THEN EXCLUDED.changed_at ELSE a.changed_at END",
    )
    .bind(rows)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A row of `steadytext_analyses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecord {
    /// What was analysed.
    pub subject_kind: SubjectKind,
    /// Its id.
    pub subject_id: String,
    /// Whether a person should check it.
    pub needs_human_review: bool,
    /// Why.
    pub reasons: Vec<HumanReviewReason>,
    /// The analysis's own values of the fields a verdict can set.
    pub ai_values: serde_json::Value,
    /// The prompt set used.
    pub prompt_version: String,
    /// The model's identity.
    pub model_id: String,
    /// The calibration's id, if recorded.
    pub calibration_id: Option<String>,
    /// When it was last written.
    pub computed_at: DateTime<Utc>,
    /// When its outcome last changed.
    pub changed_at: DateTime<Utc>,
}

/// An entry of `steadytext_review_queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    /// What needs a person.
    pub subject_kind: SubjectKind,
    /// Its id.
    pub subject_id: String,
    /// Why.
    pub reasons: Vec<HumanReviewReason>,
    /// A short, one-line text of the subject (a customer by id only).
    pub subject_text: String,
    /// The analysis's values of the labelable fields.
    pub ai_values: serde_json::Value,
    /// The seed's columns now (a human's value where one was recorded earlier).
    pub current_values: serde_json::Value,
    /// The prompt set used.
    pub prompt_version: String,
    /// The model's identity.
    pub model_id: String,
    /// The calibration's id, if recorded.
    pub calibration_id: Option<String>,
    /// When the analysis was last written.
    pub computed_at: DateTime<Utc>,
    /// Waiting since (when the analysis's outcome last changed).
    pub changed_at: DateTime<Utc>,
}

impl QueueItem {
    /// The fields a verdict on this subject can set.
    pub fn fields(&self) -> Vec<&'static str> {
        self.subject_kind.verdict_fields().collect()
    }
}

/// A human verdict (a row of `steadytext_human_verdicts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Its id (per subject, a later id is a later decision).
    pub id: i64,
    /// What it is about.
    pub subject_kind: SubjectKind,
    /// Its id.
    pub subject_id: String,
    /// The field set.
    pub field: String,
    /// The seed column's value just before (`None`: it was NULL).
    pub value_before: Option<String>,
    /// The value set (normalised).
    pub value_after: String,
    /// Who decided.
    pub reviewer: String,
    /// Why, if they said.
    pub note: Option<String>,
    /// When.
    pub decided_at: DateTime<Utc>,
}

/// A verdict to record ([`record_verdict`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVerdict {
    /// What it is about.
    pub subject_kind: SubjectKind,
    /// Its id (review, ticket or customer id).
    pub subject_id: String,
    /// The field (see [`VERDICT_FIELDS`]).
    pub field: String,
    /// The human's value.
    pub value: String,
    /// Who decides (required).
    pub reviewer: String,
    /// Why (optional).
    pub note: Option<String>,
}

type AnalysisRow = (
    String,
    String,
    bool,
    Vec<String>,
    serde_json::Value,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn kind(table: &'static str, s: &str) -> Result<SubjectKind> {
    s.parse().map_err(|e: UnknownKind| PgError::BadRow {
        table,
        id: 0,
        reason: e.to_string(),
    })
}

fn reasons(table: &'static str, id: &str, raw: Vec<String>) -> Result<Vec<HumanReviewReason>> {
    raw.iter()
        .map(|r| {
            r.parse().map_err(|e| PgError::BadRow {
                table,
                id: id.parse().unwrap_or(0),
                reason: format!("reasons: {e}"),
            })
        })
        .collect()
}

/// The stored analysis of `(kind, id)`, if any.
pub async fn analysis<'e>(
    db: impl PgExecutor<'e>,
    subject_kind: SubjectKind,
    subject_id: &str,
) -> Result<Option<AnalysisRecord>> {
    let row: Option<AnalysisRow> = sqlx::query_as(
        "SELECT subject_kind, subject_id, needs_human_review, reasons, ai_values, prompt_version, \
                model_id, calibration_id, computed_at, changed_at \
         FROM steadytext_analyses WHERE subject_kind = $1 AND subject_id = $2",
    )
    .bind(subject_kind.as_str())
    .bind(subject_id)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(AnalysisRecord {
            subject_kind: kind("steadytext_analyses", &r.0)?,
            reasons: reasons("steadytext_analyses", &r.1, r.3)?,
            subject_id: r.1,
            needs_human_review: r.2,
            ai_values: r.4,
            prompt_version: r.5,
            model_id: r.6,
            calibration_id: r.7,
            computed_at: r.8,
            changed_at: r.9,
        })
    })
    .transpose()
}

type QueueRow = (
    String,
    String,
    Vec<String>,
    String,
    serde_json::Value,
    serde_json::Value,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
);

/// `steadytext_review_queue`, oldest first, at most `limit` entries (`None`: all).
pub async fn review_queue<'e>(
    db: impl PgExecutor<'e>,
    limit: Option<usize>,
) -> Result<Vec<QueueItem>> {
    let limit = limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let rows: Vec<QueueRow> = sqlx::query_as(
        "SELECT subject_kind, subject_id, reasons, subject_text, ai_values, current_values, \
                prompt_version, model_id, calibration_id, computed_at, changed_at \
         FROM steadytext_review_queue \
         ORDER BY changed_at, subject_kind, subject_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(QueueItem {
                subject_kind: kind("steadytext_analyses", &r.0)?,
                reasons: reasons("steadytext_analyses", &r.1, r.2)?,
                subject_id: r.1,
                subject_text: r.3,
                ai_values: r.4,
                current_values: r.5,
                prompt_version: r.6,
                model_id: r.7,
                calibration_id: r.8,
                computed_at: r.9,
                changed_at: r.10,
            })
        })
        .collect()
}

/// Record `verdict` through `steadytext_record_verdict`: the seed's column shows the value from
/// then on. Returns the verdict's id.
///
/// # Errors
/// [`PgError::InvalidVerdict`] (nothing recorded) for an unknown field, a value outside the
/// field's set, an unknown subject or a blank reviewer; database errors.
pub async fn record_verdict<'e>(db: impl PgExecutor<'e>, verdict: &NewVerdict) -> Result<i64> {
    let recorded: std::result::Result<(i64,), sqlx::Error> =
        sqlx::query_as("SELECT steadytext_record_verdict($1, $2, $3, $4, $5, $6)")
            .bind(verdict.subject_kind.as_str())
            .bind(&verdict.subject_id)
            .bind(&verdict.field)
            .bind(&verdict.value)
            .bind(&verdict.reviewer)
            .bind(verdict.note.as_deref())
            .fetch_one(db)
            .await;
    match recorded {
        Ok((id,)) => Ok(id),
        Err(sqlx::Error::Database(e)) => {
            match e.code().as_deref().and_then(VerdictProblem::from_sqlstate) {
                Some(problem) => Err(PgError::InvalidVerdict {
                    problem,
                    message: e.message().to_string(),
                }),
                None => Err(sqlx::Error::Database(e).into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

type VerdictRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
);

const VERDICT_COLUMNS: &str = "id, subject_kind, subject_id, field, value_before, value_after, \
     reviewer, note, decided_at";

fn verdict_from(r: VerdictRow) -> Result<Verdict> {
    Ok(Verdict {
        id: r.0,
        subject_kind: kind("steadytext_human_verdicts", &r.1)?,
        subject_id: r.2,
        field: r.3,
        value_before: r.4,
        value_after: r.5,
        reviewer: r.6,
        note: r.7,
        decided_at: r.8,
    })
}

/// Verdict `id`, if it exists.
pub async fn verdict<'e>(db: impl PgExecutor<'e>, id: i64) -> Result<Option<Verdict>> {
    let row: Option<VerdictRow> = sqlx::query_as(&format!(
        "SELECT {VERDICT_COLUMNS} FROM steadytext_human_verdicts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.map(verdict_from).transpose()
}

/// The verdicts on one subject (`Some((kind, id))`) or on every subject, in the order they
/// were decided.
pub async fn verdicts<'e>(
    db: impl PgExecutor<'e>,
    subject: Option<(SubjectKind, &str)>,
) -> Result<Vec<Verdict>> {
    let rows: Vec<VerdictRow> = sqlx::query_as(&format!(
        "SELECT {VERDICT_COLUMNS} FROM steadytext_human_verdicts \
         WHERE $1::text IS NULL OR (subject_kind = $1 AND subject_id = $2) ORDER BY id"
    ))
    .bind(subject.map(|(k, _)| k.as_str()))
    .bind(subject.map(|(_, id)| id))
    .fetch_all(db)
    .await?;
    rows.into_iter().map(verdict_from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_leniently_and_list_their_fields() {
        assert_eq!(" Review ".parse::<SubjectKind>(), Ok(SubjectKind::Review));
        assert!("reviews".parse::<SubjectKind>().is_err());
        assert_eq!(
            SubjectKind::Ticket.verdict_fields().collect::<Vec<_>>(),
            ["urgency", "sentiment", "category"]
        );
        assert_eq!(SubjectKind::Segment.verdict_fields().count(), 0);
        assert_eq!(
            serde_json::to_value(SubjectKind::Churn).unwrap(),
            serde_json::json!("churn")
        );
    }

    #[test]
    fn sqlstates_map_to_problems() {
        assert_eq!(
            VerdictProblem::from_sqlstate("P0002"),
            Some(VerdictProblem::UnknownSubject)
        );
        assert_eq!(
            VerdictProblem::from_sqlstate("22023"),
            Some(VerdictProblem::InvalidValue)
        );
        assert_eq!(VerdictProblem::from_sqlstate("23505"), None);
    }
}
