//! Sentiment calibrations on the real default model: fitting one from labelled texts, and the
//! calibration's identity in every review result.

use std::sync::{Arc, OnceLock};

use steadytext_core::{Backend, Cache, Engine};
use steadytext_schema::calibrate::{fit_sentiment, parse_labels, CalibrateError, LabelledText};
use steadytext_schema::prompts::{PromptBuilder, ReviewInput};
use steadytext_schema::sentiment_model::Calibration;
use steadytext_schema::{Analyst, Polarity, SentimentModel};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let backend = Engine::builder()
            .build_backend()
            .expect("model loads (run scripts/fetch-model)");
        Engine::new(
            Arc::new(backend) as Arc<dyn Backend>,
            Cache::new(vec![Arc::new(steadytext_core::cache::MemoryStore::new(
                64 << 20,
            ))]),
        )
    })
}

/// Invented movie-review-like sentences, 8 per class: a domain the built-in default was not
/// fitted on.
const LABELS: &str = r#"
{"text": "A moving, beautifully acted film that stays with you.", "label": "positive"}
{"text": "The funniest comedy I have seen in years.", "label": "positive"}
{"text": "Gorgeous photography and a score to match.", "label": "positive"}
{"text": "A clever script and a lead performance full of warmth.", "label": "positive"}
{"text": "I loved every minute of this charming little story.", "label": "positive"}
{"text": "An exhilarating ride from start to finish.", "label": "positive"}
{"text": "The cast is wonderful and the ending is perfect.", "label": "positive"}
{"text": "A smart, tender and thoroughly enjoyable picture.", "label": "positive"}
{"text": "The film runs for two hours and ten minutes.", "label": "neutral"}
{"text": "It opens in theaters across the country on Friday.", "label": "neutral"}
{"text": "The story is set in a small town in Ohio in 1952.", "label": "neutral"}
{"text": "The director previously made two documentaries.", "label": "neutral"}
{"text": "It is based on a novel published in 1987.", "label": "neutral"}
{"text": "Most of the scenes were shot in Toronto.", "label": "neutral"}
{"text": "The sequel follows the same family ten years later.", "label": "neutral"}
{"text": "The movie is in English with some French dialogue.", "label": "neutral"}
{"text": "A tedious, overlong mess with nothing to say.", "label": "negative"}
{"text": "The jokes fall flat and the plot makes no sense.", "label": "negative"}
{"text": "Wooden acting and a script that insults the audience.", "label": "negative"}
{"text": "I wanted to walk out after twenty minutes.", "label": "negative"}
{"text": "A lazy, joyless sequel that should not exist.", "label": "negative"}
{"text": "Boring, predictable and far too long.", "label": "negative"}
{"text": "The worst film of the year, by a wide margin.", "label": "negative"}
{"text": "Ugly to look at and painful to sit through.", "label": "negative"}
"#;

fn examples() -> Vec<LabelledText> {
    parse_labels(LABELS.trim().as_bytes()).expect("the labels parse")
}

#[tokio::test]
async fn a_fitted_calibration_reports_its_cross_validation_and_applies_by_identity() {
    let engine = engine();
    let prompts = PromptBuilder::new();
    let current = SentimentModel::default();
    let examples = examples();
    assert_eq!(examples.len(), 24);
    let report = fit_sentiment(engine, &prompts, &current, &examples, 4, 8, "test labels")
        .await
        .expect("fits");
    assert_eq!(report.counts, [8, 8, 8]);
    assert_eq!(report.folds, 4);
    assert_eq!(report.candidates.len(), 3);
    assert_eq!(report.majority.accuracy, 1.0 / 3.0);
    assert_eq!(report.current.0, current.calibration_id());
    for c in &report.candidates {
        assert_eq!(c.cross_validated.n, 24);
        let p = &c.calibration.provenance;
        assert_eq!((p.fitted_on.as_str(), p.examples), ("test labels", 24));
        assert_eq!(p.cross_validated.as_ref(), Some(&c.cross_validated));
        c.calibration
            .check()
            .expect("a fitted calibration is valid");
    }
    // The choice is the best cross-validated macro-F1 (a later candidate wins only by more
    // than 0.005).
    let best = report
        .candidates
        .iter()
        .map(|c| c.cross_validated.macro_f1)
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(report.chosen().cross_validated.macro_f1 >= best - 0.005 - 1e-12);
    // The labels are easy: the fitted calibration beats always-the-majority clearly.
    assert!(
        report.chosen().cross_validated.macro_f1 > 0.5,
        "{:?}",
        report.chosen().cross_validated
    );
    // Deterministic: the same fit again is the same calibration.
    let again = fit_sentiment(engine, &prompts, &current, &examples, 4, 3, "test labels")
        .await
        .unwrap();
    assert_eq!(again.chosen().calibration, report.chosen().calibration);

    // A review result names the calibration that classified it.
    let fitted = SentimentModel::new(report.chosen().calibration.clone()).unwrap();
    assert_ne!(fitted.calibration_id(), current.calibration_id());
    let review = ReviewInput {
        rating: None,
        title: None,
        text: "The acting is superb and the story kept me hooked until the end.",
    };
    let with_default = Analyst::new(engine).review(&review).await.unwrap();
    assert_eq!(
        with_default.calibration.as_deref(),
        Some(current.calibration_id())
    );
    let with_fitted = Analyst::new(engine)
        .with_sentiment(fitted.clone())
        .review(&review)
        .await
        .unwrap();
    assert_eq!(
        with_fitted.calibration.as_deref(),
        Some(fitted.calibration_id())
    );
    let (label, _) = fitted
        .classify(
            engine,
            &prompts,
            &review,
            &steadytext_core::GenerateOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(with_fitted.sentiment, label);
    assert_eq!(label.polarity(), Polarity::Positive);
}

#[tokio::test]
async fn a_calibration_that_says_positive_always_is_applied_as_written() {
    // Not a realistic calibration: a huge positive bias shows the linear map is what decides.
    let mut c = Calibration::builtin();
    c.linear.bias[0] += 50.0;
    c.provenance.fitted_on = "test: always positive".into();
    let model = SentimentModel::new(c).unwrap();
    let review = ReviewInput {
        rating: None,
        title: None,
        text: "Terrible. It broke on the first day and nobody answered my emails.",
    };
    let a = Analyst::new(engine())
        .with_sentiment(model.clone())
        .review(&review)
        .await
        .unwrap();
    assert_eq!(a.sentiment.polarity(), Polarity::Positive);
    assert_eq!(a.calibration.as_deref(), Some(model.calibration_id()));
    let d = Analyst::new(engine()).review(&review).await.unwrap();
    assert_eq!(d.sentiment.polarity(), Polarity::Negative, "{d:?}");
}

#[tokio::test]
async fn too_few_or_one_sided_labels_are_a_typed_error() {
    let prompts = PromptBuilder::new();
    let current = SentimentModel::default();
    let few = &examples()[..5];
    let e = fit_sentiment(engine(), &prompts, &current, few, 5, 2, "few")
        .await
        .unwrap_err();
    assert!(matches!(e, CalibrateError::TooFew { got: 5, .. }), "{e:?}");
    let one_sided: Vec<LabelledText> = examples()
        .into_iter()
        .filter(|e| e.label == Polarity::Positive)
        .chain(
            examples()
                .into_iter()
                .filter(|e| e.label == Polarity::Positive),
        )
        .collect();
    let e = fit_sentiment(engine(), &prompts, &current, &one_sided, 5, 2, "one")
        .await
        .unwrap_err();
    assert!(
        matches!(e, CalibrateError::TooFew { classes: 1, .. }),
        "{e:?}"
    );
}
