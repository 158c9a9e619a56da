//! The database commands' failures and `queue drain`, as processes against the real server.

mod common;

use std::process::{Command, Output, Stdio};

use steadytext_pg::sqlx::{self, PgPool};

/// Run `steadytext` (one model thread, its own cache) to completion; stdin and stderr are not
/// terminals, so no progress bar is drawn.
fn steadytext(args: &[&str], cache: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steadytext"))
        .args(args)
        .env("STEADYTEXT_CACHE_DIR", cache)
        .env_remove("STEADYTEXT_MODEL")
        .env_remove("DATABASE_URL")
        .env("RAYON_NUM_THREADS", "1")
        .env("CANDLE_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run steadytext")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unreachable_or_malformed_urls_fail_clearly_without_the_password() {
    let cache = tempfile::tempdir().unwrap();
    let refused = "postgres://postgres:hunter2@127.0.0.1:1/postgres";
    for args in [
        vec!["queue", "stats", "--database-url", refused],
        vec!["db", "migrate", "--database-url", refused],
        vec!["queue", "drain", "--database-url", refused],
    ] {
        let out = steadytext(&args, cache.path());
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains(
                "cannot connect to PostgreSQL at postgres://postgres:***@127.0.0.1:1/postgres"
            ),
            "{args:?}: {err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
    let out = steadytext(
        &[
            "queue",
            "stats",
            "--database-url",
            "postgres://u:pw@host:notaport/db",
        ],
        cache.path(),
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("invalid PostgreSQL URL"), "{err}");
    assert!(!err.contains("pw@"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_drain_analyses_every_queued_review_once() {
    let db = common::ScratchDb::create("steadytext_drain").await;
    let url = db.url.clone();
    let cache = tempfile::tempdir().unwrap();
    let migrated = steadytext(&["db", "migrate", "--database-url", &url], cache.path());
    assert!(migrated.status.success(), "{}", stderr(&migrated));

    let pool = PgPool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO product_reviews (product_id, rating, review_text) VALUES \
         (1, 5, 'Arrived early and works perfectly.'), \
         (2, 1, 'Stopped charging after a month.')",
    )
    .execute(&pool)
    .await
    .unwrap();

    let out = steadytext(
        &[
            "queue",
            "drain",
            "--database-url",
            &url,
            "--concurrency",
            "2",
        ],
        cache.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The two reviews, then the views' insight refresh their inserts and analyses enqueued
    // (one job: merged while pending).
    assert_eq!(
        report,
        serde_json::json!({"completed": 3, "failed": 0, "stale": 0, "lease_lost": 0})
    );
    let (refreshes,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM steadytext_jobs WHERE kind = 'refresh_insights' AND state = 'done'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(refreshes, 1);
    assert!(
        !stderr(&out).contains('\r'),
        "no progress bar when stderr is not a terminal"
    );
    let (analysed, interactions): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM product_reviews WHERE sentiment IS NOT NULL), \
                (SELECT count(*) FROM customer_interactions WHERE interaction_type = 'review')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((analysed, interactions), (2, 2));

    // Nothing left: a second drain does nothing.
    let again = steadytext(
        &["queue", "drain", "--database-url", &url, "-q"],
        cache.path(),
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&again.stdout).unwrap(),
        serde_json::json!({"completed": 0, "failed": 0, "stale": 0, "lease_lost": 0})
    );
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_list_and_label_record_a_human_verdict() {
    let db = common::ScratchDb::create("steadytext_review_cmd").await;
    let url = db.url.clone();
    let cache = tempfile::tempdir().unwrap();
    let migrated = steadytext(&["db", "migrate", "--database-url", &url], cache.path());
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let pool = PgPool::connect(&url).await.unwrap();
    let (id,): (i32,) = sqlx::query_as(
        "INSERT INTO product_reviews (product_id, rating, title, review_text) VALUES \
         (1, 1, 'Broken twice', 'Absolutely terrible. It broke on the first day, the \
          replacement broke too, and support never answered. The worst purchase I have ever \
          made.') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let drained = steadytext(
        &["queue", "drain", "--database-url", &url, "-q"],
        cache.path(),
    );
    assert!(drained.status.success(), "{}", stderr(&drained));

    let list = |json: bool| {
        let mut args = vec!["review", "list", "--database-url", &url, "--limit", "5"];
        if json {
            args.push("--json");
        }
        steadytext(&args, cache.path())
    };
    let out = list(true);
    assert!(out.status.success(), "{}", stderr(&out));
    let queue: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = queue.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{queue:#}");
    let entry = &entries[0];
    assert_eq!(entry["subject_kind"], "review");
    assert_eq!(entry["subject_id"], id.to_string());
    assert!(
        entry["reasons"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("very_negative_sentiment")),
        "{entry:#}"
    );
    assert_eq!(entry["fields"], serde_json::json!(["sentiment"]));
    assert_eq!(entry["current_values"]["sentiment"], "very_negative");
    let text = list(false);
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(
        shown.contains(&format!("review {id}: very_negative_sentiment")),
        "{shown}"
    );
    assert!(shown.contains("rating 1/5: Broken twice"), "{shown}");

    // Bad input: a clear error, nothing recorded.
    let sid = id.to_string();
    for (args, says) in [
        (
            vec!["review", "label", "review", &sid, "sentiment", "meh"],
            "invalid value 'meh'",
        ),
        (
            vec!["review", "label", "review", "999", "sentiment", "negative"],
            "no review with id '999'",
        ),
        (
            vec!["review", "label", "review", &sid, "stars", "5"],
            "unknown field 'stars'",
        ),
        (
            vec!["review", "label", "reviews", &sid, "sentiment", "negative"],
            "unknown subject kind",
        ),
    ] {
        let mut args = args.clone();
        args.extend(["--reviewer", "alice", "--database-url", &url]);
        let out = steadytext(&args, cache.path());
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let missing = steadytext(
        &[
            "review",
            "label",
            "review",
            &sid,
            "sentiment",
            "negative",
            "--database-url",
            &url,
        ],
        cache.path(),
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("--reviewer"),
        "{}",
        stderr(&missing)
    );
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM steadytext_human_verdicts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);

    let out = steadytext(
        &[
            "review",
            "label",
            "review",
            &sid,
            "sentiment",
            "negative",
            "--reviewer",
            "alice",
            "--note",
            "annoyed, not furious",
            "--database-url",
            &url,
            "--json",
        ],
        cache.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["value_before"], "very_negative");
    assert_eq!(verdict["value_after"], "negative");
    assert_eq!(verdict["reviewer"], "alice");
    assert_eq!(verdict["note"], "annoyed, not furious");
    assert!(verdict["decided_at"].is_string());
    let (sentiment,): (String,) =
        sqlx::query_as("SELECT sentiment::text FROM product_reviews WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(sentiment, "negative");
    let out = list(false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "nothing needs a human review\n"
    );
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibrate_from_the_database_activates_only_what_is_not_worse() {
    let db = common::ScratchDb::create("steadytext_calibrate_cmd").await;
    let url = db.url.clone();
    let cache = tempfile::tempdir().unwrap();
    let migrated = steadytext(&["db", "migrate", "--database-url", &url], cache.path());
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let pool = PgPool::connect(&url).await.unwrap();
    let calibrate = || {
        steadytext(
            &[
                "calibrate",
                "sentiment",
                "--database-url",
                &url,
                "--folds",
                "3",
            ],
            cache.path(),
        )
    };
    // No verdicts yet: a clear error, nothing stored.
    let out = calibrate();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("0 labelled examples"),
        "{}",
        stderr(&out)
    );

    let labelled = [
        (
            "Absolutely love it, works perfectly every day.",
            "very_positive",
        ),
        ("Great value and it arrived early.", "positive"),
        ("Beautiful design, very happy with it.", "positive"),
        ("Best purchase I made this year.", "very_positive"),
        ("It comes in a blue box with a manual.", "neutral"),
        ("I ordered it on a Tuesday.", "neutral"),
        ("The package contained two cables.", "neutral"),
        ("It is the same size as the old model.", "neutral"),
        ("Broke after two days, very disappointed.", "very_negative"),
        ("Terrible quality and support never replied.", "negative"),
        ("The battery dies within an hour.", "negative"),
        ("Waste of money, do not buy.", "very_negative"),
    ];
    for (text, label) in labelled {
        let (id,): (i32,) = sqlx::query_as(
            "INSERT INTO product_reviews (product_id, review_text) VALUES (1, $1) RETURNING id",
        )
        .bind(text)
        .fetch_one(&pool)
        .await
        .unwrap();
        sqlx::query("SELECT steadytext_record_verdict('review', $1::text, 'sentiment', $2, 'ann')")
            .bind(id)
            .bind(label)
            .execute(&pool)
            .await
            .unwrap();
    }
    let out = calibrate();
    let err = stderr(&out);
    assert!(
        err.contains("12 examples (positive 4, neutral 4, negative 4); 3-fold"),
        "{err}"
    );
    let active: Option<String> =
        sqlx::query_scalar("SELECT id FROM steadytext_calibrations WHERE active")
            .fetch_optional(&pool)
            .await
            .unwrap();
    if out.status.success() {
        let id = active.expect("an active calibration");
        assert!(err.contains(&format!("activated {id}")), "{err}");
        // The same verdicts again, now against the calibration fitted on them.
        let again = calibrate();
        let err = stderr(&again);
        assert!(
            err.contains(&format!("current {id}")),
            "compared against the active one: {err}"
        );
    } else {
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("not activated"), "{err}");
        assert!(err.contains("below the current cal-"), "{err}");
        assert_eq!(active, None, "nothing activated");
    }
}
