//! The resolution playbook table: seeded with the library's defaults, and edited by users as
//! data — an edited row changes the resolution the next ticket analysis chooses.

mod common;

use std::sync::{Arc, OnceLock};

use common::*;
use sqlx::PgPool;
use steadytext_core::cache::MemoryStore;
use steadytext_core::{Backend, Cache, Engine};
use steadytext_pg::{resolutions, Intelligence, PgError, Store, MIGRATOR};
use steadytext_schema::ResolutionPlaybook;

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

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_table_exists_and_holds_the_shipped_defaults(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let loaded = resolutions::load(&mut conn).await.unwrap();
    assert_eq!(
        loaded,
        ResolutionPlaybook::default(),
        "migration 0006 seeds exactly defaults/resolution_playbook.json, in order"
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM steadytext.resolution_playbook").await,
        ResolutionPlaybook::default().entries().len() as i64
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_edited_row_changes_the_chosen_resolution(pool: PgPool) {
    let intel = Intelligence::new(Store::from_pool(pool.clone()), engine());
    let id: i32 = sqlx::query_scalar(
        "INSERT INTO support_tickets (ticket_number, category, subject, description) \
         VALUES ('TICK-900', 'product_issue', 'Product defect', \
                 'The product stopped working after one week. It wont turn on anymore.') \
         RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let before = intel.analyze_ticket(id).await.unwrap();
    assert_eq!(before.analysis.category, "defects_durability");
    assert!(
        before
            .analysis
            .suggested_resolution
            .starts_with("Send a replacement unit by express"),
        "{:?}",
        before.analysis
    );

    // A user rewrites the play for dead products.
    let edited = sqlx::query(
        "UPDATE steadytext.resolution_playbook \
         SET resolution = 'Call the customer within the hour and courier a loan unit.' \
         WHERE category = 'defects_durability' AND 'stopped working' = ANY(cause_keywords)",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(edited.rows_affected(), 1);
    let after = intel.analyze_ticket(id).await.unwrap();
    assert_eq!(
        after.analysis.suggested_resolution,
        "Call the customer within the hour and courier a loan unit."
    );
    let stored: serde_json::Value =
        sqlx::query_scalar("SELECT ai_analysis FROM support_tickets WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored["suggested_resolution"],
        "Call the customer within the hour and courier a loan unit."
    );
    assert_eq!(stored["category"], "defects_durability");
    // Everything but the resolution (and the rule naming the play) is as before.
    assert_eq!(after.analysis.root_cause, before.analysis.root_cause);
    assert_eq!(after.analysis.urgency, before.analysis.urgency);

    // A category's own rows go first; with none left, the catch-all answers.
    exec(
        &pool,
        "DELETE FROM steadytext.resolution_playbook WHERE category = 'defects_durability'",
    )
    .await;
    let fallback = intel.analyze_ticket(id).await.unwrap();
    assert_eq!(
        fallback.analysis.suggested_resolution,
        "Route the ticket to a support agent to read and reply within one business day."
    );

    // Without a catch-all the table is no playbook: the analysis fails (a job would retry).
    exec(
        &pool,
        "DELETE FROM steadytext.resolution_playbook WHERE category = 'other'",
    )
    .await;
    assert!(matches!(
        intel.analyze_ticket(id).await,
        Err(PgError::Playbook(_))
    ));
}
