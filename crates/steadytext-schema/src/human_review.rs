//! When a person must look at an AI result before anyone acts on it.
//!
//! The seed's own best practice: "Always have humans validate critical decisions". The rules,
//! as a pure function of a result's signals ([`assess`]):
//!
//! | reason | when |
//! |---|---|
//! | [`HighChurnRisk`](HumanReviewReason::HighChurnRisk) | churn risk above [`HIGH_CHURN_RISK`] (0.7, the executive summary's high-risk threshold) |
//! | [`CriticalUrgency`](HumanReviewReason::CriticalUrgency) | ticket urgency is `critical` |
//! | [`VeryNegativeSentiment`](HumanReviewReason::VeryNegativeSentiment) | sentiment score at or below [`VERY_NEGATIVE_SENTIMENT`] (-0.75): a `very_negative` review, an `angry` ticket, or an average that is mostly those |
//! | [`LowChoiceMargin`](HumanReviewReason::LowChoiceMargin) | the model's top two labels were close: log-probability margin below [`LOW_CHOICE_MARGIN`] (ln 2: the winner was less than twice as likely as the runner-up), or the margin is NaN |
//!
//! Missing signals raise nothing. The margin is the one the engine's choice call reports
//! (`Choice::margin` in `steadytext-core`: best total log-probability minus the second best, in
//! nats; infinite with a single option).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::churn::HIGH_CHURN_RISK;
use crate::enums::{closed_set, Urgency};

/// Sentiment scores at or below this are very negative.
pub const VERY_NEGATIVE_SENTIMENT: f64 = -0.75;
/// Choice margins (nats) below this are too close to call: `ln 2`.
pub const LOW_CHOICE_MARGIN: f64 = std::f64::consts::LN_2;

closed_set! {
    /// Why a result needs a human.
    pub enum HumanReviewReason ("human review reason") {
        /// Churn risk above 0.7.
        HighChurnRisk => "high_churn_risk",
        /// A critical ticket.
        CriticalUrgency => "critical_urgency",
        /// Very negative sentiment.
        VeryNegativeSentiment => "very_negative_sentiment",
        /// The model was unsure between its top two labels.
        LowChoiceMargin => "low_choice_margin",
    }
}

/// Whether a result needs a human, and why. `needed` is true exactly when `reasons` is
/// non-empty; build it with [`HumanReview::from_reasons`] or [`assess`] to keep it so.
///
/// ```
/// use steadytext_schema::{HumanReview, HumanReviewReason};
///
/// let none = HumanReview::none();
/// assert!(!none.needed);
/// let r = HumanReview::from_reasons([HumanReviewReason::CriticalUrgency]);
/// assert!(r.needed);
/// assert_eq!(
///     serde_json::to_value(&r).unwrap(),
///     serde_json::json!({"needed": true, "reasons": ["critical_urgency"]})
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct HumanReview {
    /// Whether a person must review the result before it is acted on.
    pub needed: bool,
    /// Why, in a fixed order, without duplicates.
    pub reasons: Vec<HumanReviewReason>,
}

impl HumanReview {
    /// No review needed.
    pub fn none() -> Self {
        Self::default()
    }

    /// From reasons (sorted, deduplicated).
    pub fn from_reasons(reasons: impl IntoIterator<Item = HumanReviewReason>) -> Self {
        let mut reasons: Vec<HumanReviewReason> = reasons.into_iter().collect();
        reasons.sort();
        reasons.dedup();
        Self {
            needed: !reasons.is_empty(),
            reasons,
        }
    }

    /// Both sets of reasons.
    pub fn merge(self, other: Self) -> Self {
        Self::from_reasons(self.reasons.into_iter().chain(other.reasons))
    }

    /// The reasons as strings (`"critical_urgency"`).
    pub fn reason_labels(&self) -> Vec<&'static str> {
        self.reasons.iter().map(|r| r.as_str()).collect()
    }
}

/// The signals a result carries; anything unknown is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ReviewSignals {
    /// Churn risk, `0..=1`.
    pub churn_risk: Option<f64>,
    /// Ticket urgency.
    pub urgency: Option<Urgency>,
    /// Sentiment score, `-1..=1`.
    pub sentiment_score: Option<f64>,
    /// Log-probability margin between the model's top two labels, in nats.
    pub choice_margin: Option<f64>,
}

/// Apply the rules in the [module docs](self).
///
/// ```
/// use steadytext_schema::human_review::{assess, HumanReviewReason, ReviewSignals};
///
/// let r = assess(&ReviewSignals { churn_risk: Some(0.71), choice_margin: Some(0.2), ..Default::default() });
/// assert_eq!(r.reasons, [HumanReviewReason::HighChurnRisk, HumanReviewReason::LowChoiceMargin]);
/// assert!(!assess(&ReviewSignals { churn_risk: Some(0.7), ..Default::default() }).needed);
/// ```
pub fn assess(signals: &ReviewSignals) -> HumanReview {
    use HumanReviewReason::*;
    let mut reasons = Vec::new();
    if signals.churn_risk.is_some_and(|r| r > HIGH_CHURN_RISK) {
        reasons.push(HighChurnRisk);
    }
    if signals.urgency == Some(Urgency::Critical) {
        reasons.push(CriticalUrgency);
    }
    if signals
        .sentiment_score
        .is_some_and(|s| s <= VERY_NEGATIVE_SENTIMENT)
    {
        reasons.push(VeryNegativeSentiment);
    }
    if signals
        .choice_margin
        .is_some_and(|m| m.is_nan() || m < LOW_CHOICE_MARGIN)
    {
        reasons.push(LowChoiceMargin);
    }
    HumanReview::from_reasons(reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentiment::{ReviewSentiment, TicketSentiment};
    use proptest::prelude::*;

    #[test]
    fn discrete_labels() {
        let flagged = |s: f64| {
            assess(&ReviewSignals {
                sentiment_score: Some(s),
                ..Default::default()
            })
            .needed
        };
        let review: Vec<bool> = ReviewSentiment::ALL
            .iter()
            .map(|s| flagged(s.score()))
            .collect();
        assert_eq!(review, [false, false, false, false, true]);
        let ticket: Vec<bool> = TicketSentiment::ALL
            .iter()
            .map(|s| flagged(s.score()))
            .collect();
        assert_eq!(ticket, [true, false, false, false, false]);
    }

    #[test]
    fn margins() {
        let flagged = |m: f64| {
            assess(&ReviewSignals {
                choice_margin: Some(m),
                ..Default::default()
            })
            .needed
        };
        assert!(flagged(0.0));
        assert!(flagged(0.69));
        assert!(!flagged(0.7));
        assert!(!flagged(f64::INFINITY));
        assert!(flagged(f64::NAN));
        assert!(!assess(&ReviewSignals::default()).needed);
    }

    proptest! {
        #[test]
        fn needed_iff_reasons(r in proptest::option::of(-1.0f64..2.0), s in proptest::option::of(-1.0f64..=1.0),
                              m in proptest::option::of(0.0f64..5.0), u in proptest::option::of(0usize..4)) {
            let signals = ReviewSignals { churn_risk: r, sentiment_score: s, choice_margin: m, urgency: u.map(|i| Urgency::ALL[i]) };
            let h = assess(&signals);
            prop_assert_eq!(h.needed, !h.reasons.is_empty());
            // Adding a critical urgency only ever adds a reason.
            let more = assess(&ReviewSignals { urgency: Some(Urgency::Critical), ..signals });
            prop_assert!(more.reasons.len() >= h.reasons.len());
            prop_assert!(more.needed);
        }
    }
}
