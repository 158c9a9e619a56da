//! The seed's functions over a real database and the real default model.
//!
//! The views' insight refreshes, which data changes also enqueue, are switched off in these
//! databases (`steadytext.config`): the tests count the jobs and effects of other kinds.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgPool, Postgres};
use steadytext_core::cache::{CacheStore, MemoryStore};
use steadytext_core::{Backend, Cache, Engine, GenerateOptions, LocalBackend};
use steadytext_pg::progress::{STAGE_CHURN, STAGE_PENDING, STAGE_SEGMENTS};
use steadytext_pg::{
    rows, AnalysisJobHandler, Intelligence, PgCache, Store, TrendBucket, MIGRATOR,
};

fn backend() -> Arc<LocalBackend> {
    static BACKEND: OnceLock<Arc<LocalBackend>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            Arc::new(
                Engine::builder()
                    .build_backend()
                    .expect("model loads (run scripts/fetch-model)"),
            )
        })
        .clone()
}

/// One model and one in-memory cache per test binary: later tests reuse earlier results.
fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            Engine::new(
                backend() as Arc<dyn Backend>,
                Cache::new(vec![Arc::new(MemoryStore::new(64 << 20))]),
            )
        })
        .clone()
}

/// Model-heavy tests run one at a time (parallel decoding on 2 cores only oversubscribes).
async fn model_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

fn intel(pool: &PgPool) -> Arc<Intelligence> {
    Arc::new(Intelligence::new(Store::from_pool(pool.clone()), engine()))
}

/// Interactions per review id (review interactions only).
async fn review_interactions(pool: &PgPool) -> Vec<(i32, i64)> {
    sqlx::query_as(
        "SELECT r.id, count(ci.id) FROM product_reviews r \
         LEFT JOIN customer_interactions ci \
           ON ci.interaction_type = 'review' AND ci.metadata->>'review_id' = r.id::text \
         GROUP BY r.id ORDER BY r.id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn every_seed_function_on_the_sample(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let intel = intel(&pool);
    let started = Instant::now();

    let load = intel.load_seed_sample().await.unwrap();
    assert_eq!((load.customers, load.reviews, load.tickets), (3, 3, 2));
    let again = intel.load_seed_sample().await.unwrap();
    assert_eq!((again.customers, again.reviews, again.tickets), (0, 0, 0));

    // The inserts enqueued 5 analysis jobs; run them.
    let processed = intel.process_pending().await.unwrap();
    assert_eq!((processed.completed, processed.failed), (5, 0));
    eprintln!("reviews + tickets analysed in {:?}", started.elapsed());

    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM product_reviews WHERE sentiment IS NULL OR ai_summary IS NULL OR key_themes IS NULL").await,
        0
    );
    assert!(review_interactions(&pool)
        .await
        .iter()
        .all(|(_, n)| *n == 1));
    let tickets: Vec<(Option<String>, serde_json::Value)> =
        sqlx::query_as("SELECT priority, ai_analysis FROM support_tickets ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(tickets.len(), 2);
    for (priority, analysis) in &tickets {
        let keys: std::collections::BTreeSet<&str> = analysis
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "category",
                "follow_up_needed",
                "root_cause",
                "rules",
                "sentiment",
                "suggested_resolution",
                "tags",
                "urgency"
            ]
            .into_iter()
            .collect(),
            "the seed's six keys, plus the category and the rules that fired"
        );
        assert_eq!(priority.as_deref(), analysis["urgency"].as_str());
    }
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM customer_interactions WHERE interaction_type = 'support' AND channel = 'ticket' AND metadata ? 'ticket_id'").await,
        2
    );

    // Re-analysis replaces, never duplicates.
    let first = intel.analyze_review(1).await.unwrap();
    let second = intel.analyze_review(1).await.unwrap();
    assert_eq!(first, second, "deterministic");
    intel.analyze_ticket(1).await.unwrap();
    assert!(review_interactions(&pool)
        .await
        .iter()
        .all(|(_, n)| *n == 1));
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM customer_interactions").await,
        5
    );
    assert!(matches!(
        intel.analyze_review(999).await,
        Err(steadytext_pg::PgError::NotFound { .. })
    ));

    eprintln!("reanalysis done at {:?}", started.elapsed());
    // Churn: every customer scored and stored.
    let reports = intel.calculate_churn_risk().await.unwrap();
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM customers WHERE churn_risk_score IS NULL"
        )
        .await,
        0
    );
    assert!(reports
        .iter()
        .all(|r| r.risk.score > 0.3 && !r.strategy.is_empty()));

    eprintln!("churn done at {:?}", started.elapsed());
    // Segments: 3 rows, exactly 3 strategies each; rerunning replaces them.
    for _ in 0..2 {
        let profiles = intel.analyze_customer_segments().await.unwrap();
        assert_eq!(profiles.len(), 3);
    }
    let segs: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT segment_name, recommendations FROM customer_segments_analysis ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(segs.len(), 3);
    for (name, rec) in &segs {
        assert_eq!(rec["strategies"].as_array().unwrap().len(), 3, "{name}");
    }

    eprintln!("segments done at {:?}", started.elapsed());
    // Dashboard: every customer, even one without interactions.
    exec(
        &pool,
        "INSERT INTO customers (email, segment) VALUES ('quiet@example.com', 'budget')",
    )
    .await;
    let dashboard = intel.sentiment_dashboard().await.unwrap();
    assert_eq!(dashboard.len(), 4);
    assert!(dashboard.iter().all(|d| !d.insight.is_empty()));
    let quiet = dashboard.last().unwrap();
    assert_eq!(quiet.snapshot.interaction_count, 0);

    eprintln!("dashboard done at {:?}", started.elapsed());
    // Another premium customer rates product 104 highly: it is recommended to customer 1 (who
    // has not reviewed it); 101 (their own) and 102/103 (rated low) are not.
    exec(
        &pool,
        "INSERT INTO customers (email, segment) VALUES ('fan@example.com', 'premium'); \
         INSERT INTO product_reviews (customer_id, product_id, rating) \
           SELECT id, 104, 5 FROM customers WHERE email = 'fan@example.com'",
    )
    .await;
    let recs = intel.customer_recommendations(1, 5).await.unwrap();
    assert!(!recs.recommendations.is_empty() && recs.recommendations.len() <= 5);
    let products: Vec<Option<i32>> = recs
        .recommendations
        .iter()
        .filter(|r| r.recommendation_type == steadytext_schema::RecommendationType::Product)
        .map(|r| r.product_id)
        .collect();
    assert_eq!(products, [Some(104)], "{:?}", recs.recommendations);
    assert_eq!(recs.recommendations[0].title, "Product 104");
    assert!(recs.recommendations[0]
        .description
        .contains("customers in the premium segment"));
    assert!(recs
        .recommendations
        .iter()
        .filter(|r| r.product_id.is_none())
        .all(|r| r.play.is_some()));
    assert!(recs
        .recommendations
        .windows(2)
        .all(|w| w[0].priority <= w[1].priority));

    eprintln!("recommendations done at {:?}", started.elapsed());
    let summary = intel.executive_summary().await.unwrap();
    assert_eq!(summary.stats.total_customers, 5);
    assert_eq!(summary.stats.total_reviews, 4);
    assert_eq!(summary.stats.open_tickets, 2);
    assert!(!summary.insights.is_empty());

    eprintln!("executive done at {:?}", started.elapsed());
    let trends = intel.sentiment_trends(TrendBucket::Day).await.unwrap();
    assert_eq!(trends.iter().map(|t| t.interactions).sum::<i64>(), 5);
    assert_eq!(trends.len(), 3, "{trends:?}"); // one bucket today, three segments
    let weekly = intel.sentiment_trends(TrendBucket::Week).await.unwrap();
    assert_eq!(weekly.len(), 3);
    eprintln!("all seed functions in {:?}", started.elapsed());
}

/// A review inserted by plain SQL is analysed by a running Worker: exactly one interaction.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_running_worker_analyses_a_review_inserted_by_sql(
    _opts: sqlx::pool::PoolOptions<Postgres>,
    connect: PgConnectOptions,
) {
    let pool = pool_with(connect, 8).await;
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let intel = intel(&pool);
    let mut config = worker_config("analyst");
    config.concurrency = 1;
    config.kinds = AnalysisJobHandler::KINDS.map(String::from).to_vec();
    let worker = RunningWorker::spawn(
        &pool,
        Arc::new(AnalysisJobHandler::new(intel.clone())),
        config,
    );
    exec(
        &pool,
        "INSERT INTO customers (email, segment) VALUES ('a@example.com', 'premium')",
    )
    .await;
    exec(&pool, "INSERT INTO product_reviews (customer_id, product_id, rating, title, review_text) \
         VALUES (1, 101, 1, 'Very disappointed', 'Product broke after just one week of use. Customer support was unhelpful and refused to honor the warranty. Will not buy from this company again.')").await;
    let analysed = || async {
        scalar(
            &pool,
            "SELECT count(*) FROM product_reviews WHERE sentiment IS NOT NULL",
        )
        .await
            == 1
    };
    assert!(
        wait_until(Duration::from_secs(180), analysed).await,
        "not analysed in time"
    );
    assert_eq!(worker.stop().await.completed, 1);
    assert_eq!(review_interactions(&pool).await, vec![(1, 1)]);
    let (sentiment,): (String,) = sqlx::query_as("SELECT sentiment FROM product_reviews")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(sentiment.contains("negative"), "{sentiment}");
}

/// Two engines (two processes, in effect) sharing one database share results through PgCache.
#[sqlx::test(migrator = "MIGRATOR")]
async fn pg_cache_hits_across_engines(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let engine_with_pg = |pool: &PgPool| {
        Engine::new(
            backend() as Arc<dyn Backend>,
            Cache::new(vec![Arc::new(PgCache::new(pool.clone()))]),
        )
    };
    let (a, b) = (engine_with_pg(&pool), engine_with_pg(&pool));
    let opts = GenerateOptions::default().max_tokens(8);
    let first = a.generate("Name one colour.", &opts).await.unwrap();
    assert!(!first.cached);
    let second = b.generate("Name one colour.", &opts).await.unwrap();
    assert!(second.cached, "engine B reads what engine A computed");
    assert_eq!(first.text, second.text);
    let stats = PgCache::new(pool.clone()).stats().await.unwrap();
    assert!(stats.hits >= 1 && stats.writes >= 1, "{stats:?}");
}

/// Every progress report: (stage, done, total).
type Reports = Arc<Mutex<Vec<(String, u64, u64)>>>;

/// Bulk runs with 8 model calls in flight write and return exactly what one call at a time
/// does (each side on its own engine without a cache, so both really run the model), and
/// report their progress.
#[sqlx::test(migrator = "MIGRATOR")]
async fn concurrent_bulk_runs_equal_sequential_runs(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let uncached = || Engine::new(backend() as Arc<dyn Backend>, Cache::new(vec![]));
    let reports: Reports = Arc::default();
    let log = reports.clone();
    let concurrent = Arc::new(
        Intelligence::new(Store::from_pool(pool.clone()), uncached())
            .with_concurrency(8)
            .with_progress(Arc::new(move |stage: &str, done: u64, total: u64| {
                log.lock().unwrap().push((stage.to_string(), done, total));
            })),
    );
    let sequential =
        Intelligence::new(Store::from_pool(pool.clone()), uncached()).with_concurrency(1);
    let started = Instant::now();
    concurrent.load_seed_sample().await.unwrap();

    // The queued reviews and tickets, batched; then each again on its own, as a worker does.
    assert_eq!(concurrent.process_pending().await.unwrap().completed, 5);
    eprintln!("batched pending analyses: {:?}", started.elapsed());
    let batched = rows::reviews(&pool, None).await.unwrap();
    for review in &batched {
        let one = sequential.analyze_review(review.id).await.unwrap();
        assert_eq!(
            review.sentiment,
            Some(one.sentiment),
            "review {}",
            review.id
        );
        assert_eq!(review.ai_summary.as_deref(), Some(one.summary.as_str()));
        assert_eq!(review.key_themes.as_ref(), Some(&one.themes));
    }
    for ticket in rows::tickets(&pool, None).await.unwrap() {
        let one = sequential.analyze_ticket(ticket.id).await.unwrap();
        assert_eq!(
            ticket.ai_analysis,
            Some(one.analysis),
            "ticket {}",
            ticket.id
        );
    }
    assert_eq!(
        rows::reviews(&pool, None).await.unwrap(),
        batched,
        "rewritten identically"
    );
    eprintln!(
        "sequential pending analyses done at {:?}",
        started.elapsed()
    );

    // The sample's risks sit just under the reportable 0.3 now that ticket sentiment needs
    // evidence (TICK-002 is "frustrated", no longer "angry"); a poorly rated ticket puts
    // customer 3 above it, so there is a retention strategy to compare.
    exec(
        &pool,
        "UPDATE support_tickets SET satisfaction_score = 1 WHERE customer_id = 3",
    )
    .await;
    let churn = concurrent.calculate_churn_risk().await.unwrap();
    assert!(!churn.is_empty());
    assert_eq!(churn, sequential.calculate_churn_risk().await.unwrap());
    let segments = concurrent.analyze_customer_segments().await.unwrap();
    assert_eq!(
        segments,
        sequential.analyze_customer_segments().await.unwrap()
    );
    eprintln!(
        "churn and segments, both ways, done at {:?}",
        started.elapsed()
    );

    let reports = reports.lock().unwrap();
    for stage in [STAGE_PENDING, STAGE_CHURN, STAGE_SEGMENTS] {
        let mine: Vec<(u64, u64)> = reports
            .iter()
            .filter(|r| r.0 == stage)
            .map(|r| (r.1, r.2))
            .collect();
        assert_eq!(mine.first().map(|r| r.0), Some(0), "{stage} starts at 0");
        let (done, total) = *mine.last().unwrap();
        assert!(done == total && total > 0, "{stage}: {mine:?}");
        assert!(
            mine.windows(2).all(|w| w[0].0 <= w[1].0),
            "{stage}: {mine:?}"
        );
    }
}

/// One orchestration path: the in-memory scenario (`steadytext demo`) and the database path
/// (inserts → queued jobs → `Intelligence`) give the seed's reviews and tickets the same
/// analyses — same prompts, same redaction, same rules.
#[sqlx::test(migrator = "MIGRATOR")]
async fn the_demo_and_the_database_analyse_the_seed_alike(pool: PgPool) {
    without_insight_refresh(&pool).await;
    use steadytext_schema::scenario::{run_scenario, seed_sample};
    let _turn = model_turn().await;
    let intel = intel(&pool);
    intel.load_seed_sample().await.unwrap();
    let processed = intel.process_pending().await.unwrap();
    assert_eq!((processed.completed, processed.failed), (5, 0));

    let engine = engine();
    let now = chrono::Utc::now();
    let report = run_scenario(
        &steadytext_schema::Analyst::new(&engine),
        seed_sample(now),
        now,
    )
    .await
    .unwrap();
    let ids: Vec<i32> = sqlx::query_scalar("SELECT id FROM product_reviews ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids.len(), report.reviews.len());
    for (id, (_, demo)) in ids.iter().zip(&report.reviews) {
        let row = rows::review(&pool, *id).await.unwrap().unwrap();
        assert_eq!(row.sentiment, Some(demo.sentiment), "review {id}");
        assert_eq!(row.ai_summary.as_deref(), Some(demo.summary.as_str()));
        assert_eq!(row.key_themes.as_deref(), Some(demo.themes.as_slice()));
        assert_eq!(row.review_aspects.as_deref(), Some(demo.aspects.as_slice()));
    }
    let ids: Vec<i32> = sqlx::query_scalar("SELECT id FROM support_tickets ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids.len(), report.tickets.len());
    for (id, (_, demo)) in ids.iter().zip(&report.tickets) {
        let row = rows::ticket(&pool, *id).await.unwrap().unwrap();
        assert_eq!(
            row.ai_analysis.as_ref(),
            Some(&demo.analysis),
            "ticket {id}"
        );
    }
}

/// Review sentiment on a second model (Gemma 3 270M, its shipped calibration), the rest on the
/// default model: the stored analysis records both models and the classifier's calibration.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_classifier_model_classifies_review_sentiment_and_is_recorded(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let gemma = Engine::new(
        Arc::new(
            Engine::builder()
                .model_path("gemma3-270m")
                .build_backend()
                .expect("Gemma 3 270M loads (run scripts/fetch-model gemma3-270m)"),
        ) as Arc<dyn Backend>,
        Cache::new(vec![Arc::new(MemoryStore::new(16 << 20))]),
    );
    let sentiment =
        steadytext_schema::SentimentModel::shipped_for(gemma.backend().identity()).unwrap();
    let intel = Intelligence::new(Store::from_pool(pool.clone()), engine())
        .with_classifier(gemma.clone(), sentiment.clone());
    exec(
        &pool,
        "INSERT INTO customers (email, segment) VALUES ('a@example.com', 'premium')",
    )
    .await;
    exec(&pool, "INSERT INTO product_reviews (customer_id, product_id, rating, title, review_text) \
         VALUES (1, 101, NULL, 'Very disappointed', 'Product broke after just one week of use. Customer support was unhelpful and refused to honor the warranty.')").await;
    let a = intel.analyze_review(1).await.unwrap();
    assert_eq!(a.calibration.as_deref(), Some(sentiment.calibration_id()));
    assert!(
        a.sentiment.polarity() == steadytext_schema::Polarity::Negative,
        "{a:?}"
    );
    let (model, calibration): (String, Option<String>) = sqlx::query_as(
        "SELECT model_id, calibration_id FROM steadytext_analyses WHERE subject_kind = 'review'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        model,
        format!(
            "{}; sentiment on {}",
            engine().backend().identity(),
            gemma.backend().identity()
        )
    );
    assert_eq!(calibration.as_deref(), Some(sentiment.calibration_id()));
    // The database's active calibration (fitted on the main model's scores) is not applied to
    // the classifier's.
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(intel.sentiment_model(&mut conn).await.unwrap(), sentiment);
}
