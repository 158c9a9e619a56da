//! Fitting a sentiment calibration to labelled texts: the feedback loop's learning step.
//!
//! [`fit_sentiment`] reads the model's next-token scores for every example (cached), fits the
//! candidate calibrations, scores each by k-fold cross-validation on the examples, scores the
//! current calibration on the same examples, and returns the best candidate by cross-validated
//! macro-F1 (ties to the simpler one) with the whole comparison ([`FitReport`]).
//! `steadytext calibrate sentiment` prints it and writes or activates the result.
//!
//! Candidates, simplest first:
//! 1. **bias on content-free scores**: the default's features (the three label scores minus the
//!    model's scores on content-free inputs) plus one fitted bias per class: 2 free numbers.
//! 2. **logistic on the label scores**: a 3×3 linear map and biases on the same features.
//! 3. **logistic on 40 words**: the label scores and 37 other sentiment words
//!    ([`FEATURE_WORDS`]), L2-regularised: needs hundreds of examples to pay off.
//!
//! Labelled examples are JSON lines `{"text": …, "label": "positive"|"neutral"|"negative",
//! "rating": 1-5 (optional)}` ([`parse_labels`]).

use std::io::BufRead;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Deserialize;
use steadytext_core::{Engine, GenerateOptions};
use thiserror::Error;

use crate::analysis::AnalysisError;
use crate::prompts::{PromptBuilder, ReviewInput};
use crate::records::Rating;
use crate::sentiment::Polarity;
use crate::sentiment_fit::{cross_validate, fit_bias, fit_linear, Linear, Metrics, CLASSES};
use crate::sentiment_model::{
    content_free_scores, raw_features, Calibration, Provenance, SentimentModel, CALIBRATION_FORMAT,
    FEATURE_WORDS, LABEL_WORDS, SENTIMENT_PROMPT_VERSION,
};

/// A text with a person's polarity label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledText {
    /// The text (a review).
    pub text: String,
    /// Its star rating, when known (the classifier's prompt includes it, as at analysis time).
    pub rating: Option<Rating>,
    /// The label.
    pub label: Polarity,
}

/// Why labelled examples cannot be read or fitted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CalibrateError {
    /// A line of the labels file is not a labelled example.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// Reading the labels failed.
    #[error("reading labels: {0}")]
    Io(#[from] std::io::Error),
    /// Too few examples to fit and cross-validate.
    #[error("{got} labelled examples with {classes} distinct labels; at least {needed} examples with at least 2 labels are needed")]
    TooFew {
        /// Examples given.
        got: usize,
        /// Distinct labels among them.
        classes: usize,
        /// The minimum.
        needed: usize,
    },
    /// The model failed.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
}

/// Other fields (an id, a split) are ignored.
#[derive(Deserialize)]
struct LabelLine {
    text: String,
    label: String,
    #[serde(default)]
    rating: Option<i64>,
}

/// Read labelled examples from JSON lines (blank lines skipped). The whole input is checked:
/// the first bad line is a [`CalibrateError::Line`] with its number.
///
/// ```
/// use steadytext_schema::calibrate::parse_labels;
/// use steadytext_schema::Polarity;
///
/// let ok = parse_labels(&b"{\"text\": \"Great!\", \"label\": \"positive\", \"rating\": 5}\n\n"[..]).unwrap();
/// assert_eq!(ok[0].label, Polarity::Positive);
/// let err = parse_labels(&b"{\"text\": \"x\", \"label\": \"good\"}\n"[..]).unwrap_err();
/// assert!(err.to_string().starts_with("line 1:"));
/// ```
///
/// # Errors
/// [`CalibrateError::Line`] for a line that is not `{"text", "label", "rating"?}` with a known
/// label, a non-empty text and a rating of 1 to 5; [`CalibrateError::Io`].
pub fn parse_labels(reader: impl BufRead) -> Result<Vec<LabelledText>, CalibrateError> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| CalibrateError::Line {
            line: i + 1,
            message,
        };
        let v: LabelLine = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        if v.text.trim().is_empty() {
            return Err(bad("empty text".into()));
        }
        let label: Polarity = v.label.parse().map_err(|e| bad(format!("{e}")))?;
        let rating = v
            .rating
            .map(Rating::try_from)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        out.push(LabelledText {
            text: v.text,
            rating,
            label,
        });
    }
    Ok(out)
}

/// One fitted candidate and its cross-validated quality.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// What it is.
    pub name: &'static str,
    /// k-fold cross-validated metrics on the examples.
    pub cross_validated: Metrics,
    /// Fitted on all examples.
    pub calibration: Calibration,
}

/// The outcome of [`fit_sentiment`].
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// Examples per class (positive, neutral, negative).
    pub counts: [usize; CLASSES],
    /// Folds of the cross-validation.
    pub folds: usize,
    /// Always answering the most frequent label.
    pub majority: Metrics,
    /// The current calibration's id and its metrics on the same examples (not cross-validated:
    /// it was fitted elsewhere, or on some of them).
    pub current: (String, Metrics),
    /// Every candidate, simplest first.
    pub candidates: Vec<Candidate>,
    /// Index of the chosen candidate in `candidates`.
    pub chosen: usize,
}

impl FitReport {
    /// The chosen calibration.
    pub fn chosen(&self) -> &Candidate {
        &self.candidates[self.chosen]
    }

    /// How much better (positive) or worse the chosen candidate's cross-validated macro-F1 is
    /// than the current calibration's on the same examples.
    pub fn gain(&self) -> f64 {
        self.chosen().cross_validated.macro_f1 - self.current.1.macro_f1
    }
}

/// Smallest number of examples [`fit_sentiment`] accepts.
pub const MIN_EXAMPLES: usize = 10;

/// Fit a sentiment calibration to `examples` (see the module docs). `fitted_on` describes the
/// examples' source for the calibration's [`Provenance`]. Model calls: one per example for
/// the 40 word scores (`concurrency` in flight) and one per example for the current
/// calibration's features, all cached.
///
/// # Errors
/// [`CalibrateError::TooFew`] under [`MIN_EXAMPLES`] or with a single label; model errors.
pub async fn fit_sentiment(
    engine: &Engine,
    prompts: &PromptBuilder,
    current: &SentimentModel,
    examples: &[LabelledText],
    folds: usize,
    concurrency: usize,
    fitted_on: &str,
) -> Result<FitReport, CalibrateError> {
    let y: Vec<usize> = examples.iter().map(|e| e.label.index()).collect();
    let mut counts = [0usize; CLASSES];
    for &t in &y {
        counts[t] += 1;
    }
    let classes = counts.iter().filter(|&&c| c > 0).count();
    let folds = folds.clamp(2, 10);
    let needed = MIN_EXAMPLES.max(folds);
    if examples.len() < needed || classes < 2 {
        return Err(CalibrateError::TooFew {
            got: examples.len(),
            classes,
            needed,
        });
    }
    let base = GenerateOptions::default();
    let inputs: Vec<ReviewInput<'_>> = examples
        .iter()
        .map(|e| ReviewInput {
            rating: e.rating,
            title: None,
            text: &e.text,
        })
        .collect();
    let words: Vec<String> = FEATURE_WORDS.iter().map(|w| w.to_string()).collect();
    let raw: Vec<Vec<f64>> = stream::iter(inputs.iter())
        .map(|r| raw_features(engine, prompts, r, &words, &base))
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    let cf = content_free_scores(engine, prompts, &base).await?;
    let relative: Vec<Vec<f64>> = raw
        .iter()
        .map(|f| (0..3).map(|k| f[k] - cf[k]).collect())
        .collect();

    let cur_pred: Vec<usize> = stream::iter(inputs.iter())
        .map(|r| current.probabilities_of(engine, prompts, r, &base))
        .buffered(concurrency.max(1))
        .map_ok(crate::sentiment_fit::argmax)
        .try_collect()
        .await?;
    let current_metrics = Metrics::new(&y, &cur_pred);

    let provenance = |cv: &Metrics| Provenance {
        fitted_on: fitted_on.to_string(),
        examples: examples.len(),
        cross_validated: Some(cv.clone()),
    };
    let calibration =
        |features: &[&str], content_free: bool, linear: Linear, cv: &Metrics| Calibration {
            format: CALIBRATION_FORMAT,
            prompt: SENTIMENT_PROMPT_VERSION.to_string(),
            features: features.iter().map(|w| w.to_string()).collect(),
            content_free,
            linear,
            provenance: provenance(cv),
        };
    let mut candidates = Vec::new();
    let bias = |x: &[Vec<f64>], y: &[usize]| fit_bias(x, y, 1.0);
    let cv = cross_validate(&relative, &y, folds, bias);
    candidates.push(Candidate {
        name: "bias on content-free label scores",
        calibration: calibration(&LABEL_WORDS, true, bias(&relative, &y), &cv),
        cross_validated: cv,
    });
    let lr3 = |x: &[Vec<f64>], y: &[usize]| fit_linear(x, y, 1.0);
    let cv = cross_validate(&relative, &y, folds, lr3);
    candidates.push(Candidate {
        name: "logistic on the label scores",
        calibration: calibration(&LABEL_WORDS, true, lr3(&relative, &y), &cv),
        cross_validated: cv,
    });
    let lr40 = |x: &[Vec<f64>], y: &[usize]| fit_linear(x, y, 10.0);
    let cv = cross_validate(&raw, &y, folds, lr40);
    candidates.push(Candidate {
        name: "logistic on 40 word scores",
        calibration: calibration(&FEATURE_WORDS, false, lr40(&raw, &y), &cv),
        cross_validated: cv,
    });
    // Best cross-validated macro-F1; a more complex candidate must win by more than 0.005.
    let mut chosen = 0;
    for (i, c) in candidates.iter().enumerate().skip(1) {
        if c.cross_validated.macro_f1 > candidates[chosen].cross_validated.macro_f1 + 0.005 {
            chosen = i;
        }
    }
    Ok(FitReport {
        counts,
        folds,
        majority: Metrics::majority(&y).1,
        current: (current.calibration_id().to_string(), current_metrics),
        candidates,
        chosen,
    })
}
