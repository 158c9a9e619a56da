//! Rows of the seed's five tables, typed.
//!
//! | table | type |
//! |---|---|
//! | `customers` | [`Customer`] |
//! | `customer_interactions` | [`CustomerInteraction`] (and [`NewInteraction`] to insert one) |
//! | `product_reviews` | [`ProductReview`] |
//! | `support_tickets` | [`SupportTicket`] |
//! | `customer_segments_analysis` | [`CustomerSegmentAnalysis`] |
//!
//! **Nullability.** A field is an `Option` exactly where the seed's column is nullable *and*
//! has no `DEFAULT`, or where the seed's own code can leave it NULL. Columns with a `DEFAULT`
//! (`created_at`, `updated_at`, `timestamp`, `lifetime_value`, `verified_purchase`,
//! `helpful_count`, `customer_id UUID`) are plain values: the default always fills them, so a
//! migration should declare them `NOT NULL` (or map NULL to the default when reading).
//! Exceptions are noted on the field.
//!
//! **Numbers.** Money (`DECIMAL(10, 2)`) and scores (`DECIMAL(3, 2)`) are `f64`. Every
//! `DECIMAL(10, 2)` value (at most 99,999,999.99) round-trips exactly through `f64` when rounded
//! back to 2 decimals; sums and averages over fewer than 2^53 cents lose nothing visible at cent
//! resolution. Prompts and stored scores are rounded to the column's scale explicitly.
//!
//! **Closed sets** (`interaction_type`, `channel`, `sentiment`, `priority`) are enums, so a row
//! holding a string outside the set fails to deserialise instead of flowing on silently; a
//! migration should add matching `CHECK` constraints.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::analysis_types::{SegmentStrategies, TicketAnalysis};
use crate::enums::{Channel, InteractionType, Urgency};
use crate::error::SchemaError;
use crate::sentiment::ReviewSentiment;

/// A product rating, 1 to 5 inclusive (the seed's `CHECK (rating >= 1 AND rating <= 5)`).
///
/// ```
/// use steadytext_schema::Rating;
///
/// let r = Rating::new(4).unwrap();
/// assert_eq!(r.get(), 4);
/// assert!(Rating::new(0).is_err());
/// assert_eq!(serde_json::to_string(&r).unwrap(), "4");
/// assert!(serde_json::from_str::<Rating>("6").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct Rating(u8);

impl Rating {
    /// Lowest rating.
    pub const MIN: u8 = 1;
    /// Highest rating.
    pub const MAX: u8 = 5;

    /// A rating, if `value` is within 1..=5.
    pub fn new(value: u8) -> Result<Self, SchemaError> {
        Self::try_from(i64::from(value))
    }

    /// The rating as a number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Rating {
    type Error = SchemaError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&value) {
            Ok(Self(value as u8))
        } else {
            Err(SchemaError::RatingOutOfRange(value))
        }
    }
}

impl TryFrom<i32> for Rating {
    type Error = SchemaError;

    fn try_from(value: i32) -> Result<Self, Self::Error> {
        Self::try_from(i64::from(value))
    }
}

impl From<Rating> for u8 {
    fn from(r: Rating) -> u8 {
        r.0
    }
}

impl fmt::Display for Rating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl JsonSchema for Rating {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rating".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "integer", "minimum": 1, "maximum": 5 })
    }
}

/// A row of `customers`.
///
/// `email`, `first_name` and `last_name` are PII: they never reach a prompt (see
/// [`crate::privacy`]), and this type's `Debug` output hides them so they do not leak into logs.
///
/// ```
/// # use steadytext_schema::Customer;
/// let c = Customer::example();
/// let debug = format!("{c:?}");
/// assert!(!debug.contains(&c.email));
/// assert!(!debug.contains("John"));
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Customer {
    /// `id SERIAL PRIMARY KEY`.
    pub id: i32,
    /// `customer_id UUID DEFAULT gen_random_uuid()`: the public identifier.
    pub customer_id: Uuid,
    /// `email VARCHAR(255) UNIQUE NOT NULL`. PII.
    pub email: String,
    /// `first_name VARCHAR(100)`. PII.
    pub first_name: Option<String>,
    /// `last_name VARCHAR(100)`. PII.
    pub last_name: Option<String>,
    /// `segment VARCHAR(50)`, e.g. `premium`, `regular`, `budget`.
    pub segment: Option<String>,
    /// `lifetime_value DECIMAL(10, 2) DEFAULT 0`, in currency units.
    pub lifetime_value: f64,
    /// `acquisition_date DATE`.
    pub acquisition_date: Option<NaiveDate>,
    /// `last_active_date DATE`. Nothing in the seed ever sets it; see
    /// [`crate::churn::effective_last_active`] for how activity is derived.
    pub last_active_date: Option<NaiveDate>,
    /// `churn_risk_score DECIMAL(3, 2)`: the last computed [`crate::ChurnRisk`], 2 decimals.
    pub churn_risk_score: Option<f64>,
    /// `created_at TIMESTAMPTZ DEFAULT NOW()`.
    pub created_at: DateTime<Utc>,
    /// `updated_at TIMESTAMPTZ DEFAULT NOW()`.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Customer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HIDDEN: &str = "<pii>";
        f.debug_struct("Customer")
            .field("id", &self.id)
            .field("customer_id", &self.customer_id)
            .field("email", &HIDDEN)
            .field("first_name", &self.first_name.as_ref().map(|_| HIDDEN))
            .field("last_name", &self.last_name.as_ref().map(|_| HIDDEN))
            .field("segment", &self.segment)
            .field("lifetime_value", &self.lifetime_value)
            .field("acquisition_date", &self.acquisition_date)
            .field("last_active_date", &self.last_active_date)
            .field("churn_risk_score", &self.churn_risk_score)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl Customer {
    /// The seed's first sample customer (`john.doe@email.com`, premium, LTV 2500.00, acquired
    /// 2023-01-15), with fixed ids and timestamps. For examples and tests.
    pub fn example() -> Self {
        let created = DateTime::parse_from_rfc3339("2023-01-15T00:00:00Z")
            .expect("valid timestamp")
            .with_timezone(&Utc);
        Self {
            id: 1,
            customer_id: Uuid::from_u128(0x5f0c_6f0e_8d1a_4b7e_9c3d_2a1b_0c9d_8e7f),
            email: "john.doe@email.com".into(),
            first_name: Some("John".into()),
            last_name: Some("Doe".into()),
            segment: Some("premium".into()),
            lifetime_value: 2500.0,
            acquisition_date: NaiveDate::from_ymd_opt(2023, 1, 15),
            last_active_date: None,
            churn_risk_score: None,
            created_at: created,
            updated_at: created,
        }
    }
}

/// A row of `customer_interactions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerInteraction {
    /// `id SERIAL PRIMARY KEY`.
    pub id: i32,
    /// `customer_id INTEGER REFERENCES customers(id)` (nullable in the seed).
    pub customer_id: Option<i32>,
    /// `interaction_type VARCHAR(50)`.
    pub interaction_type: Option<InteractionType>,
    /// `channel VARCHAR(50)`.
    pub channel: Option<Channel>,
    /// `content TEXT`: the customer's own words (may contain PII; redact before prompting).
    pub content: Option<String>,
    /// `metadata JSONB`.
    pub metadata: Option<serde_json::Value>,
    /// `sentiment_score DECIMAL(3, 2)`, -1 to 1.
    pub sentiment_score: Option<f64>,
    /// `timestamp TIMESTAMPTZ DEFAULT NOW()`.
    pub timestamp: DateTime<Utc>,
}

/// An interaction to insert: a [`CustomerInteraction`] without the columns the database fills
/// (`id`, `timestamp`). The seed logs one for every analysed review and ticket; see
/// [`ReviewAnalysis::interaction`](crate::ReviewAnalysis::interaction) and
/// [`TicketAnalysis::interaction`](crate::TicketAnalysis::interaction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NewInteraction {
    /// The customer.
    pub customer_id: Option<i32>,
    /// What happened.
    pub interaction_type: InteractionType,
    /// Where.
    pub channel: Channel,
    /// The customer's text, stored as-is (it is a record, not a prompt).
    pub content: Option<String>,
    /// Structured details (the seed's `jsonb_build_object(...)`).
    pub metadata: serde_json::Value,
    /// Sentiment in `[-1, 1]`, if known.
    pub sentiment_score: Option<f64>,
}

/// A row of `product_reviews`.
///
/// `ai_summary`, `sentiment` and `key_themes` are NULL until the review has been analysed (in
/// our design analysis runs from a job queue, not inside the insert).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductReview {
    /// `id SERIAL PRIMARY KEY`.
    pub id: i32,
    /// `customer_id INTEGER REFERENCES customers(id)`.
    pub customer_id: Option<i32>,
    /// `product_id INTEGER`.
    pub product_id: Option<i32>,
    /// `rating INTEGER CHECK (rating >= 1 AND rating <= 5)`.
    pub rating: Option<Rating>,
    /// `title VARCHAR(200)`.
    pub title: Option<String>,
    /// `review_text TEXT`: the customer's own words (may contain PII; redact before prompting).
    pub review_text: Option<String>,
    /// `verified_purchase BOOLEAN DEFAULT FALSE`.
    pub verified_purchase: bool,
    /// `helpful_count INTEGER DEFAULT 0`.
    pub helpful_count: i32,
    /// `ai_summary TEXT`: the one-sentence summary.
    pub ai_summary: Option<String>,
    /// `sentiment VARCHAR(20)`.
    pub sentiment: Option<ReviewSentiment>,
    /// `key_themes TEXT[]`: at most 3, normalised (see [`crate::themes`]).
    pub key_themes: Option<Vec<String>>,
    /// `review_aspects JSONB` (migration 0005): each theme with its taxonomy category and
    /// polarity ([`crate::aspects`]).
    #[serde(default)]
    pub review_aspects: Option<Vec<crate::aspects::ReviewAspect>>,
    /// `created_at TIMESTAMPTZ DEFAULT NOW()`.
    pub created_at: DateTime<Utc>,
}

/// A row of `support_tickets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SupportTicket {
    /// `id SERIAL PRIMARY KEY`.
    pub id: i32,
    /// `ticket_number VARCHAR(20) UNIQUE`, e.g. `TICK-001`. An identifier: never prompted.
    pub ticket_number: Option<String>,
    /// `customer_id INTEGER REFERENCES customers(id)`.
    pub customer_id: Option<i32>,
    /// `category VARCHAR(50)`, e.g. `shipping`, `product_issue`.
    pub category: Option<String>,
    /// `priority VARCHAR(20)`: filled from the analysed urgency when not set
    /// (see [`crate::ticket_priority`]).
    pub priority: Option<Urgency>,
    /// `subject VARCHAR(200)`.
    pub subject: Option<String>,
    /// `description TEXT`: the customer's own words (may contain PII; redact before prompting).
    pub description: Option<String>,
    /// `resolution TEXT`.
    pub resolution: Option<String>,
    /// `satisfaction_score INTEGER`: the customer's rating of the support, 1 to 5 (the seed
    /// treats below 3 as low and a missing score as 3 on its dashboard).
    ///
    /// The seed's column has no `CHECK`, so a row may hold 0 or 9. Such a value is **clamped**
    /// into 1..=5 ([`SupportTicket::clamp_satisfaction`]: 0 reads as 1, 9 as 5), with a warning
    /// naming the ticket where the database is read, and every aggregate (churn inputs,
    /// dashboard averages) uses the clamped value. Clamped, not rejected: a typed error would
    /// fail every listing and every churn run that touches the one bad row, and dropping the
    /// value would lose which end of the scale the customer chose; clamping keeps that end and
    /// keeps every average inside 1..=5, so no prompt reads "9.0 out of 5". The same rule the
    /// aggregates already apply to `sentiment_score` (clamped into -1..=1). Code that builds a
    /// ticket itself should read [`SupportTicket::satisfaction`], which clamps too.
    pub satisfaction_score: Option<i32>,
    /// `ai_analysis JSONB`: exactly the seed's six keys.
    pub ai_analysis: Option<TicketAnalysis>,
    /// `created_at TIMESTAMPTZ DEFAULT NOW()`.
    pub created_at: DateTime<Utc>,
    /// `resolved_at TIMESTAMPTZ`: NULL while the ticket is open.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl SupportTicket {
    /// Lowest satisfaction score.
    pub const SATISFACTION_MIN: i32 = 1;
    /// Highest satisfaction score.
    pub const SATISFACTION_MAX: i32 = 5;

    /// `score` clamped into `SATISFACTION_MIN..=SATISFACTION_MAX` (see
    /// [`SupportTicket::satisfaction_score`]).
    ///
    /// ```
    /// use steadytext_schema::SupportTicket;
    ///
    /// assert_eq!(SupportTicket::clamp_satisfaction(9), 5);
    /// assert_eq!(SupportTicket::clamp_satisfaction(0), 1);
    /// assert_eq!(SupportTicket::clamp_satisfaction(3), 3);
    /// ```
    pub fn clamp_satisfaction(score: i32) -> i32 {
        score.clamp(Self::SATISFACTION_MIN, Self::SATISFACTION_MAX)
    }

    /// The satisfaction score, clamped into 1..=5; `None` when there is none.
    pub fn satisfaction(&self) -> Option<i32> {
        self.satisfaction_score.map(Self::clamp_satisfaction)
    }

    /// Whether the ticket is still open (`resolved_at IS NULL`, as the executive summary counts).
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// A row of `customer_segments_analysis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerSegmentAnalysis {
    /// `id SERIAL PRIMARY KEY`.
    pub id: i32,
    /// `segment_name VARCHAR(50) UNIQUE`. Nullable in the seed, but its writer only iterates
    /// over non-NULL segments, so it is required here.
    pub segment_name: String,
    /// `customer_count INTEGER`; always written (a `COUNT`).
    pub customer_count: i32,
    /// `avg_lifetime_value DECIMAL(10, 2)`.
    pub avg_lifetime_value: Option<f64>,
    /// `common_behaviors TEXT[]`: the segment's interaction types (as the seed fills it).
    pub common_behaviors: Vec<String>,
    /// `ai_profile TEXT`: the generated segment profile.
    pub ai_profile: Option<String>,
    /// `recommendations JSONB`: exactly three marketing strategies.
    pub recommendations: Option<SegmentStrategies>,
    /// `last_updated TIMESTAMPTZ DEFAULT NOW()`.
    pub last_updated: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rating_bounds() {
        for r in 1..=5i64 {
            assert_eq!(Rating::try_from(r).unwrap().get() as i64, r);
        }
        for r in [-1i64, 0, 6, 255, 256] {
            assert_eq!(Rating::try_from(r), Err(SchemaError::RatingOutOfRange(r)));
        }
        let schema = serde_json::to_value(schemars::schema_for!(Rating)).unwrap();
        assert_eq!(schema["minimum"], 1);
        assert_eq!(schema["maximum"], 5);
    }

    #[test]
    fn customer_json_uses_the_seed_column_names() {
        let v = serde_json::to_value(Customer::example()).unwrap();
        for key in [
            "id",
            "customer_id",
            "email",
            "first_name",
            "last_name",
            "segment",
            "lifetime_value",
            "acquisition_date",
            "last_active_date",
            "churn_risk_score",
            "created_at",
            "updated_at",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["acquisition_date"], "2023-01-15");
        let back: Customer = serde_json::from_value(v).unwrap();
        assert_eq!(back, Customer::example());
    }

    #[test]
    fn interaction_round_trips_with_seed_strings() {
        let json = serde_json::json!({
            "id": 7, "customer_id": 2, "interaction_type": "support", "channel": "ticket",
            "content": "late", "metadata": {"urgency": "high"}, "sentiment_score": -0.5,
            "timestamp": "2024-05-01T12:00:00Z"
        });
        let i: CustomerInteraction = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(i.channel, Some(Channel::Ticket));
        assert_eq!(serde_json::to_value(&i).unwrap(), json);
        let mut bad = json;
        bad["channel"] = "sms".into();
        assert!(serde_json::from_value::<CustomerInteraction>(bad).is_err());
    }
}
