//! Personalised recommendations: the PII-free customer profile they are generated from, the
//! generated draft, and the seed's priority and ordering rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::enums::RecommendationType;
use crate::records::{Customer, ProductReview};
use crate::segments::common_themes;
use crate::util;

/// Above this churn risk a retention offer outranks everything but products (priority 1).
pub const RETENTION_PRIORITY_RISK: f64 = 0.5;
/// The seed's default number of recommendations.
pub const DEFAULT_RECOMMENDATIONS: usize = 5;
/// At most this many interests go into a profile.
pub const MAX_INTERESTS: usize = 5;

/// What a recommendation prompt may know about a customer. There is deliberately no field for
/// a name, an email or an id: the seed's profile string began `Customer: <first> <last>`; ours
/// cannot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerProfile {
    /// The customer's segment.
    pub segment: Option<String>,
    /// Lifetime value.
    pub lifetime_value: f64,
    /// The stored churn risk; `None` if never computed (the seed printed 0).
    pub churn_risk: Option<f64>,
    /// Themes of the customer's reviews, most frequent first, at most [`MAX_INTERESTS`].
    pub interests: Vec<String>,
    /// Average rating the customer gave.
    pub avg_rating_given: Option<f64>,
}

impl CustomerProfile {
    /// Build from the customer and their reviews (other customers' reviews are ignored).
    ///
    /// ```
    /// use steadytext_schema::{CustomerProfile, Customer};
    ///
    /// let p = CustomerProfile::from_records(&Customer::example(), &[]);
    /// assert_eq!(p.segment.as_deref(), Some("premium"));
    /// assert!(p.interests.is_empty());
    /// ```
    pub fn from_records(customer: &Customer, reviews: &[ProductReview]) -> Self {
        let mine: Vec<&ProductReview> = reviews
            .iter()
            .filter(|r| r.customer_id == Some(customer.id))
            .collect();
        let mut interests = common_themes(mine.iter().copied());
        interests.truncate(MAX_INTERESTS);
        Self {
            segment: customer.segment.clone(),
            lifetime_value: customer.lifetime_value,
            churn_risk: util::finite(customer.churn_risk_score),
            interests,
            avg_rating_given: util::mean(
                mine.iter()
                    .filter_map(|r| r.rating.map(|x| f64::from(x.get()))),
            ),
        }
    }
}

/// What one recommendation generation returns: a title and a description, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(description = "One recommendation: a short title and a description.")]
pub struct RecommendationDraft {
    /// A short title.
    #[schemars(length(min = 1, max = 120))]
    pub title: String,
    /// Why it fits, or the pitch.
    #[schemars(length(min = 1, max = 600))]
    pub description: String,
}

/// One recommendation: the seed's `(recommendation_type, title, description, priority)` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Recommendation {
    /// Product, retention or upsell.
    pub recommendation_type: RecommendationType,
    /// A short title.
    pub title: String,
    /// Why it fits.
    pub description: String,
    /// 1 is most important.
    pub priority: u8,
}

impl Recommendation {
    /// A recommendation of `kind` from a generated draft, with the seed's priority for the
    /// customer's churn risk. Title and description are trimmed.
    pub fn new(
        kind: RecommendationType,
        draft: RecommendationDraft,
        churn_risk: Option<f64>,
    ) -> Self {
        Self {
            recommendation_type: kind,
            title: util::collapse_whitespace(&draft.title),
            description: draft.description.trim().to_string(),
            priority: recommendation_priority(kind, churn_risk),
        }
    }
}

/// The seed's priorities: product 1; retention 1 when churn risk is above 0.5, else 2 (unknown
/// risk counts as not above); upsell 3.
///
/// ```
/// use steadytext_schema::{recommendation_priority, RecommendationType::*};
///
/// assert_eq!(recommendation_priority(Product, None), 1);
/// assert_eq!(recommendation_priority(Retention, Some(0.51)), 1);
/// assert_eq!(recommendation_priority(Retention, Some(0.5)), 2);
/// assert_eq!(recommendation_priority(Retention, None), 2);
/// assert_eq!(recommendation_priority(Upsell, Some(0.9)), 3);
/// ```
pub fn recommendation_priority(kind: RecommendationType, churn_risk: Option<f64>) -> u8 {
    match kind {
        RecommendationType::Product => 1,
        RecommendationType::Retention => {
            if util::finite(churn_risk).is_some_and(|r| r > RETENTION_PRIORITY_RISK) {
                1
            } else {
                2
            }
        }
        RecommendationType::Upsell => 3,
    }
}

/// Sort by priority and keep the first `limit` (the seed's `ORDER BY priority LIMIT n`). Ties
/// are broken by type in the seed's order (product, retention, upsell), then by title, so the
/// result is deterministic where the seed's was not.
///
/// ```
/// use steadytext_schema::{rank_recommendations, Recommendation, RecommendationDraft, RecommendationType::*};
///
/// let draft = |t: &str| RecommendationDraft { title: t.into(), description: "d".into() };
/// let recs = vec![
///     Recommendation::new(Upsell, draft("u"), Some(0.9)),
///     Recommendation::new(Retention, draft("r"), Some(0.9)),
///     Recommendation::new(Product, draft("p"), Some(0.9)),
/// ];
/// let top = rank_recommendations(recs, 2);
/// let kinds: Vec<_> = top.iter().map(|r| r.recommendation_type).collect();
/// assert_eq!(kinds, [Product, Retention]);
/// ```
pub fn rank_recommendations(mut recs: Vec<Recommendation>, limit: usize) -> Vec<Recommendation> {
    recs.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(a.recommendation_type.cmp(&b.recommendation_type))
            .then_with(|| a.title.cmp(&b.title))
    });
    recs.truncate(limit);
    recs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn draft_schema_is_closed() {
        let s = serde_json::to_value(schemars::schema_for!(RecommendationDraft)).unwrap();
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], serde_json::json!(["title", "description"]));
    }

    proptest! {
        #[test]
        fn ranking_is_sorted_limited_and_retention_tracks_risk(
            kinds in proptest::collection::vec(0usize..3, 0..10),
            risk in proptest::option::of(0.0f64..=1.0),
            limit in 0usize..12,
        ) {
            let recs: Vec<Recommendation> = kinds.iter().map(|&k| Recommendation::new(
                RecommendationType::ALL[k],
                RecommendationDraft { title: format!("t{k}"), description: "d".into() },
                risk,
            )).collect();
            let ranked = rank_recommendations(recs.clone(), limit);
            prop_assert_eq!(ranked.len(), recs.len().min(limit));
            prop_assert!(ranked.windows(2).all(|w| w[0].priority <= w[1].priority));
            for r in &ranked {
                if r.recommendation_type == RecommendationType::Retention {
                    prop_assert_eq!(r.priority == 1, risk.is_some_and(|x| x > 0.5));
                }
            }
        }
    }
}
