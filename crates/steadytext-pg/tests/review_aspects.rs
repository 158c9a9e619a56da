//! Review aspects in PostgreSQL, on the real default model: stored quoted and categorised,
//! filed under the database's own taxonomy, aggregated by category.

mod common;

use std::sync::{Arc, OnceLock};

use common::*;
use sqlx::PgPool;
use steadytext_core::cache::MemoryStore;
use steadytext_core::{Backend, Cache, Engine};
use steadytext_pg::{aggregates, Intelligence, Store, MIGRATOR};
use steadytext_schema::quote::is_quoted;
use steadytext_schema::taxonomy::Taxonomy;

fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let backend = Engine::builder()
                .build_backend()
                .expect("model loads (run scripts/fetch-model)");
            Engine::new(
                Arc::new(backend) as Arc<dyn Backend>,
                Cache::new(vec![Arc::new(MemoryStore::new(64 << 20))]),
            )
        })
        .clone()
}

async fn model_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

const REVIEW: &str = "The blender broke after two weeks. Shipping was fast though, and the box \
    was well packed.";

async fn insert_review(pool: &PgPool, text: &str) -> i32 {
    exec(
        pool,
        "INSERT INTO customers (id, email, first_name, last_name, segment) \
         VALUES (7, 'a@b.co', 'Ann', 'Lee', 'premium') ON CONFLICT DO NOTHING",
    )
    .await;
    sqlx::query_scalar(
        "INSERT INTO product_reviews (customer_id, product_id, rating, review_text) \
         VALUES (7, 42, 2, $1) RETURNING id",
    )
    .bind(text)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn migrate_seeds_the_default_taxonomy_once(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    store.migrate().await.unwrap();
    let n = Taxonomy::default().categories().len() as i64;
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM steadytext_taxonomy").await,
        n
    );
    // An edit survives the next start-up's migrate.
    exec(
        &pool,
        "DELETE FROM steadytext_taxonomy WHERE key = 'packaging'",
    )
    .await;
    store.migrate().await.unwrap();
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM steadytext_taxonomy").await,
        n - 1
    );
    let mut conn = pool.acquire().await.unwrap();
    let t = steadytext_pg::taxonomy::load(&mut conn).await.unwrap();
    assert!(t.get("packaging").is_none() && t.get("shipping_delivery").is_some());
    // A taxonomy of one category is refused with a typed error, not used.
    exec(
        &pool,
        "DELETE FROM steadytext_taxonomy WHERE key <> 'other'",
    )
    .await;
    let err = steadytext_pg::taxonomy::load(&mut conn).await.unwrap_err();
    assert!(err.to_string().contains("steadytext_taxonomy"), "{err}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn analysed_reviews_store_quoted_categorised_aspects(pool: PgPool) {
    let _turn = model_turn().await;
    Store::from_pool(pool.clone()).migrate().await.unwrap();
    let intel = Intelligence::new(Store::from_pool(pool.clone()), engine());
    let id = insert_review(&pool, REVIEW).await;
    let a = intel.analyze_review(id).await.unwrap();
    assert!(!a.aspects.is_empty(), "{a:?}");
    let mut conn = pool.acquire().await.unwrap();
    let row = steadytext_pg::rows::review(&mut *conn, id)
        .await
        .unwrap()
        .unwrap();
    let stored = row.review_aspects.clone().expect("review_aspects written");
    assert_eq!(stored, a.aspects);
    assert_eq!(row.key_themes.as_deref(), Some(a.themes.as_slice()));
    let taxonomy = Taxonomy::default();
    for x in &stored {
        assert!(is_quoted(&x.phrase, REVIEW), "{x:?}");
        assert!(taxonomy.get(&x.category).is_some(), "{x:?}");
    }
    assert!(REVIEW.contains(&a.summary), "{a:?}");

    // The topics view and the segment aggregates count by category, not by phrase.
    let mentions = scalar(
        &pool,
        "SELECT coalesce(sum(mentions), 0)::bigint FROM steadytext_review_topics",
    )
    .await;
    assert_eq!(mentions, stored.len() as i64);
    let stats = aggregates::segment_stats(&mut conn).await.unwrap();
    let premium = stats.iter().find(|s| s.segment_name == "premium").unwrap();
    let total: u64 = premium.topics.iter().map(|t| t.total()).sum();
    assert_eq!(total, stored.len() as u64, "{premium:?}");
    assert_eq!(
        premium.topics,
        steadytext_schema::aspects::count_topics(stored.iter())
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_edited_taxonomy_files_the_next_analysis(pool: PgPool) {
    let _turn = model_turn().await;
    Store::from_pool(pool.clone()).migrate().await.unwrap();
    // The database's own categories: everything about breaking is "reliability".
    exec(&pool, "DELETE FROM steadytext_taxonomy").await;
    exec(
        &pool,
        "INSERT INTO steadytext_taxonomy (key, label, keywords, position) VALUES \
         ('reliability', 'reliability', '{broke,break}', 0), \
         ('logistics', 'logistics', '{ship,box,pack}', 1), \
         ('misc', 'miscellaneous', '{}', 2)",
    )
    .await;
    let intel = Intelligence::new(Store::from_pool(pool.clone()), engine());
    let id = insert_review(&pool, REVIEW).await;
    let a = intel.analyze_review(id).await.unwrap();
    assert!(!a.aspects.is_empty(), "{a:?}");
    for x in &a.aspects {
        assert!(
            ["reliability", "logistics", "misc"].contains(&x.category.as_str()),
            "{x:?}"
        );
    }
}
