//! The feedback loop end to end, on the real default model and a real PostgreSQL: reviews are
//! analysed under the built-in calibration, people label them in SQL, a calibration is fitted
//! on their verdicts and activated, a running worker switches to it without a restart, and no
//! result of the old calibration passes for the new one's.
//!
//! The views' insight refreshes, which data changes also enqueue, are switched off in these
//! databases (`steadytext.config`): the tests count the jobs and effects of other kinds.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use sqlx::PgPool;
use steadytext_core::cache::MemoryStore;
use steadytext_core::{Backend, Cache, Engine};
use steadytext_pg::calibrations::{self, Activation};
use steadytext_pg::{AnalysisJobHandler, Intelligence, Store, MIGRATOR};
use steadytext_schema::calibrate::{Candidate, FitReport};
use steadytext_schema::prompts::ReviewInput;
use steadytext_schema::sentiment_fit::Metrics;
use steadytext_schema::sentiment_model::Calibration;
use steadytext_schema::{Analyst, SentimentModel};

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

/// Movie-review-like sentences (a domain the built-in default knows nothing of) and the label
/// a person gives each.
const LABELLED: [(&str, &str); 18] = [
    (
        "A moving, beautifully acted film that stays with you.",
        "positive",
    ),
    ("The funniest comedy I have seen in years.", "very_positive"),
    ("Gorgeous photography and a score to match.", "positive"),
    (
        "I loved every minute of this charming little story.",
        "positive",
    ),
    (
        "An exhilarating ride from start to finish.",
        "very_positive",
    ),
    (
        "A smart, tender and thoroughly enjoyable picture.",
        "positive",
    ),
    ("The film runs for two hours and ten minutes.", "neutral"),
    (
        "It opens in theaters across the country on Friday.",
        "neutral",
    ),
    (
        "The story is set in a small town in Ohio in 1952.",
        "neutral",
    ),
    ("It is based on a novel published in 1987.", "neutral"),
    ("Most of the scenes were shot in Toronto.", "neutral"),
    (
        "The movie is in English with some French dialogue.",
        "neutral",
    ),
    ("A tedious, overlong mess with nothing to say.", "negative"),
    (
        "The jokes fall flat and the plot makes no sense.",
        "negative",
    ),
    (
        "Wooden acting and a script that insults the audience.",
        "very_negative",
    ),
    ("A lazy, joyless sequel that should not exist.", "negative"),
    ("Boring, predictable and far too long.", "negative"),
    (
        "Ugly to look at and painful to sit through.",
        "very_negative",
    ),
];

/// Reviews nobody labels.
const UNLABELLED: [&str; 3] = [
    "The sequel follows the same family ten years later.",
    "A clever script and a lead performance full of warmth.",
    "I wanted to walk out after twenty minutes.",
];

async fn insert_review(pool: &PgPool, text: &str) -> i32 {
    sqlx::query_scalar(
        "INSERT INTO product_reviews (product_id, review_text) VALUES (1, $1) RETURNING id",
    )
    .bind(text)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn calibration_of(pool: &PgPool, review: i32) -> Option<String> {
    sqlx::query_scalar(
        "SELECT calibration_id FROM steadytext_analyses \
         WHERE subject_kind = 'review' AND subject_id = $1::text",
    )
    .bind(review)
    .fetch_optional(pool)
    .await
    .unwrap()
    .flatten()
}

async fn sentiment_of(pool: &PgPool, review: i32) -> Option<String> {
    sqlx::query_scalar("SELECT sentiment FROM product_reviews WHERE id = $1")
        .bind(review)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn label_in_sql_calibrate_and_a_running_worker_switches(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let store = Store::from_pool(pool.clone());
    store.migrate().await.unwrap();
    let builtin = SentimentModel::default();

    // Reviews arrive and are analysed by a worker under the built-in calibration.
    let intel = Arc::new(Intelligence::new(store.clone(), engine()));
    let mut config = worker_config("feedback");
    config.kinds = AnalysisJobHandler::KINDS.map(String::from).to_vec();
    let worker = RunningWorker::spawn(
        &pool,
        Arc::new(AnalysisJobHandler::new(intel.clone())),
        config,
    );
    let mut labelled = Vec::new();
    for (text, label) in LABELLED {
        labelled.push((insert_review(&pool, text).await, label));
    }
    let mut unlabelled = Vec::new();
    for text in UNLABELLED {
        unlabelled.push(insert_review(&pool, text).await);
    }
    let all = LABELLED.len() + UNLABELLED.len();
    assert!(
        wait_for_queue(&pool, Duration::from_secs(600), |s| s.done == all as i64).await,
        "{:?}",
        stats(&pool).await
    );
    for &(id, _) in &labelled {
        assert_eq!(
            calibration_of(&pool, id).await.as_deref(),
            Some(builtin.calibration_id())
        );
    }

    // People label the reviews in SQL.
    for &(id, label) in &labelled {
        sqlx::query("SELECT steadytext_record_verdict('review', $1::text, 'sentiment', $2, 'ann')")
            .bind(id)
            .bind(label)
            .execute(&pool)
            .await
            .unwrap();
    }

    // Fit on the verdicts, against the active (built-in) calibration.
    let mut conn = pool.acquire().await.unwrap();
    let current = intel.sentiment_model(&mut conn).await.unwrap();
    drop(conn);
    assert_eq!(current.calibration_id(), builtin.calibration_id());
    let (examples, report) = calibrations::fit_from_verdicts(&intel, 3, 4).await.unwrap();
    assert_eq!(report.current.0, builtin.calibration_id());
    assert_eq!(examples.len(), LABELLED.len());
    assert_eq!(report.counts, [6, 6, 6], "very_* count as their polarity");
    let fitted = report.chosen().calibration.clone();
    let fitted_id = fitted.id();
    assert_ne!(fitted_id, builtin.calibration_id());
    // Force the activation whatever the comparison says, to test the switch; the comparison
    // itself is tested below.
    let mut tx = pool.begin().await.unwrap();
    calibrations::activate(&mut tx, &fitted).await.unwrap();
    let requeued = calibrations::reanalyse_other_calibrations(&mut tx, &fitted_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        requeued, all as u64,
        "every review was analysed under the built-in one"
    );

    // The running worker re-analyses them under the new calibration, and a new review too.
    let late = insert_review(&pool, "The ending is perfect and the cast is wonderful.").await;
    unlabelled.push(late);
    assert!(
        wait_until(Duration::from_secs(600), || async {
            let mut ok = true;
            for &id in labelled.iter().map(|(id, _)| id).chain(&unlabelled) {
                ok &= calibration_of(&pool, id).await.as_deref() == Some(fitted_id.as_str());
            }
            ok
        })
        .await,
        "{:?}",
        stats(&pool).await
    );
    worker.stop().await;

    // The humans' values stand; the others are the new calibration's, not the old ones'.
    for &(id, label) in &labelled {
        assert_eq!(sentiment_of(&pool, id).await.as_deref(), Some(label));
    }
    let new_model = SentimentModel::new(fitted).unwrap();
    let engine = engine();
    for (&id, text) in unlabelled.iter().zip(
        UNLABELLED
            .iter()
            .copied()
            .chain(["The ending is perfect and the cast is wonderful."]),
    ) {
        let review = ReviewInput {
            rating: None,
            title: None,
            text,
        };
        let expected = Analyst::new(&engine)
            .with_sentiment(new_model.clone())
            .review(&review)
            .await
            .unwrap();
        assert_eq!(
            sentiment_of(&pool, id).await.as_deref(),
            Some(expected.sentiment.as_str()),
            "review {id}: {text}"
        );
    }

    // A refit against the now-active calibration: activated only if not worse.
    let mut conn = pool.acquire().await.unwrap();
    let current = intel.sentiment_model(&mut conn).await.unwrap();
    assert_eq!(current.calibration_id(), fitted_id);
    drop(conn);
    let (_, again) = calibrations::fit_from_verdicts(&intel, 3, 4).await.unwrap();
    assert_eq!(again.current.0, fitted_id);
    let outcome = calibrations::activate_if_not_worse(&store, &again)
        .await
        .unwrap();
    let active = scalar_text(&pool, "SELECT id FROM steadytext_calibrations WHERE active").await;
    match outcome {
        Activation::Refused { gain } => {
            assert!(gain < 0.0 && gain == again.gain());
            assert_eq!(active, fitted_id, "a refused calibration changes nothing");
        }
        Activation::Activated { id, .. } => {
            assert!(again.gain() >= 0.0);
            assert_eq!(active, id);
        }
    }
}

async fn scalar_text(pool: &PgPool, sql: &str) -> String {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_worse_calibration_is_refused_and_too_few_verdicts_are_an_error(pool: PgPool) {
    without_insight_refresh(&pool).await;
    let store = Store::from_pool(pool.clone());
    store.migrate().await.unwrap();
    let intel = Intelligence::new(store.clone(), engine());
    // No verdicts at all: a typed error, nothing stored.
    let e = calibrations::fit_from_verdicts(&intel, 3, 2)
        .await
        .unwrap_err();
    assert!(matches!(e, steadytext_pg::PgError::Calibrate(_)), "{e:?}");
    assert!(e.to_string().contains("0 labelled examples"), "{e}");
    let n = scalar(&pool, "SELECT count(*) FROM steadytext_calibrations").await;
    assert_eq!(n, 0);

    // A fit that cross-validates below the current calibration's score is refused.
    let metrics = |right: usize| {
        Metrics::new(
            &[0, 1, 2, 0],
            &[
                0,
                1,
                if right > 2 { 2 } else { 0 },
                if right > 3 { 0 } else { 1 },
            ],
        )
    };
    let report = FitReport {
        counts: [2, 1, 1],
        folds: 2,
        majority: Metrics::majority(&[0, 1, 2, 0]).1,
        current: (
            SentimentModel::default().calibration_id().into(),
            metrics(4),
        ),
        candidates: vec![Candidate {
            name: "test",
            cross_validated: metrics(2),
            calibration: Calibration::builtin(),
        }],
        chosen: 0,
    };
    assert!(report.gain() < 0.0);
    assert_eq!(
        calibrations::activate_if_not_worse(&store, &report)
            .await
            .unwrap(),
        Activation::Refused {
            gain: report.gain()
        }
    );
    let n = scalar(&pool, "SELECT count(*) FROM steadytext_calibrations").await;
    assert_eq!(n, 0, "nothing stored");
}
