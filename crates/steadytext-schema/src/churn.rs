//! Churn risk: the seed's `calculate_churn_risk` formula as a pure function, defined for
//! missing data.
//!
//! # The formula
//!
//! ```text
//! risk = clamp(0, 1,
//!       0.3 * days_inactive / 30                          -- inactivity
//!     + 0.2 * (1 - (avg_sentiment + 1) / 2)               -- sentiment, -1..1 mapped to 1..0
//!     + 0.2 * support_tickets / max(interactions, 1)      -- support ratio
//!     + 0.3 * (avg_satisfaction < 3 ? 1 : 0))             -- low satisfaction
//! ```
//!
//! over the last [`CHURN_WINDOW_DAYS`] (90) days of interactions and tickets.
//!
//! # Missing data (the seed leaves these to NULL arithmetic)
//!
//! | case | seed | here |
//! |---|---|---|
//! | never active (`last_active_date` NULL) | days = NULL, and `GREATEST(0.0, NULL)` is `0.0` in PostgreSQL: the whole score becomes 0, so the least-known customers look safest | last activity = the latest of `last_active_date` and the last interaction; else `acquisition_date`; else the row's `created_at` date; and if the caller has no date at all, inactive for the whole [`CHURN_WINDOW_DAYS`] window ([`effective_last_active`], [`ChurnInputs::days_inactive`]) |
//! | activity in the future | negative days lower the score | days inactive clamped at 0 |
//! | no sentiment data | `COALESCE(avg + 1, 1.0)`: treated as neutral (term 0.1) | the same: neutral, term 0.1; scores are clamped to `[-1, 1]` and NaN counts as missing |
//! | no interactions | divides by `GREATEST(count, 1)` | the same: tickets / max(interactions, 1) |
//! | no tickets | ratio 0 | the same |
//! | no satisfaction scores | `NULL < 3` is not true: term 0 | the same: not low; reported as 3 in the factors (the seed's `COALESCE(avg, 3)`) |
//! | fan-out | interactions × tickets joined in one query skew both averages | each average is over its own table ([`ChurnInputs::from_records`]) |
//!
//! Days are whole calendar days (`as_of - last_active`), not the seed's fractional
//! `EXTRACT(EPOCH ...) / 86400`: the score, and so the retention prompt and its cache key, stay
//! the same all day instead of changing every second.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::records::{Customer, CustomerInteraction, SupportTicket};
use crate::sentiment::average_sentiment;
use crate::util;

/// The look-back window for interactions and tickets, in days (the seed's `INTERVAL '90 days'`).
pub const CHURN_WINDOW_DAYS: i64 = 90;
/// The seed returns (and builds retention strategies for) only customers with risk above this.
pub const CHURN_REPORT_THRESHOLD: f64 = 0.3;
/// The executive summary counts customers above this as high risk; above it a human reviews.
pub const HIGH_CHURN_RISK: f64 = 0.7;
/// Average support satisfaction below this counts as low.
pub const LOW_SATISFACTION: f64 = 3.0;
/// The satisfaction reported when there are no scores (the seed's `COALESCE(avg, 3)`).
pub const DEFAULT_SATISFACTION: f64 = 3.0;

/// Weight of the inactivity term (per 30 days).
pub const WEIGHT_INACTIVITY: f64 = 0.3;
/// Weight of the sentiment term.
pub const WEIGHT_SENTIMENT: f64 = 0.2;
/// Weight of the support-ticket ratio term.
pub const WEIGHT_SUPPORT: f64 = 0.2;
/// Weight of the low-satisfaction term.
pub const WEIGHT_SATISFACTION: f64 = 0.3;

/// What the churn score is computed from: one customer's aggregates over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChurnInputs {
    /// The day the score is computed for.
    pub as_of: NaiveDate,
    /// The customer's last activity, already resolved with [`effective_last_active`];
    /// `None` means no date is known at all.
    pub last_active: Option<NaiveDate>,
    /// Interactions in the window.
    pub interaction_count: u64,
    /// Average interaction sentiment in the window, `-1..=1`; `None` when there is none.
    pub avg_sentiment: Option<f64>,
    /// Support tickets opened in the window.
    pub support_tickets: u64,
    /// Average ticket satisfaction (1..=5) in the window; `None` when no ticket has one.
    pub avg_satisfaction: Option<f64>,
    /// The customer's lifetime value: reported in the factors, not scored.
    pub lifetime_value: f64,
}

/// The four weighted terms of the score before clamping (each already multiplied by its weight).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChurnTerms {
    /// `0.3 * days_inactive / 30`.
    pub inactivity: f64,
    /// `0.2 * (1 - (sentiment + 1) / 2)`.
    pub sentiment: f64,
    /// `0.2 * tickets / max(interactions, 1)`.
    pub support: f64,
    /// `0.3` if satisfaction is low, else `0`.
    pub satisfaction: f64,
}

impl ChurnTerms {
    /// The unclamped sum.
    pub fn sum(&self) -> f64 {
        self.inactivity + self.sentiment + self.support + self.satisfaction
    }
}

/// The seed's `risk_factors` JSON object, with the same keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChurnFactors {
    /// Whole days since the last activity (0 for activity today or in the future).
    pub days_inactive: i64,
    /// Average sentiment used, `-1..=1` (0 when unknown: the seed's `COALESCE(avg, 0)`).
    pub sentiment_score: f64,
    /// Support tickets in the window.
    pub support_tickets: u64,
    /// Average satisfaction used (3 when unknown: the seed's `COALESCE(avg, 3)`).
    pub satisfaction: f64,
    /// Lifetime value (0 if it was not a finite number).
    pub lifetime_value: f64,
}

/// A customer's churn risk: the score and the factors it came from.
///
/// ```
/// use chrono::NaiveDate;
/// use steadytext_schema::churn::{churn_risk, ChurnInputs};
///
/// let day = |d| NaiveDate::from_ymd_opt(2024, 6, d).unwrap();
/// let risk = churn_risk(&ChurnInputs {
///     as_of: day(30),
///     last_active: Some(day(15)),   // 15 days: 0.3 * 15/30 = 0.15
///     interaction_count: 4,
///     avg_sentiment: Some(-0.5),    // 0.2 * (1 - 0.25) = 0.15
///     support_tickets: 2,           // 0.2 * 2/4 = 0.10
///     avg_satisfaction: Some(2.0),  // low: 0.30
///     lifetime_value: 450.0,
/// });
/// assert!((risk.score - 0.70).abs() < 1e-12);
/// assert_eq!(risk.rounded_score(), 0.7);
/// assert!(risk.is_reportable() && !risk.is_high());
/// assert_eq!(risk.factors.days_inactive, 15);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChurnRisk {
    /// The score in `[0, 1]`, unrounded.
    pub score: f64,
    /// The seed's `risk_factors`.
    pub factors: ChurnFactors,
}

impl ChurnRisk {
    /// The facts retention plays are chosen by ([`crate::playbooks`]): `churn_risk`,
    /// `days_inactive`, `sentiment`, `support_tickets`, `satisfaction`, `lifetime_value`.
    pub fn facts(&self) -> crate::playbooks::Facts {
        use crate::util::{count, fixed};
        let f = &self.factors;
        let days = f.days_inactive.max(0) as u64;
        crate::playbooks::Facts::new()
            .number("churn_risk", self.rounded_score(), fixed(self.score, 2))
            .number("days_inactive", days as f64, count(days, "day", "days"))
            .number("sentiment", f.sentiment_score, fixed(f.sentiment_score, 2))
            .number(
                "support_tickets",
                f.support_tickets as f64,
                count(f.support_tickets, "support ticket", "support tickets"),
            )
            .number(
                "satisfaction",
                f.satisfaction,
                format!("{} out of 5", fixed(f.satisfaction, 1)),
            )
            .number(
                "lifetime_value",
                f.lifetime_value,
                format!("${}", fixed(f.lifetime_value, 2)),
            )
    }

    /// The score rounded to 2 decimals, as stored in `customers.churn_risk_score
    /// DECIMAL(3, 2)` and shown in prompts.
    pub fn rounded_score(&self) -> f64 {
        util::round_to(self.score, 2)
    }

    /// Above [`CHURN_REPORT_THRESHOLD`] (0.3): the seed reports it and builds a retention
    /// strategy.
    pub fn is_reportable(&self) -> bool {
        self.score > CHURN_REPORT_THRESHOLD
    }

    /// Above [`HIGH_CHURN_RISK`] (0.7): counted as high risk and sent to a human.
    pub fn is_high(&self) -> bool {
        is_high_risk_score(Some(self.score))
    }
}

/// Whether a stored churn score (`customers.churn_risk_score`) counts as high risk: above
/// [`HIGH_CHURN_RISK`]. An unknown (`None`) or NaN score is not high.
///
/// ```
/// use steadytext_schema::churn::is_high_risk_score;
/// assert!(is_high_risk_score(Some(0.71)));
/// assert!(!is_high_risk_score(Some(0.7)) && !is_high_risk_score(None) && !is_high_risk_score(Some(f64::NAN)));
/// ```
pub fn is_high_risk_score(score: Option<f64>) -> bool {
    score.is_some_and(|r| r > HIGH_CHURN_RISK)
}

impl ChurnInputs {
    /// Whole days from the last activity to `as_of`, never negative; the full
    /// [`CHURN_WINDOW_DAYS`] when no activity date is known.
    pub fn days_inactive(&self) -> i64 {
        match self.last_active {
            Some(d) => (self.as_of - d).num_days().max(0),
            None => CHURN_WINDOW_DAYS,
        }
    }

    /// The sentiment used: the average clamped to `[-1, 1]`, 0 (neutral) when unknown.
    pub fn sentiment_used(&self) -> f64 {
        util::finite(self.avg_sentiment).map_or(0.0, |s| s.clamp(-1.0, 1.0))
    }

    /// Whether satisfaction is low (known and below [`LOW_SATISFACTION`]).
    pub fn satisfaction_is_low(&self) -> bool {
        util::finite(self.avg_satisfaction).is_some_and(|s| s < LOW_SATISFACTION)
    }

    /// The weighted terms of the formula.
    pub fn terms(&self) -> ChurnTerms {
        let days = self.days_inactive() as f64;
        let sentiment = self.sentiment_used();
        let ratio = self.support_tickets as f64 / self.interaction_count.max(1) as f64;
        ChurnTerms {
            inactivity: WEIGHT_INACTIVITY * days / 30.0,
            sentiment: WEIGHT_SENTIMENT * (1.0 - (sentiment + 1.0) / 2.0),
            support: WEIGHT_SUPPORT * ratio,
            satisfaction: if self.satisfaction_is_low() {
                WEIGHT_SATISFACTION
            } else {
                0.0
            },
        }
    }

    /// Aggregate one customer's rows the way the seed means to, without its join fan-out.
    ///
    /// `interactions` and `tickets` may hold other customers' rows too: only rows whose
    /// `customer_id` is this customer's count. Interactions and tickets count when their
    /// timestamp is after `now - 90 days` (strictly, as the seed's `>`). Last activity is
    /// resolved with [`effective_last_active`] over all of the customer's interactions.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use steadytext_schema::{churn::ChurnInputs, Customer};
    ///
    /// let customer = Customer::example(); // acquired 2023-01-15, never active since
    /// let now = Utc.with_ymd_and_hms(2023, 2, 14, 9, 0, 0).unwrap();
    /// let inputs = ChurnInputs::from_records(&customer, &[], &[], now);
    /// assert_eq!(inputs.days_inactive(), 30);
    /// assert_eq!(inputs.interaction_count, 0);
    /// ```
    pub fn from_records(
        customer: &Customer,
        interactions: &[CustomerInteraction],
        tickets: &[SupportTicket],
        now: DateTime<Utc>,
    ) -> Self {
        let window_start = now - Duration::days(CHURN_WINDOW_DAYS);
        let mine: Vec<&CustomerInteraction> = interactions
            .iter()
            .filter(|i| i.customer_id == Some(customer.id))
            .collect();
        let recent: Vec<&&CustomerInteraction> =
            mine.iter().filter(|i| i.timestamp > window_start).collect();
        let recent_tickets: Vec<&SupportTicket> = tickets
            .iter()
            .filter(|t| t.customer_id == Some(customer.id) && t.created_at > window_start)
            .collect();
        let last_interaction = mine.iter().map(|i| i.timestamp).max();
        Self {
            as_of: now.date_naive(),
            last_active: customer_last_active(customer, last_interaction),
            interaction_count: recent.len() as u64,
            avg_sentiment: average_sentiment(recent.iter().filter_map(|i| i.sentiment_score)),
            support_tickets: recent_tickets.len() as u64,
            avg_satisfaction: util::mean(
                recent_tickets
                    .iter()
                    .filter_map(|t| t.satisfaction().map(f64::from)),
            ),
            lifetime_value: customer.lifetime_value,
        }
    }
}

/// When a customer was last active, by the rule churn scoring uses.
///
/// The latest of the *activity* signals (`last_active_date`, the last interaction's date) if
/// there is any; otherwise the acquisition date (a customer who has done nothing since joining
/// has been inactive since joining); otherwise the date the row was created; otherwise `None`.
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use steadytext_schema::churn::effective_last_active;
///
/// let d = |m, d| NaiveDate::from_ymd_opt(2024, m, d).unwrap();
/// let seen = Utc.with_ymd_and_hms(2024, 5, 20, 23, 0, 0).unwrap();
/// assert_eq!(effective_last_active(Some(d(5, 1)), Some(seen), Some(d(1, 1)), None), Some(d(5, 20)));
/// assert_eq!(effective_last_active(None, None, Some(d(1, 1)), None), Some(d(1, 1)));
/// assert_eq!(effective_last_active(None, None, None, None), None);
/// ```
pub fn effective_last_active(
    last_active_date: Option<NaiveDate>,
    last_interaction: Option<DateTime<Utc>>,
    acquisition_date: Option<NaiveDate>,
    created_at: Option<DateTime<Utc>>,
) -> Option<NaiveDate> {
    let activity = [last_active_date, last_interaction.map(|t| t.date_naive())]
        .into_iter()
        .flatten()
        .max();
    activity
        .or(acquisition_date)
        .or_else(|| created_at.map(|t| t.date_naive()))
}

/// [`effective_last_active`] of `customer`'s row and its last interaction (any age).
pub fn customer_last_active(
    customer: &Customer,
    last_interaction: Option<DateTime<Utc>>,
) -> Option<NaiveDate> {
    effective_last_active(
        customer.last_active_date,
        last_interaction,
        customer.acquisition_date,
        Some(customer.created_at),
    )
}

/// The churn risk for one customer's inputs: the seed's formula, clamped to `[0, 1]`, always
/// finite. See the [module docs](self) for the formula and the missing-data rules.
pub fn churn_risk(inputs: &ChurnInputs) -> ChurnRisk {
    let score = inputs.terms().sum().clamp(0.0, 1.0);
    ChurnRisk {
        score,
        factors: ChurnFactors {
            days_inactive: inputs.days_inactive(),
            sentiment_score: inputs.sentiment_used(),
            support_tickets: inputs.support_tickets,
            satisfaction: util::finite(inputs.avg_satisfaction).unwrap_or(DEFAULT_SATISFACTION),
            lifetime_value: util::finite(Some(inputs.lifetime_value)).unwrap_or(0.0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(offset: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + Duration::days(offset)
    }

    fn base() -> ChurnInputs {
        ChurnInputs {
            as_of: day(100),
            last_active: Some(day(100)),
            interaction_count: 0,
            avg_sentiment: None,
            support_tickets: 0,
            avg_satisfaction: None,
            lifetime_value: 0.0,
        }
    }

    #[test]
    fn a_fresh_customer_with_no_data_scores_the_neutral_sentiment_term_only() {
        let r = churn_risk(&base());
        assert!((r.score - 0.1).abs() < 1e-12);
        assert_eq!(r.factors.sentiment_score, 0.0);
        assert_eq!(r.factors.satisfaction, 3.0);
        assert!(!r.is_reportable());
    }

    #[test]
    fn never_active_means_inactive_for_the_whole_window() {
        let r = churn_risk(&ChurnInputs {
            last_active: None,
            ..base()
        });
        assert_eq!(r.factors.days_inactive, CHURN_WINDOW_DAYS);
        assert_eq!(r.score, 1.0); // 0.3 * 90/30 = 0.9, + 0.1 neutral sentiment
    }

    #[test]
    fn future_activity_counts_as_today() {
        let r = churn_risk(&ChurnInputs {
            last_active: Some(day(120)),
            ..base()
        });
        assert_eq!(r.factors.days_inactive, 0);
    }

    #[test]
    fn factors_use_the_seed_keys() {
        let v = serde_json::to_value(churn_risk(&base()).factors).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "days_inactive",
                "lifetime_value",
                "satisfaction",
                "sentiment_score",
                "support_tickets"
            ]
        );
    }

    #[test]
    fn nan_inputs_count_as_missing() {
        let r = churn_risk(&ChurnInputs {
            avg_sentiment: Some(f64::NAN),
            avg_satisfaction: Some(f64::NAN),
            lifetime_value: f64::INFINITY,
            ..base()
        });
        assert_eq!(r, churn_risk(&base()));
    }

    #[test]
    fn from_records_windows_and_separates_tables() {
        use crate::enums::InteractionType;
        let customer = Customer::example();
        let now = DateTime::parse_from_rfc3339("2024-06-30T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let inter = |id, days_ago: i64, score: Option<f64>, cust| CustomerInteraction {
            id,
            customer_id: Some(cust),
            interaction_type: Some(InteractionType::Chat),
            channel: None,
            content: None,
            metadata: None,
            sentiment_score: score,
            timestamp: now - Duration::days(days_ago),
        };
        let ticket = |id, days_ago: i64, sat: Option<i32>| SupportTicket {
            id,
            ticket_number: None,
            customer_id: Some(1),
            category: None,
            priority: None,
            subject: None,
            description: None,
            resolution: None,
            satisfaction_score: sat,
            ai_analysis: None,
            created_at: now - Duration::days(days_ago),
            resolved_at: None,
        };
        let interactions = [
            inter(1, 10, Some(-1.0), 1),
            inter(2, 20, Some(0.0), 1),
            inter(3, 20, None, 1),
            inter(4, 200, Some(1.0), 1), // outside the window: not averaged, but is activity
            inter(5, 1, Some(1.0), 2),   // another customer
        ];
        let tickets = [
            ticket(1, 5, Some(2)),
            ticket(2, 6, None),
            ticket(3, 100, Some(5)),
        ];
        let inputs = ChurnInputs::from_records(&customer, &interactions, &tickets, now);
        assert_eq!(inputs.interaction_count, 3);
        assert_eq!(inputs.avg_sentiment, Some(-0.5));
        assert_eq!(inputs.support_tickets, 2);
        assert_eq!(inputs.avg_satisfaction, Some(2.0));
        assert_eq!(inputs.days_inactive(), 10);
    }

    fn any_inputs() -> impl Strategy<Value = ChurnInputs> {
        (
            -100_000i64..100_000,
            proptest::option::of(-100_000i64..100_000),
            0u64..=u64::MAX,
            proptest::option::of(proptest::num::f64::ANY),
            0u64..=u64::MAX,
            proptest::option::of(proptest::num::f64::ANY),
            proptest::num::f64::ANY,
        )
            .prop_map(|(as_of, last, n, s, t, sat, ltv)| ChurnInputs {
                as_of: day(as_of),
                last_active: last.map(day),
                interaction_count: n,
                avg_sentiment: s,
                support_tickets: t,
                avg_satisfaction: sat,
                lifetime_value: ltv,
            })
    }

    fn realistic_inputs() -> impl Strategy<Value = ChurnInputs> {
        (
            proptest::option::of(0i64..400),
            0u64..50,
            proptest::option::of(-1.0f64..=1.0),
            0u64..50,
            proptest::option::of(1.0f64..=5.0),
        )
            .prop_map(|(ago, n, s, t, sat)| ChurnInputs {
                as_of: day(400),
                last_active: ago.map(|a| day(400 - a)),
                interaction_count: n,
                avg_sentiment: s,
                support_tickets: t,
                avg_satisfaction: sat,
                lifetime_value: 100.0,
            })
    }

    proptest! {
        #[test]
        fn score_is_finite_and_in_unit_interval(inputs in any_inputs()) {
            let r = churn_risk(&inputs);
            prop_assert!(r.score.is_finite());
            prop_assert!((0.0..=1.0).contains(&r.score));
            prop_assert!((0.0..=1.0).contains(&r.rounded_score()));
            prop_assert!(r.factors.days_inactive >= 0);
            prop_assert!(r.factors.lifetime_value.is_finite());
            prop_assert!(r.factors.satisfaction.is_finite());
            prop_assert!(serde_json::to_string(&r).is_ok());
        }

        #[test]
        fn more_days_inactive_never_lowers_risk(inputs in realistic_inputs(), extra in 0i64..400) {
            let Some(last) = inputs.last_active else { return Ok(()) };
            let older = ChurnInputs { last_active: Some(last - Duration::days(extra)), ..inputs.clone() };
            prop_assert!(churn_risk(&older).score >= churn_risk(&inputs).score);
            // Unknown activity is at least as risky as activity within the window.
            if inputs.days_inactive() <= CHURN_WINDOW_DAYS {
                let unknown = ChurnInputs { last_active: None, ..inputs.clone() };
                prop_assert!(churn_risk(&unknown).score >= churn_risk(&inputs).score);
            }
        }

        #[test]
        fn higher_ticket_ratio_never_lowers_risk(inputs in realistic_inputs(), more in 0u64..50, fewer in 0u64..50) {
            let more_tickets = ChurnInputs { support_tickets: inputs.support_tickets + more, ..inputs.clone() };
            prop_assert!(churn_risk(&more_tickets).score >= churn_risk(&inputs).score);
            let fewer_interactions = ChurnInputs {
                interaction_count: inputs.interaction_count.saturating_sub(fewer),
                ..inputs.clone()
            };
            prop_assert!(churn_risk(&fewer_interactions).score >= churn_risk(&inputs).score);
        }

        #[test]
        fn low_satisfaction_never_lowers_risk(inputs in realistic_inputs(), low in 1.0f64..3.0) {
            let with_low = ChurnInputs { avg_satisfaction: Some(low), ..inputs.clone() };
            prop_assert!(churn_risk(&with_low).score >= churn_risk(&inputs).score);
        }

        #[test]
        fn more_negative_sentiment_never_lowers_risk(inputs in realistic_inputs(), a in -1.0f64..=1.0, b in -1.0f64..=1.0) {
            let (neg, pos) = if a <= b { (a, b) } else { (b, a) };
            let more_negative = ChurnInputs { avg_sentiment: Some(neg), ..inputs.clone() };
            let less_negative = ChurnInputs { avg_sentiment: Some(pos), ..inputs.clone() };
            prop_assert!(churn_risk(&more_negative).score >= churn_risk(&less_negative).score);
            // Missing sentiment is neutral.
            if neg <= 0.0 {
                let unknown = ChurnInputs { avg_sentiment: None, ..inputs.clone() };
                prop_assert!(churn_risk(&more_negative).score >= churn_risk(&unknown).score);
            }
        }
    }
}
