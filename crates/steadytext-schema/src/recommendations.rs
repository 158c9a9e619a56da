//! Personalised recommendations: facts first.
//!
//! - **Products** are only products the data contains: products rated at least
//!   [`MIN_PRODUCT_RATING`] on average by at least [`MIN_PRODUCT_REVIEWS`] reviews that the
//!   customer has not reviewed — first those rated so in the customer's segment, then those
//!   rated so across all customers; within each, higher average first, then more reviews, then
//!   the lower product id; at most [`MAX_PRODUCT_RECOMMENDATIONS`]
//!   ([`product_recommendations`]). The data has no product names (`product_reviews.product_id`
//!   is all there is), so a product is "Product 104" and its description states its ratings.
//! - **Retention and upsell** recommendations are plays from the retention and upsell
//!   playbooks ([`crate::playbooks`]) chosen by rules over the customer's facts
//!   ([`RecommendationInputs::facts`]) and, for ties, model scoring.
//! - The seed's priorities and order stay ([`recommendation_priority`],
//!   [`rank_recommendations`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, BTreeSet};

use crate::enums::RecommendationType;
use crate::playbooks::{ChosenPlay, Facts};
use crate::records::{Customer, ProductReview, SupportTicket};
use crate::segments::common_themes;
use crate::util::{self, count, fixed};

/// Above this churn risk a retention offer outranks everything but products (priority 1).
pub const RETENTION_PRIORITY_RISK: f64 = 0.5;
/// The seed's default number of recommendations.
pub const DEFAULT_RECOMMENDATIONS: usize = 5;
/// At most this many interests go into a profile.
pub const MAX_INTERESTS: usize = 5;
/// A product is recommended only with at least this average rating.
pub const MIN_PRODUCT_RATING: f64 = 4.0;
/// … from at least this many rated reviews.
pub const MIN_PRODUCT_REVIEWS: u64 = 1;
/// At most this many product recommendations per customer.
pub const MAX_PRODUCT_RECOMMENDATIONS: usize = 3;

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
    /// The product recommended (product recommendations): always one in the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<i32>,
    /// The playbook play it comes from (retention and upsell recommendations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play: Option<String>,
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
            product_id: None,
            play: None,
        }
    }

    /// A product recommendation: "Product 104", its ratings as the description.
    pub fn product(rating: &ProductRating, segment: Option<&str>, churn_risk: Option<f64>) -> Self {
        let reviews = count(rating.reviews, "review", "reviews");
        let whom = match (rating.scope, segment) {
            (ProductScope::Segment, Some(s)) => format!("customers in the {s} segment"),
            _ => "customers across all segments".to_string(),
        };
        Self {
            recommendation_type: RecommendationType::Product,
            title: format!("Product {}", rating.product_id),
            description: format!(
                "Rated {} out of 5 in {reviews} by {whom}; this customer has not reviewed it.",
                fixed(rating.avg_rating, 1)
            ),
            priority: recommendation_priority(RecommendationType::Product, churn_risk),
            product_id: Some(rating.product_id),
            play: None,
        }
    }

    /// A retention or upsell recommendation from a chosen play.
    pub fn from_play(kind: RecommendationType, play: &ChosenPlay, churn_risk: Option<f64>) -> Self {
        Self {
            recommendation_type: kind,
            title: play.title.clone(),
            description: play.action.clone(),
            priority: recommendation_priority(kind, churn_risk),
            product_id: None,
            play: Some(play.play.clone()),
        }
    }
}

/// Whose ratings a [`ProductRating`] counts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProductScope {
    /// Reviews by customers of one segment.
    Segment,
    /// Reviews by all customers.
    AllCustomers,
}

/// A product's ratings (`product_reviews` grouped by `product_id`, rated reviews only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductRating {
    /// `product_reviews.product_id`.
    pub product_id: i32,
    /// Average rating.
    pub avg_rating: f64,
    /// Rated reviews.
    pub reviews: u64,
    /// Whose reviews.
    pub scope: ProductScope,
}

/// Every product's ratings from `reviews`, by product id: those written by customers of
/// `segment` (scope [`ProductScope::Segment`]) or, with `None`, by anyone (scope
/// [`ProductScope::AllCustomers`]). Reviews without a product or a rating are skipped.
///
/// ```
/// use steadytext_schema::recommendations::{product_ratings, ProductScope};
/// use steadytext_schema::scenario::seed_sample;
///
/// let data = seed_sample(chrono::Utc::now()); // products 101 (5 stars), 102 (3), 103 (1)
/// let all = product_ratings(&data.reviews, &data.customers, None);
/// assert_eq!((all[0].product_id, all[0].reviews, all[0].scope), (101, 1, ProductScope::AllCustomers));
/// let premium = product_ratings(&data.reviews, &data.customers, Some("premium"));
/// assert_eq!(premium.len(), 1);
/// ```
pub fn product_ratings(
    reviews: &[ProductReview],
    customers: &[Customer],
    segment: Option<&str>,
) -> Vec<ProductRating> {
    let members: BTreeSet<i32> = customers
        .iter()
        .filter(|c| segment.is_some() && c.segment.as_deref() == segment)
        .map(|c| c.id)
        .collect();
    let mut sums: BTreeMap<i32, (f64, u64)> = BTreeMap::new();
    for r in reviews {
        let (Some(product), Some(rating)) = (r.product_id, r.rating) else {
            continue;
        };
        if segment.is_some() && !r.customer_id.is_some_and(|c| members.contains(&c)) {
            continue;
        }
        let e = sums.entry(product).or_default();
        e.0 += f64::from(rating.get());
        e.1 += 1;
    }
    let scope = if segment.is_some() {
        ProductScope::Segment
    } else {
        ProductScope::AllCustomers
    };
    sums.into_iter()
        .map(|(product_id, (sum, n))| ProductRating {
            product_id,
            avg_rating: sum / n as f64,
            reviews: n,
            scope,
        })
        .collect()
}

/// The product rule (see the [module docs](self)): qualifying products the customer has not
/// reviewed, segment ratings first, at most `max`.
///
/// ```
/// use steadytext_schema::recommendations::{product_recommendations, ProductRating, ProductScope::*};
///
/// let r = |id, avg, n, scope| ProductRating { product_id: id, avg_rating: avg, reviews: n, scope };
/// let segment = [r(7, 4.0, 1, Segment), r(9, 5.0, 2, Segment), r(3, 3.5, 4, Segment)];
/// let all = [r(7, 4.0, 3, AllCustomers), r(5, 4.8, 5, AllCustomers), r(8, 4.9, 1, AllCustomers)];
/// let picked = product_recommendations(&segment, &all, &[9], 3);
/// let ids: Vec<i32> = picked.iter().map(|p| p.product_id).collect();
/// assert_eq!(ids, [7, 8, 5]); // 9 was reviewed, 3 is rated too low, 7 counts with its segment ratings
/// assert_eq!(picked[0].scope, Segment);
/// ```
pub fn product_recommendations(
    segment_products: &[ProductRating],
    all_products: &[ProductRating],
    reviewed: &[i32],
    max: usize,
) -> Vec<ProductRating> {
    let qualifies = |p: &&ProductRating| {
        p.avg_rating.is_finite()
            && p.avg_rating >= MIN_PRODUCT_RATING
            && p.reviews >= MIN_PRODUCT_REVIEWS
            && !reviewed.contains(&p.product_id)
    };
    let order = |a: &&ProductRating, b: &&ProductRating| {
        b.avg_rating
            .total_cmp(&a.avg_rating)
            .then(b.reviews.cmp(&a.reviews))
            .then(a.product_id.cmp(&b.product_id))
    };
    let mut picked: Vec<ProductRating> = Vec::new();
    let mut seen: BTreeSet<i32> = BTreeSet::new();
    for tier in [segment_products, all_products] {
        let mut candidates: Vec<&ProductRating> = tier.iter().filter(qualifies).collect();
        candidates.sort_by(order);
        for c in candidates {
            if picked.len() < max && seen.insert(c.product_id) {
                picked.push(c.clone());
            }
        }
    }
    picked
}

/// Everything a customer's recommendations are decided from (no name, email or id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecommendationInputs {
    /// The customer's profile.
    pub profile: CustomerProfile,
    /// The customer's tickets not yet resolved.
    pub open_tickets: u64,
    /// Average sentiment score of the customer's analysed reviews (`-1..=1`).
    pub review_sentiment: Option<f64>,
    /// Products the customer reviewed (never recommended).
    pub reviewed_products: Vec<i32>,
    /// Product ratings within the customer's segment ([`product_ratings`]).
    pub segment_products: Vec<ProductRating>,
    /// Product ratings across all customers.
    pub all_products: Vec<ProductRating>,
}

impl RecommendationInputs {
    /// From all rows: the customer's own reviews and tickets are picked out of `reviews` and
    /// `tickets`; product ratings come from every review.
    ///
    /// ```
    /// use steadytext_schema::recommendations::RecommendationInputs;
    /// use steadytext_schema::scenario::seed_sample;
    ///
    /// let d = seed_sample(chrono::Utc::now());
    /// let jane = &d.customers[1];
    /// let inputs = RecommendationInputs::from_records(jane, &d.customers, &d.reviews, &d.tickets);
    /// assert_eq!(inputs.reviewed_products, [102]);
    /// assert_eq!(inputs.open_tickets, 1);
    /// assert_eq!(inputs.all_products.len(), 3);
    /// ```
    pub fn from_records(
        customer: &Customer,
        customers: &[Customer],
        reviews: &[ProductReview],
        tickets: &[SupportTicket],
    ) -> Self {
        Self::new(
            customer,
            reviews,
            tickets,
            product_ratings(reviews, customers, customer.segment.as_deref()),
            product_ratings(reviews, customers, None),
        )
    }

    /// From the customer, rows that include theirs (others are ignored) and product ratings
    /// computed elsewhere (e.g. in SQL).
    pub fn new(
        customer: &Customer,
        reviews: &[ProductReview],
        tickets: &[SupportTicket],
        segment_products: Vec<ProductRating>,
        all_products: Vec<ProductRating>,
    ) -> Self {
        let mine: Vec<&ProductReview> = reviews
            .iter()
            .filter(|r| r.customer_id == Some(customer.id))
            .collect();
        let mut reviewed: Vec<i32> = mine.iter().filter_map(|r| r.product_id).collect();
        reviewed.sort_unstable();
        reviewed.dedup();
        let mine_owned: Vec<ProductReview> = mine.iter().map(|r| (*r).clone()).collect();
        Self {
            profile: CustomerProfile::from_records(customer, &mine_owned),
            open_tickets: tickets
                .iter()
                .filter(|t| t.customer_id == Some(customer.id) && t.is_open())
                .count() as u64,
            review_sentiment: util::mean(
                mine.iter().filter_map(|r| r.sentiment.map(|s| s.score())),
            ),
            reviewed_products: reviewed,
            segment_products,
            all_products,
        }
    }

    /// The facts retention and upsell plays are chosen by: `churn_risk`, `lifetime_value`,
    /// `open_tickets`, `sentiment`, `avg_rating_given`, `interests`, `segment` (unknown ones
    /// left out).
    pub fn facts(&self) -> Facts {
        let p = &self.profile;
        Facts::new()
            .maybe_number("churn_risk", util::finite(p.churn_risk), |v| fixed(v, 2))
            .maybe_number(
                "lifetime_value",
                util::finite(Some(p.lifetime_value)),
                |v| format!("${}", fixed(v, 2)),
            )
            .number(
                "open_tickets",
                self.open_tickets as f64,
                count(
                    self.open_tickets,
                    "open support ticket",
                    "open support tickets",
                ),
            )
            .maybe_number("sentiment", util::finite(self.review_sentiment), |v| {
                fixed(v, 2)
            })
            .maybe_number("avg_rating_given", util::finite(p.avg_rating_given), |v| {
                format!("{} out of 5", fixed(v, 1))
            })
            .texts("interests", p.interests.clone())
            .text("segment", p.segment.as_deref().unwrap_or(""))
    }

    /// A one-line statement of [`Self::facts`] (what the model is shown when it breaks a tie).
    pub fn facts_line(&self) -> String {
        let f = self.facts();
        let shown = |k: &str| f.get(k).map(|x| x.shown.clone());
        let mut parts = Vec::new();
        for (label, key) in [
            ("churn risk", "churn_risk"),
            ("lifetime value", "lifetime_value"),
            ("open support tickets", "open_tickets"),
            ("average review sentiment (from -1 to 1)", "sentiment"),
            ("average rating given", "avg_rating_given"),
            ("review themes", "interests"),
        ] {
            if let Some(v) = shown(key) {
                parts.push(format!("{label}: {v}"));
            }
        }
        format!("Customer facts: {}.", parts.join("; "))
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
/// are broken by type in the seed's order (product, retention, upsell), then by the order they
/// were decided in (products best-rated first, plays in rule order; the sort is stable), so the
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

    fn rating(id: i32, avg: f64, n: u64, scope: ProductScope) -> ProductRating {
        ProductRating {
            product_id: id,
            avg_rating: avg,
            reviews: n,
            scope,
        }
    }

    proptest! {
        #[test]
        fn recommended_products_are_in_the_data_unreviewed_and_well_rated(
            seg in proptest::collection::vec((0i32..20, 1.0f64..=5.0, 0u64..4), 0..8),
            all in proptest::collection::vec((0i32..20, 1.0f64..=5.0, 0u64..6), 0..12),
            reviewed in proptest::collection::vec(0i32..20, 0..6),
            max in 0usize..5,
        ) {
            let seg: Vec<ProductRating> = seg.into_iter().map(|(i, a, n)| rating(i, a, n, ProductScope::Segment)).collect();
            let all: Vec<ProductRating> = all.into_iter().map(|(i, a, n)| rating(i, a, n, ProductScope::AllCustomers)).collect();
            let picked = product_recommendations(&seg, &all, &reviewed, max);
            prop_assert!(picked.len() <= max);
            let mut ids = BTreeSet::new();
            for p in &picked {
                prop_assert!(ids.insert(p.product_id), "distinct");
                prop_assert!(!reviewed.contains(&p.product_id), "never one the customer reviewed");
                prop_assert!(seg.iter().chain(&all).any(|q| q == p), "always one in the data");
                prop_assert!(p.avg_rating >= MIN_PRODUCT_RATING && p.reviews >= MIN_PRODUCT_REVIEWS);
            }
            // Segment-scoped picks come first; the same inputs give the same picks.
            prop_assert!(picked.windows(2).all(|w| w[0].scope <= w[1].scope));
            prop_assert_eq!(&picked, &product_recommendations(&seg, &all, &reviewed, max));
            let rec = Recommendation::product(&picked.first().cloned().unwrap_or(rating(1, 4.0, 1, ProductScope::Segment)), Some("premium"), None);
            prop_assert_eq!(rec.priority, 1);
            prop_assert!(rec.title.starts_with("Product "));
        }

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
