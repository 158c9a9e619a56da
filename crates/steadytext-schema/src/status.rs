//! The sentiment dashboard's customer status, with NULL semantics made explicit.
//!
//! The seed's `CASE`, in order:
//!
//! 1. `avg_sentiment < -0.3 AND issue_count > 2` → `high_risk`
//! 2. `avg_sentiment < 0 OR issue_count > 3` → `medium_risk`
//! 3. `avg_sentiment > 0.5 AND issue_count = 0` → `loyal`
//! 4. otherwise `normal`
//!
//! `avg_sentiment` is over the last 90 days of interactions, `issue_count` over the last 30 days
//! of tickets.
//!
//! **Missing data.** No tickets means 0 issues. In the seed, `issue_count` comes from a LEFT JOIN
//! and is NULL for a customer with no recent tickets, so `ri.issue_count = 0` is never true and
//! nobody is ever `loyal`; here the count is a number, never NULL. No sentiment data (no scored
//! interaction in the window) satisfies none of the sentiment comparisons, as in SQL: such a
//! customer can be `medium_risk` (more than 3 issues) or `normal`, never `high_risk` or `loyal`,
//! which both need evidence about sentiment.

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::enums::{CustomerStatus, InteractionType};
use crate::records::{Customer, CustomerInteraction, SupportTicket};
use crate::sentiment::average_sentiment;
use crate::util;

/// Sentiment below this, with more than [`HIGH_RISK_ISSUES`] issues, is high risk.
pub const HIGH_RISK_SENTIMENT: f64 = -0.3;
/// More issues than this, with sentiment below [`HIGH_RISK_SENTIMENT`], is high risk.
pub const HIGH_RISK_ISSUES: u64 = 2;
/// More issues than this alone is medium risk.
pub const MEDIUM_RISK_ISSUES: u64 = 3;
/// Sentiment above this, with no issues, is loyal.
pub const LOYAL_SENTIMENT: f64 = 0.5;
/// Interactions in the last this-many days count towards the dashboard's sentiment.
pub const SENTIMENT_WINDOW_DAYS: i64 = 90;
/// Tickets in the last this-many days count as recent issues.
pub const ISSUE_WINDOW_DAYS: i64 = 30;
/// A ticket without a satisfaction score counts as this on the dashboard (the seed's `ELSE 3`).
pub const MISSING_SATISFACTION: f64 = 3.0;

/// The dashboard's customer status. See the [module docs](self) for the rules and missing data.
///
/// ```
/// use steadytext_schema::{status::customer_status, CustomerStatus};
///
/// assert_eq!(customer_status(Some(-0.5), 3), CustomerStatus::HighRisk);
/// assert_eq!(customer_status(Some(-0.1), 0), CustomerStatus::MediumRisk);
/// assert_eq!(customer_status(None, 4), CustomerStatus::MediumRisk);
/// assert_eq!(customer_status(Some(0.8), 0), CustomerStatus::Loyal); // never reached in the seed
/// assert_eq!(customer_status(None, 0), CustomerStatus::Normal);
/// ```
pub fn customer_status(avg_sentiment: Option<f64>, issue_count: u64) -> CustomerStatus {
    let s = util::finite(avg_sentiment);
    let below = |t: f64| s.is_some_and(|v| v < t);
    let above = |t: f64| s.is_some_and(|v| v > t);
    if below(HIGH_RISK_SENTIMENT) && issue_count > HIGH_RISK_ISSUES {
        CustomerStatus::HighRisk
    } else if below(0.0) || issue_count > MEDIUM_RISK_ISSUES {
        CustomerStatus::MediumRisk
    } else if above(LOYAL_SENTIMENT) && issue_count == 0 {
        CustomerStatus::Loyal
    } else {
        CustomerStatus::Normal
    }
}

/// One customer's row of the sentiment dashboard, without PII (the seed's view also carries the
/// email; join it back by `customer_id` where needed, never into a prompt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerSnapshot {
    /// `customers.id`: for joining results back, never put in a prompt.
    pub customer_id: i32,
    /// The customer's segment.
    pub segment: Option<String>,
    /// Average interaction sentiment over [`SENTIMENT_WINDOW_DAYS`]; `None` without data.
    pub avg_sentiment: Option<f64>,
    /// Interactions over [`SENTIMENT_WINDOW_DAYS`].
    pub interaction_count: u64,
    /// The latest interaction in the window.
    pub last_interaction: Option<DateTime<Utc>>,
    /// Distinct interaction types in the window, in enum order.
    pub interaction_types: Vec<InteractionType>,
    /// Tickets over [`ISSUE_WINDOW_DAYS`] (0 when none: never NULL).
    pub issue_count: u64,
    /// Average satisfaction of those tickets, a missing score counting as 3; `None` without
    /// tickets.
    pub avg_satisfaction: Option<f64>,
    /// [`customer_status`] of the above.
    pub status: CustomerStatus,
}

impl CustomerSnapshot {
    /// Build the dashboard row from the customer's rows.
    ///
    /// Unlike the seed's view, a customer with no recent interactions still gets a row (the
    /// seed's `WHERE ci.timestamp > ...` after its LEFT JOIN dropped them). Rows of other
    /// customers in the slices are ignored.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use steadytext_schema::{status::CustomerSnapshot, Customer, CustomerStatus};
    ///
    /// let now = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    /// let row = CustomerSnapshot::from_records(&Customer::example(), &[], &[], now);
    /// assert_eq!(row.interaction_count, 0);
    /// assert_eq!(row.issue_count, 0);
    /// assert_eq!(row.status, CustomerStatus::Normal);
    /// ```
    pub fn from_records(
        customer: &Customer,
        interactions: &[CustomerInteraction],
        tickets: &[SupportTicket],
        now: DateTime<Utc>,
    ) -> Self {
        let since = now - Duration::days(SENTIMENT_WINDOW_DAYS);
        let recent: Vec<&CustomerInteraction> = interactions
            .iter()
            .filter(|i| i.customer_id == Some(customer.id) && i.timestamp > since)
            .collect();
        let issues_since = now - Duration::days(ISSUE_WINDOW_DAYS);
        let issues: Vec<&SupportTicket> = tickets
            .iter()
            .filter(|t| t.customer_id == Some(customer.id) && t.created_at > issues_since)
            .collect();
        let mut types: Vec<InteractionType> =
            recent.iter().filter_map(|i| i.interaction_type).collect();
        types.sort();
        types.dedup();
        let avg_sentiment = average_sentiment(recent.iter().filter_map(|i| i.sentiment_score));
        let issue_count = issues.len() as u64;
        Self {
            customer_id: customer.id,
            segment: customer.segment.clone(),
            avg_sentiment,
            interaction_count: recent.len() as u64,
            last_interaction: recent.iter().map(|i| i.timestamp).max(),
            interaction_types: types,
            issue_count,
            avg_satisfaction: util::mean(
                issues
                    .iter()
                    .map(|t| t.satisfaction().map_or(MISSING_SATISFACTION, f64::from)),
            ),
            status: customer_status(avg_sentiment, issue_count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_seed_case_table() {
        use CustomerStatus::*;
        let cases = [
            (Some(-0.31), 3, HighRisk),
            (Some(-0.3), 3, MediumRisk), // not strictly below -0.3
            (Some(-0.31), 2, MediumRisk),
            (Some(0.2), 4, MediumRisk),
            (Some(0.51), 0, Loyal),
            (Some(0.5), 0, Normal),
            (Some(0.9), 1, Normal),
            (Some(0.0), 3, Normal),
            (None, 3, Normal),
            (None, 100, MediumRisk),
            (Some(f64::NAN), 0, Normal),
        ];
        for (s, n, want) in cases {
            assert_eq!(customer_status(s, n), want, "{s:?} {n}");
        }
    }

    /// high_risk > medium_risk > normal > loyal.
    fn severity(c: CustomerStatus) -> u8 {
        match c {
            CustomerStatus::HighRisk => 3,
            CustomerStatus::MediumRisk => 2,
            CustomerStatus::Normal => 1,
            CustomerStatus::Loyal => 0,
        }
    }

    proptest! {
        #[test]
        fn missing_sentiment_is_never_high_risk_or_loyal(n in 0u64..1000) {
            let s = customer_status(None, n);
            prop_assert!(s == CustomerStatus::Normal || s == CustomerStatus::MediumRisk);
        }

        #[test]
        fn lower_sentiment_never_improves_status(a in -1.0f64..=1.0, b in -1.0f64..=1.0, n in 0u64..10) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(severity(customer_status(Some(lo), n)) >= severity(customer_status(Some(hi), n)));
        }

        #[test]
        fn more_issues_never_improve_status(s in proptest::option::of(-1.0f64..=1.0), n in 0u64..20, more in 0u64..20) {
            prop_assert!(severity(customer_status(s, n + more)) >= severity(customer_status(s, n)));
        }
    }
}
