//! A model per task on the real models: review sentiment classified on Gemma 3 270M (with its
//! shipped calibration) while every other analysis runs on the default SmolLM2.

use std::sync::{Arc, OnceLock};

use steadytext_core::{Cache, Engine};
use steadytext_schema::prompts::ReviewInput;
use steadytext_schema::{Analyst, Polarity, Rating, SentimentModel};

fn cache() -> Arc<Cache> {
    static CACHE: OnceLock<Arc<Cache>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            Arc::new(Cache::new(vec![Arc::new(
                steadytext_core::cache::MemoryStore::new(64 << 20),
            )]))
        })
        .clone()
}

fn engine(model: Option<&str>) -> Engine {
    let mut builder = Engine::builder();
    if let Some(m) = model {
        builder = builder.model_path(m);
    }
    let backend = builder
        .build_shared_backend()
        .expect("models load (run scripts/fetch-model and scripts/fetch-model gemma3-270m)");
    Engine::with_shared_cache(backend, cache())
}

fn smollm2() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| engine(None))
}

fn gemma() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| engine(Some("gemma3-270m")))
}

const BAD: ReviewInput<'static> = ReviewInput {
    rating: None,
    title: Some("Very disappointed"),
    text: "Product broke after just one week of use. Customer support was unhelpful and \
           refused to honor the warranty. Will not buy from this company again.",
};

const GOOD: ReviewInput<'static> = ReviewInput {
    rating: None,
    title: Some("Excellent product!"),
    text: "This product exceeded my expectations. The quality is outstanding and the \
           customer service was impeccable. Would definitely recommend it.",
};

#[test]
fn each_shipped_calibration_belongs_to_its_model() {
    let smol = SentimentModel::shipped_for(smollm2().backend().identity()).unwrap();
    assert_eq!(smol, SentimentModel::default());
    let gem = SentimentModel::shipped_for(gemma().backend().identity()).unwrap();
    assert_ne!(gem.calibration_id(), smol.calibration_id());
    assert_eq!(
        gem.calibration().features,
        ["positive", "neutral", "negative"]
    );
    assert!(gem
        .calibration()
        .provenance
        .fitted_on
        .contains("gguf/gemma3/"));
}

#[tokio::test]
async fn sentiment_runs_on_the_classifier_model_and_the_rest_on_the_main_one() {
    let sentiment = SentimentModel::shipped_for(gemma().backend().identity()).unwrap();
    let split = Analyst::new(smollm2()).with_classifier(gemma(), sentiment.clone());
    assert_eq!(
        split.classifier_engine().backend().identity(),
        gemma().backend().identity()
    );
    let alone = Analyst::new(smollm2());
    for (review, want) in [(&BAD, Polarity::Negative), (&GOOD, Polarity::Positive)] {
        let a = split.review(review).await.unwrap();
        assert_eq!(a.sentiment.polarity(), want, "{a:?}");
        assert_eq!(a.calibration.as_deref(), Some(sentiment.calibration_id()));
        // Themes and summary are the main model's: the same as without a classifier.
        let b = alone.review(review).await.unwrap();
        assert_eq!((&a.themes, &a.summary), (&b.themes, &b.summary));
        assert_ne!(a.calibration, b.calibration);
        // The classifier's own sentiment, called directly, is what the review carries.
        let (s, _) = split.review_sentiment(review).await.unwrap();
        assert_eq!(s, a.sentiment);
    }
    // Deterministic: fresh, uncached engines give the same result.
    let fresh = |e: &Engine| Engine::new(e.backend().clone(), Cache::disabled());
    let (m, c) = (fresh(smollm2()), fresh(gemma()));
    let again = Analyst::new(&m)
        .with_classifier(&c, sentiment)
        .review(&BAD)
        .await
        .unwrap();
    assert_eq!(again, split.review(&BAD).await.unwrap());
    // A rated review still takes its intensity from the rating.
    let rated = ReviewInput {
        rating: Some(Rating::new(1).unwrap()),
        ..BAD
    };
    let r = split.review(&rated).await.unwrap();
    assert_eq!(r.sentiment.polarity(), Polarity::Negative, "{r:?}");
}
