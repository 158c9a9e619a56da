//! Prompt builders: versioned, deterministic, and free of personal data.
//!
//! Every builder is a method of [`PromptBuilder`] and returns a [`Prompt`]: the text, its
//! [`PromptKind`] and the [`PROMPT_VERSION`] of the template set. Analyses store the version
//! with their results (so rows made by older prompts can be found and re-run) and should keep it
//! in anything they key on besides the engine's own cache (whose key already covers the text).
//!
//! **Privacy.** No builder takes a name, an email, a phone number, a `customers.id`, a
//! `customer_id` UUID or a ticket number: the inputs are PII-free by construction
//! ([`ReviewInput`], [`TicketInput`], [`ChurnRisk`], [`SegmentStats`], [`CustomerProfile`],
//! [`CustomerSnapshot`], [`ExecutiveStats`]). Every free-text field (review text and title,
//! ticket subject, description and category, segment names, themes) goes through the builder's
//! [`Redactor`]; use [`PromptBuilder::for_customer`] to also scrub the customer's own names.
//!
//! **Determinism.** Numbers are rounded explicitly (scores 2 decimals, money 2, ratings 1),
//! whitespace in free text is collapsed to single spaces (which also keeps user text from
//! forging new prompt lines), and free text is cut at [`MAX_FREE_TEXT_CHARS`] characters
//! *before* redaction, between words and never inside a number or an email address (so a cut
//! can never leave half a phone number behind, and what is redacted is what the model sees).
//!
//! **Changing a template** changes its snapshot test in this module; bump [`PROMPT_VERSION`]
//! in the same commit.
//!
//! ```
//! use steadytext_schema::{prompts::{PromptBuilder, ReviewInput, PROMPT_VERSION}, Customer, Rating};
//!
//! let customer = Customer::example();
//! let prompts = PromptBuilder::for_customer(&customer);
//! let p = prompts.review_sentiment(&ReviewInput {
//!     rating: Some(Rating::new(5).unwrap()),
//!     title: Some("Excellent!"),
//!     text: "Loved it. Call me at 555-123-4567. - John",
//! });
//! assert_eq!(p.version, PROMPT_VERSION);
//! assert!(p.text.contains("(rating 5/5)"));
//! assert!(p.text.ends_with("Review: Loved it. Call me at [phone]. - [name]"));
//! ```

use serde::Serialize;

use crate::churn::{ChurnRisk, CHURN_WINDOW_DAYS, HIGH_CHURN_RISK};
use crate::enums::{closed_set, RecommendationType};
use crate::executive::ExecutiveStats;
use crate::playbooks::ChosenPlay;
use crate::privacy::Redactor;
use crate::recommendations::CustomerProfile;
use crate::records::{Customer, ProductReview, Rating, SupportTicket};
use crate::segments::SegmentStats;
use crate::sentiment::{ReviewSentiment, SentimentBucket};
use crate::status::{CustomerSnapshot, ISSUE_WINDOW_DAYS, SENTIMENT_WINDOW_DAYS};
use crate::util::{self, count, fixed};

/// The version of the whole prompt set. Bump it whenever any template's text changes.
pub const PROMPT_VERSION: &str = "ci-prompts/3";

/// Free text longer than this many characters is cut (before redaction, between words).
pub const MAX_FREE_TEXT_CHARS: usize = 2000;
/// Short free-text fields (titles, subjects, categories, segment names, themes) are cut here.
pub const MAX_SHORT_TEXT_CHARS: usize = 200;
/// At most this many themes or interests are listed in a prompt.
pub const MAX_LISTED_THEMES: usize = 5;

closed_set! {
    /// Which prompt a [`Prompt`] is.
    pub enum PromptKind ("prompt kind") {
        /// Five-way review sentiment; answered by a choice over [`ReviewSentiment::LABELS`].
        ReviewSentiment => "review_sentiment",
        /// One-sentence abstractive review summary; free text. [`crate::Analyst::review`] does
        /// not use it: its summary is quoted ([`crate::quote::summary_sentence`]).
        ReviewSummary => "review_summary",
        /// Review themes quoted from the review with a polarity each; JSON
        /// [`crate::aspects::QuotedThemes`] under [`crate::aspects::quoted_themes_schema`].
        ReviewThemes => "review_themes",
        /// The category of one quoted theme; answered by a choice over the taxonomy's labels.
        ReviewCategory => "review_category",
        /// A ticket's urgency; answered by a choice over [`crate::Urgency::LABELS`].
        TicketUrgency => "ticket_urgency",
        /// The customer's mood in a ticket; a choice over [`crate::TicketSentiment::LABELS`].
        TicketSentiment => "ticket_sentiment",
        /// A ticket's category; a choice over a taxonomy's labels (when no keyword rule applies).
        TicketCategory => "ticket_category",
        /// A ticket's root cause; JSON whose `root_cause` is an `enum` of phrases quoted from
        /// the ticket ([`crate::quote::quotable_spans`]).
        TicketRootCause => "ticket_root_cause",
        /// Retention strategy for an at-risk customer; free text.
        RetentionStrategy => "retention_strategy",
        /// Segment profile; free text.
        SegmentProfile => "segment_profile",
        /// Three marketing strategies; JSON [`crate::SegmentStrategies`].
        SegmentStrategies => "segment_strategies",
        /// One recommendation; JSON [`crate::RecommendationDraft`].
        Recommendation => "recommendation",
        /// Dashboard insight for one customer; free text.
        CustomerInsight => "customer_insight",
        /// Executive summary; free text.
        ExecutiveSummary => "executive_summary",
        /// Which of several tied playbook plays fits the facts; answered by a choice over the
        /// plays' titles ([`crate::playbooks`]).
        PlayChoice => "play_choice",
    }
}

impl PromptKind {
    /// A token budget for the answer: the seed's `max_tokens` for free text, room for the JSON
    /// syntax for structured answers, `None` for the choices (nothing is generated freely).
    pub fn max_tokens(self) -> Option<u32> {
        Some(match self {
            Self::ReviewSentiment
            | Self::ReviewCategory
            | Self::PlayChoice
            | Self::TicketUrgency
            | Self::TicketSentiment
            | Self::TicketCategory => return None,
            Self::ReviewSummary => 50,
            Self::ReviewThemes => 64,
            Self::TicketRootCause => 64,
            Self::RetentionStrategy => 150,
            Self::SegmentProfile => 200,
            Self::SegmentStrategies => 384,
            Self::Recommendation => 160,
            Self::CustomerInsight => 100,
            Self::ExecutiveSummary => 200,
        })
    }
}

/// A built prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prompt {
    /// Which prompt.
    pub kind: PromptKind,
    /// [`PROMPT_VERSION`].
    pub version: &'static str,
    /// The text to send.
    pub text: String,
}

impl Prompt {
    fn new(kind: PromptKind, text: String) -> Self {
        Self {
            kind,
            version: PROMPT_VERSION,
            text,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The facts the prompt states (everything after its first line, the instruction): what a
    /// free-text answer must stay within ([`crate::faithfulness`]), and what is shown when it does
    /// not.
    pub fn facts(&self) -> &str {
        self.text
            .split_once('\n')
            .map_or("", |(_, facts)| facts)
            .trim()
    }

    /// [`PromptKind::max_tokens`].
    pub fn max_tokens(&self) -> Option<u32> {
        self.kind.max_tokens()
    }
}

impl std::fmt::Display for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The parts of a review a prompt may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReviewInput<'a> {
    /// The star rating, when known (the seed puts it in the sentiment prompt).
    pub rating: Option<Rating>,
    /// The review's title.
    pub title: Option<&'a str>,
    /// The review's text.
    pub text: &'a str,
}

impl<'a> ReviewInput<'a> {
    /// From a stored review (no text reads as empty).
    pub fn from_review(review: &'a ProductReview) -> Self {
        Self {
            rating: review.rating,
            title: review.title.as_deref(),
            text: review.review_text.as_deref().unwrap_or(""),
        }
    }
}

/// The parts of a ticket a prompt may see (not its number, not its customer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TicketInput<'a> {
    /// The ticket's category.
    pub category: Option<&'a str>,
    /// The ticket's subject.
    pub subject: Option<&'a str>,
    /// The customer's description.
    pub description: Option<&'a str>,
}

impl<'a> TicketInput<'a> {
    /// From a stored ticket.
    pub fn from_ticket(ticket: &'a SupportTicket) -> Self {
        Self {
            category: ticket.category.as_deref(),
            subject: ticket.subject.as_deref(),
            description: ticket.description.as_deref(),
        }
    }
}

fn has_text(s: Option<&str>) -> bool {
    s.is_some_and(|s| !s.trim().is_empty())
}

/// Builds every prompt, redacting free text on the way in.
#[derive(Debug, Clone, Default)]
pub struct PromptBuilder {
    redactor: Redactor,
}

impl PromptBuilder {
    /// Builder with the generic [`Redactor`] (emails, card and phone numbers).
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder that also scrubs this customer's names and email from free text. Use it for
    /// anything the customer wrote.
    pub fn for_customer(customer: &Customer) -> Self {
        Self::with_redactor(Redactor::for_customer(customer))
    }

    /// Builder with a given redactor.
    pub fn with_redactor(redactor: Redactor) -> Self {
        Self { redactor }
    }

    /// Free text for a prompt: whitespace tidied (line breaks kept for the redactor's
    /// signature cues), cut to `max` characters at a boundary that splits no number or email,
    /// redacted, whitespace collapsed; a cut is marked `…`. Redaction can lengthen the text
    /// (`Jo` becomes `[name]`): it is then cut again, between words.
    fn text(&self, s: &str, max: usize) -> String {
        let tidy = util::tidy_whitespace(s);
        let (head, cut) = match util::cut_for_redaction(&tidy, max) {
            None => (tidy.as_str(), false),
            Some(head) => (head, head.len() < tidy.len()),
        };
        let clean = util::collapse_whitespace(&self.redactor.redact(head));
        match util::cut_for_redaction(&clean, max) {
            None if cut => format!("{clean}…"),
            None => clean,
            Some(head) if head.len() < clean.len() => format!("{head}…"),
            Some(_) => util::truncate_chars(&clean, max),
        }
    }

    /// Free text as it may appear in a prompt: whitespace collapsed, PII redacted, truncated.
    pub fn redacted_text(&self, s: &str) -> String {
        self.long(s)
    }

    fn long(&self, s: &str) -> String {
        let t = self.text(s, MAX_FREE_TEXT_CHARS);
        if t.is_empty() {
            "(no text)".to_string()
        } else {
            t
        }
    }

    fn short(&self, s: &str) -> Option<String> {
        Some(self.text(s, MAX_SHORT_TEXT_CHARS)).filter(|t| !t.is_empty())
    }

    fn list(&self, items: &[String]) -> Option<String> {
        let items: Vec<String> = items
            .iter()
            .filter_map(|i| self.short(i))
            .take(MAX_LISTED_THEMES)
            .collect();
        (!items.is_empty()).then(|| items.join(", "))
    }

    fn review_body(&self, review: &ReviewInput<'_>) -> String {
        let title = review
            .title
            .and_then(|t| self.short(t))
            .map(|t| format!("Title: {t}\n"))
            .unwrap_or_default();
        format!("{title}Review: {}", self.long(review.text))
    }

    /// Five-way sentiment of a review, answered by a choice over [`ReviewSentiment::LABELS`].
    /// The rating is included when known, as in the seed.
    pub fn review_sentiment(&self, review: &ReviewInput<'_>) -> Prompt {
        let rating = review
            .rating
            .map(|r| format!(" (rating {r}/5)"))
            .unwrap_or_default();
        Prompt::new(
            PromptKind::ReviewSentiment,
            format!(
                "Classify the sentiment of this customer review{rating}. Answer with one of: {}.\n{}",
                ReviewSentiment::LABELS.join(", "),
                self.review_body(review)
            ),
        )
    }

    /// One-sentence summary of a review.
    pub fn review_summary(&self, review: &ReviewInput<'_>) -> Prompt {
        Prompt::new(
            PromptKind::ReviewSummary,
            format!(
                "Summarize this customer review in one sentence.\n{}",
                self.review_body(review)
            ),
        )
    }

    /// Up to three themes of a review, each quoted from it, generated as [`crate::aspects::QuotedThemes`] JSON (the phrases constrained to the
    /// review's [`quotable_spans`](crate::quote::quotable_spans)).
    pub fn review_themes(&self, review: &ReviewInput<'_>) -> Prompt {
        Prompt::new(
            PromptKind::ReviewThemes,
            format!(
                "Quote up to 3 key phrases from this customer review that say what the customer liked or disliked.\n{}",
                self.review_body(review)
            ),
        )
    }

    /// The category of `phrase`, quoted from `sentence` of a customer review, answered by a
    /// choice over `labels` (a [`crate::taxonomy::Taxonomy`]'s). The sentence, not the whole
    /// review: the topic is the phrase's, and the prompt stays short.
    pub fn review_category(&self, sentence: &str, phrase: &str, labels: &[&str]) -> Prompt {
        let phrase = self.short(phrase).unwrap_or_default();
        Prompt::new(
            PromptKind::ReviewCategory,
            format!(
                "Which topic is the phrase \"{phrase}\" of this sentence from a customer review about? Answer with one of: {}.\nSentence: {}\nTopic:",
                labels.join(", "),
                self.long(sentence)
            ),
        )
    }

    /// The review's title and text as prompts show them (redacted, cut): what quotes are
    /// taken from.
    pub fn review_quotable(&self, review: &ReviewInput<'_>) -> (Option<String>, Option<String>) {
        let title = review.title.and_then(|t| self.short(t));
        let text = Some(self.text(review.text, MAX_FREE_TEXT_CHARS)).filter(|t| !t.is_empty());
        (title, text)
    }

    /// The ticket as the model sees it: its category, subject and description, each redacted
    /// (a line per field present; the description always, `(no text)` when empty).
    fn ticket_body(&self, ticket: &TicketInput<'_>) -> String {
        let mut text = String::new();
        if let Some(c) = ticket.category.and_then(|c| self.short(c)) {
            text.push_str(&format!("Category: {c}\n"));
        }
        if let Some(s) = ticket.subject.and_then(|s| self.short(s)) {
            text.push_str(&format!("Subject: {s}\n"));
        }
        text.push_str(&format!(
            "Description: {}",
            self.long(ticket.description.unwrap_or(""))
        ));
        text
    }

    /// A ticket's urgency, answered by a choice over [`crate::Urgency::LABELS`] (each label
    /// defined in the instruction).
    pub fn ticket_urgency(&self, ticket: &TicketInput<'_>) -> Prompt {
        Prompt::new(
            PromptKind::TicketUrgency,
            format!(
                "How urgent is this support ticket? low: a question or a small issue that can wait; \
                 medium: a problem the customer can work around; high: the customer cannot use the \
                 product, the service or their account, or was charged wrongly; critical: a safety, \
                 legal or security risk. Answer with one of: low, medium, high, critical.\n{}",
                self.ticket_body(ticket)
            ),
        )
    }

    /// The customer's mood in a ticket, answered by a choice over
    /// [`crate::TicketSentiment::LABELS`].
    pub fn ticket_sentiment(&self, ticket: &TicketInput<'_>) -> Prompt {
        Prompt::new(
            PromptKind::TicketSentiment,
            format!(
                "What is the customer's mood in this support ticket? Answer with one of: angry, \
                 frustrated, neutral, satisfied, happy.\n{}",
                self.ticket_body(ticket)
            ),
        )
    }

    /// A ticket's category, answered by a choice over `labels` (a taxonomy's labels).
    pub fn ticket_category(&self, ticket: &TicketInput<'_>, labels: &[&str]) -> Prompt {
        Prompt::new(
            PromptKind::TicketCategory,
            format!(
                "Which category does this support ticket belong to? Answer with one of: {}.\n{}",
                labels.join(", "),
                self.ticket_body(ticket)
            ),
        )
    }

    /// A ticket's root cause, quoted: answered as JSON whose `root_cause` is one of the phrases
    /// of [`ticket_quote_source`](Self::ticket_quote_source).
    pub fn ticket_root_cause(&self, ticket: &TicketInput<'_>) -> Prompt {
        let field = if has_text(ticket.description) {
            "description"
        } else {
            "subject"
        };
        Prompt::new(
            PromptKind::TicketRootCause,
            format!(
                "Quote the words of this support ticket's {field} that state the cause of the \
                 customer's problem.\n{}",
                self.ticket_body(ticket)
            ),
        )
    }

    /// The text a ticket's root cause is quoted from, as the prompt shows it (redacted): the
    /// description, or the subject when the description is empty; `None` when both are. The
    /// second value is the same field's original text, which a quote is verified against.
    pub fn ticket_quote_source<'t>(&self, ticket: &TicketInput<'t>) -> Option<(String, &'t str)> {
        [ticket.description, ticket.subject]
            .into_iter()
            .flatten()
            .find(|t| !t.trim().is_empty())
            .map(|t| (self.text(t, MAX_FREE_TEXT_CHARS), t))
    }

    /// A retention strategy for a customer at risk, from the score, its factors and the
    /// retention plays chosen for them ([`crate::playbooks`]): the model explains the actions;
    /// the facts (what is shown when its text fails the check) state the risk and the actions.
    pub fn retention_strategy(&self, risk: &ChurnRisk, actions: &[ChosenPlay]) -> Prompt {
        let f = &risk.factors;
        Prompt::new(
            PromptKind::RetentionStrategy,
            format!(
                "Write a short retention strategy for this customer that explains the recommended actions.\n\
                 Churn risk score {} (0 = safe, 1 = about to leave). \
                 Risk factors: {} inactive; average sentiment {} (from -1 to 1); {} in the last {CHURN_WINDOW_DAYS} days; \
                 average support satisfaction {} out of 5; lifetime value ${}.{}",
                fixed(risk.score, 2),
                count(f.days_inactive.max(0) as u64, "day", "days"),
                fixed(f.sentiment_score, 2),
                count(f.support_tickets, "support ticket", "support tickets"),
                fixed(f.satisfaction, 1),
                fixed(f.lifetime_value, 2),
                actions_line(actions),
            ),
        )
    }

    /// The question the model answers by a choice between tied plays' titles: which fits
    /// `facts` (a facts line built by this builder or from numbers, never free text that has
    /// not been redacted) best.
    pub fn play_choice(&self, area: &str, facts: &str) -> Prompt {
        Prompt::new(
            PromptKind::PlayChoice,
            format!(
                "Which {area} action fits these facts best? Answer with the action's name.\n{}",
                util::collapse_whitespace(facts)
            ),
        )
    }

    /// The segment's facts line (redacted), as the segment prompts state it.
    pub fn segment_facts_line(&self, stats: &SegmentStats) -> String {
        format!(
            "Segment \"{}\". {}",
            self.segment_name(stats),
            self.segment_facts(stats, true)
        )
    }

    /// Free text (a segment name, themes) as a prompt may show it: collapsed, redacted, cut to
    /// [`MAX_SHORT_TEXT_CHARS`]; empty stays empty.
    pub fn redacted_short(&self, s: &str) -> String {
        self.short(s).unwrap_or_default()
    }

    fn segment_facts(&self, stats: &SegmentStats, detailed: bool) -> String {
        let ltv = stats
            .avg_lifetime_value
            .map_or("unknown".to_string(), |v| format!("${}", fixed(v, 2)));
        let sentiment = stats.sentiment_bucket().map_or("no data", |b| b.phrase());
        let mut facts = format!(
            "Customers: {}. Average lifetime value: {ltv}. Sentiment: {sentiment}.",
            stats.customer_count
        );
        if detailed {
            match (stats.review_count, stats.avg_rating) {
                (0, _) => facts.push_str(" Reviews: none."),
                (n, Some(r)) => facts.push_str(&format!(
                    " Reviews: {n}, average rating {} out of 5.",
                    fixed(r, 1)
                )),
                (n, None) => facts.push_str(&format!(" Reviews: {n}, unrated.")),
            }
            if let Some(themes) = self.list(&stats.common_themes) {
                facts.push_str(&format!(" Common review themes: {themes}."));
            }
            if !stats.topics.is_empty() {
                let taxonomy = crate::taxonomy::Taxonomy::default();
                let topics: Vec<String> = stats
                    .topics
                    .iter()
                    .take(MAX_LISTED_THEMES)
                    .map(|t| t.phrase(&taxonomy))
                    .collect();
                facts.push_str(&format!(" Review topics: {}.", topics.join("; ")));
            }
            if !stats.interaction_types.is_empty() {
                let types: Vec<&str> = stats.interaction_types.iter().map(|t| t.as_str()).collect();
                facts.push_str(&format!(" Interaction types: {}.", types.join(", ")));
            }
        }
        facts
    }

    fn segment_name(&self, stats: &SegmentStats) -> String {
        self.short(&stats.segment_name)
            .unwrap_or_else(|| "unnamed".to_string())
    }

    /// A profile of a customer segment (the seed's: name, customer count, average lifetime
    /// value, sentiment bucket; plus ratings, common themes and interaction types).
    pub fn segment_profile(&self, stats: &SegmentStats) -> Prompt {
        Prompt::new(
            PromptKind::SegmentProfile,
            format!(
                "Create a detailed profile of the \"{}\" customer segment.\n{}",
                self.segment_name(stats),
                self.segment_facts(stats, true)
            ),
        )
    }

    /// Exactly three marketing strategies for a segment, generated as
    /// [`crate::SegmentStrategies`] JSON.
    pub fn segment_strategies(&self, stats: &SegmentStats) -> Prompt {
        Prompt::new(
            PromptKind::SegmentStrategies,
            format!(
                "Suggest exactly 3 marketing strategies for the \"{}\" customer segment, each with a name, \
                 a description and its expected impact.\n{}",
                self.segment_name(stats),
                self.segment_facts(stats, false)
            ),
        )
    }

    /// One recommendation of `kind` for a customer, generated as
    /// [`crate::RecommendationDraft`] JSON. The profile holds no name, email or id.
    pub fn recommendation(&self, kind: RecommendationType, profile: &CustomerProfile) -> Prompt {
        let instruction = match kind {
            RecommendationType::Product => {
                "Suggest one product for this customer: a short title, and a description of why it is a good fit."
            }
            RecommendationType::Retention => {
                "Create one retention offer for this customer: a short title, and a description of its benefits to them."
            }
            RecommendationType::Upsell => {
                "Suggest one upsell opportunity for this customer: a short title, and a pitch."
            }
        };
        let segment = profile
            .segment
            .as_deref()
            .and_then(|s| self.short(s))
            .unwrap_or_else(|| "unknown".to_string());
        let risk = util::finite(profile.churn_risk).map_or("unknown".to_string(), |r| fixed(r, 2));
        let interests = self
            .list(&profile.interests)
            .unwrap_or_else(|| "unknown".to_string());
        let mut text = format!(
            "{instruction}\nCustomer profile: segment {segment}; lifetime value ${}; churn risk {risk}; interests: {interests}",
            fixed(profile.lifetime_value, 2),
        );
        if let Some(r) = util::finite(profile.avg_rating_given) {
            text.push_str(&format!("; average rating given {} out of 5", fixed(r, 1)));
        }
        text.push('.');
        Prompt::new(PromptKind::Recommendation, text)
    }

    /// The dashboard's insight for one customer, from their snapshot.
    pub fn customer_insight(&self, snapshot: &CustomerSnapshot) -> Prompt {
        let mut text = String::from(
            "Analyze this customer's behavior in two or three sentences and suggest one next step.\n",
        );
        if let Some(s) = snapshot.segment.as_deref().and_then(|s| self.short(s)) {
            text.push_str(&format!("Segment: {s}. "));
        }
        let interactions = count(snapshot.interaction_count, "interaction", "interactions");
        match util::finite(snapshot.avg_sentiment) {
            Some(s) => text.push_str(&format!(
                "Last {SENTIMENT_WINDOW_DAYS} days: average sentiment {} ({}; from -1 to 1) over {interactions}",
                fixed(s, 2),
                SentimentBucket::from_average(Some(s)).map_or("no data", |b| b.phrase())
            )),
            None => text.push_str(&format!(
                "Last {SENTIMENT_WINDOW_DAYS} days: {interactions}, no sentiment scores"
            )),
        }
        if !snapshot.interaction_types.is_empty() {
            let types: Vec<&str> = snapshot
                .interaction_types
                .iter()
                .map(|t| t.as_str())
                .collect();
            text.push_str(&format!(" ({})", types.join(", ")));
        }
        text.push_str(". ");
        match (
            snapshot.issue_count,
            util::finite(snapshot.avg_satisfaction),
        ) {
            (0, _) => text.push_str(&format!(
                "Last {ISSUE_WINDOW_DAYS} days: no support tickets. "
            )),
            (n, sat) => {
                text.push_str(&format!(
                    "Last {ISSUE_WINDOW_DAYS} days: {}",
                    count(n, "support ticket", "support tickets")
                ));
                if let Some(s) = sat {
                    text.push_str(&format!(", average satisfaction {} out of 5", fixed(s, 1)));
                }
                text.push_str(". ");
            }
        }
        text.push_str(&format!("Status: {}.", snapshot.status.phrase()));
        Prompt::new(PromptKind::CustomerInsight, text)
    }

    /// The executive summary, from company-wide numbers and the company-wide plays chosen for
    /// them ([`crate::playbooks`]); the facts state both.
    pub fn executive_summary(&self, stats: &ExecutiveStats, actions: &[ChosenPlay]) -> Prompt {
        let ltv = stats
            .avg_lifetime_value
            .map_or("unknown".to_string(), |v| format!("${}", fixed(v, 2)));
        let reviews = match (stats.total_reviews, stats.avg_rating) {
            (0, _) => "No reviews.".to_string(),
            (n, Some(r)) => format!(
                "{}, average rating {} out of 5.",
                count(n, "review", "reviews"),
                fixed(r, 1)
            ),
            (n, None) => format!("{}, unrated.", count(n, "review", "reviews")),
        };
        Prompt::new(
            PromptKind::ExecutiveSummary,
            format!(
                "Write a short executive summary of customer health: the main risk, and how the recommended actions address it.\n\
                 {}, {} at high churn risk (score above {}). Average lifetime value: {ltv}. {reviews} {}.{}",
                count(stats.total_customers, "customer", "customers"),
                stats.high_risk_customers,
                fixed(HIGH_CHURN_RISK, 1),
                count(stats.open_tickets, "open support ticket", "open support tickets"),
                actions_line(actions),
            ),
        )
    }
}

/// `"\nRecommended actions: Title: action. Title: action."`, or nothing without actions.
fn actions_line(actions: &[ChosenPlay]) -> String {
    if actions.is_empty() {
        return String::new();
    }
    let items: Vec<String> = actions
        .iter()
        .map(|a| format!("{}: {}", a.title, a.action))
        .collect();
    format!("\nRecommended actions: {}", items.join(" "))
}

#[cfg(test)]
mod tests;
