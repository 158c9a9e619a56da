//! Company-wide numbers for the executive summary.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::churn::is_high_risk_score;
use crate::records::{Customer, ProductReview, SupportTicket};
use crate::util;

/// The seed's `summary_stats`, each aggregate over its own table (the seed's joined query
/// weighted the average lifetime value by each customer's reviews × open tickets and the
/// average rating by open tickets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutiveStats {
    /// All customers.
    pub total_customers: u64,
    /// Customers whose stored churn risk is above 0.7 (unknown risk is not high).
    pub high_risk_customers: u64,
    /// Average lifetime value; `None` without customers.
    pub avg_lifetime_value: Option<f64>,
    /// All reviews.
    pub total_reviews: u64,
    /// Average rating; `None` without rated reviews.
    pub avg_rating: Option<f64>,
    /// Tickets not yet resolved.
    pub open_tickets: u64,
}

impl ExecutiveStats {
    /// Aggregate all rows.
    ///
    /// ```
    /// use steadytext_schema::{executive::ExecutiveStats, Customer};
    ///
    /// let mut risky = Customer::example();
    /// risky.churn_risk_score = Some(0.8);
    /// let stats = ExecutiveStats::from_records(&[Customer::example(), risky], &[], &[]);
    /// assert_eq!((stats.total_customers, stats.high_risk_customers), (2, 1));
    /// assert_eq!(stats.avg_rating, None);
    /// ```
    pub fn from_records(
        customers: &[Customer],
        reviews: &[ProductReview],
        tickets: &[SupportTicket],
    ) -> Self {
        Self {
            total_customers: customers.len() as u64,
            high_risk_customers: customers
                .iter()
                .filter(|c| is_high_risk_score(c.churn_risk_score))
                .count() as u64,
            avg_lifetime_value: util::mean(customers.iter().map(|c| c.lifetime_value)),
            total_reviews: reviews.len() as u64,
            avg_rating: util::mean(
                reviews
                    .iter()
                    .filter_map(|r| r.rating.map(|x| f64::from(x.get()))),
            ),
            open_tickets: tickets.iter().filter(|t| t.is_open()).count() as u64,
        }
    }
}
