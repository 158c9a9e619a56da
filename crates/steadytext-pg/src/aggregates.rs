//! The inputs of the company-wide analyses, aggregated by PostgreSQL: one row per customer (or
//! one row in all) of counts, sums and maxima, instead of every interaction, review and ticket
//! loaded into the process.
//!
//! | analysis | here | scored by |
//! |---|---|---|
//! | churn risk | [`churn_inputs`]: per customer, last interaction, interactions / scored sentiment / tickets / satisfaction in the 90-day window | [`steadytext_schema::churn::churn_risk`] |
//! | dashboard | [`dashboard_snapshots`]: per customer, the 90-day interactions and the 30-day issues | [`steadytext_schema::status::customer_status`] |
//! | segment profiles | [`segment_stats`]: per segment, customers, interactions, reviews, and review themes by name | [`steadytext_schema::segments::common_themes_counted`] |
//! | executive summary | [`executive_stats`]: table counts, sums, and the stored churn scores by value | [`steadytext_schema::churn::is_high_risk_score`] |
//!
//! The SQL only filters, counts, sums and takes maxima; every rule (windows, thresholds, how a
//! missing value counts) comes from [`steadytext_schema`]: windows and the missing-satisfaction
//! value are bound as parameters, thresholds are applied in Rust. The results equal the
//! schema's `from_records` constructors over the same rows (tests/aggregates.rs checks both
//! paths against each other), with the same handling of odd data: sentiment scores are clamped
//! to `[-1, 1]` and satisfaction scores to `1..=5` (a missing one stays missing: SQL's
//! `GREATEST` would turn NULL into 1; as
//! [`SupportTicket::satisfaction`](steadytext_schema::SupportTicket::satisfaction)) before
//! averaging, and NaN scores are skipped, as
//! [`average_sentiment`](steadytext_schema::sentiment::average_sentiment) does. One difference
//! in the last bit: sums of `DECIMAL` columns are exact here (then divided once), where the
//! in-memory path adds `f64`s in row order; on scores that are multiples of 1/2 — every score
//! this crate writes — both are exact.

use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use steadytext_schema::aspects::count_topics_counted;
use steadytext_schema::churn::{
    customer_last_active, is_high_risk_score, ChurnInputs, CHURN_REPORT_THRESHOLD,
    CHURN_WINDOW_DAYS,
};
use steadytext_schema::segments::common_themes_counted;
use steadytext_schema::status::{
    customer_status, ISSUE_WINDOW_DAYS, MISSING_SATISFACTION, SENTIMENT_WINDOW_DAYS,
};
use steadytext_schema::Polarity;
use steadytext_schema::{
    Customer, CustomerSnapshot, ExecutiveStats, InteractionType, SegmentStats,
};

use steadytext_schema::recommendations::{ProductRating, ProductScope};

use crate::error::{PgError, Result};
use crate::rows::{customer_from_row, CUSTOMER_COLUMNS};

/// `sum / n`, `None` when nothing was counted.
fn mean(sum: Option<f64>, n: i64) -> Option<f64> {
    match sum {
        Some(s) if n > 0 => Some(s / n as f64),
        _ => None,
    }
}

fn parse_types(values: Vec<String>, whose: &str) -> Result<Vec<InteractionType>> {
    let mut types = values
        .into_iter()
        .map(|t| {
            t.parse::<InteractionType>().map_err(|e| PgError::BadRow {
                table: "customer_interactions",
                id: 0,
                reason: format!("interaction_type of {whose}: {e}"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    types.sort();
    types.dedup();
    Ok(types)
}

fn count(row: &PgRow, column: &str) -> Result<u64> {
    let n: Option<i64> = row.try_get(column)?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// Every customer (by id) with its churn inputs as of `now`. `now` should be the database's
/// clock in the same transaction (`SELECT now()`): interactions without a timestamp count as
/// happening at `now()`, as the row mapping reads them.
pub async fn churn_inputs(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> Result<Vec<(Customer, ChurnInputs)>> {
    let window_start = now - Duration::days(CHURN_WINDOW_DAYS);
    let rows = sqlx::query(&format!(
        "SELECT c.*, i.last_interaction, i.interactions, i.sentiment_sum, i.sentiment_n, \
                t.tickets, t.satisfaction_sum, t.satisfaction_n \
         FROM (SELECT {CUSTOMER_COLUMNS} FROM customers) c \
         LEFT JOIN ( \
           SELECT customer_id AS owner, \
                  max(COALESCE(timestamp, now())) AS last_interaction, \
                  count(*) FILTER (WHERE COALESCE(timestamp, now()) > $1) AS interactions, \
                  (sum(LEAST(GREATEST(sentiment_score, -1), 1)) \
                    FILTER (WHERE COALESCE(timestamp, now()) > $1 AND sentiment_score <> 'NaN') \
                  )::float8 AS sentiment_sum, \
                  count(sentiment_score) \
                    FILTER (WHERE COALESCE(timestamp, now()) > $1 AND sentiment_score <> 'NaN') \
                    AS sentiment_n \
           FROM customer_interactions WHERE customer_id IS NOT NULL GROUP BY customer_id \
         ) i ON i.owner = c.id \
         LEFT JOIN ( \
           SELECT customer_id AS owner, count(*) AS tickets, \
                  sum(CASE WHEN satisfaction_score IS NOT NULL \
                    THEN LEAST(GREATEST(satisfaction_score, 1), 5) END)::float8 \
                    AS satisfaction_sum, \
                  count(satisfaction_score) AS satisfaction_n \
           FROM support_tickets WHERE customer_id IS NOT NULL AND created_at > $1 \
           GROUP BY customer_id \
         ) t ON t.owner = c.id \
         ORDER BY c.id"
    ))
    .bind(window_start)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let customer = customer_from_row(row)?;
            let last_interaction: Option<DateTime<Utc>> = row.try_get("last_interaction")?;
            let inputs = ChurnInputs {
                as_of: now.date_naive(),
                last_active: customer_last_active(&customer, last_interaction),
                interaction_count: count(row, "interactions")?,
                avg_sentiment: mean(
                    row.try_get("sentiment_sum")?,
                    row.try_get::<Option<i64>, _>("sentiment_n")?.unwrap_or(0),
                ),
                support_tickets: count(row, "tickets")?,
                avg_satisfaction: mean(
                    row.try_get("satisfaction_sum")?,
                    row.try_get::<Option<i64>, _>("satisfaction_n")?
                        .unwrap_or(0),
                ),
                lifetime_value: customer.lifetime_value,
            };
            Ok((customer, inputs))
        })
        .collect()
}

/// Every customer (by id) with its dashboard row as of `now` (the database's clock, as for
/// [`churn_inputs`]): interactions of the last [`SENTIMENT_WINDOW_DAYS`], tickets of the last
/// [`ISSUE_WINDOW_DAYS`] (rows without a timestamp are outside every window here).
///
/// # Errors
/// [`PgError::BadRow`] if an interaction type in the window is outside its set.
pub async fn dashboard_snapshots(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> Result<Vec<(Customer, CustomerSnapshot)>> {
    let rows = sqlx::query(&format!(
        "SELECT c.*, i.interactions, i.sentiment_sum, i.sentiment_n, i.last_interaction, \
                i.interaction_types, t.issues, t.satisfaction_sum \
         FROM (SELECT {CUSTOMER_COLUMNS} FROM customers) c \
         LEFT JOIN ( \
           SELECT customer_id AS owner, count(*) AS interactions, \
                  (sum(LEAST(GREATEST(sentiment_score, -1), 1)) \
                    FILTER (WHERE sentiment_score <> 'NaN'))::float8 AS sentiment_sum, \
                  count(sentiment_score) FILTER (WHERE sentiment_score <> 'NaN') AS sentiment_n, \
                  max(timestamp) AS last_interaction, \
                  array_agg(DISTINCT interaction_type::text) \
                    FILTER (WHERE interaction_type IS NOT NULL) AS interaction_types \
           FROM customer_interactions \
           WHERE customer_id IS NOT NULL AND timestamp > $1 GROUP BY customer_id \
         ) i ON i.owner = c.id \
         LEFT JOIN ( \
           SELECT customer_id AS owner, count(*) AS issues, \
                  sum(COALESCE((CASE WHEN satisfaction_score IS NOT NULL \
                    THEN LEAST(GREATEST(satisfaction_score, 1), 5) END)::float8, $3)) \
                    AS satisfaction_sum \
           FROM support_tickets WHERE customer_id IS NOT NULL AND created_at > $2 \
           GROUP BY customer_id \
         ) t ON t.owner = c.id \
         ORDER BY c.id"
    ))
    .bind(now - Duration::days(SENTIMENT_WINDOW_DAYS))
    .bind(now - Duration::days(ISSUE_WINDOW_DAYS))
    .bind(MISSING_SATISFACTION)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let customer = customer_from_row(row)?;
            let types = parse_types(
                row.try_get::<Option<Vec<String>>, _>("interaction_types")?
                    .unwrap_or_default(),
                &format!("customer {}", customer.id),
            )?;
            let avg_sentiment = mean(
                row.try_get("sentiment_sum")?,
                row.try_get::<Option<i64>, _>("sentiment_n")?.unwrap_or(0),
            );
            let issue_count = count(row, "issues")?;
            let snapshot = CustomerSnapshot {
                customer_id: customer.id,
                segment: customer.segment.clone(),
                avg_sentiment,
                interaction_count: count(row, "interactions")?,
                last_interaction: row.try_get("last_interaction")?,
                interaction_types: types,
                issue_count,
                avg_satisfaction: mean(row.try_get("satisfaction_sum")?, issue_count as i64),
                status: customer_status(avg_sentiment, issue_count),
            };
            Ok((customer, snapshot))
        })
        .collect()
}

/// Every segment's numbers (customers with a non-NULL segment, segments in byte order as
/// [`segment_names`](steadytext_schema::segments::segment_names) sorts them), in one statement:
/// all of the members' interactions and reviews (no window), and their review themes counted
/// by spelling.
///
/// # Errors
/// [`PgError::BadRow`] if a member's interaction type is outside its set.
pub async fn segment_stats(conn: &mut PgConnection) -> Result<Vec<SegmentStats>> {
    let rows = sqlx::query(
        "WITH members AS ( \
           SELECT id, segment, COALESCE(lifetime_value, 0) AS ltv, \
                  churn_risk_score::float8 AS risk FROM customers \
           WHERE segment IS NOT NULL), \
         seg AS ( \
           SELECT segment, count(*) AS customers, \
                  count(*) FILTER (WHERE risk > $1 AND risk <> 'NaN') AS at_risk, \
                  (sum(ltv) FILTER (WHERE ltv <> 'NaN'))::float8 AS ltv_sum, \
                  count(*) FILTER (WHERE ltv <> 'NaN') AS ltv_n \
           FROM members GROUP BY segment), \
         inter AS ( \
           SELECT m.segment, \
                  (sum(LEAST(GREATEST(ci.sentiment_score, -1), 1)) \
                    FILTER (WHERE ci.sentiment_score <> 'NaN'))::float8 AS sentiment_sum, \
                  count(ci.sentiment_score) FILTER (WHERE ci.sentiment_score <> 'NaN') \
                    AS sentiment_n, \
                  array_agg(DISTINCT ci.interaction_type::text) \
                    FILTER (WHERE ci.interaction_type IS NOT NULL) AS interaction_types \
           FROM customer_interactions ci JOIN members m ON m.id = ci.customer_id \
           GROUP BY m.segment), \
         rev AS ( \
           SELECT m.segment, count(*) AS reviews, sum(r.rating)::float8 AS rating_sum, \
                  count(r.rating) AS rating_n \
           FROM product_reviews r JOIN members m ON m.id = r.customer_id GROUP BY m.segment), \
         themes AS ( \
           SELECT segment, array_agg(theme ORDER BY theme) AS themes, \
                  array_agg(n ORDER BY theme) AS theme_counts \
           FROM (SELECT m.segment, t.theme, count(*) AS n \
                 FROM product_reviews r JOIN members m ON m.id = r.customer_id, \
                      unnest(r.key_themes) AS t(theme) \
                 WHERE t.theme IS NOT NULL GROUP BY 1, 2) x \
           GROUP BY segment), \
         topics AS ( \
           SELECT segment, array_agg(category ORDER BY category, polarity) AS topic_categories, \
                  array_agg(polarity ORDER BY category, polarity) AS topic_polarities, \
                  array_agg(n ORDER BY category, polarity) AS topic_counts \
           FROM (SELECT m.segment, a->>'category' AS category, a->>'polarity' AS polarity, \
                        count(*) AS n \
                 FROM product_reviews r JOIN members m ON m.id = r.customer_id, \
                      jsonb_array_elements(r.review_aspects) AS a \
                 WHERE a->>'category' IS NOT NULL AND a->>'polarity' IS NOT NULL \
                 GROUP BY 1, 2, 3) y \
           GROUP BY segment) \
         SELECT seg.segment, seg.customers, seg.at_risk, seg.ltv_sum, seg.ltv_n, inter.sentiment_sum, \
                inter.sentiment_n, inter.interaction_types, rev.reviews, rev.rating_sum, \
                rev.rating_n, themes.themes, themes.theme_counts, topics.topic_categories, \
                topics.topic_polarities, topics.topic_counts \
         FROM seg LEFT JOIN inter USING (segment) LEFT JOIN rev USING (segment) \
              LEFT JOIN themes USING (segment) LEFT JOIN topics USING (segment)",
    )
    .bind(CHURN_REPORT_THRESHOLD)
    .fetch_all(conn)
    .await?;
    let mut stats = rows
        .iter()
        .map(|row| {
            let name: String = row.try_get("segment")?;
            let themes: Vec<String> = row
                .try_get::<Option<Vec<String>>, _>("themes")?
                .unwrap_or_default();
            let theme_counts: Vec<i64> = row
                .try_get::<Option<Vec<i64>>, _>("theme_counts")?
                .unwrap_or_default();
            Ok(SegmentStats {
                customer_count: count(row, "customers")?,
                avg_lifetime_value: mean(row.try_get("ltv_sum")?, row.try_get("ltv_n")?),
                avg_sentiment: mean(
                    row.try_get("sentiment_sum")?,
                    row.try_get::<Option<i64>, _>("sentiment_n")?.unwrap_or(0),
                ),
                interaction_types: parse_types(
                    row.try_get::<Option<Vec<String>>, _>("interaction_types")?
                        .unwrap_or_default(),
                    &format!("segment {name:?}"),
                )?,
                review_count: count(row, "reviews")?,
                avg_rating: mean(
                    row.try_get("rating_sum")?,
                    row.try_get::<Option<i64>, _>("rating_n")?.unwrap_or(0),
                ),
                common_themes: common_themes_counted(
                    themes
                        .iter()
                        .map(String::as_str)
                        .zip(theme_counts.iter().map(|n| (*n).max(0) as u64)),
                ),
                topics: {
                    let cats: Vec<String> = row
                        .try_get::<Option<Vec<String>>, _>("topic_categories")?
                        .unwrap_or_default();
                    let pols: Vec<String> = row
                        .try_get::<Option<Vec<String>>, _>("topic_polarities")?
                        .unwrap_or_default();
                    let ns: Vec<i64> = row
                        .try_get::<Option<Vec<i64>>, _>("topic_counts")?
                        .unwrap_or_default();
                    let mut counted = Vec::new();
                    for ((c, p), n) in cats.iter().zip(&pols).zip(&ns) {
                        let polarity: Polarity = p.parse().map_err(|_| PgError::BadRow {
                            table: "product_reviews",
                            id: 0,
                            reason: format!("review_aspects polarity {p:?}"),
                        })?;
                        counted.push((c.as_str(), polarity, (*n).max(0) as u64));
                    }
                    count_topics_counted(counted)
                },
                at_risk_customers: count(row, "at_risk")?,
                segment_name: name,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    stats.sort_by(|a, b| a.segment_name.cmp(&b.segment_name));
    Ok(stats)
}

/// Every product's ratings (rated reviews with a product, grouped by `product_id`, by id):
/// reviews by customers of `segment`, or with `None` by anyone — the SQL form of
/// [`steadytext_schema::recommendations::product_ratings`].
pub async fn product_ratings(
    conn: &mut PgConnection,
    segment: Option<&str>,
) -> Result<Vec<ProductRating>> {
    let rows = sqlx::query(
        "SELECT r.product_id, sum(r.rating)::float8 / count(*)::float8 AS avg_rating, \
                count(*) AS reviews \
         FROM product_reviews r LEFT JOIN customers c ON c.id = r.customer_id \
         WHERE r.product_id IS NOT NULL AND r.rating IS NOT NULL \
           AND ($1::text IS NULL OR c.segment = $1) \
         GROUP BY r.product_id ORDER BY r.product_id",
    )
    .bind(segment)
    .fetch_all(conn)
    .await?;
    let scope = if segment.is_some() {
        ProductScope::Segment
    } else {
        ProductScope::AllCustomers
    };
    rows.iter()
        .map(|row| {
            Ok(ProductRating {
                product_id: row.try_get("product_id")?,
                avg_rating: row.try_get("avg_rating")?,
                reviews: count(row, "reviews")?,
                scope,
            })
        })
        .collect()
}

/// The executive summary's numbers, each over its own table, in one statement (one snapshot).
pub async fn executive_stats(conn: &mut PgConnection) -> Result<ExecutiveStats> {
    let row = sqlx::query(
        "WITH risk AS ( \
           SELECT churn_risk_score::float8 AS score, count(*) AS n FROM customers \
           WHERE churn_risk_score IS NOT NULL GROUP BY 1) \
         SELECT (SELECT count(*) FROM customers) AS customers, \
                (SELECT sum(v)::float8 FROM (SELECT COALESCE(lifetime_value, 0) AS v \
                   FROM customers) x WHERE v <> 'NaN') AS ltv_sum, \
                (SELECT count(*) FROM customers \
                   WHERE COALESCE(lifetime_value, 0) <> 'NaN') AS ltv_n, \
                (SELECT count(*) FROM product_reviews) AS reviews, \
                (SELECT sum(rating)::float8 FROM product_reviews) AS rating_sum, \
                (SELECT count(rating) FROM product_reviews) AS rating_n, \
                (SELECT count(*) FROM support_tickets WHERE resolved_at IS NULL) AS open_tickets, \
                (SELECT array_agg(score ORDER BY score) FROM risk) AS risk_scores, \
                (SELECT array_agg(n ORDER BY score) FROM risk) AS risk_counts",
    )
    .fetch_one(conn)
    .await?;
    let scores: Vec<f64> = row
        .try_get::<Option<Vec<f64>>, _>("risk_scores")?
        .unwrap_or_default();
    let counts: Vec<i64> = row
        .try_get::<Option<Vec<i64>>, _>("risk_counts")?
        .unwrap_or_default();
    let high_risk_customers = scores
        .iter()
        .zip(&counts)
        .filter(|(s, _)| is_high_risk_score(Some(**s)))
        .map(|(_, n)| (*n).max(0) as u64)
        .sum();
    Ok(ExecutiveStats {
        total_customers: count(&row, "customers")?,
        high_risk_customers,
        avg_lifetime_value: mean(row.try_get("ltv_sum")?, row.try_get("ltv_n")?),
        total_reviews: count(&row, "reviews")?,
        avg_rating: mean(row.try_get("rating_sum")?, row.try_get("rating_n")?),
        open_tickets: count(&row, "open_tickets")?,
    })
}
