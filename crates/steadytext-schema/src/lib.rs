//! The customer-intelligence domain in typed Rust: records, scoring, prompts and result types.
//!
//! This crate is the middle of the system: it knows nothing of SQL. It turns the seed
//! tutorial's PL/pgSQL into documented, tested functions and types that the database layer
//! (`steadytext-pg`) maps rows into, and it runs the analyses ([`Analyst`], over
//! `steadytext-core`'s `Engine`): their prompts, the model calls and the checks of what
//! comes back.
//!
//! | module | holds |
//! |---|---|
//! | [`records`] | the seed's five tables as structs ([`Customer`], [`CustomerInteraction`], [`ProductReview`], [`SupportTicket`], [`CustomerSegmentAnalysis`]) and [`Rating`] |
//! | [`enums`] | closed sets: [`Urgency`], [`InteractionType`], [`Channel`], [`CustomerStatus`], [`RecommendationType`] |
//! | [`sentiment`] | [`ReviewSentiment`], [`TicketSentiment`], [`Polarity`], [`SentimentBucket`], averaging |
//! | [`churn`] | the churn-risk formula, defined for missing data ([`churn_risk`], [`ChurnRisk`]) |
//! | [`status`] | the dashboard's customer status ([`customer_status`], [`CustomerSnapshot`]) |
//! | [`segments`], [`executive`] | per-segment and company-wide aggregates |
//! | [`themes`] | [`normalize_themes`] |
//! | [`aspects`] | review themes as quoted, categorised aspects with a polarity ([`aspects::ReviewAspect`]) |
//! | [`batch`], [`progress`] | bounded, ordered concurrency for bulk runs and their progress reports (shared by the demo and PostgreSQL paths) |
//! | [`quote`] | the phrases of an input a quote may be ([`quote::quotable_spans`]) |
//! | [`taxonomy`] | the feedback categories themes and tickets are filed under ([`taxonomy::Taxonomy`]) |
//! | [`keywords`] | the keyword-stem rule behind taxonomy, triage and playbook matching ([`keywords::Words`]) |
//! | [`ticket_triage`] | the documented rules of ticket analysis: urgency floors, sentiment ceilings, category, tags, follow-up ([`ticket_triage::TriageRules`]) |
//! | [`resolutions`] | the resolution playbook tickets' suggested resolutions come from ([`resolutions::ResolutionPlaybook`]) |
//! | [`privacy`] | [`redact`] and [`Redactor`]: no PII reaches a prompt |
//! | [`prompts`] | [`PromptBuilder`], [`PROMPT_VERSION`] |
//! | [`analysis_types`] | what analyses return: [`ReviewAnalysis`], [`TicketAnalysis`], [`SegmentProfile`], [`RetentionStrategy`], [`CustomerInsight`], [`ExecutiveSummary`], ... |
//! | [`recommendations`] | [`Recommendation`], [`CustomerProfile`], the seed's priority rule |
//! | [`human_review`] | when a result needs a person ([`HumanReview`]) |
//! | [`sentiment_model`] | the review-sentiment classifier ([`SentimentModel`]) and its [`Calibration`](sentiment_model::Calibration) |
//! | [`sentiment_fit`], [`calibrate`] | fitting a calibration to labelled texts and scoring it ([`calibrate::fit_sentiment`], [`sentiment_fit::Metrics`]) |
//!
//! # Example: from a review row to a prompt and back
//!
//! ```
//! use steadytext_schema::{
//!     prompts::{PromptBuilder, ReviewInput},
//!     Customer, ProductReview, Rating, ReviewAnalysis, ReviewSentiment,
//! };
//! # use chrono::Utc;
//!
//! let customer = Customer::example();
//! let mut review = ProductReview {
//!     id: 3, customer_id: Some(customer.id), product_id: Some(103),
//!     rating: Some(Rating::new(1)?), title: Some("Very disappointed".into()),
//!     review_text: Some("Broke after one week. Reach me at john.doe@email.com".into()),
//!     verified_purchase: true, helpful_count: 0, ai_summary: None, sentiment: None,
//!     key_themes: None, review_aspects: None, created_at: Utc::now(),
//! };
//!
//! // 1. Prompts: PII-free, versioned.
//! let prompts = PromptBuilder::for_customer(&customer);
//! let p = prompts.review_sentiment(&ReviewInput::from_review(&review));
//! assert!(!p.text.contains("john.doe"));
//!
//! // 2. (The engine answers: a choice over ReviewSentiment::LABELS, a summary, themes.)
//! let analysis = ReviewAnalysis::new(
//!     ReviewSentiment::VeryNegative,
//!     "The product broke within a week.".into(),
//!     vec!["durability".into(), "warranty".into()],
//!     Some(4.2),
//! );
//!
//! // 3. Back into the row, plus the interaction the seed logs.
//! analysis.apply_to(&mut review);
//! let logged = analysis.interaction(&review);
//! assert_eq!(logged.sentiment_score, Some(-1.0));
//! assert!(analysis.human_review.needed);
//! # Ok::<(), steadytext_schema::SchemaError>(())
//! ```
//!
//! # Missing data
//!
//! Every rule the seed left to SQL NULL arithmetic is explicit here:
//!
//! - **Churn** ([`churn`]): no activity date → last interaction, else acquisition date, else
//!   the row's creation date, else inactive for the whole 90-day window; future dates count as
//!   today; no sentiment → neutral (0); no interactions → ratio over 1; no tickets → 0; no
//!   satisfaction scores → not low (reported as 3). NaN counts as missing. Always in `[0, 1]`.
//! - **Status** ([`status`]): no tickets → 0 issues (never NULL); no sentiment data satisfies no
//!   sentiment comparison, so it is `normal` or (with more than 3 issues) `medium_risk`.
//! - **Averages** are `None` without data, and prompts say "unknown" / "no data" rather than
//!   printing 0 or nothing.
//!
//! # Seed defects fixed
//!
//! The seed (`customer-intelligence-tutorial.md`) has these defects; this crate's rules and the
//! database layer built on them avoid each.
//!
//! 1. **The dashboard drops quiet customers.** `customer_sentiment_dashboard` filters
//!    `WHERE ci.timestamp > NOW() - INTERVAL '90 days'` *after* `LEFT JOIN
//!    customer_interactions`, which turns the outer join into an inner one: customers with no
//!    recent interactions (the ones most likely to churn) vanish. [`CustomerSnapshot::from_records`]
//!    keeps every customer; the window belongs in the join condition.
//! 2. **Nobody is ever `loyal`.** `recent_issues` is LEFT JOINed, so a customer without recent
//!    tickets has `issue_count` NULL and `ri.issue_count = 0` is never true.
//!    [`customer_status`] takes a count that is 0 when there are no tickets.
//! 3. **Churn scores are never stored.** `calculate_churn_risk` ends with
//!    `UPDATE customers ... FROM risk_scoring rs`, but `risk_scoring` is a CTE of the previous
//!    `RETURN QUERY` statement and does not exist there: the function fails. Compute the risks
//!    once ([`churn_risk`]) and both return and store them.
//! 4. **Churn's return type does not match.** The score expression mixes `numeric` with
//!    `support_tickets::FLOAT`, so it is `double precision`, while the function declares
//!    `risk_score DECIMAL(3, 2)`; PL/pgSQL's `RETURN QUERY` rejects the mismatch. Here the
//!    score is an `f64`, rounded to 2 decimals explicitly where stored
//!    ([`ChurnRisk::rounded_score`]).
//! 5. **Never-active customers score 0.** `last_active_date` is never set anywhere in the seed,
//!    so `NOW() - last_active_date` is NULL, and PostgreSQL's `GREATEST(0.0, NULL)` is `0.0`:
//!    every customer's risk is 0 and the function returns no rows. See the missing-data rules
//!    above ([`churn::effective_last_active`]).
//! 6. **Join fan-out skews averages.** `calculate_churn_risk` joins interactions × tickets, the
//!    segment analysis customers × interactions × reviews, and the executive summary customers ×
//!    reviews × open tickets, each in one `GROUP BY`: `COUNT(DISTINCT ...)` hides it for counts,
//!    but every `AVG` is weighted by the other tables' row counts (a customer with three reviews
//!    counts three times in the segment's average lifetime value). Each aggregate here is over
//!    its own table ([`ChurnInputs::from_records`], [`SegmentStats::from_records`],
//!    [`ExecutiveStats::from_records`]).
//! 7. **Comma-splitting themes.** `string_to_array(steadytext_generate(...), ', ')` breaks on
//!    any other separator, newline, numbering or trailing sentence the model writes, and yields
//!    empty or duplicate themes. Themes are phrases quoted from the review, generated as constrained JSON
//!    ([`aspects`]) and normalised ([`normalize_themes`]).
//! 8. **The JSON "schemas" constrain nothing.** Both `steadytext_generate_json` calls pass a
//!    bare map of property names (`{"urgency": {...}, ...}`) instead of
//!    `{"type": "object", "properties": {...}, "required": [...]}`, so any JSON validates, and
//!    "3 strategies" is not enforced. [`SegmentStrategies`] derives a closed schema (all keys
//!    required, no others, exactly 3 strategies); a ticket's fields are no longer generated
//!    freely at all ([`ticket_triage`]).
//! 9. **Recommendations put names in prompts, and crash.** The profile string starts
//!    `Customer: <first_name> <last_name>`, against the seed's own "anonymize data in AI prompts"
//!    advice ([`prompts`] cannot take a name). And `array_agg(DISTINCT pr.key_themes)`
//!    aggregates arrays into a 2-D array, which errors ("cannot accumulate null arrays") for a
//!    customer without reviews (the LEFT JOIN yields a NULL array) and ("... different
//!    dimensionality") when two reviews have different numbers of themes
//!    ([`CustomerProfile::from_records`] flattens them).
//! 10. **Unstable recommendation order.** `ORDER BY priority LIMIT n` with product and retention
//!     both at priority 1 is not deterministic; [`rank_recommendations`] breaks ties by type.
//! 11. **No sentiment reads as "negative".** The segment prompt's `CASE` falls through to
//!     `ELSE 'negative'` when `avg_sentiment` is NULL; [`SentimentBucket::from_average`] returns
//!     `None` and the prompt says "no data".
//! 12. **NULLs print as nothing.** `format('%s', NULL)` prints an empty string, so prompts read
//!     `(rating /5)`, `Sentiment: ,` or `$ avg LTV`. Builders omit or name unknown values.
//! 13. **Segment themes are computed and dropped.** `behavior_analysis.common_themes` is never
//!     used; `common_behaviors` gets the interaction types (including a NULL from the LEFT JOIN).
//!     [`SegmentStats`] carries both, without NULLs, and the profile prompt uses the themes.
//! 14. **Channel `'ticket'`** is logged by the ticket analysis but missing from the column's
//!     documented set; [`Channel`] includes it.
//!
//! # Precision
//!
//! Money and scores are `f64` (see [`records`]): exact at the seed's `DECIMAL` scales after
//! rounding, which prompts and stored scores do explicitly.

pub mod analysis;
pub mod analysis_types;
pub mod aspects;
pub mod batch;
pub mod calibrate;
pub mod churn;
pub mod enums;
pub mod error;
pub mod executive;
pub mod faithfulness;
pub mod human_review;
pub mod keywords;
pub mod playbooks;
pub mod privacy;
pub mod progress;
pub mod prompts;
pub mod quote;
pub mod recommendations;
pub mod records;
pub mod resolutions;
pub mod scenario;
pub mod segments;
pub mod sentiment;
pub mod sentiment_fit;
pub mod sentiment_model;
pub mod status;
pub mod taxonomy;
pub mod themes;
pub mod ticket_triage;
mod util;

pub use analysis::{first_sentence, model_error_summary, AnalysisError, AnalysisResult, Analyst};
pub use analysis_types::{
    ticket_priority, AnalyzedTicket, CustomerInsight, CustomerRecommendations, ExecutiveSummary,
    MarketingStrategy, RetentionStrategy, ReviewAnalysis, SegmentProfile, SegmentStrategies,
    TicketAnalysis,
};
pub use churn::{churn_risk, ChurnFactors, ChurnInputs, ChurnRisk};
pub use enums::{Channel, CustomerStatus, InteractionType, RecommendationType, Urgency};
pub use error::SchemaError;
pub use executive::ExecutiveStats;
pub use human_review::{HumanReview, HumanReviewReason};
pub use playbooks::{ChosenPlay, Playbooks};
pub use privacy::{redact, NameDirectory, Redactor};
pub use prompts::{Prompt, PromptBuilder, PromptKind, PROMPT_VERSION};
pub use recommendations::{
    rank_recommendations, recommendation_priority, CustomerProfile, ProductRating, ProductScope,
    Recommendation, RecommendationDraft, RecommendationInputs,
};
pub use records::{
    Customer, CustomerInteraction, CustomerSegmentAnalysis, NewInteraction, ProductReview, Rating,
    SupportTicket,
};
pub use resolutions::{ResolutionEntry, ResolutionPlaybook, ResolutionPlaybookError};
pub use segments::SegmentStats;
pub use sentiment::{Polarity, ReviewSentiment, SentimentBucket, TicketSentiment};
pub use sentiment_model::SentimentModel;
pub use status::{customer_status, CustomerSnapshot};
pub use themes::normalize_themes;
pub use ticket_triage::TriageRules;
