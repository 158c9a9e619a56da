//! Human review in PostgreSQL, on the real default model: flagged analyses are queued with
//! their reasons and provenance, verdicts are recorded with who, when, before and after, and no
//! re-analysis overwrites them; bad verdicts are typed errors that record nothing.
//!
//! The views' insight refreshes, which data changes also enqueue, are switched off in these
//! databases (`steadytext.config`): the tests count the jobs and effects of other kinds.

mod common;

use std::sync::{Arc, OnceLock};

use common::*;
use sqlx::PgPool;
use steadytext_core::cache::MemoryStore;
use steadytext_core::{Backend, Cache, Engine};
use steadytext_pg::human_review::{self, NewVerdict, SubjectKind, VerdictProblem};
use steadytext_pg::{Intelligence, PgError, Store, MIGRATOR, VERDICT_FIELDS};
use steadytext_schema::{
    HumanReviewReason, ReviewSentiment, TicketSentiment, Urgency, PROMPT_VERSION,
};

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

/// Model-heavy tests run one at a time (parallel decoding on 2 cores only oversubscribes).
async fn model_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

const ANGRY: &str = "Absolutely terrible. It broke on the first day, the replacement broke too, \
    and support never answered. The worst purchase I have ever made.";
const ANGRY_AGAIN: &str = "Awful and useless. It stopped working within an hour and nobody \
    replied to my emails. A complete waste of money.";

async fn setup(pool: &PgPool) -> Arc<Intelligence> {
    Store::from_pool(pool.clone()).migrate().await.unwrap();
    exec(
        pool,
        "INSERT INTO customers (id, email, first_name, last_name, segment) \
         VALUES (7, 'ann@example.com', 'Ann', 'Lee', 'premium')",
    )
    .await;
    Arc::new(Intelligence::new(Store::from_pool(pool.clone()), engine()))
}

async fn insert_review(pool: &PgPool, title: &str, text: &str) -> i32 {
    sqlx::query_scalar(
        "INSERT INTO product_reviews (customer_id, product_id, rating, title, review_text) \
         VALUES (7, 42, 1, $1, $2) RETURNING id",
    )
    .bind(title)
    .bind(text)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn text(pool: &PgPool, sql: &str) -> Option<String> {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn float(pool: &PgPool, sql: &str) -> Option<f64> {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn queued(pool: &PgPool) -> Vec<(SubjectKind, String)> {
    human_review::review_queue(pool, None)
        .await
        .unwrap()
        .into_iter()
        .map(|q| (q.subject_kind, q.subject_id))
        .collect()
}

/// Whether the review is in the queue exactly when its analysis changed after the last verdict.
async fn queue_follows_the_rule(pool: &PgPool, id: i32) -> bool {
    let in_queue = queued(pool)
        .await
        .contains(&(SubjectKind::Review, id.to_string()));
    let changed_since: bool = sqlx::query_scalar(
        "SELECT a.changed_at > (SELECT max(decided_at) FROM steadytext_human_verdicts v \
                                WHERE v.subject_kind = 'review' AND v.subject_id = a.subject_id) \
         FROM steadytext_analyses a WHERE subject_kind = 'review' AND subject_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(pool)
    .await
    .unwrap();
    in_queue == changed_since
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_labelled_review_leaves_the_queue_and_survives_reanalysis(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let intel = setup(&pool).await;
    let id = insert_review(&pool, "Broken twice", ANGRY).await;
    let sid = id.to_string();
    let a = intel.analyze_review(id).await.unwrap();
    assert_eq!(a.sentiment, ReviewSentiment::VeryNegative, "{a:?}");
    assert!(
        a.human_review
            .reasons
            .contains(&HumanReviewReason::VeryNegativeSentiment),
        "{a:?}"
    );

    // Recorded with its flag, reasons and provenance, and queued with them.
    let record = human_review::analysis(&pool, SubjectKind::Review, &sid)
        .await
        .unwrap()
        .expect("analysis recorded");
    assert!(record.needs_human_review);
    assert_eq!(record.reasons, a.human_review.reasons);
    assert_eq!(record.prompt_version, PROMPT_VERSION);
    assert_eq!(record.model_id, engine().backend().identity());
    assert_eq!(record.calibration_id, a.calibration);
    assert_eq!(
        record.calibration_id.as_deref(),
        Some(steadytext_schema::SentimentModel::default().calibration_id())
    );
    assert_eq!(
        record.ai_values,
        serde_json::json!({"sentiment": "very_negative"})
    );
    let queue = human_review::review_queue(&pool, Some(10)).await.unwrap();
    assert_eq!(queue.len(), 1, "{queue:?}");
    let item = &queue[0];
    assert_eq!(
        (item.subject_kind, item.subject_id.as_str()),
        (SubjectKind::Review, sid.as_str())
    );
    assert_eq!(item.reasons, a.human_review.reasons);
    assert!(
        item.subject_text
            .starts_with("rating 1/5: Broken twice — Absolutely terrible."),
        "{item:?}"
    );
    assert_eq!(
        item.current_values,
        serde_json::json!({"sentiment": "very_negative"})
    );
    assert_eq!(item.fields(), ["sentiment"]);

    // A human's verdict through SQL: who, when, before and after; the seed column follows.
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let (verdict_id,): (i64,) = sqlx::query_as(
        "SELECT steadytext_record_verdict('review', $1, 'sentiment', 'Negative', 'alice', \
                'annoyed, not furious')",
    )
    .bind(&sid)
    .fetch_one(&pool)
    .await
    .unwrap();
    let verdicts = human_review::verdicts(&pool, Some((SubjectKind::Review, &sid)))
        .await
        .unwrap();
    assert_eq!(verdicts.len(), 1);
    let v = &verdicts[0];
    assert_eq!(v.id, verdict_id);
    assert_eq!(v.field, "sentiment");
    assert_eq!(v.value_before.as_deref(), Some("very_negative"));
    assert_eq!(v.value_after, "negative");
    assert_eq!(v.reviewer, "alice");
    assert_eq!(v.note.as_deref(), Some("annoyed, not furious"));
    assert!(
        v.decided_at > before && v.decided_at > record.changed_at,
        "{v:?}"
    );
    assert!(queued(&pool).await.is_empty());
    let sentiment_sql = format!("SELECT sentiment::text FROM product_reviews WHERE id = {id}");
    let score_sql = format!(
        "SELECT sentiment_score::float8 FROM customer_interactions \
         WHERE interaction_type = 'review' AND metadata->>'review_id' = '{id}'"
    );
    assert_eq!(
        text(&pool, &sentiment_sql).await.as_deref(),
        Some("negative")
    );
    assert_eq!(float(&pool, &score_sql).await, Some(-0.5));

    // Analysing again: the same outcome, so still settled; the human's value stays.
    intel.analyze_review(id).await.unwrap();
    assert!(queued(&pool).await.is_empty());
    assert_eq!(
        text(&pool, &sentiment_sql).await.as_deref(),
        Some("negative")
    );
    assert_eq!(float(&pool, &score_sql).await, Some(-0.5));
    let again = human_review::analysis(&pool, SubjectKind::Review, &sid)
        .await
        .unwrap()
        .unwrap();
    assert!(again.computed_at > record.computed_at);
    assert_eq!(again.changed_at, record.changed_at);

    // Any other writer is overruled too.
    exec(
        &pool,
        &format!("UPDATE product_reviews SET sentiment = 'very_positive' WHERE id = {id}"),
    )
    .await;
    assert_eq!(
        text(&pool, &sentiment_sql).await.as_deref(),
        Some("negative")
    );

    // Edit the text and back: each edit's job re-analyses (the summary follows the text), and
    // the human's sentiment stays; the queue shows the review only if an outcome changed.
    for body in [ANGRY_AGAIN, ANGRY] {
        sqlx::query("UPDATE product_reviews SET review_text = $2 WHERE id = $1")
            .bind(id)
            .bind(body)
            .execute(&pool)
            .await
            .unwrap();
        let done = intel.process_pending().await.unwrap();
        assert_eq!((done.completed, done.failed, done.stale), (1, 0, 0));
        let summary = text(
            &pool,
            &format!("SELECT ai_summary FROM product_reviews WHERE id = {id}"),
        )
        .await
        .unwrap();
        assert!(body.contains(&summary), "{summary:?} not from {body:?}");
        assert_eq!(
            text(&pool, &sentiment_sql).await.as_deref(),
            Some("negative")
        );
        assert_eq!(float(&pool, &score_sql).await, Some(-0.5));
        assert!(queue_follows_the_rule(&pool, id).await);
    }
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM steadytext_human_verdicts").await,
        1
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_ticket_urgency_label_sticks(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let intel = setup(&pool).await;
    let (id,): (i32,) = sqlx::query_as(
        "INSERT INTO support_tickets (ticket_number, customer_id, category, subject, description) \
         VALUES ('TKT-9', 7, 'shipping', 'Where is my order?', \
                 'My order was supposed to arrive last week and the tracking shows no updates.') \
         RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let sid = id.to_string();
    let analysed = intel.analyze_ticket(id).await.unwrap();
    let ai_urgency = analysed.analysis.urgency;
    assert_ne!(ai_urgency, Urgency::Critical, "{analysed:?}");
    let record = human_review::analysis(&pool, SubjectKind::Ticket, &sid)
        .await
        .unwrap()
        .expect("analysis recorded");
    assert_eq!(record.needs_human_review, analysed.human_review.needed);
    assert_eq!(record.ai_values["urgency"], ai_urgency.as_str());
    assert_eq!(
        record.ai_values["category"],
        analysed.analysis.category.as_str()
    );

    let verdict_id = human_review::record_verdict(
        &pool,
        &NewVerdict {
            subject_kind: SubjectKind::Ticket,
            subject_id: sid.clone(),
            field: "urgency".into(),
            value: "critical".into(),
            reviewer: "bob".into(),
            note: Some("a VIP's order".into()),
        },
    )
    .await
    .unwrap();
    let v = human_review::verdict(&pool, verdict_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            v.value_before.as_deref(),
            v.value_after.as_str(),
            v.reviewer.as_str()
        ),
        (Some(ai_urgency.as_str()), "critical", "bob")
    );
    let urgency_sql =
        format!("SELECT ai_analysis->>'urgency' FROM support_tickets WHERE id = {id}");
    let logged_sql = format!(
        "SELECT metadata->>'urgency' FROM customer_interactions \
         WHERE interaction_type = 'support' AND metadata->>'ticket_id' = '{id}'"
    );
    assert_eq!(text(&pool, &urgency_sql).await.as_deref(), Some("critical"));
    assert_eq!(text(&pool, &logged_sql).await.as_deref(), Some("critical"));
    // The stored analysis still reads as a typed ticket analysis, and says who decided.
    let mut conn = pool.acquire().await.unwrap();
    let row = steadytext_pg::rows::ticket(&mut *conn, id)
        .await
        .unwrap()
        .unwrap();
    let stored = row
        .ai_analysis
        .expect("ai_analysis reads as a TicketAnalysis");
    assert_eq!(stored.urgency, Urgency::Critical);
    assert!(
        stored
            .rules
            .iter()
            .any(|r| r == "urgency: set by a human reviewer"),
        "{stored:?}"
    );

    // A category verdict puts the category first in the tags.
    let other = if analysed.analysis.category == "billing_payment" {
        "shipping_delivery"
    } else {
        "billing_payment"
    };
    human_review::record_verdict(
        &pool,
        &NewVerdict {
            subject_kind: SubjectKind::Ticket,
            subject_id: sid.clone(),
            field: "Category".into(),
            value: other.into(),
            reviewer: "bob".into(),
            note: None,
        },
    )
    .await
    .unwrap();

    // Re-analysing (and an edit's re-analysis) keeps the human's values.
    intel.analyze_ticket(id).await.unwrap();
    exec(
        &pool,
        &format!(
            "UPDATE support_tickets SET description = description || ' Please help.' WHERE id = {id}"
        ),
    )
    .await;
    let done = intel.process_pending().await.unwrap();
    assert_eq!((done.completed, done.failed), (1, 0));
    let row = steadytext_pg::rows::ticket(&mut *conn, id)
        .await
        .unwrap()
        .unwrap();
    let stored = row.ai_analysis.unwrap();
    assert_eq!(stored.urgency, Urgency::Critical);
    assert_eq!(stored.category, other);
    assert_eq!(
        stored.tags.first().map(String::as_str),
        Some(other),
        "{stored:?}"
    );
    assert_eq!(text(&pool, &logged_sql).await.as_deref(), Some("critical"));
    let record = human_review::analysis(&pool, SubjectKind::Ticket, &sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.ai_values["urgency"],
        ai_urgency.as_str(),
        "the AI's own value"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn churn_and_segment_analyses_are_recorded_and_a_human_score_stays(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let _turn = model_turn().await;
    let intel = setup(&pool).await;
    // Customer 7: inactive for 100 days (risk 1.0); customer 8: active today (low risk).
    exec(
        &pool,
        "UPDATE customers SET last_active_date = current_date - 100, acquisition_date = \
           current_date - 400 WHERE id = 7; \
         INSERT INTO customers (id, email, segment, last_active_date) \
           VALUES (8, 'bo@example.com', 'premium', current_date)",
    )
    .await;
    let reports = intel.calculate_churn_risk().await.unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let high = human_review::analysis(&pool, SubjectKind::Churn, "7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(high.reasons, [HumanReviewReason::HighChurnRisk]);
    assert_eq!(high.ai_values, serde_json::json!({"churn_risk_score": 1.0}));
    let low = human_review::analysis(&pool, SubjectKind::Churn, "8")
        .await
        .unwrap()
        .unwrap();
    assert!(!low.needs_human_review && low.reasons.is_empty(), "{low:?}");
    assert_eq!(low.prompt_version, PROMPT_VERSION);
    let queue = human_review::review_queue(&pool, None).await.unwrap();
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(
        queue[0].subject_text,
        "customer 7 (segment premium): churn risk 1.00"
    );
    assert!(!queue[0].subject_text.contains("ann@"));

    human_review::record_verdict(
        &pool,
        &NewVerdict {
            subject_kind: SubjectKind::Churn,
            subject_id: "7".into(),
            field: "churn_risk_score".into(),
            value: "0.4".into(),
            reviewer: "carol".into(),
            note: Some("on holiday, renewed by phone".into()),
        },
    )
    .await
    .unwrap();
    let score_sql = "SELECT churn_risk_score::float8 FROM customers WHERE id = 7";
    assert_eq!(float(&pool, score_sql).await, Some(0.4));
    assert!(queued(&pool).await.is_empty());
    intel.calculate_churn_risk().await.unwrap();
    assert_eq!(float(&pool, score_sql).await, Some(0.4));
    assert!(
        queued(&pool).await.is_empty(),
        "same outcome: still settled"
    );
    let v = human_review::verdicts(&pool, None).await.unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0].value_before.as_deref(), v[0].value_after.as_str()),
        (Some("1.00"), "0.40")
    );

    // Segment profiles are recorded (never flagged); a segment that disappears takes its row.
    intel.analyze_customer_segments().await.unwrap();
    let seg = human_review::analysis(&pool, SubjectKind::Segment, "premium")
        .await
        .unwrap()
        .expect("segment analysis recorded");
    assert!(!seg.needs_human_review);
    assert_eq!(seg.model_id, engine().backend().identity());
    exec(&pool, "UPDATE customers SET segment = 'basic'").await;
    intel.analyze_customer_segments().await.unwrap();
    assert!(
        human_review::analysis(&pool, SubjectKind::Segment, "premium")
            .await
            .unwrap()
            .is_none()
    );
    assert!(human_review::analysis(&pool, SubjectKind::Segment, "basic")
        .await
        .unwrap()
        .is_some());
}

fn verdict(kind: SubjectKind, id: &str, field: &str, value: &str, reviewer: &str) -> NewVerdict {
    NewVerdict {
        subject_kind: kind,
        subject_id: id.into(),
        field: field.into(),
        value: value.into(),
        reviewer: reviewer.into(),
        note: None,
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn bad_verdicts_are_typed_errors_and_record_nothing(pool: PgPool) {
    without_insight_refresh(&pool).await;
    Store::from_pool(pool.clone()).migrate().await.unwrap();
    exec(
        &pool,
        "INSERT INTO customers (id, email, churn_risk_score) VALUES (7, 'a@b.co', 0.8); \
         INSERT INTO product_reviews (id, customer_id, rating, review_text, sentiment) \
           VALUES (1, 7, 1, 'Bad.', 'very_negative'); \
         INSERT INTO support_tickets (id, ticket_number, customer_id, subject) \
           VALUES (1, 'T-1', 7, 'Help')",
    )
    .await;
    use SubjectKind::*;
    use VerdictProblem::*;
    let cases = [
        (
            verdict(Review, "1", "sentiment", "meh", "alice"),
            InvalidValue,
            "very_negative",
        ),
        (
            verdict(Review, "1", "sentiment", "", "alice"),
            InvalidValue,
            "one of",
        ),
        (
            verdict(Review, "1", "rating", "5", "alice"),
            UnknownField,
            "sentiment",
        ),
        (
            verdict(Segment, "premium", "ai_profile", "x", "alice"),
            UnknownField,
            "segment",
        ),
        (
            verdict(Review, "2", "sentiment", "negative", "alice"),
            UnknownSubject,
            "no review",
        ),
        (
            verdict(Review, "x1", "sentiment", "negative", "alice"),
            UnknownSubject,
            "no review",
        ),
        (
            verdict(Ticket, "1", "urgency", "urgent", "alice"),
            InvalidValue,
            "critical",
        ),
        (
            verdict(Ticket, "1", "category", "nonsense", "alice"),
            InvalidValue,
            "steadytext_taxonomy",
        ),
        (
            verdict(Churn, "7", "churn_risk_score", "1.5", "alice"),
            InvalidValue,
            "0 to 1",
        ),
        (
            verdict(Churn, "7", "churn_risk_score", "-0.1", "alice"),
            InvalidValue,
            "0 to 1",
        ),
        (
            verdict(Churn, "7", "churn_risk_score", "NaN", "alice"),
            InvalidValue,
            "0 to 1",
        ),
        (
            verdict(Churn, "9", "churn_risk_score", "0.5", "alice"),
            UnknownSubject,
            "no customer",
        ),
        (
            verdict(Review, "1", "sentiment", "negative", "  "),
            MissingReviewer,
            "reviewer",
        ),
    ];
    for (v, expected, mentions) in cases {
        match human_review::record_verdict(&pool, &v).await {
            Err(PgError::InvalidVerdict { problem, message }) => {
                assert_eq!(problem, expected, "{v:?}: {message}");
                assert!(message.contains(mentions), "{v:?}: {message}");
            }
            other => panic!("{v:?}: {other:?}"),
        }
    }
    // The category set is the database's taxonomy: an error lists its keys.
    let err =
        human_review::record_verdict(&pool, &verdict(Ticket, "1", "category", "nonsense", "a"))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("shipping_delivery"), "{err}");
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM steadytext_human_verdicts").await,
        0
    );
    assert_eq!(
        text(
            &pool,
            "SELECT sentiment::text FROM product_reviews WHERE id = 1"
        )
        .await
        .as_deref(),
        Some("very_negative")
    );
    assert_eq!(
        float(
            &pool,
            "SELECT churn_risk_score::float8 FROM customers WHERE id = 7"
        )
        .await,
        Some(0.8)
    );

    // A ticket not analysed yet takes the verdict; its analysis will carry it.
    let id = human_review::record_verdict(&pool, &verdict(Ticket, "01", "urgency", " HIGH ", "a"))
        .await
        .unwrap();
    let v = human_review::verdict(&pool, id).await.unwrap().unwrap();
    assert_eq!(
        (
            v.subject_id.as_str(),
            v.value_before,
            v.value_after.as_str()
        ),
        ("1", None, "high")
    );
    exec(
        &pool,
        r#"UPDATE support_tickets SET ai_analysis = '{"urgency": "low", "sentiment": "neutral",
             "root_cause": "", "suggested_resolution": "", "follow_up_needed": false,
             "tags": [], "category": "other", "rules": []}' WHERE id = 1"#,
    )
    .await;
    assert_eq!(
        text(
            &pool,
            "SELECT ai_analysis->>'urgency' FROM support_tickets WHERE id = 1"
        )
        .await
        .as_deref(),
        Some("high")
    );

    // Verdicts are append-only.
    for sql in [
        "UPDATE steadytext_human_verdicts SET value_after = 'low'",
        "DELETE FROM steadytext_human_verdicts",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM steadytext_human_verdicts").await,
        1
    );
}

/// The SQL closed sets are the Rust ones: fields, labels and sentiment scores.
#[sqlx::test(migrator = "MIGRATOR")]
async fn the_sql_closed_sets_match_the_schema_crate(pool: PgPool) {
    without_insight_refresh(&pool).await;
    Store::from_pool(pool.clone()).migrate().await.unwrap();
    let rows: Vec<(String, String, Option<Vec<String>>)> = sqlx::query_as(
        "SELECT subject_kind, field, allowed_values FROM steadytext_verdict_fields ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let fields: Vec<(String, String)> = rows.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
    let expected: Vec<(String, String)> = VERDICT_FIELDS
        .iter()
        .map(|(k, f)| (k.as_str().to_string(), f.to_string()))
        .collect();
    assert_eq!(fields, expected);
    let labels = |l: &[&str]| Some(l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(rows[0].2, labels(ReviewSentiment::LABELS));
    assert_eq!(rows[1].2, labels(Urgency::LABELS));
    assert_eq!(rows[2].2, labels(TicketSentiment::LABELS));
    let taxonomy: Vec<String> =
        sqlx::query_scalar("SELECT key FROM steadytext_taxonomy ORDER BY position, key")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(!taxonomy.is_empty());
    assert_eq!(rows[3].2, Some(taxonomy));
    assert_eq!(rows[4].2, None);
    for s in ReviewSentiment::ALL {
        let sql = format!("SELECT steadytext_sentiment_score('review', '{s}')::float8");
        assert_eq!(float(&pool, &sql).await, Some(s.score()), "{s}");
    }
    for s in TicketSentiment::ALL {
        let sql = format!("SELECT steadytext_sentiment_score('ticket', '{s}')::float8");
        assert_eq!(float(&pool, &sql).await, Some(s.score()), "{s}");
    }
}
