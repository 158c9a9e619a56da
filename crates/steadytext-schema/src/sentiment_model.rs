//! The review-sentiment classifier: the model's own probabilities, calibrated on labelled data.
//!
//! Measured on a held-out set of labelled Amazon review sentences (`scripts/fetch-eval-data`,
//! `examples/sentiment_eval.rs`), the seed's approach — a greedy choice among its five labels —
//! does worse than always answering "positive" with the default 135M model: the label scores
//! carry the signal but are strongly biased. So the classifier:
//!
//! 1. asks with a fixed few-shot prompt ([`SENTIMENT_PROMPT_VERSION`]; the rating is included
//!    when known, as in the seed),
//! 2. reads the next-token log-probabilities of [`FEATURE_WORDS`] (the three polarity labels and
//!    37 other sentiment-bearing words) at the answer position: one prefill, cached. (Adding the
//!    labels' complete-answer scores from a `choice` call measured no better and doubled the
//!    cost.)
//! 3. turns them into positive / neutral / negative probabilities with a linear (multinomial
//!    logistic) calibration fitted on the evaluation set's *train* split only
//!    (`sentiment_calibration::CALIBRATION`; the test split is never used for fitting),
//! 4. maps polarity to the seed's five labels: the rating decides intensity when known (5 ->
//!    very_positive, 1 -> very_negative); without a rating, a polarity probability above
//!    [`VERY_THRESHOLD`] is "very".
//!
//! The decision margin (log-probability gap between the best and second-best polarity, nats)
//! feeds the human-review rule for uncertain calls.

use steadytext_core::{Engine, GenerateOptions};

use crate::analysis::AnalysisResult;
use crate::prompts::{PromptBuilder, ReviewInput};
use crate::sentiment::ReviewSentiment;

/// Version of the prompt and calibration (part of results via the prompt text and the cache key).
pub const SENTIMENT_PROMPT_VERSION: &str = "sentiment-fewshot/1";

/// Polarity probability above which an unrated review is labelled very positive / negative.
pub const VERY_THRESHOLD: f64 = 0.9;

/// The few-shot instruction and examples (no PII; invented sentences).
pub const FEW_SHOT: &str =
    "Classify the sentiment of each product review sentence as positive, neutral or negative.\n\n\
Review: the picture quality is superb and the battery lasts forever.\nSentiment: positive\n\n\
Review: i bought it at a local store last month.\nSentiment: neutral\n\n\
Review: the menu buttons are tiny and the software crashes constantly.\nSentiment: negative\n\n\
Review: it comes with a usb cable and a strap.\nSentiment: neutral\n\n\
Review: i love how light it is.\nSentiment: positive\n\n\
Review: customer service never answered my emails.\nSentiment: negative\n\n";

/// Words whose next-token log-probabilities (first token of `" word"`) are features.
pub const FEATURE_WORDS: [&str; 40] = [
    "positive",
    "neutral",
    "negative",
    "good",
    "bad",
    "great",
    "excellent",
    "terrible",
    "awful",
    "poor",
    "love",
    "hate",
    "happy",
    "disappointed",
    "ok",
    "okay",
    "fine",
    "average",
    "mixed",
    "best",
    "worst",
    "nice",
    "horrible",
    "perfect",
    "useless",
    "broken",
    "amazing",
    "decent",
    "fact",
    "informative",
    "description",
    "satisfied",
    "unhappy",
    "frustrated",
    "recommend",
    "problem",
    "issue",
    "yes",
    "no",
    "not",
];

/// A fitted linear calibration: standardise each feature, then `logits = x · W + b` for
/// (positive, neutral, negative).
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Feature means (train split).
    pub mean: &'static [f64],
    /// Feature standard deviations (train split).
    pub std: &'static [f64],
    /// Weights, one row of three per feature.
    pub weights: &'static [[f64; 3]],
    /// Biases.
    pub bias: [f64; 3],
}

/// The review-sentiment classifier (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct SentimentModel {
    calibration: Calibration,
}

impl Default for SentimentModel {
    fn default() -> Self {
        Self {
            calibration: crate::sentiment_calibration::CALIBRATION,
        }
    }
}

/// The prompt the classifier asks (raw text, no chat template). The review is untrusted: its
/// redacted text goes in through [`Engine::untrusted`], so control-token text in it stays text.
pub fn sentiment_prompt(
    engine: &Engine,
    prompts: &PromptBuilder,
    review: &ReviewInput<'_>,
) -> String {
    let rating = review
        .rating
        .map(|r| format!(" (rating {r}/5)"))
        .unwrap_or_default();
    format!(
        "{FEW_SHOT}Review{rating}: {}\nSentiment:",
        engine.untrusted(&prompts.redacted_text(review.text))
    )
}

fn softmax(z: [f64; 3]) -> [f64; 3] {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e = z.map(|v| (v - m).exp());
    let s: f64 = e.iter().sum();
    e.map(|v| v / s)
}

impl SentimentModel {
    /// The features for one review: next-token log-probabilities of [`FEATURE_WORDS`] (each with
    /// a leading space: the prompt ends in "Sentiment:").
    pub async fn features(
        engine: &Engine,
        prompts: &PromptBuilder,
        review: &ReviewInput<'_>,
        base: &GenerateOptions,
    ) -> AnalysisResult<Vec<f64>> {
        let prompt = sentiment_prompt(engine, prompts, review);
        let opts = base.clone().chat(false);
        let words: Vec<String> = FEATURE_WORDS.iter().map(|w| format!(" {w}")).collect();
        Ok(engine.next_token_logprobs(&prompt, &words, &opts).await?)
    }

    /// Probabilities of (positive, neutral, negative) from features.
    pub fn probabilities(&self, features: &[f64]) -> [f64; 3] {
        let c = &self.calibration;
        let mut z = c.bias;
        for (i, &x) in features.iter().enumerate().take(c.weights.len()) {
            let v = (x - c.mean[i]) / c.std[i];
            for (k, zk) in z.iter_mut().enumerate() {
                *zk += v * c.weights[i][k];
            }
        }
        softmax(z)
    }

    /// Map polarity probabilities (and the rating, when known) to a five-way label and the
    /// margin in nats between the best and the second-best polarity.
    pub fn label(probabilities: [f64; 3], rating: Option<u8>) -> (ReviewSentiment, f64) {
        let mut order = [0usize, 1, 2];
        order.sort_by(|&a, &b| {
            probabilities[b]
                .total_cmp(&probabilities[a])
                .then(a.cmp(&b))
        });
        let (best, second) = (order[0], order[1]);
        let margin = probabilities[best].ln() - probabilities[second].ln();
        let p = probabilities[best];
        let label = match (best, rating) {
            (1, _) => ReviewSentiment::Neutral,
            (0, Some(5)) => ReviewSentiment::VeryPositive,
            (0, Some(_)) => ReviewSentiment::Positive,
            (0, None) if p > VERY_THRESHOLD => ReviewSentiment::VeryPositive,
            (0, None) => ReviewSentiment::Positive,
            (_, Some(1)) => ReviewSentiment::VeryNegative,
            (_, Some(_)) => ReviewSentiment::Negative,
            (_, None) if p > VERY_THRESHOLD => ReviewSentiment::VeryNegative,
            (_, None) => ReviewSentiment::Negative,
        };
        (label, margin)
    }

    /// Classify one review.
    pub async fn classify(
        &self,
        engine: &Engine,
        prompts: &PromptBuilder,
        review: &ReviewInput<'_>,
        base: &GenerateOptions,
    ) -> AnalysisResult<(ReviewSentiment, f64)> {
        let feats = Self::features(engine, prompts, review, base).await?;
        Ok(Self::label(
            self.probabilities(&feats),
            review.rating.map(|r| r.get()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_polarity_rating_and_threshold() {
        let (l, m) = SentimentModel::label([0.7, 0.2, 0.1], None);
        assert_eq!(l, ReviewSentiment::Positive);
        assert!((m - (0.7f64 / 0.2).ln()).abs() < 1e-12);
        assert_eq!(
            SentimentModel::label([0.95, 0.03, 0.02], None).0,
            ReviewSentiment::VeryPositive
        );
        assert_eq!(
            SentimentModel::label([0.6, 0.3, 0.1], Some(5)).0,
            ReviewSentiment::VeryPositive
        );
        assert_eq!(
            SentimentModel::label([0.1, 0.2, 0.7], Some(1)).0,
            ReviewSentiment::VeryNegative
        );
        assert_eq!(
            SentimentModel::label([0.1, 0.2, 0.7], Some(2)).0,
            ReviewSentiment::Negative
        );
        assert_eq!(
            SentimentModel::label([0.2, 0.6, 0.2], Some(5)).0,
            ReviewSentiment::Neutral
        );
        // ties go to the first (positive before neutral before negative)
        assert_eq!(
            SentimentModel::label([0.4, 0.4, 0.2], None).0,
            ReviewSentiment::Positive
        );
    }
}
