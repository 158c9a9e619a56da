//! The job queue against a real server: triggers, claiming, leases, fencing, retries, dead letters.
//!
//! The views' insight refreshes, which data changes also enqueue, are switched off in these
//! databases (`steadytext.config`): the tests count the jobs and effects of other kinds.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sqlx::PgPool;
use steadytext_pg::{
    EnqueueOptions, FailOutcome, PgError, Queue, RetryPolicy, MIGRATOR, NOTIFY_CHANNEL,
};

const LEASE: Duration = Duration::from_secs(30);

async fn job_rows(pool: &PgPool) -> Vec<(i64, String, serde_json::Value, String)> {
    sqlx::query_as("SELECT id, kind, payload, state FROM steadytext_jobs ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn inserting_a_review_enqueues_one_job_and_notifies(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone());
    let mut listener = queue.listen().await.unwrap();

    let (id,): (i32,) = sqlx::query_as(
        "INSERT INTO product_reviews (product_id, rating, title, review_text) \
         VALUES (7, 4, 'Nice', 'Works well') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(n.channel(), NOTIFY_CHANNEL);
    assert_eq!(n.payload(), "analyze_review");
    let jobs = job_rows(&pool).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].1, "analyze_review");
    assert_eq!(jobs[0].2, json!({ "id": id }));
    assert_eq!(jobs[0].3, "pending");

    // Unrelated updates do not enqueue; re-wording while pending merges into the pending job.
    exec(
        &pool,
        "UPDATE product_reviews SET helpful_count = 3, sentiment = 'positive'",
    )
    .await;
    exec(
        &pool,
        "UPDATE product_reviews SET review_text = 'Works very well'",
    )
    .await;
    assert_eq!(job_rows(&pool).await.len(), 1);
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(
        n.payload(),
        "analyze_review",
        "the re-wording (merged) notifies once"
    );

    // A ticket enqueues its own kind.
    exec(
        &pool,
        "INSERT INTO support_tickets (ticket_number, subject) VALUES ('T-1', 'Help')",
    )
    .await;
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(
        n.payload(),
        "analyze_ticket",
        "the unrelated update did not notify"
    );
    assert_eq!(queue.stats().await.unwrap().pending, 2);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_rolled_back_insert_enqueues_nothing(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO product_reviews (rating, review_text) VALUES (2, 'meh')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(job_rows(&pool).await.is_empty());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn changing_an_analysed_review_enqueues_it_again(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone());
    insert_reviews(&pool, 1).await;
    let job = queue.claim("w", LEASE, &[]).await.unwrap().unwrap();
    // While the first analysis runs, the text changes: a new pending job, next to the leased one.
    exec(&pool, "UPDATE product_reviews SET review_text = 'changed'").await;
    let tx = queue.begin().await.unwrap();
    queue.complete(&job, tx).await.unwrap();
    // Same text and rating again: no new job.
    exec(
        &pool,
        "UPDATE product_reviews SET review_text = 'changed', rating = rating",
    )
    .await;
    exec(&pool, "UPDATE product_reviews SET rating = 1 + rating % 5").await;
    let states: Vec<String> = job_rows(&pool).await.into_iter().map(|j| j.3).collect();
    assert_eq!(states, vec!["done", "pending"]);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn dedupe_merges_pending_jobs_only(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone());
    let a = queue
        .enqueue("k", &json!({"v": 1}), Some("x"))
        .await
        .unwrap();
    let b = queue
        .enqueue("k", &json!({"v": 2}), Some("x"))
        .await
        .unwrap();
    assert!(a.created && !b.created);
    assert_eq!(a.id, b.id);
    let other_kind = queue.enqueue("k2", &json!({}), Some("x")).await.unwrap();
    let no_key = queue.enqueue("k", &json!({}), None).await.unwrap();
    let no_key2 = queue.enqueue("k", &json!({}), None).await.unwrap();
    assert!(other_kind.created && no_key.created && no_key2.created);
    assert_eq!(queue.stats().await.unwrap().pending, 4);

    let job = queue.claim("w", LEASE, &["k"]).await.unwrap().unwrap();
    assert_eq!(job.id, a.id);
    assert_eq!(job.payload, json!({"v": 2}), "the latest payload wins");
    // Leased: a new enqueue with the same key is a new job...
    let c = queue
        .enqueue("k", &json!({"v": 3}), Some("x"))
        .await
        .unwrap();
    assert!(c.created);
    // ...which supersedes the leased one if that fails (it would redo the same work).
    assert_eq!(
        queue.fail(&job, "boom").await.unwrap(),
        FailOutcome::Superseded
    );
    let left = scalar(
        &pool,
        "SELECT count(*) FROM steadytext_jobs WHERE dedupe_key = 'x' AND kind = 'k'",
    )
    .await;
    assert_eq!(left, 1);
}

/// 4 claimers, 50 jobs: every job done exactly once, one effect row per job.
#[sqlx::test(migrator = "MIGRATOR")]
async fn concurrent_claimers_do_every_job_exactly_once(pool: PgPool) {
    without_insight_refresh(&pool).await;
    insert_reviews(&pool, 50).await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let queue = Queue::new(pool.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while let Some(job) = queue.claim(&format!("w{w}"), LEASE, &[]).await.unwrap() {
                do_job(&queue, &job).await;
                done.push(job.id);
            }
            done
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 50);
    assert_eq!(effects(&pool).await, (50, 50));
    let stats = Queue::new(pool.clone()).stats().await.unwrap();
    assert_eq!((stats.done, stats.pending, stats.leased), (50, 0, 0));
}

/// A worker that claimed a job and died (never completed) loses nothing: after the lease the
/// job is claimed by another and done once.
#[sqlx::test(migrator = "MIGRATOR")]
async fn an_expired_lease_is_reclaimed_and_done_once(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone());
    insert_reviews(&pool, 1).await;
    let dead = queue
        .claim("dead", Duration::from_millis(300), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dead.attempts, 1);
    assert!(queue.claim("b", LEASE, &[]).await.unwrap().is_none());
    assert_eq!(queue.stats().await.unwrap().leased, 1);

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(queue.stats().await.unwrap().expired, 1);
    let job = queue.claim("b", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(
        (job.id, job.attempts, job.leased_by.as_str()),
        (dead.id, 2, "b")
    );
    do_job(&queue, &job).await;
    assert_eq!(effects(&pool).await, (1, 1));
    assert!(queue.claim("c", LEASE, &[]).await.unwrap().is_none());
}

/// A stale worker (lease expired, job taken over) finishing late is rejected and its writes
/// are rolled back; the new owner's are kept. Even the same worker id cannot complete an
/// older claim of its own.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_stale_worker_cannot_complete_after_takeover(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone());
    insert_reviews(&pool, 1).await;
    let stale = queue
        .claim("a", Duration::from_millis(200), &[])
        .await
        .unwrap()
        .unwrap();
    let mut stale_tx = queue.begin().await.unwrap();
    write_effect(&stale, &mut stale_tx).await.unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let current = queue.claim("a", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(current.id, stale.id);

    let err = queue.complete(&stale, stale_tx).await.unwrap_err();
    assert!(
        matches!(err, PgError::LeaseLost { id, attempt: 1, .. } if id == stale.id),
        "{err}"
    );
    assert_eq!(effects(&pool).await, (0, 0), "stale writes rolled back");
    assert!(!queue.extend_lease(&stale, LEASE).await.unwrap());
    assert!(!queue.release(&stale).await.unwrap());
    assert_eq!(
        queue.fail(&stale, "late").await.unwrap(),
        FailOutcome::LeaseLost
    );
    assert!(!queue.dead_letter(&stale, "late").await.unwrap());

    do_job(&queue, &current).await;
    assert_eq!(effects(&pool).await, (1, 1));
    // Completing twice is rejected too.
    let tx = queue.begin().await.unwrap();
    assert!(matches!(
        queue.complete(&current, tx).await,
        Err(PgError::LeaseLost { .. })
    ));
}

/// Failures back off exponentially, then the job is dead-lettered with its last error.
#[sqlx::test(migrator = "MIGRATOR")]
async fn failures_back_off_then_dead_letter(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone()).with_retry(RetryPolicy {
        base: Duration::from_millis(200),
        cap: Duration::from_millis(300),
        max_attempts: 3,
    });
    let id = queue.enqueue("k", &json!({}), None).await.unwrap().id;
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        let job = loop {
            if let Some(job) = queue.claim("w", LEASE, &[]).await.unwrap() {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!((job.id, job.attempts), (id, attempt));
        if attempt > 1 {
            assert_eq!(
                job.last_error.as_deref(),
                Some(&*format!("boom {}", attempt - 1))
            );
        }
        match queue.fail(&job, &format!("boom {attempt}")).await.unwrap() {
            FailOutcome::Retry { attempt: a, run_at } => {
                assert_eq!(a, attempt);
                // run_at = now() + delay, updated_at = now(), in one statement: exact delay.
                let (at, delay_ms): (chrono::DateTime<chrono::Utc>, f64) = sqlx::query_as(
                    "SELECT run_at, EXTRACT(EPOCH FROM run_at - updated_at)::float8 * 1000 \
                     FROM steadytext_jobs WHERE id = $1",
                )
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
                assert_eq!(at, run_at);
                delays.push(delay_ms.round() as i64);
                // Backing off: not claimable yet.
                assert!(queue.claim("w", LEASE, &[]).await.unwrap().is_none());
                let due = queue.next_due(&[]).await.unwrap().unwrap();
                assert!(due <= Duration::from_millis(300), "{due:?}");
            }
            FailOutcome::Dead => assert_eq!(attempt, 3),
            other => panic!("{other:?}"),
        }
    }
    // 200 ms, then 400 ms capped to 300 ms.
    assert_eq!(delays, vec![200, 300]);

    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.pending, stats.leased, stats.dead), (0, 0, 1));
    let dead = queue.dead_jobs(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts), (id, 3));
    assert_eq!(dead[0].last_error.as_deref(), Some("boom 3"));
    assert_eq!(dead[0].leased_by.as_deref(), Some("w"));

    // An operator can put it back.
    let again = queue.retry_dead(id).await.unwrap().unwrap();
    assert!(again.created);
    let job = queue.claim("w", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!((job.id, job.attempts), (again.id, 1));
    assert_eq!(queue.stats().await.unwrap().dead, 0);
    assert!(queue.retry_dead(id).await.unwrap().is_none());
}

/// A job whose workers keep dying (lease expires every time) is dead-lettered after
/// max_attempts claims instead of looping forever.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_job_that_keeps_killing_workers_is_dead_lettered(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone()).with_retry(RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    });
    queue.enqueue("poison", &json!({}), None).await.unwrap();
    let short = Duration::from_millis(100);
    for attempt in 1..=2 {
        let job = queue.claim("w", short, &[]).await.unwrap().unwrap();
        assert_eq!(job.attempts, attempt);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(queue.claim("w", short, &[]).await.unwrap().is_none());
    let dead = queue.dead_jobs(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("abandoned 2 times"));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn release_gives_the_job_back_without_counting_the_attempt(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone());
    insert_reviews(&pool, 1).await;
    let job = queue.claim("w", LEASE, &[]).await.unwrap().unwrap();
    assert!(queue.release(&job).await.unwrap());
    let again = queue.claim("w2", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (job.id, 1));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn claims_respect_kinds_delays_and_job_limits(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone());
    let mut conn = pool.acquire().await.unwrap();
    let later = Queue::enqueue_in(
        &mut conn,
        "k",
        &json!({"later": true}),
        &EnqueueOptions {
            delay: Some(Duration::from_secs(3600)),
            max_attempts: Some(1),
            ..EnqueueOptions::default()
        },
    )
    .await
    .unwrap();
    queue.enqueue("other", &json!({}), None).await.unwrap();
    assert!(queue.claim("w", LEASE, &["k"]).await.unwrap().is_none());
    let due = queue.next_due(&["k"]).await.unwrap().unwrap();
    assert!(due > Duration::from_secs(3500));
    assert_eq!(
        queue.next_due(&["other"]).await.unwrap(),
        Some(Duration::ZERO)
    );
    assert_eq!(queue.next_due(&["none"]).await.unwrap(), None);
    let other = queue
        .claim("w", LEASE, &["k", "other"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.kind, "other");

    // The job's own limit beats the policy's: one failure and it is dead.
    sqlx::query("UPDATE steadytext_jobs SET run_at = now() WHERE id = $1")
        .bind(later.id)
        .execute(&pool)
        .await
        .unwrap();
    let job = queue.claim("w", LEASE, &["k"]).await.unwrap().unwrap();
    assert_eq!(job.max_attempts, Some(1));
    assert_eq!(queue.fail(&job, "no").await.unwrap(), FailOutcome::Dead);
}

/// Enqueueing inside a transaction: the job exists only if the transaction commits.
#[sqlx::test(migrator = "MIGRATOR")]
async fn enqueue_in_a_transaction_is_atomic(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let mut tx = pool.begin().await.unwrap();
    Queue::enqueue_in(&mut tx, "k", &json!({}), &EnqueueOptions::default())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(job_rows(&pool).await.is_empty());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn purge_removes_old_done_jobs(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let queue = Queue::new(pool.clone());
    queue.enqueue("k", &json!({}), None).await.unwrap();
    let job = queue.claim("w", LEASE, &[]).await.unwrap().unwrap();
    queue
        .complete(&job, queue.begin().await.unwrap())
        .await
        .unwrap();
    assert_eq!(queue.purge_done(Duration::from_secs(60)).await.unwrap(), 0);
    assert_eq!(queue.purge_done(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(queue.stats().await.unwrap(), Default::default());
}
