//! The SQL aggregates equal the schema's `from_records` constructors over the same rows — the
//! in-memory path the analyses used before — on the seed's sample plus rows that exercise
//! every window, NULL, NaN and out-of-range case.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{exec, SEED_SAMPLE_DATA};
use sqlx::{PgConnection, PgPool};
use steadytext_pg::{aggregates, rows, MIGRATOR};
use steadytext_schema::churn::{ChurnInputs, CHURN_WINDOW_DAYS};
use steadytext_schema::recommendations::product_ratings;
use steadytext_schema::segments::segment_names;
use steadytext_schema::status::{ISSUE_WINDOW_DAYS, SENTIMENT_WINDOW_DAYS};
use steadytext_schema::{CustomerSnapshot, ExecutiveStats, SegmentStats};

/// Rows beyond the seed's sample: windows, NULLs, NaN, out-of-range scores, themes.
const ODD_ROWS: &str = "
INSERT INTO customers (email, segment, lifetime_value, churn_risk_score, last_active_date) VALUES
  ('quiet@example.com', 'budget', NULL, 0.71, NULL),
  ('nan@example.com', NULL, 'NaN', 'NaN', CURRENT_DATE - 3),
  ('edge@example.com', 'premium', 99.50, 0.70, NULL);
UPDATE customers SET churn_risk_score = 0.95 WHERE id = 1;
INSERT INTO customer_interactions (customer_id, interaction_type, channel, sentiment_score, timestamp) VALUES
  (1, 'review', 'web', 0.5, now() - interval '1 day'),
  (1, 'chat', 'web', -0.25, now() - interval '10 days'),
  (1, 'email', 'email', 1.0, now() - interval '200 days'),
  (2, 'support', 'ticket', 5.0, now() - interval '2 days'),
  (2, 'purchase', 'web', 'NaN', now() - interval '3 days'),
  (2, 'chat', NULL, NULL, now() - interval '40 days'),
  (3, NULL, NULL, -9.5, NULL),
  (NULL, 'chat', 'web', -1, now()),
  (6, 'review', 'web', -0.75, now() - interval '95 days');
UPDATE product_reviews SET key_themes = ARRAY['Quality', 'price'] WHERE id = 1;
UPDATE product_reviews SET key_themes = ARRAY['shipping', 'quality', 'packaging  damage'] WHERE id = 2;
INSERT INTO product_reviews (customer_id, product_id, rating, key_themes) VALUES
  (6, 104, 4, ARRAY['quality', 'Packaging damage']),
  (NULL, 105, 2, ARRAY['noise']),
  (4, 106, NULL, NULL);
UPDATE support_tickets SET satisfaction_score = 2 WHERE id = 1;
INSERT INTO support_tickets (ticket_number, customer_id, satisfaction_score, created_at, resolved_at) VALUES
  ('T-3', 2, NULL, now() - interval '5 days', now()),
  ('T-4', 2, 5, now() - interval '45 days', NULL),
  ('T-5', 3, 1, now() - interval '100 days', now()),
  ('T-6', 3, NULL, NULL, NULL),
  ('T-7', NULL, 4, now(), NULL);
";

/// Equal to the bit (`Debug` prints every `f64` exactly; NaN equals NaN here).
fn assert_same<T: std::fmt::Debug>(sql: &T, records: &T) {
    assert_eq!(format!("{sql:?}"), format!("{records:?}"));
}

async fn now(conn: &mut PgConnection) -> DateTime<Utc> {
    let (now,): (DateTime<Utc>,) = sqlx::query_as("SELECT now()")
        .fetch_one(conn)
        .await
        .unwrap();
    now
}

async fn sample(pool: &PgPool) {
    exec(pool, SEED_SAMPLE_DATA).await;
    exec(pool, ODD_ROWS).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn churn_inputs_equal_the_in_memory_aggregation(pool: PgPool) {
    sample(&pool).await;
    let mut tx = pool.begin().await.unwrap();
    let now = now(&mut tx).await;
    let from_sql = aggregates::churn_inputs(&mut tx, now).await.unwrap();
    let customers = rows::customers(&mut *tx).await.unwrap();
    let interactions = rows::interactions(&mut *tx, None).await.unwrap();
    let since = now - Duration::days(CHURN_WINDOW_DAYS);
    let tickets = rows::tickets(&mut *tx, Some(since)).await.unwrap();
    assert_eq!(from_sql.len(), 6);
    for ((c, inputs), expected) in from_sql.iter().zip(&customers) {
        assert_eq!(c.id, expected.id);
        let records = ChurnInputs::from_records(expected, &interactions, &tickets, now);
        assert_same(inputs, &records);
    }
    // Customer 2: the 5.0 score counts as 1, the NaN one not at all; three tickets in the
    // window, two with a satisfaction score.
    let two = &from_sql[1].1;
    assert_eq!(two.interaction_count, 3);
    assert_eq!(two.avg_sentiment, Some(1.0));
    assert_eq!((two.support_tickets, two.avg_satisfaction), (3, Some(3.5)));
    // Customer 3's interaction without a timestamp is activity today.
    assert_eq!(from_sql[2].1.last_active, Some(now.date_naive()));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn dashboard_snapshots_equal_the_in_memory_aggregation(pool: PgPool) {
    sample(&pool).await;
    let mut tx = pool.begin().await.unwrap();
    let now = now(&mut tx).await;
    let from_sql = aggregates::dashboard_snapshots(&mut tx, now).await.unwrap();
    let customers = rows::customers(&mut *tx).await.unwrap();
    let since = now - Duration::days(SENTIMENT_WINDOW_DAYS);
    let interactions = rows::interactions(&mut *tx, Some(since)).await.unwrap();
    let issues_since = now - Duration::days(ISSUE_WINDOW_DAYS);
    let tickets = rows::tickets(&mut *tx, Some(issues_since)).await.unwrap();
    assert_eq!(from_sql.len(), customers.len());
    for ((_, snapshot), c) in from_sql.iter().zip(&customers) {
        let records = CustomerSnapshot::from_records(c, &interactions, &tickets, now);
        assert_same(snapshot, &records);
    }
    let two = &from_sql[1].1;
    assert_eq!((two.interaction_count, two.issue_count), (3, 2));
    assert_eq!(
        two.avg_satisfaction,
        Some(2.5),
        "a missing score counts as 3"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn segment_stats_equal_the_in_memory_aggregation(pool: PgPool) {
    sample(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let from_sql = aggregates::segment_stats(&mut conn).await.unwrap();
    let customers = rows::customers(&mut *conn).await.unwrap();
    let interactions = rows::interactions(&mut *conn, None).await.unwrap();
    let reviews = rows::reviews(&mut *conn, None).await.unwrap();
    let records: Vec<SegmentStats> = segment_names(&customers)
        .iter()
        .map(|name| SegmentStats::from_records(name, &customers, &interactions, &reviews))
        .collect();
    assert_same(&from_sql, &records);
    let premium = from_sql
        .iter()
        .find(|s| s.segment_name == "premium")
        .unwrap();
    assert_eq!(premium.customer_count, 2);
    assert_eq!(
        premium.common_themes[0], "Quality",
        "the tie goes to the first spelling"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn product_ratings_equal_the_in_memory_aggregation(pool: PgPool) {
    sample(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let customers = rows::customers(&mut *conn).await.unwrap();
    let reviews = rows::reviews(&mut *conn, None).await.unwrap();
    for segment in [None, Some("premium"), Some("budget"), Some("nobody")] {
        let from_sql = aggregates::product_ratings(&mut conn, segment)
            .await
            .unwrap();
        assert_same(&from_sql, &product_ratings(&reviews, &customers, segment));
    }
    let all = aggregates::product_ratings(&mut conn, None).await.unwrap();
    let ids: Vec<i32> = all.iter().map(|p| p.product_id).collect();
    assert_eq!(ids, [101, 102, 103, 104, 105], "106 has no rating");
    let premium = aggregates::product_ratings(&mut conn, Some("premium"))
        .await
        .unwrap();
    let ids: Vec<i32> = premium.iter().map(|p| p.product_id).collect();
    assert_eq!(
        ids,
        [101, 104],
        "John's 101 and the premium customer 6's 104"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn executive_stats_equal_the_in_memory_aggregation(pool: PgPool) {
    sample(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let from_sql = aggregates::executive_stats(&mut conn).await.unwrap();
    let customers = rows::customers(&mut *conn).await.unwrap();
    let reviews = rows::reviews(&mut *conn, None).await.unwrap();
    let tickets = rows::tickets(&mut *conn, None).await.unwrap();
    assert_same(
        &from_sql,
        &ExecutiveStats::from_records(&customers, &reviews, &tickets),
    );
    assert_eq!(
        from_sql.high_risk_customers, 2,
        "0.95 and 0.71; not 0.70, not NaN"
    );
    assert_eq!((from_sql.total_reviews, from_sql.open_tickets), (6, 5));
}
