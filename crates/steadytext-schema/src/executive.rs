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
    /// The facts company-wide plays are chosen by ([`crate::playbooks`]): `customers`,
    /// `high_risk_customers`, `high_risk_share`, `avg_lifetime_value`, `reviews`,
    /// `avg_rating`, `open_tickets` (unknown ones left out).
    ///
    /// ```
    /// use steadytext_schema::{executive::ExecutiveStats, Customer};
    /// let f = ExecutiveStats::from_records(&[Customer::example()], &[], &[]).facts();
    /// assert_eq!(f.get("customers").unwrap().shown, "1 customer");
    /// assert!(f.get("avg_rating").is_none());
    /// ```
    pub fn facts(&self) -> crate::playbooks::Facts {
        use crate::util::{count, fixed};
        let share = (self.total_customers > 0)
            .then(|| self.high_risk_customers as f64 / self.total_customers as f64);
        crate::playbooks::Facts::new()
            .number(
                "customers",
                self.total_customers as f64,
                count(self.total_customers, "customer", "customers"),
            )
            .number(
                "high_risk_customers",
                self.high_risk_customers as f64,
                count(self.high_risk_customers, "customer", "customers"),
            )
            .maybe_number("high_risk_share", share, |v| fixed(v, 2))
            .maybe_number(
                "avg_lifetime_value",
                util::finite(self.avg_lifetime_value),
                |v| format!("${}", fixed(v, 2)),
            )
            .number(
                "reviews",
                self.total_reviews as f64,
                count(self.total_reviews, "review", "reviews"),
            )
            .maybe_number("avg_rating", util::finite(self.avg_rating), |v| {
                format!("{} out of 5", fixed(v, 1))
            })
            .number(
                "open_tickets",
                self.open_tickets as f64,
                count(
                    self.open_tickets,
                    "open support ticket",
                    "open support tickets",
                ),
            )
    }

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
