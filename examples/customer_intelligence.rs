//! The seed tutorial's customer intelligence, end to end, as library calls over PostgreSQL.
//!
//! ```sh
//! cargo run --release --features pg --example customer_intelligence            # $DATABASE_URL
//! cargo run --release --features pg --example customer_intelligence -- postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! Migrates, loads the seed's sample rows (idempotently: reruns insert nothing), lets a
//! [`Worker`] analyse the reviews and tickets the inserts enqueued (as `steadytext worker` would
//! in production), then runs churn scoring, segment profiles, the sentiment dashboard,
//! recommendations for the first sample customer, the executive summary and the daily
//! sentiment trend. Results are cached in the database too (`PgCache`), so a rerun is fast.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use steadytext::pg::sqlx;
use steadytext::pg::{
    AnalysisJobHandler, Intelligence, PgCache, Store, TrendBucket, Worker, WorkerConfig,
};
use steadytext::Engine;

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let store = Store::connect(&url).await?;
    store.migrate().await?;

    // The default model, the default memory + disk cache, and the database's shared cache tier.
    let builder = Engine::builder();
    let cache = builder
        .build_cache()
        .with_tier(Arc::new(PgCache::new(store.pool().clone())));
    let engine = Engine::new(Arc::new(builder.build_backend()?), cache);
    let intel = Arc::new(Intelligence::new(store.clone(), engine));

    let load = intel.load_seed_sample().await?;
    println!(
        "inserted {} customers, {} reviews, {} tickets",
        load.customers, load.reviews, load.tickets
    );

    // A worker analyses the queued review/ticket jobs; stop it once the queue is drained.
    let queue = store.queue();
    let worker = Worker::new(
        store.clone(),
        Arc::new(AnalysisJobHandler::new(intel.clone())),
        WorkerConfig {
            concurrency: 1,
            kinds: AnalysisJobHandler::KINDS.map(String::from).to_vec(),
            ..WorkerConfig::default()
        },
    );
    let report = worker
        .run(async move {
            loop {
                match queue.stats().await {
                    Ok(s) if s.ready == 0 && s.leased == 0 => return,
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        })
        .await?;
    println!("worker analysed {} reviews/tickets", report.completed);

    for r in steadytext::pg::rows::reviews(store.pool(), None).await? {
        println!(
            "review {}: {:?} — {}",
            r.id,
            r.sentiment.map(|s| s.to_string()),
            r.ai_summary.unwrap_or_default()
        );
    }

    println!("\n-- churn risk above 0.3 --");
    for c in intel.calculate_churn_risk().await? {
        println!(
            "customer {}: {:.2} -> {}",
            c.customer_id, c.risk.score, c.strategy
        );
    }

    println!("\n-- segments --");
    for s in intel.analyze_customer_segments().await? {
        let names: Vec<&str> = s
            .strategies
            .strategies
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        println!(
            "{} ({} customers): strategies {}",
            s.segment_name,
            s.customer_count,
            names.join(" | ")
        );
    }

    println!("\n-- sentiment dashboard --");
    for d in intel.sentiment_dashboard().await? {
        println!(
            "customer {}: {} ({} interactions) — {}",
            d.snapshot.customer_id, d.snapshot.status, d.snapshot.interaction_count, d.insight
        );
    }

    let (john,): (i32,) = sqlx::query_as("SELECT id FROM customers WHERE email = $1")
        .bind("john.doe@email.com")
        .fetch_one(store.pool())
        .await?;
    println!("\n-- recommendations for customer {john} --");
    for r in intel
        .customer_recommendations(john, 5)
        .await?
        .recommendations
    {
        println!("[{}] {}: {}", r.priority, r.recommendation_type, r.title);
    }

    let summary = intel.executive_summary().await?;
    println!(
        "\n-- executive summary --\n{}\n{}",
        serde_json::to_string(&summary.stats)?,
        summary.insights
    );

    println!("\n-- sentiment per segment per day --");
    for t in intel.sentiment_trends(TrendBucket::Day).await? {
        println!(
            "{} {:?}: {:+.2} ({} interactions)",
            t.bucket_start.date_naive(),
            t.segment,
            t.avg_sentiment,
            t.interactions
        );
    }
    Ok(())
}
