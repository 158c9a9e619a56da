//! The seed's analyses over an [`Engine`]: every call deterministic, cached by the engine, and
//! built from the versioned, PII-free prompts in [`crate::prompts`].
//!
//! ```no_run
//! # async fn demo(engine: steadytext_core::Engine) -> Result<(), steadytext_schema::AnalysisError> {
//! use steadytext_schema::{prompts::ReviewInput, Analyst, Rating};
//! let analyst = Analyst::new(&engine);
//! let review = ReviewInput { rating: Some(Rating::new(1)?), title: None, text: "Broke after a week." };
//! let a = analyst.review(&review).await?;
//! println!("{} {:?} {:?} review: {}", a.sentiment, a.summary, a.themes, a.human_review.needed);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use steadytext_core::{Engine, GenerateOptions};

use crate::analysis_types::{
    CustomerInsight, CustomerRecommendations, ExecutiveSummary, RetentionStrategy, ReviewAnalysis,
    SegmentProfile, SegmentStrategies, TicketAnalysis,
};
use crate::churn::ChurnRisk;
use crate::enums::{RecommendationType, Urgency};
use crate::error::SchemaError;
use crate::executive::ExecutiveStats;
use crate::faithfulness::{self, Grounded};
use crate::playbook::ResolutionPlaybook;
use crate::prompts::{Prompt, PromptBuilder, ReviewInput, TicketInput};
use crate::quote::{is_quoted, quotable_spans, MAX_QUOTE_CANDIDATES};
use crate::recommendations::{
    rank_recommendations, CustomerProfile, Recommendation, RecommendationDraft,
};
use crate::segments::SegmentStats;
use crate::sentiment::{ReviewSentiment, TicketSentiment};
use crate::sentiment_model::SentimentModel;
use crate::status::CustomerSnapshot;
use crate::taxonomy::Taxonomy;
use crate::themes::ReviewThemes;
use crate::ticket_triage::{self, TriageRules};

/// What can go wrong in an analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The engine failed (see [`steadytext_core::Error`]).
    #[error(transparent)]
    Model(#[from] steadytext_core::Error),
    /// A model output broke a domain rule (should not happen: outputs are constrained).
    #[error(transparent)]
    Domain(#[from] SchemaError),
}

impl AnalysisError {
    /// The error without any text that came from a prompt or from the model's output: what
    /// may be stored where prompts may not (a job queue's `last_error`, a dead-letter table,
    /// logs). The `Display` form keeps the details for the caller's own eyes.
    ///
    /// ```
    /// use steadytext_schema::AnalysisError;
    ///
    /// let e = AnalysisError::Model(steadytext_core::Error::Truncated {
    ///     partial: "{\"summary\": \"Maria Garcia at 555-123".into(),
    ///     tokens: 64,
    /// });
    /// assert!(e.to_string().contains("Maria"));
    /// assert_eq!(
    ///     e.summary(),
    ///     "output truncated after 64 tokens before the constrained value was complete \
    ///      (36 characters of output withheld)"
    /// );
    /// ```
    pub fn summary(&self) -> String {
        match self {
            Self::Model(e) => model_error_summary(e),
            Self::Domain(e) => domain_error_summary(e),
        }
    }
}

/// [`steadytext_core::Error`] without prompt or output text (see [`AnalysisError::summary`]).
/// Variants whose fields can carry such text (outputs, partial outputs, server messages,
/// patterns and options built from the input) are summarised; the others cannot and keep
/// their message.
pub fn model_error_summary(e: &steadytext_core::Error) -> String {
    use steadytext_core::Error as E;
    let chars = |s: &str| s.chars().count();
    match e {
        E::Truncated { partial, tokens } => format!(
            "output truncated after {tokens} tokens before the constrained value was complete \
             ({} characters of output withheld)",
            chars(partial)
        ),
        E::ConstraintViolated { output, .. } => format!(
            "output violates the constraint (reason and {} characters of output withheld)",
            chars(output)
        ),
        E::Deserialize(_) => {
            "cannot deserialise the JSON output into the requested type (details withheld)".into()
        }
        E::HttpStatus { url, status, .. } => {
            format!("{url} answered HTTP {status} (message withheld)")
        }
        E::BadResponse { url, .. } => {
            format!("unexpected response from {url} (details withheld)")
        }
        E::InvalidRegex { .. } => "invalid regex (pattern withheld)".into(),
        E::DuplicateChoice { first, second, .. } => {
            format!("choice option appears twice (positions {first} and {second}; option withheld)")
        }
        E::Tokenizer(_) => "tokenizer error (details withheld)".into(),
        E::Template(_) => "chat template error (details withheld)".into(),
        E::InvalidSchema(_) => "invalid JSON schema (details withheld)".into(),
        E::ModelNotFound { .. }
        | E::ModelLoad { .. }
        | E::UnsupportedArchitecture { .. }
        | E::EmptyPrompt
        | E::ContextOverflow { .. }
        | E::InvalidMaxTokens { .. }
        | E::Inference(_)
        | E::CacheIo { .. }
        | E::CacheStore { .. }
        | E::TooFewChoices(_)
        | E::EmptyChoice { .. }
        | E::Unsupported(_)
        | E::ServerUnreachable { .. }
        | E::ModelNotServed { .. }
        | E::Timeout { .. } => e.to_string(),
        // A variant added later: nothing known about its fields, so nothing of them.
        _ => "model error (details withheld)".into(),
    }
}

/// [`SchemaError`] without the model's output (an unknown label is the model's text).
fn domain_error_summary(e: &SchemaError) -> String {
    match e {
        SchemaError::UnknownVariant { kind, expected, .. } => {
            format!("unknown {kind} (value withheld); expected one of: {expected}")
        }
        SchemaError::RatingOutOfRange(_) | SchemaError::WrongCount { .. } => e.to_string(),
    }
}

/// Shorthand.
pub type AnalysisResult<T> = std::result::Result<T, AnalysisError>;

/// Runs the analyses with one engine and one set of generation options.
#[derive(Debug, Clone)]
pub struct Analyst<'e> {
    engine: &'e Engine,
    base: GenerateOptions,
    prompts: PromptBuilder,
    sentiment: SentimentModel,
    taxonomy: Arc<Taxonomy>,
    playbook: Arc<ResolutionPlaybook>,
    triage: Arc<TriageRules>,
}

/// Keep the first sentence of a generated text (the model sometimes goes on).
pub fn first_sentence(text: &str) -> String {
    let text = text.trim();
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if matches!(c, '.' | '!' | '?') {
            let next = line[i + c.len_utf8()..].chars().next();
            if next.is_none_or(char::is_whitespace) {
                end = i + c.len_utf8();
                break;
            }
        }
    }
    line[..end].trim().to_string()
}

/// Repetition penalty of the analyses' free text (llama.cpp's default): pure greedy decoding
/// sends the small default model into repeated paragraphs.
pub const ANALYSIS_REPEAT_PENALTY: f32 = 1.1;

impl<'e> Analyst<'e> {
    /// An analyst with default options (cache on, default seed, repetition penalty
    /// [`ANALYSIS_REPEAT_PENALTY`]) and the calibrated sentiment model.
    pub fn new(engine: &'e Engine) -> Self {
        Self {
            engine,
            base: GenerateOptions::default().repeat_penalty(ANALYSIS_REPEAT_PENALTY),
            prompts: PromptBuilder::new(),
            sentiment: SentimentModel::default(),
            taxonomy: Arc::new(Taxonomy::default()),
            playbook: Arc::new(ResolutionPlaybook::default()),
            triage: Arc::new(TriageRules::default()),
        }
    }

    /// File tickets under this taxonomy (default [`Taxonomy::default`]).
    pub fn with_taxonomy(mut self, taxonomy: impl Into<Arc<Taxonomy>>) -> Self {
        self.taxonomy = taxonomy.into();
        self
    }

    /// Choose ticket resolutions from this playbook (default [`ResolutionPlaybook::default`]).
    /// Its categories should be the taxonomy's keys; a category without entries gets the
    /// playbook's catch-all.
    pub fn with_playbook(mut self, playbook: impl Into<Arc<ResolutionPlaybook>>) -> Self {
        self.playbook = playbook.into();
        self
    }

    /// Bound ticket urgency and sentiment by these rules (default [`TriageRules::default`]).
    pub fn with_triage_rules(mut self, rules: impl Into<Arc<TriageRules>>) -> Self {
        self.triage = rules.into();
        self
    }

    /// The taxonomy tickets are filed under.
    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    /// The playbook ticket resolutions come from.
    pub fn playbook(&self) -> &ResolutionPlaybook {
        &self.playbook
    }

    /// Use these options (seed, cache, repetition penalty — [`ANALYSIS_REPEAT_PENALTY`] when
    /// unset) for every call; `max_tokens` is set per analysis.
    pub fn with_options(mut self, mut base: GenerateOptions) -> Self {
        base.repeat_penalty.get_or_insert(ANALYSIS_REPEAT_PENALTY);
        self.base = base;
        self
    }

    /// Use this prompt builder (e.g. [`PromptBuilder::for_customer`] to redact a customer's own
    /// names from free text).
    pub fn with_prompts(mut self, prompts: PromptBuilder) -> Self {
        self.prompts = prompts;
        self
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.engine
    }

    fn opts(&self, prompt: &Prompt) -> GenerateOptions {
        let mut o = self.base.clone();
        if let Some(n) = prompt.max_tokens() {
            o.max_tokens = n as usize;
        }
        o
    }

    /// Free prose for `prompt`, shown only when it passes the faithfulness check against the
    /// prompt's facts ([`crate::faithfulness`]); else the facts, labelled as the fallback.
    async fn grounded_text(&self, prompt: Prompt) -> AnalysisResult<Grounded> {
        let g = self
            .engine
            .generate(prompt.as_str(), &self.opts(&prompt))
            .await?;
        Ok(faithfulness::ground(
            &g.text,
            prompt.facts(),
            prompt.as_str(),
        ))
    }

    /// Five-way sentiment of a review and the decision margin (nats) between the best and the
    /// second-best label (see [`SentimentModel`]).
    pub async fn review_sentiment(
        &self,
        review: &ReviewInput<'_>,
    ) -> AnalysisResult<(ReviewSentiment, f64)> {
        self.sentiment
            .classify(self.engine, &self.prompts, review, &self.base)
            .await
    }

    /// The seed's review analysis: sentiment (a choice over the five labels), a one-sentence
    /// summary and up to three themes (constrained JSON, not string splitting).
    pub async fn review(&self, review: &ReviewInput<'_>) -> AnalysisResult<ReviewAnalysis> {
        let (sentiment, margin) = self.review_sentiment(review).await?;
        let summary_prompt = self.prompts.review_summary(review);
        let mut summary_opts = self.opts(&summary_prompt);
        summary_opts.stop = vec!["\n".into()];
        let summary = self
            .engine
            .generate(summary_prompt.as_str(), &summary_opts)
            .await?
            .text;
        let themes_prompt = self.prompts.review_themes(review);
        let themes: ReviewThemes = self
            .engine
            .generate_typed(themes_prompt.as_str(), &self.opts(&themes_prompt))
            .await?;
        Ok(ReviewAnalysis::new(
            sentiment,
            first_sentence(&summary),
            themes.themes,
            Some(margin),
        ))
    }

    /// The seed's ticket analysis, grounded and closed-set (see [`crate::ticket_triage`] for
    /// every rule):
    ///
    /// 1. `category`: the taxonomy keyword rule, else a model choice over the taxonomy's labels;
    /// 2. `urgency`, `sentiment`: model choices over their labels, bounded by the triage rules;
    /// 3. `root_cause`: a phrase of the description (the subject when it is empty) chosen by
    ///    the model under a JSON Schema `enum` of the candidates, verified against the original;
    /// 4. `suggested_resolution`: the playbook entry for the category and root cause;
    /// 5. `follow_up_needed`, `tags`: rules.
    ///
    /// Every prompt is redacted ([`PromptBuilder`]); the ticket is the user turn's data.
    pub async fn ticket(&self, ticket: &TicketInput<'_>) -> AnalysisResult<TicketAnalysis> {
        let words = ticket_triage::ticket_words(ticket);
        let mut rules = Vec::new();

        let category = match ticket_triage::category_by_keywords(&self.taxonomy, ticket) {
            Some((c, how)) => {
                rules.push(format!("category: keyword rule ({how}) ⇒ {}", c.key));
                c
            }
            None => {
                let labels = self.taxonomy.labels();
                let prompt = self.prompts.ticket_category(ticket, &labels);
                let c = self
                    .engine
                    .choice(prompt.as_str(), &labels, &self.base)
                    .await?;
                rules.push(format!("category: model choice ⇒ {}", c.choice));
                &self.taxonomy.categories()[c.index]
            }
        };

        let prompt = self.prompts.ticket_urgency(ticket);
        let c = self
            .engine
            .choice(prompt.as_str(), Urgency::LABELS, &self.base)
            .await?;
        let urgency = self.triage.urgency(Urgency::ALL[c.index], &words);
        rules.extend(urgency.rules);

        let prompt = self.prompts.ticket_sentiment(ticket);
        let c = self
            .engine
            .choice(prompt.as_str(), TicketSentiment::LABELS, &self.base)
            .await?;
        let sentiment = self.triage.sentiment(TicketSentiment::ALL[c.index], &words);
        rules.extend(sentiment.rules);

        let root_cause = self
            .root_cause(ticket, &category.keywords, &words, &mut rules)
            .await?;

        let text = ticket_triage::ticket_text(ticket);
        let play = self.playbook.select(&category.key, &root_cause, &text);
        rules.push(play.rule());

        let follow_up = ticket_triage::follow_up(urgency.value, sentiment.value, &category.key);
        rules.extend(follow_up.rules);

        let analysis = TicketAnalysis {
            urgency: urgency.value,
            sentiment: sentiment.value,
            root_cause,
            suggested_resolution: play.entry.resolution.clone(),
            follow_up_needed: follow_up.value,
            tags: ticket_triage::ticket_tags(&self.taxonomy, &category.key, &words),
            category: category.key.clone(),
            rules,
        }
        .normalized();
        analysis.validate()?;
        Ok(analysis)
    }

    /// A ticket's root cause: one of [`ticket_triage::cause_candidates`] of the quoted field,
    /// chosen by the model under an `enum`, and verified to be a quote of the original text.
    async fn root_cause(
        &self,
        ticket: &TicketInput<'_>,
        category_keywords: &[String],
        words: &crate::keywords::Words,
        rules: &mut Vec<String>,
    ) -> AnalysisResult<String> {
        let Some((shown, original)) = self.prompts.ticket_quote_source(ticket) else {
            rules.push("root cause: the ticket has no text to quote".into());
            return Ok(String::new());
        };
        let mut keywords: Vec<&str> = category_keywords.iter().map(String::as_str).collect();
        keywords.extend(self.triage.matched_keywords(words));
        let candidates = ticket_triage::cause_candidates(
            quotable_spans(&shown, MAX_QUOTE_CANDIDATES),
            &keywords,
        );
        let quoted: Vec<&String> = candidates
            .iter()
            .filter(|c| is_quoted(c, original))
            .collect();
        let Some(first) = quoted.first() else {
            rules.push("root cause: the ticket has no phrase to quote".into());
            return Ok(String::new());
        };
        if quoted.len() == 1 {
            return Ok((*first).clone());
        }
        let prompt = self.prompts.ticket_root_cause(ticket);
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"root_cause": {"type": "string", "enum": quoted}},
            "required": ["root_cause"],
            "additionalProperties": false,
        });
        let value = self
            .engine
            .generate_json(prompt.as_str(), &schema, &self.opts(&prompt))
            .await?;
        match value["root_cause"].as_str() {
            Some(q) if is_quoted(q, original) => Ok(q.to_string()),
            _ => {
                rules.push("root cause: the model's answer is not a quote; first candidate".into());
                Ok((*first).clone())
            }
        }
    }

    /// A retention strategy for a customer whose risk is reportable (> 0.3, as the seed);
    /// `None` below that.
    pub async fn retention_strategy(
        &self,
        customer_id: i32,
        risk: &ChurnRisk,
    ) -> AnalysisResult<Option<RetentionStrategy>> {
        if !risk.is_reportable() {
            return Ok(None);
        }
        let text = self
            .grounded_text(self.prompts.retention_strategy(risk))
            .await?;
        Ok(Some(RetentionStrategy::new(
            customer_id,
            risk.clone(),
            text,
        )))
    }

    /// A segment's profile text and exactly three marketing strategies.
    pub async fn segment_profile(&self, stats: &SegmentStats) -> AnalysisResult<SegmentProfile> {
        let profile = self
            .grounded_text(self.prompts.segment_profile(stats))
            .await?;
        let prompt = self.prompts.segment_strategies(stats);
        let strategies: SegmentStrategies = self
            .engine
            .generate_typed(prompt.as_str(), &self.opts(&prompt))
            .await?;
        Ok(SegmentProfile::new(stats, profile, strategies)?)
    }

    /// Product, retention and upsell recommendations for one customer, ranked by the seed's
    /// priorities (retention first when churn risk > 0.5) and cut to `limit`.
    pub async fn recommendations(
        &self,
        customer_id: i32,
        profile: &CustomerProfile,
        limit: usize,
    ) -> AnalysisResult<CustomerRecommendations> {
        let mut recs = Vec::new();
        for kind in RecommendationType::ALL.iter().copied() {
            let prompt = self.prompts.recommendation(kind, profile);
            let draft: RecommendationDraft = self
                .engine
                .generate_typed(prompt.as_str(), &self.opts(&prompt))
                .await?;
            recs.push(Recommendation::new(kind, draft, profile.churn_risk));
        }
        Ok(CustomerRecommendations {
            customer_id,
            recommendations: rank_recommendations(recs, limit),
            prompt_version: crate::PROMPT_VERSION.to_string(),
        })
    }

    /// The dashboard's insight for one customer.
    pub async fn customer_insight(
        &self,
        snapshot: &CustomerSnapshot,
        churn_risk: Option<f64>,
    ) -> AnalysisResult<CustomerInsight> {
        let text = self
            .grounded_text(self.prompts.customer_insight(snapshot))
            .await?;
        Ok(CustomerInsight::new(snapshot.clone(), text, churn_risk))
    }

    /// The executive summary.
    pub async fn executive_summary(
        &self,
        stats: &ExecutiveStats,
    ) -> AnalysisResult<ExecutiveSummary> {
        let text = self
            .grounded_text(self.prompts.executive_summary(stats))
            .await?;
        Ok(ExecutiveSummary::new(stats.clone(), text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sentence_stops_at_the_first_sentence_end() {
        assert_eq!(
            first_sentence("  Great value. Would buy again."),
            "Great value."
        );
        assert_eq!(
            first_sentence("Version 2.5 is great! Yes."),
            "Version 2.5 is great!"
        );
        assert_eq!(
            first_sentence("\nNo period here\nsecond line"),
            "No period here"
        );
        assert_eq!(first_sentence(""), "");
    }
}
