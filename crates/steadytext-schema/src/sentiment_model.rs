//! The review-sentiment classifier: the model's own next-token scores, read through a
//! [`Calibration`].
//!
//! 1. The classifier asks with a fixed few-shot prompt ([`SENTIMENT_PROMPT_VERSION`]; the
//!    rating is included when known, as in the seed).
//! 2. It reads the next-token log-probabilities of the calibration's words (the default:
//!    [`FEATURE_WORDS`], the three polarity labels and 37 other sentiment-bearing words) at the
//!    answer position: one prefill, cached.
//! 3. The calibration's linear map turns them into positive / neutral / negative
//!    probabilities.
//! 4. Polarity maps to the seed's five labels: the rating decides intensity when known (5 ->
//!    very_positive, 1 -> very_negative); without a rating, a polarity probability above
//!    [`VERY_THRESHOLD`] is "very".
//!
//! **The default was chosen by domains it was not fitted on.** Candidates were fitted on the
//! train split of vaderSentiment's Amazon review sentences only and compared on the test splits
//! of its movie-review, tweet and news-editorial sentences (`examples/sentiment_eval.rs
//! --explore`; the README has the table): raw argmax over the label scores, the same after
//! subtracting the scores on content-free inputs ([`CONTENT_FREE`]), one fitted bias per label,
//! 3- and 40-feature logistic regressions, each under the product prompt and a domain-neutral
//! one. Content-free calibration and raw argmax fall below the majority class on news; the
//! class-balanced 40-feature logistic regression ([`Calibration::builtin`]) is above the
//! majority class on every held-out domain and has the best macro-F1 there.
//!
//! **The feedback loop.** `steadytext calibrate sentiment` fits a calibration to labelled
//! examples or to the human verdicts in a database ([`crate::calibrate`]); a calibration is a
//! JSON document whose [`id`](Calibration::id) every review result records
//! ([`ReviewAnalysis::calibration`](crate::ReviewAnalysis::calibration)).
//!
//! The decision margin (log-probability gap between the best and second-best polarity, nats)
//! feeds the human-review rule for uncertain calls.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use steadytext_core::{Engine, GenerateOptions};
use thiserror::Error;

use crate::analysis::AnalysisResult;
use crate::prompts::{PromptBuilder, ReviewInput};
use crate::sentiment::ReviewSentiment;
use crate::sentiment_fit::{softmax, Linear, Metrics};

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

/// Content-free inputs (Zhao et al. 2021, "Calibrate before use"): the model's label scores on
/// them measure its bias towards each label, whatever the text.
pub const CONTENT_FREE: [&str; 3] = ["N/A", "", "[MASK]"];

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

/// The built-in calibration's document (`defaults/sentiment_calibration.json`, written by
/// `examples/sentiment_eval.rs --write-default`).
pub const DEFAULT_CALIBRATION_JSON: &str = include_str!("../defaults/sentiment_calibration.json");

/// Gemma 3 270M's calibration (`defaults/sentiment_calibration_gemma3-270m.json`, written by
/// `STEADYTEXT_MODEL=gemma3-270m examples/sentiment_eval.rs --per-split 250 --write-default PATH
/// --labels-only`): the three label scores and a logistic regression fitted on Amazon review
/// sentences only, the candidate that transferred best to the held-out domains on that model.
pub const GEMMA3_270M_CALIBRATION_JSON: &str =
    include_str!("../defaults/sentiment_calibration_gemma3-270m.json");

/// The calibrations that ship, by the model whose scores they were fitted on: (blake3
/// fingerprint of the GGUF file, the model's name for `--model`, the calibration document). A
/// calibration reads one model's scores; on another model it is meaningless.
pub const SHIPPED_CALIBRATIONS: &[(&str, &str, &str)] = &[
    (
        "5f4fa13bfc6dd4a91fd00e22974a9c4e9ed628fd7d7f307398ddf30260d6b2c3",
        "smollm2-135m",
        DEFAULT_CALIBRATION_JSON,
    ),
    (
        "cae8a85634ad6b98b9bd58f4d2ba2ed053f51a3b71ff3d7ca8644b2db1c1fad3",
        "gemma3-270m",
        GEMMA3_270M_CALIBRATION_JSON,
    ),
];

/// Format version of [`Calibration`] files.
pub const CALIBRATION_FORMAT: u32 = 1;

/// A sentiment calibration: which next-token scores the classifier reads and how it turns
/// them into positive / neutral / negative. Stored as JSON (`steadytext calibrate sentiment
/// --output CAL`, the `steadytext_calibrations` table); its [`id`](Self::id) is in every
/// result it produced.
///
/// ```
/// use steadytext_schema::sentiment_model::Calibration;
///
/// let builtin = Calibration::builtin();
/// let json = serde_json::to_string(&builtin).unwrap();
/// let back = Calibration::from_json(&json).unwrap();
/// assert_eq!(back.id(), builtin.id());
/// assert!(Calibration::from_json("{}").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// [`CALIBRATION_FORMAT`].
    pub format: u32,
    /// The sentiment prompt the features are read after ([`SENTIMENT_PROMPT_VERSION`]).
    pub prompt: String,
    /// Words whose next-token log-probabilities (first token of `" word"`) are the features,
    /// in order.
    pub features: Vec<String>,
    /// Whether the first three features are the labels (positive, neutral, negative) and have
    /// the model's scores on content-free inputs ([`CONTENT_FREE`]) subtracted first.
    pub content_free: bool,
    /// Features to class logits.
    pub linear: Linear,
    /// Where it came from (part of the identity).
    pub provenance: Provenance,
}

/// Where a calibration was fitted and how well it cross-validated there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// What it was fitted on, in words.
    pub fitted_on: String,
    /// Labelled examples used (0: fitted on none).
    pub examples: usize,
    /// Cross-validated quality on those examples, when fitted.
    pub cross_validated: Option<Metrics>,
}

/// Why a calibration cannot be used.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum CalibrationError {
    /// Not a calibration document.
    #[error("not a sentiment calibration: {0}")]
    Json(String),
    /// A format this version does not read.
    #[error(
        "calibration format {found} is not supported (this version reads {CALIBRATION_FORMAT})"
    )]
    Format {
        /// The file's format.
        found: u32,
    },
    /// Fitted for another prompt: its features would mean something else.
    #[error("calibration was fitted for prompt {found:?}; this version asks {expected:?} (refit it with `steadytext calibrate sentiment`)")]
    Prompt {
        /// The prompt this version asks.
        expected: &'static str,
        /// The calibration's prompt.
        found: String,
    },
    /// Inconsistent sizes or values.
    #[error("invalid calibration: {0}")]
    Invalid(String),
}

impl Calibration {
    /// The default ([`DEFAULT_CALIBRATION_JSON`]): 40 word scores and a class-balanced
    /// logistic regression fitted on Amazon review sentences only, chosen by how it does on
    /// held-out domains (see the module docs).
    pub fn builtin() -> Self {
        Self::from_json(DEFAULT_CALIBRATION_JSON).expect("the shipped calibration is valid")
    }

    /// Parse and check a calibration document.
    ///
    /// # Errors
    /// [`CalibrationError`] when it is not a calibration, of another format or prompt, or
    /// inconsistent.
    pub fn from_json(json: &str) -> Result<Self, CalibrationError> {
        let c: Self =
            serde_json::from_str(json).map_err(|e| CalibrationError::Json(e.to_string()))?;
        c.check()?;
        Ok(c)
    }

    /// Check that this calibration can be applied by this version.
    ///
    /// # Errors
    /// See [`from_json`](Self::from_json).
    pub fn check(&self) -> Result<(), CalibrationError> {
        if self.format != CALIBRATION_FORMAT {
            return Err(CalibrationError::Format { found: self.format });
        }
        if self.prompt != SENTIMENT_PROMPT_VERSION {
            return Err(CalibrationError::Prompt {
                expected: SENTIMENT_PROMPT_VERSION,
                found: self.prompt.clone(),
            });
        }
        let d = self.features.len();
        let invalid = |m: String| Err(CalibrationError::Invalid(m));
        if d == 0 || d > MAX_FEATURES {
            return invalid(format!("{d} features (1 to {MAX_FEATURES})"));
        }
        if self
            .features
            .iter()
            .any(|w| w.trim().is_empty() || w.len() > 32)
        {
            return invalid("a feature word is empty or longer than 32 bytes".into());
        }
        if self.content_free && (d < 3 || self.features[..3] != LABEL_WORDS) {
            return invalid("content_free needs the three labels as the first features".into());
        }
        let l = &self.linear;
        if l.mean.len() != d || l.std.len() != d || l.weights.len() != d {
            return invalid(format!(
                "{d} features but {} means, {} deviations, {} weight rows",
                l.mean.len(),
                l.std.len(),
                l.weights.len()
            ));
        }
        let finite = l.mean.iter().all(|v| v.is_finite())
            && l.std.iter().all(|v| v.is_finite() && *v > 0.0)
            && l.weights.iter().flatten().all(|v| v.is_finite())
            && l.bias.iter().all(|v| v.is_finite());
        if !finite {
            return invalid("a non-finite value, or a deviation that is not positive".into());
        }
        Ok(())
    }

    /// The identity of this calibration: `cal-` and 16 hex digits of a BLAKE3 hash of its
    /// canonical JSON. Two calibrations that could give different results differ in it.
    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).expect("a calibration serialises");
        let hash = blake3::hash(&json);
        format!("cal-{}", &hash.to_hex()[..16])
    }
}

/// Most feature words a calibration may read.
pub const MAX_FEATURES: usize = 64;

/// The three polarity labels, in class order: the first features of every content-free
/// calibration.
pub const LABEL_WORDS: [&str; 3] = ["positive", "neutral", "negative"];

/// The review-sentiment classifier: a [`Calibration`] applied to the model's next-token scores
/// (see the module docs). Cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct SentimentModel {
    calibration: Arc<Calibration>,
    id: Arc<str>,
}

impl Default for SentimentModel {
    fn default() -> Self {
        Self::new(Calibration::builtin()).expect("the built-in calibration is valid")
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

/// Next-token log-probabilities of `words` (first token of `" word"`) after the sentiment
/// prompt for `review`: one prefill, cached.
pub async fn raw_features(
    engine: &Engine,
    prompts: &PromptBuilder,
    review: &ReviewInput<'_>,
    words: &[String],
    base: &GenerateOptions,
) -> AnalysisResult<Vec<f64>> {
    let prompt = sentiment_prompt(engine, prompts, review);
    let opts = base.clone().chat(false);
    let words: Vec<String> = words.iter().map(|w| format!(" {w}")).collect();
    Ok(engine.next_token_logprobs(&prompt, &words, &opts).await?)
}

/// The model's bias towards each label: the log of the mean (over [`CONTENT_FREE`]) of the
/// label probabilities renormalised over the three labels. Three cached calls.
pub async fn content_free_scores(
    engine: &Engine,
    prompts: &PromptBuilder,
    base: &GenerateOptions,
) -> AnalysisResult<[f64; 3]> {
    let words: Vec<String> = LABEL_WORDS.iter().map(|w| w.to_string()).collect();
    let mut mean = [0.0; 3];
    for text in CONTENT_FREE {
        let review = ReviewInput {
            rating: None,
            title: None,
            text,
        };
        let f = raw_features(engine, prompts, &review, &words, base).await?;
        let p = softmax([f[0], f[1], f[2]]);
        for k in 0..3 {
            mean[k] += p[k] / CONTENT_FREE.len() as f64;
        }
    }
    Ok(mean.map(f64::ln))
}

impl SentimentModel {
    /// The shipped classifier for the model a backend runs (matched by the weights'
    /// fingerprint in its identity, [`SHIPPED_CALIBRATIONS`]), or `None` when none ships for
    /// it: fit one with `steadytext calibrate sentiment` on that model.
    ///
    /// ```
    /// use steadytext_schema::SentimentModel;
    /// let smollm2 = "gguf/llama/5f4fa13bfc6dd4a91fd00e22974a9c4e9ed628fd7d7f307398ddf30260d6b2c3/native-v4/prefill-chunk64";
    /// assert_eq!(SentimentModel::shipped_for(smollm2), Some(SentimentModel::default()));
    /// assert_eq!(SentimentModel::shipped_for("gguf/llama/0123/native-v4"), None);
    /// ```
    pub fn shipped_for(backend_identity: &str) -> Option<Self> {
        let fingerprint = backend_identity.split('/').nth(2)?;
        SHIPPED_CALIBRATIONS
            .iter()
            .find(|(fp, _, _)| *fp == fingerprint)
            .map(|(_, name, json)| {
                let c = Calibration::from_json(json)
                    .unwrap_or_else(|e| panic!("the shipped calibration of {name} is valid: {e}"));
                Self::new(c).expect("a checked calibration")
            })
    }

    /// A classifier with this calibration.
    ///
    /// # Errors
    /// [`CalibrationError`] when the calibration cannot be applied ([`Calibration::check`]).
    pub fn new(calibration: Calibration) -> Result<Self, CalibrationError> {
        calibration.check()?;
        let id = calibration.id().into();
        Ok(Self {
            calibration: Arc::new(calibration),
            id,
        })
    }

    /// The calibration applied.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The calibration's identity ([`Calibration::id`]), recorded in every result.
    pub fn calibration_id(&self) -> &str {
        &self.id
    }

    /// The calibration's features for one review: next-token log-probabilities of its words
    /// (each with a leading space: the prompt ends in "Sentiment:"), the label scores relative
    /// to the content-free ones when the calibration says so.
    pub async fn features(
        &self,
        engine: &Engine,
        prompts: &PromptBuilder,
        review: &ReviewInput<'_>,
        base: &GenerateOptions,
    ) -> AnalysisResult<Vec<f64>> {
        let c = &self.calibration;
        let mut f = raw_features(engine, prompts, review, &c.features, base).await?;
        if c.content_free {
            let cf = content_free_scores(engine, prompts, base).await?;
            for k in 0..3 {
                f[k] -= cf[k];
            }
        }
        Ok(f)
    }

    /// Probabilities of (positive, neutral, negative) from [`features`](Self::features).
    pub fn probabilities(&self, features: &[f64]) -> [f64; 3] {
        self.calibration.linear.probabilities(features)
    }

    /// Probabilities of (positive, neutral, negative) for one review.
    pub async fn probabilities_of(
        &self,
        engine: &Engine,
        prompts: &PromptBuilder,
        review: &ReviewInput<'_>,
        base: &GenerateOptions,
    ) -> AnalysisResult<[f64; 3]> {
        let f = self.features(engine, prompts, review, base).await?;
        Ok(self.probabilities(&f))
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
        let p = self.probabilities_of(engine, prompts, review, base).await?;
        Ok(Self::label(p, review.rating.map(|r| r.get())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrations_are_checked_and_identified_by_content() {
        let b = Calibration::builtin();
        b.check().unwrap();
        let id = b.id();
        assert!(id.starts_with("cal-") && id.len() == 20, "{id}");
        assert_eq!(SentimentModel::default().calibration_id(), id);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(Calibration::from_json(&json).unwrap().id(), id);

        let mut other = b.clone();
        other.linear.bias[1] = 0.25;
        assert_ne!(other.id(), id, "a different map is a different identity");

        let mut c = b.clone();
        c.prompt = "sentiment-fewshot/0".into();
        assert!(matches!(
            SentimentModel::new(c),
            Err(CalibrationError::Prompt { .. })
        ));
        let mut c = b.clone();
        c.format = 9;
        assert!(matches!(
            c.check(),
            Err(CalibrationError::Format { found: 9 })
        ));
        let mut c = b.clone();
        c.linear.weights.pop();
        assert!(matches!(c.check(), Err(CalibrationError::Invalid(_))));
        let mut c = b.clone();
        c.linear.std[0] = 0.0;
        assert!(matches!(c.check(), Err(CalibrationError::Invalid(_))));
        let mut c = b.clone();
        c.content_free = true;
        c.features.swap(0, 1);
        assert!(matches!(c.check(), Err(CalibrationError::Invalid(_))));
        assert!(matches!(
            Calibration::from_json("{\"format\": 1}"),
            Err(CalibrationError::Json(_))
        ));
        let unknown = json.replacen("{", "{\"extra\": 1, ", 1);
        assert!(matches!(
            Calibration::from_json(&unknown),
            Err(CalibrationError::Json(_))
        ));
    }

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
