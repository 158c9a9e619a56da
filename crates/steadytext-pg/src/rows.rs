//! Rows of the seed's tables as [`steadytext_schema`] records, and inserting interactions.
//!
//! Only queries and casts live here: `DECIMAL` columns are read as `float8` (the records hold
//! `f64`, see [`steadytext_schema::records`]), columns with a `DEFAULT` that a row may still
//! hold as NULL are read with the default (`COALESCE`), and closed-set strings are parsed into
//! their enums — a value outside its set is a [`PgError::BadRow`], never passed on silently.
//! Generated JSON columns (`support_tickets.ai_analysis`,
//! `customer_segments_analysis.recommendations`) that do not match their typed shape (e.g.
//! written by the seed's unconstrained PL/pgSQL) read as `None`: they are outputs that the next
//! analysis rewrites, not inputs.
//!
//! Every function takes any executor: a pool, a connection, or `&mut *tx`.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row};
use steadytext_schema::aspects::ReviewAspect;
use steadytext_schema::{
    Channel, Customer, CustomerInteraction, CustomerSegmentAnalysis, InteractionType,
    NewInteraction, ProductReview, Rating, ReviewSentiment, SegmentStrategies, SupportTicket,
    TicketAnalysis, Urgency,
};

use crate::error::{PgError, Result};

/// `customers` columns, in [`Customer`]'s shape.
pub const CUSTOMER_COLUMNS: &str = "id, customer_id, email, first_name, last_name, segment, \
     COALESCE(lifetime_value, 0)::float8 AS lifetime_value, acquisition_date, last_active_date, \
     churn_risk_score::float8 AS churn_risk_score, \
     COALESCE(created_at, now()) AS created_at, COALESCE(updated_at, now()) AS updated_at";

/// `customer_interactions` columns, in [`CustomerInteraction`]'s shape.
pub const INTERACTION_COLUMNS: &str = "id, customer_id, interaction_type, channel, content, \
     metadata, sentiment_score::float8 AS sentiment_score, COALESCE(timestamp, now()) AS timestamp";

/// `product_reviews` columns, in [`ProductReview`]'s shape.
pub const REVIEW_COLUMNS: &str = "id, customer_id, product_id, rating, title, review_text, \
     COALESCE(verified_purchase, false) AS verified_purchase, \
     COALESCE(helpful_count, 0) AS helpful_count, ai_summary, sentiment, key_themes, review_aspects, \
     COALESCE(created_at, now()) AS created_at";

/// `support_tickets` columns, in [`SupportTicket`]'s shape.
pub const TICKET_COLUMNS: &str = "id, ticket_number, customer_id, category, priority, subject, \
     description, resolution, satisfaction_score, ai_analysis, \
     COALESCE(created_at, now()) AS created_at, resolved_at";

/// `customer_segments_analysis` columns, in [`CustomerSegmentAnalysis`]'s shape.
pub const SEGMENT_COLUMNS: &str = "id, COALESCE(segment_name, '') AS segment_name, \
     COALESCE(customer_count, 0) AS customer_count, \
     avg_lifetime_value::float8 AS avg_lifetime_value, \
     COALESCE(common_behaviors, '{}') AS common_behaviors, ai_profile, recommendations, \
     COALESCE(last_updated, now()) AS last_updated";

fn bad(table: &'static str, id: i32, reason: impl std::fmt::Display) -> PgError {
    PgError::BadRow {
        table,
        id: i64::from(id),
        reason: reason.to_string(),
    }
}

/// Parse an optional closed-set column.
fn parse_opt<T>(table: &'static str, id: i32, column: &str, v: Option<String>) -> Result<Option<T>>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    v.map(|s| {
        s.parse::<T>()
            .map_err(|e| bad(table, id, format!("{column}: {e}")))
    })
    .transpose()
}

/// A generated JSON column in its typed shape, or `None` (with a warning) if it has another.
fn lenient_json<T: DeserializeOwned>(
    table: &'static str,
    id: i32,
    v: Option<serde_json::Value>,
) -> Option<T> {
    let v = v?;
    match serde_json::from_value(v) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(table, id, "ignoring generated JSON of another shape: {e}");
            None
        }
    }
}

/// Map a row selected with [`CUSTOMER_COLUMNS`].
pub fn customer_from_row(row: &PgRow) -> Result<Customer> {
    Ok(Customer {
        id: row.try_get("id")?,
        customer_id: row
            .try_get::<Option<uuid::Uuid>, _>("customer_id")?
            .unwrap_or_default(),
        email: row.try_get("email")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        segment: row.try_get("segment")?,
        lifetime_value: row.try_get("lifetime_value")?,
        acquisition_date: row.try_get::<Option<NaiveDate>, _>("acquisition_date")?,
        last_active_date: row.try_get::<Option<NaiveDate>, _>("last_active_date")?,
        churn_risk_score: row.try_get("churn_risk_score")?,
        created_at: row.try_get::<DateTime<Utc>, _>("created_at")?,
        updated_at: row.try_get::<DateTime<Utc>, _>("updated_at")?,
    })
}

/// Map a row selected with [`INTERACTION_COLUMNS`].
pub fn interaction_from_row(row: &PgRow) -> Result<CustomerInteraction> {
    const T: &str = "customer_interactions";
    let id: i32 = row.try_get("id")?;
    Ok(CustomerInteraction {
        id,
        customer_id: row.try_get("customer_id")?,
        interaction_type: parse_opt::<InteractionType>(
            T,
            id,
            "interaction_type",
            row.try_get("interaction_type")?,
        )?,
        channel: parse_opt::<Channel>(T, id, "channel", row.try_get("channel")?)?,
        content: row.try_get("content")?,
        metadata: row.try_get("metadata")?,
        sentiment_score: row.try_get("sentiment_score")?,
        timestamp: row.try_get("timestamp")?,
    })
}

/// Map a row selected with [`REVIEW_COLUMNS`].
pub fn review_from_row(row: &PgRow) -> Result<ProductReview> {
    const T: &str = "product_reviews";
    let id: i32 = row.try_get("id")?;
    let rating = row
        .try_get::<Option<i32>, _>("rating")?
        .map(Rating::try_from)
        .transpose()
        .map_err(|e| bad(T, id, e))?;
    Ok(ProductReview {
        id,
        customer_id: row.try_get("customer_id")?,
        product_id: row.try_get("product_id")?,
        rating,
        title: row.try_get("title")?,
        review_text: row.try_get("review_text")?,
        verified_purchase: row.try_get("verified_purchase")?,
        helpful_count: row.try_get("helpful_count")?,
        ai_summary: row.try_get("ai_summary")?,
        sentiment: parse_opt::<ReviewSentiment>(T, id, "sentiment", row.try_get("sentiment")?)?,
        key_themes: row.try_get("key_themes")?,
        review_aspects: row
            .try_get::<Option<sqlx::types::Json<Vec<ReviewAspect>>>, _>("review_aspects")?
            .map(|j| j.0),
        created_at: row.try_get("created_at")?,
    })
}

/// A stored satisfaction score clamped into 1..=5, with a warning when it was not (see
/// [`SupportTicket::satisfaction_score`]).
fn satisfaction(id: i32, score: Option<i32>) -> Option<i32> {
    score.map(|raw| {
        let clamped = SupportTicket::clamp_satisfaction(raw);
        if clamped != raw {
            tracing::warn!(
                ticket = id,
                satisfaction_score = raw,
                clamped,
                "support_tickets.satisfaction_score outside 1..=5: clamped"
            );
        }
        clamped
    })
}

/// Map a row selected with [`TICKET_COLUMNS`].
pub fn ticket_from_row(row: &PgRow) -> Result<SupportTicket> {
    const T: &str = "support_tickets";
    let id: i32 = row.try_get("id")?;
    Ok(SupportTicket {
        id,
        ticket_number: row.try_get("ticket_number")?,
        customer_id: row.try_get("customer_id")?,
        category: row.try_get("category")?,
        priority: parse_opt::<Urgency>(T, id, "priority", row.try_get("priority")?)?,
        subject: row.try_get("subject")?,
        description: row.try_get("description")?,
        resolution: row.try_get("resolution")?,
        satisfaction_score: satisfaction(id, row.try_get("satisfaction_score")?),
        ai_analysis: lenient_json::<TicketAnalysis>(T, id, row.try_get("ai_analysis")?),
        created_at: row.try_get("created_at")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

/// Map a row selected with [`SEGMENT_COLUMNS`].
pub fn segment_from_row(row: &PgRow) -> Result<CustomerSegmentAnalysis> {
    const T: &str = "customer_segments_analysis";
    let id: i32 = row.try_get("id")?;
    Ok(CustomerSegmentAnalysis {
        id,
        segment_name: row.try_get("segment_name")?,
        customer_count: row.try_get("customer_count")?,
        avg_lifetime_value: row.try_get("avg_lifetime_value")?,
        common_behaviors: row.try_get("common_behaviors")?,
        ai_profile: row.try_get("ai_profile")?,
        recommendations: lenient_json::<SegmentStrategies>(T, id, row.try_get("recommendations")?),
        last_updated: row.try_get("last_updated")?,
    })
}

fn map_all<T>(rows: Vec<PgRow>, f: fn(&PgRow) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

/// Every customer, by id.
pub async fn customers<'e>(db: impl PgExecutor<'e>) -> Result<Vec<Customer>> {
    let rows = sqlx::query(&format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers ORDER BY id"
    ))
    .fetch_all(db)
    .await?;
    map_all(rows, customer_from_row)
}

/// One customer.
pub async fn customer<'e>(db: impl PgExecutor<'e>, id: i32) -> Result<Option<Customer>> {
    sqlx::query(&format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(customer_from_row)
    .transpose()
}

/// Interactions at or after `since` (all when `None`), by id.
pub async fn interactions<'e>(
    db: impl PgExecutor<'e>,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<CustomerInteraction>> {
    let rows = sqlx::query(&format!(
        "SELECT {INTERACTION_COLUMNS} FROM customer_interactions \
         WHERE $1::timestamptz IS NULL OR timestamp >= $1 ORDER BY id"
    ))
    .bind(since)
    .fetch_all(db)
    .await?;
    map_all(rows, interaction_from_row)
}

/// Every review (optionally only one customer's), by id.
pub async fn reviews<'e>(
    db: impl PgExecutor<'e>,
    customer_id: Option<i32>,
) -> Result<Vec<ProductReview>> {
    let rows = sqlx::query(&format!(
        "SELECT {REVIEW_COLUMNS} FROM product_reviews \
         WHERE $1::int IS NULL OR customer_id = $1 ORDER BY id"
    ))
    .bind(customer_id)
    .fetch_all(db)
    .await?;
    map_all(rows, review_from_row)
}

/// One review.
pub async fn review<'e>(db: impl PgExecutor<'e>, id: i32) -> Result<Option<ProductReview>> {
    sqlx::query(&format!(
        "SELECT {REVIEW_COLUMNS} FROM product_reviews WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(review_from_row)
    .transpose()
}

/// Tickets created at or after `since` (all when `None`), by id.
pub async fn tickets<'e>(
    db: impl PgExecutor<'e>,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<SupportTicket>> {
    let rows = sqlx::query(&format!(
        "SELECT {TICKET_COLUMNS} FROM support_tickets \
         WHERE $1::timestamptz IS NULL OR created_at >= $1 ORDER BY id"
    ))
    .bind(since)
    .fetch_all(db)
    .await?;
    map_all(rows, ticket_from_row)
}

/// One ticket.
pub async fn ticket<'e>(db: impl PgExecutor<'e>, id: i32) -> Result<Option<SupportTicket>> {
    sqlx::query(&format!(
        "SELECT {TICKET_COLUMNS} FROM support_tickets WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(ticket_from_row)
    .transpose()
}

/// Every `customer_segments_analysis` row, by segment name.
pub async fn segment_analyses<'e>(db: impl PgExecutor<'e>) -> Result<Vec<CustomerSegmentAnalysis>> {
    let rows = sqlx::query(&format!(
        "SELECT {SEGMENT_COLUMNS} FROM customer_segments_analysis ORDER BY segment_name"
    ))
    .fetch_all(db)
    .await?;
    map_all(rows, segment_from_row)
}

/// Insert an interaction (the database fills `id` and `timestamp`); returns its id.
pub async fn insert_interaction<'e>(db: impl PgExecutor<'e>, new: &NewInteraction) -> Result<i32> {
    let (id,): (i32,) = sqlx::query_as(
        "INSERT INTO customer_interactions \
           (customer_id, interaction_type, channel, content, metadata, sentiment_score) \
         VALUES ($1, $2, $3, $4, $5, round($6::float8::numeric, 2)) RETURNING id",
    )
    .bind(new.customer_id)
    .bind(new.interaction_type.as_str())
    .bind(new.channel.as_str())
    .bind(new.content.as_deref())
    .bind(&new.metadata)
    .bind(new.sentiment_score)
    .fetch_one(db)
    .await?;
    Ok(id)
}
