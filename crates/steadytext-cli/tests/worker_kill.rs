//! `steadytext worker` processes against a real database: one is SIGKILLed mid-run, another
//! with a short lease takes over, and every review ends up analysed exactly once.

mod common;

use std::process::Command;

use common::{spawn_worker, steadytext};
use std::time::{Duration, Instant};

use steadytext_pg::sqlx::{self, PgPool};

const REVIEWS: [(i32, &str); 6] = [
    (
        5,
        "Arrived early and works perfectly. The battery lasts all week.",
    ),
    (
        2,
        "The zipper broke on the second day and the seller never answered my emails.",
    ),
    (
        4,
        "Comfortable and warm, though the sleeves run a little long.",
    ),
    (
        1,
        "Stopped charging after a month. Support keeps closing my ticket without a fix.",
    ),
    (
        3,
        "Does the job. Setup instructions were confusing but it works now.",
    ),
    (
        5,
        "Best kettle I have owned: quiet, fast, and the lid never leaks.",
    ),
];

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
    n
}

async fn analysed(pool: &PgPool) -> i64 {
    scalar(
        pool,
        "SELECT count(*) FROM product_reviews WHERE sentiment IS NOT NULL",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_nothing_and_duplicates_nothing() {
    let db = common::ScratchDb::create("steadytext_kill").await;
    let url = db.url.clone();
    let cache = tempfile::tempdir().unwrap();

    let out = steadytext(&["db", "migrate", "--database-url", &url], cache.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Review jobs only: the views' insight refreshes (which data changes also enqueue) are
    // left out of this count of exactly-once effects.
    db.set("steadytext.refresh_insights", "off").await;
    let pool = PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO customers (email, segment) VALUES ('kill@example.com', 'regular')")
        .execute(&pool)
        .await
        .unwrap();
    for (i, (rating, text)) in REVIEWS.iter().enumerate() {
        sqlx::query(
            "INSERT INTO product_reviews (customer_id, product_id, rating, review_text) \
             VALUES (1, $1, $2, $3)",
        )
        .bind(200 + i as i32)
        .bind(rating)
        .bind(text)
        .execute(&pool)
        .await
        .unwrap();
    }
    let n = REVIEWS.len() as i64;
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM steadytext_jobs").await,
        n
    );

    // Worker 1: kill it (SIGKILL) once it has finished a review and holds the next one.
    let mut first = spawn_worker(&url, cache.path(), "2");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        assert!(first.try_wait().unwrap().is_none(), "worker 1 exited early");
        assert!(Instant::now() < deadline, "worker 1 made no progress");
        let done = analysed(&pool).await;
        let leased = scalar(
            &pool,
            "SELECT count(*) FROM steadytext_jobs WHERE state = 'leased'",
        )
        .await;
        if done >= 1 && leased == 1 && done < n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let done_by_first = analysed(&pool).await;
    // (None only if the kill landed in the instant between two jobs.)
    let orphan: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM steadytext_jobs WHERE state = 'leased'")
            .fetch_optional(&pool)
            .await
            .unwrap();
    eprintln!("killed worker 1 after {done_by_first} reviews, holding job {orphan:?}");

    // Worker 2, short lease: takes over the orphaned job once its lease runs out.
    let started = Instant::now();
    let mut second = spawn_worker(&url, cache.path(), "2");
    let deadline = Instant::now() + Duration::from_secs(180);
    while scalar(
        &pool,
        "SELECT count(*) FROM steadytext_jobs WHERE state = 'done'",
    )
    .await
        < n
    {
        assert!(
            second.try_wait().unwrap().is_none(),
            "worker 2 exited early"
        );
        assert!(Instant::now() < deadline, "worker 2 did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    eprintln!(
        "worker 2 finished the remaining {} reviews in {took:?} (incl. model load)",
        n - done_by_first
    );

    // Graceful stop on SIGTERM: exits 0 and reports.
    let status = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = second.wait_with_output().unwrap();
    assert!(out.status.success(), "worker 2 exit: {:?}", out.status);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["completed"], n - done_by_first, "{report}");

    // Exactly once: every review analysed, one interaction each, nothing dead, the orphan
    // claimed twice.
    assert_eq!(analysed(&pool).await, n);
    let per_review: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT r.id, count(ci.id) FROM product_reviews r \
         LEFT JOIN customer_interactions ci ON ci.metadata->>'review_id' = r.id::text \
         GROUP BY r.id ORDER BY r.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(per_review.iter().all(|(_, c)| *c == 1), "{per_review:?}");
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM customer_interactions").await,
        n
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM steadytext_dead_jobs").await,
        0
    );
    if let Some((orphan,)) = orphan {
        let (attempts,): (i32,) =
            sqlx::query_as("SELECT attempts FROM steadytext_jobs WHERE id = $1")
                .bind(orphan)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(attempts, 2, "the orphaned job was claimed again");
    }

    let stats = steadytext(
        &["queue", "stats", "--json", "--database-url", &url],
        cache.path(),
    )
    .output()
    .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["done"], n);

    pool.close().await;
    db.drop_now().await;
}
