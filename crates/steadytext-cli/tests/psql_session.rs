//! The seed tutorial's SQL as a psql user runs it: `psql` against a migrated database with a
//! real `steadytext worker` (the real model) computing what the seed's functions and views
//! promise; the same with no worker (a timeout that says to start one) and with a worker
//! killed in the middle of a call.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{spawn_worker, steadytext, ScratchDb};
use steadytext_pg::sqlx::{self, PgPool};

const SESSION: &str = include_str!("fixtures/seed_tutorial_session.sql");

/// `psql` on `url` running `sql` from stdin, stopping at the first error.
fn psql(url: &str, sql: &str) -> Output {
    let mut child = Command::new("psql")
        .args([url, "-X", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn migrate(url: &str, cache: &Path) {
    let out = steadytext(&["db", "migrate", "--database-url", url], cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
    n
}

/// Wait until no job is pending or leased.
async fn drained(pool: &PgPool, within: Duration) {
    let deadline = Instant::now() + within;
    while scalar(
        pool,
        "SELECT count(*) FROM steadytext_jobs WHERE state <> 'done'",
    )
    .await
        > 0
    {
        assert!(Instant::now() < deadline, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn stop(mut worker: std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = worker.wait().unwrap();
    assert!(out.success(), "worker exit: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_tutorial_runs_in_psql_with_a_worker() {
    let db = ScratchDb::create("steadytext_psql").await;
    let cache = tempfile::tempdir().unwrap();
    migrate(&db.url, cache.path());
    let worker = spawn_worker(&db.url, cache.path(), "30");

    // The seed's block verbatim: sample INSERTs, "Run analysis", "View insights".
    let started = Instant::now();
    let out = psql(&db.url, SESSION);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    eprintln!("the seed's session took {:?}:\n{stdout}", started.elapsed());
    // calculate_churn_risk() returned rows (composite values), the dashboard one per customer,
    // the recommendations their ranked rows.
    assert!(stdout.contains("calculate_churn_risk"), "{stdout}");
    assert!(stdout.contains("(3 rows)"), "dashboard: {stdout}");
    assert!(
        stdout.contains("recommendation_type"),
        "recommendations: {stdout}"
    );

    let pool = PgPool::connect(&db.url).await.unwrap();
    // Churn: every score stored, the reportable ones with a strategy.
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM customers WHERE churn_risk_score IS NOT NULL"
        )
        .await,
        3
    );
    let reports: Vec<(i32, f64, String, String)> = sqlx::query_as(
        "SELECT customer_id, risk_score::float8, retention_strategy, grounding FROM calculate_churn_risk()",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // The reportable customers (risk above 0.3), each with a strategy (on the seed's sample,
    // after its reviews and tickets were analysed, nobody is above 0.3).
    let at_risk = scalar(
        &pool,
        "SELECT count(*) FROM customers WHERE churn_risk_score > 0.3",
    )
    .await;
    assert_eq!(reports.len() as i64, at_risk);
    for (id, score, strategy, grounding) in &reports {
        assert!(*score > 0.3, "customer {id}: {score}");
        assert!(!strategy.trim().is_empty(), "customer {id}");
        assert!(
            grounding == "checked" || grounding == "fallback",
            "{grounding}"
        );
    }
    // Segments: one row per segment, exactly 3 strategies each.
    let segments: Vec<(String, serde_json::Value, String)> = sqlx::query_as(
        "SELECT segment_name, recommendations, ai_profile FROM customer_segments_analysis ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        segments.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["budget", "premium", "regular"]
    );
    for (name, recs, profile) in &segments {
        assert_eq!(
            recs["strategies"].as_array().map(Vec::len),
            Some(3),
            "{name}: {recs}"
        );
        assert!(!profile.is_empty(), "{name}");
    }
    // Recommendations for customer 1: ranked by priority, products only from the data.
    let recs: Vec<(String, String, i32, Option<i32>)> = sqlx::query_as(
        "SELECT recommendation_type::text, title::text, priority, product_id \
         FROM generate_customer_recommendations(1)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!recs.is_empty() && recs.len() <= 5, "{recs:?}");
    assert!(recs.windows(2).all(|w| w[0].2 <= w[1].2), "{recs:?}");
    for (kind, _, _, product) in &recs {
        if kind == "product" {
            let p = product.expect("a product recommendation names its product");
            assert!(
                [101, 102, 103].contains(&p),
                "product {p} is not in the data"
            );
        }
    }
    let two = scalar(
        &pool,
        "SELECT count(*) FROM generate_customer_recommendations(1, 2)",
    )
    .await;
    assert_eq!(two, recs.len().min(2) as i64);
    // A ticket on demand.
    sqlx::query("SELECT analyze_support_ticket(2)")
        .execute(&pool)
        .await
        .unwrap();
    let (urgency,): (Option<String>,) =
        sqlx::query_as("SELECT ai_analysis->>'urgency' FROM support_tickets WHERE id = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(urgency.is_some());

    // Once the queue has drained, every dashboard row has its insight and the executive view
    // its summary, with the numbers of the data.
    drained(&pool, Duration::from_secs(300)).await;
    type DashboardRow = (i32, Option<String>, Option<String>, Option<i64>);
    let dashboard: Vec<DashboardRow> = sqlx::query_as(
        "SELECT id, ai_insights, customer_status, interaction_count \
         FROM customer_sentiment_dashboard ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(dashboard.len(), 3);
    for (id, insight, status, interactions) in &dashboard {
        assert!(
            insight.as_deref().is_some_and(|t| !t.is_empty()),
            "customer {id}"
        );
        assert!(status.is_some(), "customer {id}");
        assert!(
            interactions.unwrap_or(0) >= 1,
            "customer {id}: its review was logged"
        );
    }
    let (total, reviews, open, insights): (Option<i64>, Option<i64>, Option<i64>, Option<String>) =
        sqlx::query_as(
            "SELECT total_customers, total_reviews, open_tickets, executive_insights \
             FROM executive_customer_summary",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((total, reviews, open), (Some(3), Some(3), Some(2)));
    assert!(insights.is_some_and(|t| !t.is_empty()));

    // The async API: queue, wait, the same result as the CLI for the same request.
    let async_result = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let (id,): (String,) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
            let (result,): (String,) =
                sqlx::query_as("SELECT steadytext.steadytext_get_async_result($1::uuid, 120)")
                    .bind(&id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            let (status,): (String,) =
                sqlx::query_as("SELECT status FROM steadytext.steadytext_check_async($1::uuid)")
                    .bind(&id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            assert_eq!(status, "completed");
            result
        }
    };
    let generated = async_result(
        "SELECT steadytext.steadytext_generate_async('Name a primary colour.', 12)::text",
    )
    .await;
    let cli = steadytext(
        &["generate", "Name a primary colour.", "--max-tokens", "12"],
        cache.path(),
    )
    .output()
    .unwrap();
    assert!(cli.status.success(), "{}", text(&cli.stderr));
    assert_eq!(text(&cli.stdout).trim_end(), generated.trim_end());
    let choice = async_result(
        "SELECT steadytext.steadytext_generate_choice_async('Is the sky blue?', \
         ARRAY['yes', 'no'])::text",
    )
    .await;
    assert!(choice == "yes" || choice == "no", "{choice}");
    let json = async_result(
        "SELECT steadytext.steadytext_generate_json_async('A colour as JSON.', \
         '{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\", \"maxLength\": 20}}, \
         \"required\": [\"name\"]}', 60)::text",
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(json["name"].is_string(), "{json}");

    stop(worker);
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_worker_a_seed_function_times_out_saying_to_start_one() {
    let db = ScratchDb::create("steadytext_psql_noworker").await;
    let cache = tempfile::tempdir().unwrap();
    migrate(&db.url, cache.path());
    let started = Instant::now();
    let out = psql(
        &db.url,
        "SET steadytext.wait_timeout = 2;\nSELECT calculate_churn_risk();\n",
    );
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("timed out after 2 s: no steadytext worker took job"),
        "{stderr}"
    );
    assert!(
        stderr.contains("steadytext worker --database-url"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");

    // Bad input is a clear error, not a wait.
    let out = psql(
        &db.url,
        "SELECT * FROM generate_customer_recommendations(42);\n",
    );
    assert!(
        text(&out.stderr).contains("customer 42 not found"),
        "{}",
        text(&out.stderr)
    );
    let out = psql(
        &db.url,
        "SELECT steadytext.steadytext_generate_async('   ');\n",
    );
    assert!(
        text(&out.stderr).contains("the prompt is empty"),
        "{}",
        text(&out.stderr)
    );
    // Waiting on a request queued in the same transaction would wait for nothing.
    let out = psql(
        &db.url,
        "BEGIN;\nSELECT steadytext.steadytext_generate_async('hello') AS id \\gset\n\
         SELECT steadytext.steadytext_get_async_result(:'id', 5);\n",
    );
    assert!(
        text(&out.stderr).contains("commit it before waiting"),
        "{}",
        text(&out.stderr)
    );
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_call_is_replaced_and_the_call_returns() {
    let db = ScratchDb::create("steadytext_psql_kill").await;
    let cache = tempfile::tempdir().unwrap();
    migrate(&db.url, cache.path());
    let pool = PgPool::connect(&db.url).await.unwrap();
    // Customers only (no reviews to analyse first): the churn job is the work.
    sqlx::raw_sql(
        "INSERT INTO customers (email, first_name, last_name, segment, lifetime_value, acquisition_date) VALUES \
         ('john.doe@email.com', 'John', 'Doe', 'premium', 2500.00, '2023-01-15'), \
         ('jane.smith@email.com', 'Jane', 'Smith', 'regular', 450.00, '2023-06-20'), \
         ('bob.wilson@email.com', 'Bob', 'Wilson', 'budget', 150.00, '2024-01-10')",
    )
    .execute(&pool)
    .await
    .unwrap();
    // Only the churn job: this test watches one job change hands.
    sqlx::query("DELETE FROM steadytext_jobs")
        .execute(&pool)
        .await
        .unwrap();
    db.set("steadytext.refresh_insights", "off").await;

    let url = db.url.clone();
    let call = std::thread::spawn(move || {
        psql(
            &url,
            "SET steadytext.wait_timeout = 300;\nSELECT customer_id, risk_score FROM calculate_churn_risk();\n",
        )
    });
    let mut first = spawn_worker(&db.url, cache.path(), "2");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        assert!(first.try_wait().unwrap().is_none(), "worker 1 exited early");
        assert!(
            Instant::now() < deadline,
            "worker 1 never took the churn job"
        );
        let leased = scalar(
            &pool,
            "SELECT count(*) FROM steadytext_jobs \
             WHERE kind = 'calculate_churn_risk' AND state = 'leased'",
        )
        .await;
        if leased == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap(); // SIGKILL, mid-job
    first.wait().unwrap();
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM steadytext.churn_reports").await,
        0,
        "nothing of the killed worker's job was written"
    );
    let second = spawn_worker(&db.url, cache.path(), "2");
    let out = call.join().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("(3 rows)"), "{stdout}");
    let (attempts,): (i32,) =
        sqlx::query_as("SELECT attempts FROM steadytext_jobs WHERE kind = 'calculate_churn_risk'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        attempts, 2,
        "claimed by the killed worker, then by the second"
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM steadytext.churn_reports").await,
        3
    );
    stop(second);
    pool.close().await;
    db.drop_now().await;
}
