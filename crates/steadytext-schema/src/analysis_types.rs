//! What the analyses return.
//!
//! The analyses themselves (calls to the `Engine`) live elsewhere; these are their results, with
//! the pure helpers that turn a model's output into a stored result. Types the model generates
//! directly against their JSON Schema ([`SegmentStrategies`],
//! [`MarketingStrategy`], [`crate::RecommendationDraft`]) have closed
//! schemas: every property required, `"additionalProperties": false`, list lengths bounded.
//!
//! Every result records the [`PROMPT_VERSION`] it was produced
//! with, and results someone might act on carry a [`HumanReview`].

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aspects::ReviewAspect;
use crate::churn::ChurnRisk;
use crate::enums::{Channel, InteractionType, Urgency};
use crate::error::{Result, SchemaError};
use crate::executive::ExecutiveStats;
use crate::faithfulness::{Grounded, Grounding};
use crate::human_review::{assess, HumanReview, ReviewSignals};
use crate::playbooks::ChosenPlay;
use crate::prompts::PROMPT_VERSION;
use crate::recommendations::Recommendation;
use crate::records::{CustomerSegmentAnalysis, NewInteraction, ProductReview, SupportTicket};
use crate::segments::SegmentStats;
use crate::sentiment::{ReviewSentiment, SentimentBucket, TicketSentiment};
use crate::status::CustomerSnapshot;
use crate::themes::{normalize_labels, normalize_themes, MAX_TAGS};
use crate::util;

/// The analysis of one product review (the seed's trigger: sentiment, summary, themes).
///
/// ```
/// use steadytext_schema::{ReviewAnalysis, ReviewSentiment};
///
/// let a = ReviewAnalysis::new(
///     ReviewSentiment::VeryNegative,
///     " Broke after a week. ".into(),
///     vec!["durability".into(), "Durability".into(), "warranty".into()],
///     Some(3.0),
/// );
/// assert_eq!(a.sentiment_score, -1.0);
/// assert_eq!(a.summary, "Broke after a week.");
/// assert_eq!(a.themes, ["durability", "warranty"]);
/// assert!(a.human_review.needed); // very negative
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewAnalysis {
    /// The five-way label.
    pub sentiment: ReviewSentiment,
    /// Its score, `-1..=1`.
    pub sentiment_score: f64,
    /// One sentence.
    pub summary: String,
    /// At most 3, normalised: the phrases of [`aspects`](Self::aspects) when the analysis
    /// quoted them (then each occurs verbatim in the review).
    pub themes: Vec<String>,
    /// Each theme with its category and polarity (empty for results built from bare theme
    /// labels, [`ReviewAnalysis::new`]).
    #[serde(default)]
    pub aspects: Vec<ReviewAspect>,
    /// The prompt set used.
    pub prompt_version: String,
    /// The sentiment calibration's identity
    /// ([`Calibration::id`](crate::sentiment_model::Calibration::id)), when the sentiment
    /// came from the calibrated classifier ([`Analyst::review`](crate::Analyst::review)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
    /// Whether a person should check it.
    pub human_review: HumanReview,
}

impl ReviewAnalysis {
    /// Assemble from the three model outputs. `choice_margin` is the sentiment choice's
    /// log-probability margin, if known. The summary's whitespace is collapsed; themes are
    /// normalised.
    pub fn new(
        sentiment: ReviewSentiment,
        summary: String,
        themes: Vec<String>,
        choice_margin: Option<f64>,
    ) -> Self {
        Self {
            sentiment,
            sentiment_score: sentiment.score(),
            summary: util::collapse_whitespace(&summary),
            themes: normalize_themes(themes),
            aspects: Vec::new(),
            prompt_version: PROMPT_VERSION.to_string(),
            calibration: None,
            human_review: assess(&ReviewSignals {
                sentiment_score: Some(sentiment.score()),
                choice_margin,
                ..Default::default()
            }),
        }
    }

    /// Assemble from quoted aspects: the themes are their phrases (case-insensitive duplicates
    /// dropped, at most [`crate::themes::MAX_THEMES`]).
    ///
    /// ```
    /// use steadytext_schema::{aspects::{ReviewAspect, CategorisedBy}, Polarity, ReviewAnalysis, ReviewSentiment};
    /// let aspect = ReviewAspect {
    ///     phrase: "Broke after a week".into(), category: "defects_durability".into(),
    ///     polarity: Polarity::Negative, categorised_by: CategorisedBy::Phrase,
    /// };
    /// let a = ReviewAnalysis::from_aspects(ReviewSentiment::Negative, "Broke after a week.".into(), vec![aspect], None);
    /// assert_eq!(a.themes, ["Broke after a week"]);
    /// assert_eq!(a.aspects[0].category, "defects_durability");
    /// ```
    pub fn from_aspects(
        sentiment: ReviewSentiment,
        summary: String,
        aspects: Vec<ReviewAspect>,
        choice_margin: Option<f64>,
    ) -> Self {
        let mut seen = std::collections::HashSet::new();
        let aspects: Vec<ReviewAspect> = aspects
            .into_iter()
            .filter(|a| seen.insert(util::collapse_whitespace(&a.phrase).to_lowercase()))
            .take(crate::themes::MAX_THEMES)
            .collect();
        let themes = aspects.iter().map(|a| a.phrase.clone()).collect();
        Self {
            aspects,
            ..Self::new(sentiment, summary, themes, choice_margin)
        }
    }

    /// Write the result into the review's `sentiment`, `ai_summary`, `key_themes` and
    /// `review_aspects`.
    pub fn apply_to(&self, review: &mut ProductReview) {
        review.sentiment = Some(self.sentiment);
        review.ai_summary = Some(self.summary.clone());
        review.key_themes = Some(self.themes.clone());
        review.review_aspects = Some(self.aspects.clone());
    }

    /// The interaction the seed logs for an analysed review: type `review`, channel `web`, the
    /// review text, the score, and metadata `{rating, product_id, themes}`.
    pub fn interaction(&self, review: &ProductReview) -> NewInteraction {
        NewInteraction {
            customer_id: review.customer_id,
            interaction_type: InteractionType::Review,
            channel: Channel::Web,
            content: review.review_text.clone(),
            metadata: serde_json::json!({
                "rating": review.rating,
                "product_id": review.product_id,
                "themes": self.themes,
                "aspects": self.aspects,
            }),
            sentiment_score: Some(self.sentiment_score),
        }
    }
}

/// The analysis of a support ticket: the seed's six keys, plus the taxonomy `category` and the
/// `rules` that decided them. Nothing in it is free model text: urgency, sentiment and category
/// are closed-set choices bounded by documented rules ([`crate::ticket_triage`]), `root_cause`
/// is quoted from the ticket, `suggested_resolution` comes from the playbook
/// ([`crate::resolutions`]), tags are taxonomy keys, and `follow_up_needed` is a rule.
///
/// ```
/// use steadytext_schema::TicketAnalysis;
///
/// let schema = serde_json::to_value(schemars::schema_for!(TicketAnalysis)).unwrap();
/// assert_eq!(schema["additionalProperties"], false);
/// assert_eq!(schema["properties"]["tags"]["maxItems"], 5);
/// assert_eq!(schema["properties"]["urgency"]["enum"][3], "critical");
/// // Rows written before `category` and `rules` existed still read.
/// let old: TicketAnalysis = serde_json::from_value(serde_json::json!({
///     "urgency": "low", "sentiment": "neutral", "root_cause": "late",
///     "suggested_resolution": "Re-ship.", "follow_up_needed": false, "tags": []
/// })).unwrap();
/// assert_eq!(old.category, "");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(description = "The analysis of a customer support ticket.")]
pub struct TicketAnalysis {
    /// How urgent the ticket is.
    pub urgency: Urgency,
    /// The customer's mood.
    pub sentiment: TicketSentiment,
    /// The likely root cause: words quoted from the ticket's description (its subject when
    /// the description is empty).
    pub root_cause: String,
    /// What support should do: a resolution playbook entry.
    pub suggested_resolution: String,
    /// Whether someone should follow up with the customer.
    pub follow_up_needed: bool,
    /// Taxonomy category keys, the ticket's category first, at most 5.
    #[schemars(length(max = 5))]
    pub tags: Vec<String>,
    /// The ticket's taxonomy category key (empty in rows analysed before categories).
    #[serde(default)]
    pub category: String,
    /// Every rule that decided or bounded a field, in the order applied.
    #[serde(default)]
    pub rules: Vec<String>,
}

impl TicketAnalysis {
    /// Trim the text fields and normalise the tags (trimmed, non-empty, case-insensitively
    /// unique, at most 5).
    pub fn normalized(self) -> Self {
        Self {
            root_cause: util::collapse_whitespace(&self.root_cause),
            suggested_resolution: self.suggested_resolution.trim().to_string(),
            tags: normalize_labels(self.tags, MAX_TAGS),
            ..self
        }
    }

    /// Check what the schema promises but serde does not enforce: at most 5 tags.
    pub fn validate(&self) -> Result<()> {
        if self.tags.len() > MAX_TAGS {
            return Err(SchemaError::WrongCount {
                what: "tags",
                expected: format!("at most {MAX_TAGS}"),
                got: self.tags.len(),
            });
        }
        Ok(())
    }

    /// The sentiment's score (angry -1.0 … happy 1.0).
    pub fn sentiment_score(&self) -> f64 {
        self.sentiment.score()
    }

    /// Critical urgency or an angry customer needs a person.
    pub fn human_review(&self) -> HumanReview {
        assess(&ReviewSignals {
            urgency: Some(self.urgency),
            sentiment_score: Some(self.sentiment_score()),
            ..Default::default()
        })
    }

    /// The interaction the seed logs for an analysed ticket: type `support`, channel `ticket`,
    /// the description, the score, and the analysis as metadata.
    pub fn interaction(&self, ticket: &SupportTicket) -> NewInteraction {
        NewInteraction {
            customer_id: ticket.customer_id,
            interaction_type: InteractionType::Support,
            channel: Channel::Ticket,
            content: ticket.description.clone(),
            metadata: serde_json::to_value(self).expect("a ticket analysis always serialises"),
            sentiment_score: Some(self.sentiment_score()),
        }
    }
}

/// A ticket's priority: the one already set, else the analysed urgency (the seed's
/// `COALESCE(priority, v_analysis->>'urgency')`).
///
/// ```
/// use steadytext_schema::{ticket_priority, Urgency};
/// assert_eq!(ticket_priority(None, Urgency::High), Urgency::High);
/// assert_eq!(ticket_priority(Some(Urgency::Low), Urgency::High), Urgency::Low);
/// ```
pub fn ticket_priority(existing: Option<Urgency>, analysed: Urgency) -> Urgency {
    existing.unwrap_or(analysed)
}

/// A ticket analysis with what was decided from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnalyzedTicket {
    /// The analysis, normalised.
    pub analysis: TicketAnalysis,
    /// The ticket's priority after analysis ([`ticket_priority`]).
    pub priority: Urgency,
    /// The prompt set used.
    pub prompt_version: String,
    /// Whether a person should check it.
    pub human_review: HumanReview,
}

impl AnalyzedTicket {
    /// Normalise the model's analysis and decide priority and review for `ticket`.
    pub fn new(ticket: &SupportTicket, analysis: TicketAnalysis) -> Self {
        let analysis = analysis.normalized();
        Self {
            priority: ticket_priority(ticket.priority, analysis.urgency),
            human_review: analysis.human_review(),
            prompt_version: PROMPT_VERSION.to_string(),
            analysis,
        }
    }
}

/// One marketing strategy for a segment. Its schema is inlined into [`SegmentStrategies`]'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline, description = "One marketing strategy.")]
pub struct MarketingStrategy {
    /// A short name.
    pub name: String,
    /// What to do.
    pub description: String,
    /// What it should achieve.
    pub expected_impact: String,
    /// The marketing play it was filled from ([`crate::playbooks`]); empty in rows written
    /// before strategies came from playbooks.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(skip)]
    pub play: String,
}

impl MarketingStrategy {
    /// A strategy from a chosen marketing play: title, filled action, filled impact.
    pub fn from_play(play: &crate::playbooks::ChosenPlay) -> Self {
        Self {
            name: play.title.clone(),
            description: play.action.clone(),
            expected_impact: play.expected_impact.clone().unwrap_or_default(),
            play: play.play.clone(),
        }
    }
}

/// Exactly three marketing strategies (`{"strategies": [...]}`), chosen for a segment from
/// the marketing playbook ([`crate::playbooks`]).
///
/// ```
/// use steadytext_schema::SegmentStrategies;
///
/// let schema = serde_json::to_value(schemars::schema_for!(SegmentStrategies)).unwrap();
/// assert_eq!(schema["properties"]["strategies"]["minItems"], 3);
/// assert_eq!(schema["properties"]["strategies"]["maxItems"], 3);
/// assert!(SegmentStrategies { strategies: vec![] }.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(description = "Exactly three marketing strategies for a customer segment.")]
pub struct SegmentStrategies {
    /// Exactly three.
    #[schemars(length(min = 3, max = 3))]
    pub strategies: Vec<MarketingStrategy>,
}

impl SegmentStrategies {
    /// How many strategies there must be.
    pub const COUNT: usize = 3;

    /// Check there are exactly three (the schema says so; serde does not enforce it).
    pub fn validate(&self) -> Result<()> {
        if self.strategies.len() != Self::COUNT {
            return Err(SchemaError::WrongCount {
                what: "marketing strategies",
                expected: format!("exactly {}", Self::COUNT),
                got: self.strategies.len(),
            });
        }
        Ok(())
    }
}

/// The profile of one customer segment (a row of `customer_segments_analysis`, with provenance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SegmentProfile {
    /// The segment.
    pub segment_name: String,
    /// Customers in it.
    pub customer_count: u64,
    /// Their average lifetime value.
    pub avg_lifetime_value: Option<f64>,
    /// The sentiment bucket; `None` without data.
    pub sentiment: Option<SentimentBucket>,
    /// The segment's interaction types (stored as `common_behaviors`, as the seed does).
    pub common_behaviors: Vec<String>,
    /// The segment's most frequent review themes.
    pub common_themes: Vec<String>,
    /// The profile text: model prose that passed the faithfulness check
    /// ([`crate::faithfulness`]), else the segment's facts.
    pub ai_profile: String,
    /// Which of the two `ai_profile` is.
    #[serde(default)]
    pub grounding: Grounding,
    /// The strategies (exactly three), filled from marketing plays.
    pub strategies: SegmentStrategies,
    /// The prompt set used.
    pub prompt_version: String,
}

impl SegmentProfile {
    /// Assemble from the segment's stats and the two generations; fails unless there are exactly
    /// three strategies.
    pub fn new(
        stats: &SegmentStats,
        ai_profile: Grounded,
        strategies: SegmentStrategies,
    ) -> Result<Self> {
        strategies.validate()?;
        Ok(Self {
            segment_name: stats.segment_name.clone(),
            customer_count: stats.customer_count,
            avg_lifetime_value: stats.avg_lifetime_value.map(|v| util::round_to(v, 2)),
            sentiment: stats.sentiment_bucket(),
            common_behaviors: stats
                .interaction_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            common_themes: stats.common_themes.clone(),
            ai_profile: ai_profile.text.trim().to_string(),
            grounding: ai_profile.grounding,
            strategies,
            prompt_version: PROMPT_VERSION.to_string(),
        })
    }

    /// The `customer_segments_analysis` row (with `id` as given: ignore it when inserting).
    pub fn to_record(&self, id: i32, now: DateTime<Utc>) -> CustomerSegmentAnalysis {
        CustomerSegmentAnalysis {
            id,
            segment_name: self.segment_name.clone(),
            customer_count: i32::try_from(self.customer_count).unwrap_or(i32::MAX),
            avg_lifetime_value: self.avg_lifetime_value,
            common_behaviors: self.common_behaviors.clone(),
            ai_profile: Some(self.ai_profile.clone()),
            recommendations: Some(self.strategies.clone()),
            last_updated: now,
        }
    }
}

/// A retention strategy for one at-risk customer (a row of the seed's `calculate_churn_risk`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetentionStrategy {
    /// `customers.id` (for storing; it is never in the prompt).
    pub customer_id: i32,
    /// The risk it answers.
    pub risk: ChurnRisk,
    /// The strategy: model prose (explaining `actions`) that passed the faithfulness check
    /// ([`crate::faithfulness`]), else the risk's facts and the actions.
    pub strategy: String,
    /// Which of the two `strategy` is.
    #[serde(default)]
    pub grounding: Grounding,
    /// The retention plays chosen for this risk ([`crate::playbooks`]), best first.
    #[serde(default)]
    pub actions: Vec<ChosenPlay>,
    /// The prompt set used.
    pub prompt_version: String,
    /// High risk (above 0.7) needs a person.
    pub human_review: HumanReview,
}

impl RetentionStrategy {
    /// Assemble; flags high churn risk for review.
    pub fn new(
        customer_id: i32,
        risk: ChurnRisk,
        strategy: Grounded,
        actions: Vec<ChosenPlay>,
    ) -> Self {
        Self {
            customer_id,
            human_review: assess(&ReviewSignals {
                churn_risk: Some(risk.score),
                ..Default::default()
            }),
            risk,
            strategy: strategy.text.trim().to_string(),
            grounding: strategy.grounding,
            actions,
            prompt_version: PROMPT_VERSION.to_string(),
        }
    }
}

/// A customer's ranked recommendations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerRecommendations {
    /// `customers.id` (for storing; never in a prompt).
    pub customer_id: i32,
    /// Sorted by priority, at most the number asked for
    /// ([`rank_recommendations`](crate::rank_recommendations)).
    pub recommendations: Vec<Recommendation>,
    /// The prompt set used.
    pub prompt_version: String,
}

/// The dashboard's generated insight for one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerInsight {
    /// The numbers it was generated from.
    pub snapshot: CustomerSnapshot,
    /// The insight: model prose that passed the faithfulness check ([`crate::faithfulness`]),
    /// else the snapshot's facts.
    pub insight: String,
    /// Which of the two `insight` is.
    #[serde(default)]
    pub grounding: Grounding,
    /// The prompt set used.
    pub prompt_version: String,
    /// Very negative average sentiment or high churn risk needs a person.
    pub human_review: HumanReview,
}

impl CustomerInsight {
    /// Assemble; `churn_risk` is the customer's stored risk, if any.
    pub fn new(snapshot: CustomerSnapshot, insight: Grounded, churn_risk: Option<f64>) -> Self {
        Self {
            human_review: assess(&ReviewSignals {
                churn_risk,
                sentiment_score: snapshot.avg_sentiment,
                ..Default::default()
            }),
            snapshot,
            insight: insight.text.trim().to_string(),
            grounding: insight.grounding,
            prompt_version: PROMPT_VERSION.to_string(),
        }
    }
}

/// The executive summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutiveSummary {
    /// The numbers it was generated from.
    pub stats: ExecutiveStats,
    /// The summary: model prose (explaining `actions`) that passed the faithfulness check
    /// ([`crate::faithfulness`]), else the company's facts and the actions.
    pub insights: String,
    /// Which of the two `insights` is.
    #[serde(default)]
    pub grounding: Grounding,
    /// The company-wide plays chosen for these numbers ([`crate::playbooks`]), best first.
    #[serde(default)]
    pub actions: Vec<ChosenPlay>,
    /// The prompt set used.
    pub prompt_version: String,
}

impl ExecutiveSummary {
    /// Assemble.
    pub fn new(stats: ExecutiveStats, insights: Grounded, actions: Vec<ChosenPlay>) -> Self {
        Self {
            stats,
            insights: insights.text.trim().to_string(),
            grounding: insights.grounding,
            actions,
            prompt_version: PROMPT_VERSION.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::human_review::HumanReviewReason;

    fn ticket_json() -> serde_json::Value {
        serde_json::json!({
            "urgency": "critical",
            "sentiment": "angry",
            "root_cause": "  carrier lost the parcel ",
            "suggested_resolution": "Reship today.",
            "follow_up_needed": true,
            "tags": ["shipping", " Shipping", "", "delay", "carrier", "refund", "vip"]
        })
    }

    #[test]
    fn ticket_schema_is_closed_and_keeps_the_seed_keys() {
        let schema = serde_json::to_value(schemars::schema_for!(TicketAnalysis)).unwrap();
        let mut required: Vec<String> = serde_json::from_value(schema["required"].clone()).unwrap();
        required.sort();
        assert_eq!(
            required,
            [
                "follow_up_needed",
                "root_cause",
                "sentiment",
                "suggested_resolution",
                "tags",
                "urgency"
            ]
        );
        assert!(schema["properties"]["category"].is_object());
        assert!(schema["properties"]["rules"].is_object());
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["tags"]["type"], "array");
        assert_eq!(schema["properties"]["tags"]["maxItems"], 5);
        assert_eq!(
            schema["properties"]["sentiment"]["enum"],
            serde_json::json!(["angry", "frustrated", "neutral", "satisfied", "happy"])
        );
        assert!(schema.get("$defs").is_none(), "enums are inlined: {schema}");
    }

    #[test]
    fn generation_schemas_are_self_contained_and_terse() {
        let schemas = [
            schemars::schema_for!(SegmentStrategies),
            schemars::schema_for!(crate::RecommendationDraft),
        ];
        for schema in schemas {
            let text = serde_json::to_string(&schema).unwrap();
            assert!(!text.contains("$defs") && !text.contains("$ref"), "{text}");
            assert!(!text.contains("```"), "doc examples leaked into {text}");
            assert!(text.len() < 1500, "{} bytes: {text}", text.len());
        }
    }

    #[test]
    fn ticket_analysis_rejects_extra_keys_and_normalises() {
        let mut extra = ticket_json();
        extra["mood"] = "bad".into();
        assert!(serde_json::from_value::<TicketAnalysis>(extra).is_err());

        let raw: TicketAnalysis = serde_json::from_value(ticket_json()).unwrap();
        assert!(raw.validate().is_err()); // 7 tags
        let t = raw.normalized();
        assert!(t.validate().is_ok());
        assert_eq!(t.tags, ["shipping", "delay", "carrier", "refund", "vip"]);
        assert_eq!(t.root_cause, "carrier lost the parcel");
        assert_eq!(
            t.human_review().reasons,
            [
                HumanReviewReason::CriticalUrgency,
                HumanReviewReason::VeryNegativeSentiment
            ]
        );
    }

    #[test]
    fn strategies_schema_requires_exactly_three_closed_objects() {
        let schema = serde_json::to_value(schemars::schema_for!(SegmentStrategies)).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], serde_json::json!(["strategies"]));
        assert!(schema.get("$defs").is_none(), "{schema}");
        let item = &schema["properties"]["strategies"]["items"];
        assert_eq!(item["additionalProperties"], false);
        assert_eq!(
            item["required"],
            serde_json::json!(["name", "description", "expected_impact"])
        );
        let s = MarketingStrategy {
            name: "n".into(),
            description: "d".into(),
            expected_impact: "e".into(),
            play: String::new(),
        };
        let three = SegmentStrategies {
            strategies: vec![s.clone(), s.clone(), s.clone()],
        };
        assert!(three.validate().is_ok());
        let four = SegmentStrategies {
            strategies: vec![s; 4],
        };
        assert!(matches!(
            four.validate(),
            Err(SchemaError::WrongCount { got: 4, .. })
        ));
    }
}
