//! Per-segment aggregates: what a segment profile is generated from.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aspects::{count_topics, TopicCount};
use crate::churn::CHURN_REPORT_THRESHOLD;
use crate::enums::InteractionType;
use crate::records::{Customer, CustomerInteraction, ProductReview};
use crate::sentiment::{average_sentiment, SentimentBucket};
use crate::util;

/// One segment's numbers (the seed's `segment_data` and `behavior_analysis` CTEs).
///
/// Each aggregate is taken over its own table: the seed joined customers × interactions ×
/// reviews in one query, which weights the average lifetime value by each customer's
/// interactions × reviews, the average sentiment by review counts and the average rating by
/// interaction counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SegmentStats {
    /// The segment's name (`customers.segment`).
    pub segment_name: String,
    /// Customers in the segment.
    pub customer_count: u64,
    /// Average lifetime value of those customers; `None` for an empty segment.
    pub avg_lifetime_value: Option<f64>,
    /// Average interaction sentiment; `None` without scored interactions.
    pub avg_sentiment: Option<f64>,
    /// Distinct interaction types, in enum order (never containing a NULL, unlike the seed's
    /// `array_agg` over a LEFT JOIN).
    pub interaction_types: Vec<InteractionType>,
    /// Reviews written by the segment's customers.
    pub review_count: u64,
    /// Average rating of those reviews; `None` without rated reviews.
    pub avg_rating: Option<f64>,
    /// The segment's review themes, most frequent first (ties alphabetical, case-insensitive
    /// duplicates merged). The seed computed this and then dropped it.
    pub common_themes: Vec<String>,
    /// The segment's review aspects counted by taxonomy category and polarity, most
    /// mentioned first ([`crate::aspects::count_topics`]).
    #[serde(default)]
    pub topics: Vec<TopicCount>,
    /// Customers whose stored churn risk is above the seed's reporting threshold (0.3).
    #[serde(default)]
    pub at_risk_customers: u64,
}

impl SegmentStats {
    /// The facts marketing plays are chosen by ([`crate::playbooks`]): `segment`, `customers`,
    /// `avg_lifetime_value`, `sentiment` (the bucket's phrase), `avg_rating`, `reviews`,
    /// `themes`, `at_risk_customers`, `at_risk_share` (unknown ones left out). `segment` and
    /// `themes` are shown as given: pass them through the prompt builder's redaction first if
    /// they can hold personal data.
    pub fn facts(&self) -> crate::playbooks::Facts {
        use crate::util::{count, fixed};
        let share = if self.customer_count == 0 {
            None
        } else {
            Some(self.at_risk_customers as f64 / self.customer_count as f64)
        };
        crate::playbooks::Facts::new()
            .text("segment", &self.segment_name)
            .number(
                "customers",
                self.customer_count as f64,
                count(self.customer_count, "customer", "customers"),
            )
            .maybe_number(
                "avg_lifetime_value",
                util::finite(self.avg_lifetime_value),
                |v| format!("${}", fixed(v, 2)),
            )
            .text(
                "sentiment",
                self.sentiment_bucket().map_or("", |b| b.phrase()),
            )
            .maybe_number("avg_rating", util::finite(self.avg_rating), |v| {
                format!("{} out of 5", fixed(v, 1))
            })
            .number(
                "reviews",
                self.review_count as f64,
                count(self.review_count, "review", "reviews"),
            )
            .texts(
                "themes",
                self.common_themes
                    .iter()
                    .take(crate::prompts::MAX_LISTED_THEMES)
                    .cloned()
                    .collect(),
            )
            .number(
                "at_risk_customers",
                self.at_risk_customers as f64,
                count(self.at_risk_customers, "customer", "customers"),
            )
            .maybe_number("at_risk_share", share, |v| fixed(v, 2))
    }

    /// The seed's sentiment bucket for the segment's average (`None` without data).
    pub fn sentiment_bucket(&self) -> Option<SentimentBucket> {
        SentimentBucket::from_average(self.avg_sentiment)
    }

    /// Aggregate one segment from all rows; rows of customers outside the segment are ignored.
    ///
    /// ```
    /// use steadytext_schema::{segments::SegmentStats, Customer};
    ///
    /// let stats = SegmentStats::from_records("premium", &[Customer::example()], &[], &[]);
    /// assert_eq!(stats.customer_count, 1);
    /// assert_eq!(stats.avg_lifetime_value, Some(2500.0));
    /// assert_eq!(stats.sentiment_bucket(), None);
    /// ```
    pub fn from_records(
        segment: &str,
        customers: &[Customer],
        interactions: &[CustomerInteraction],
        reviews: &[ProductReview],
    ) -> Self {
        let members: BTreeSet<i32> = customers
            .iter()
            .filter(|c| c.segment.as_deref() == Some(segment))
            .map(|c| c.id)
            .collect();
        let is_member = |id: Option<i32>| id.is_some_and(|id| members.contains(&id));
        let member_rows = customers.iter().filter(|c| members.contains(&c.id));
        let its_interactions: Vec<&CustomerInteraction> = interactions
            .iter()
            .filter(|i| is_member(i.customer_id))
            .collect();
        let its_reviews: Vec<&ProductReview> = reviews
            .iter()
            .filter(|r| is_member(r.customer_id))
            .collect();
        let types: BTreeSet<InteractionType> = its_interactions
            .iter()
            .filter_map(|i| i.interaction_type)
            .collect();
        Self {
            segment_name: segment.to_string(),
            customer_count: members.len() as u64,
            avg_lifetime_value: util::mean(member_rows.map(|c| c.lifetime_value)),
            avg_sentiment: average_sentiment(
                its_interactions.iter().filter_map(|i| i.sentiment_score),
            ),
            interaction_types: types.into_iter().collect(),
            review_count: its_reviews.len() as u64,
            avg_rating: util::mean(
                its_reviews
                    .iter()
                    .filter_map(|r| r.rating.map(|x| f64::from(x.get()))),
            ),
            common_themes: common_themes(its_reviews.iter().copied()),
            topics: count_topics(
                its_reviews
                    .iter()
                    .flat_map(|r| r.review_aspects.iter().flatten()),
            ),
            at_risk_customers: customers
                .iter()
                .filter(|c| members.contains(&c.id))
                .filter(|c| {
                    util::finite(c.churn_risk_score).is_some_and(|r| r > CHURN_REPORT_THRESHOLD)
                })
                .count() as u64,
        }
    }
}

/// The distinct non-NULL segments of `customers`, sorted (the seed's loop over
/// `SELECT DISTINCT segment ... WHERE segment IS NOT NULL`).
pub fn segment_names(customers: &[Customer]) -> Vec<String> {
    let set: BTreeSet<&str> = customers
        .iter()
        .filter_map(|c| c.segment.as_deref())
        .collect();
    set.into_iter().map(str::to_string).collect()
}

/// Themes across reviews, most frequent first, ties alphabetical; case-insensitive duplicates
/// merged (the most frequent spelling, then the alphabetically first, is kept).
pub fn common_themes<'a>(reviews: impl IntoIterator<Item = &'a ProductReview>) -> Vec<String> {
    common_themes_counted(
        reviews
            .into_iter()
            .flat_map(|r| r.key_themes.iter().flatten())
            .map(|theme| (theme.as_str(), 1)),
    )
}

/// [`common_themes`] from themes already counted (e.g. `GROUP BY theme` in SQL): each
/// `(theme, n)` counts as `n` reviews naming `theme`; the same theme may come more than once.
///
/// ```
/// use steadytext_schema::segments::common_themes_counted;
/// let ranked = common_themes_counted([("price", 1), ("Quality", 2), ("quality", 1)]);
/// assert_eq!(ranked, ["Quality", "price"]);
/// ```
pub fn common_themes_counted<'a>(themes: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<String> {
    // lower-case key -> (count, spelling -> count)
    let mut counts: BTreeMap<String, (u64, BTreeMap<String, u64>)> = BTreeMap::new();
    for (theme, n) in themes {
        let theme = util::collapse_whitespace(theme);
        if theme.is_empty() || n == 0 {
            continue;
        }
        let entry = counts.entry(theme.to_lowercase()).or_default();
        entry.0 += n;
        *entry.1.entry(theme).or_default() += n;
    }
    let mut ranked: Vec<(u64, String, String)> = counts
        .into_iter()
        .map(|(key, (n, spellings))| {
            let best = spellings
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(s, _)| s)
                .unwrap_or_default();
            (n, key, best)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, _, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Rating;
    use chrono::{TimeZone, Utc};

    fn review(id: i32, customer: i32, rating: u8, themes: &[&str]) -> ProductReview {
        ProductReview {
            id,
            customer_id: Some(customer),
            product_id: Some(100 + id),
            rating: Some(Rating::new(rating).unwrap()),
            title: None,
            review_text: None,
            verified_purchase: false,
            helpful_count: 0,
            ai_summary: None,
            sentiment: None,
            key_themes: Some(themes.iter().map(|t| t.to_string()).collect()),
            review_aspects: None,
            created_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn averages_are_not_skewed_by_fan_out() {
        let mut a = Customer::example();
        a.lifetime_value = 100.0;
        let mut b = Customer::example();
        b.id = 2;
        b.lifetime_value = 300.0;
        let mut other = Customer::example();
        other.id = 3;
        other.segment = Some("budget".into());
        // Customer 1 has three reviews, customer 2 none: a joined AVG(lifetime_value) would be
        // (100*3 + 300) / 4 = 150; per customer it is 200.
        let reviews = [
            review(1, 1, 5, &["Quality", "price"]),
            review(2, 1, 4, &["quality"]),
            review(3, 1, 3, &["shipping"]),
            review(4, 3, 1, &["broken"]),
        ];
        let s = SegmentStats::from_records("premium", &[a, b, other], &[], &reviews);
        assert_eq!(s.customer_count, 2);
        assert_eq!(s.avg_lifetime_value, Some(200.0));
        assert_eq!(s.review_count, 3);
        assert_eq!(s.avg_rating, Some(4.0));
        assert_eq!(s.common_themes, ["Quality", "price", "shipping"]);
        assert_eq!(s.avg_sentiment, None);
        assert!(s.interaction_types.is_empty());
    }

    #[test]
    fn segment_names_are_distinct_and_sorted() {
        let mut c = vec![
            Customer::example(),
            Customer::example(),
            Customer::example(),
        ];
        c[1].segment = Some("budget".into());
        c[2].segment = None;
        assert_eq!(segment_names(&c), ["budget", "premium"]);
    }
}
