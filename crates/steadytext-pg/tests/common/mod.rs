//! Shared test helpers.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Transaction};
use steadytext_pg::{Job, JobError, JobHandler};

pub const SEED_SCHEMA: &str = include_str!("../fixtures/seed_schema.sql");
pub const SEED_SAMPLE_DATA: &str = include_str!("../fixtures/seed_sample_data.sql");
pub const SEED_FUNCTIONS: &str = include_str!("../fixtures/seed_functions.sql");
pub const LLM_STUBS: &str = include_str!("../fixtures/llm_stubs.sql");

/// The job's effect: one `customer_interactions` row whose content is the job id, written in
/// the job's transaction.
pub async fn write_effect(
    job: &Job,
    tx: &mut Transaction<'_, Postgres>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO customer_interactions (interaction_type, channel, content, metadata) \
         VALUES ('review', 'web', $1, $2)",
    )
    .bind(job.id.to_string())
    .bind(&job.payload)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// (effect rows, distinct job ids among them).
pub async fn effects(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT content) FROM customer_interactions")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A handler that writes one effect row per job.
pub struct EffectHandler;

#[async_trait]
impl JobHandler for EffectHandler {
    async fn handle(&self, job: &Job, tx: &mut Transaction<'_, Postgres>) -> Result<(), JobError> {
        write_effect(job, tx).await?;
        Ok(())
    }
}

/// Poll `check` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Insert `n` reviews by plain SQL (each enqueues an `analyze_review` job via the trigger).
pub async fn insert_reviews(pool: &PgPool, n: i32) {
    sqlx::query(
        "INSERT INTO product_reviews (product_id, rating, title, review_text) \
         SELECT 100 + i, 1 + i % 5, 'title ' || i, 'review text ' || i \
         FROM generate_series(1, $1) AS i",
    )
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}
