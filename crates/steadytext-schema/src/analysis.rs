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
    CustomerInsight, CustomerRecommendations, ExecutiveSummary, MarketingStrategy,
    RetentionStrategy, ReviewAnalysis, SegmentProfile, SegmentStrategies, TicketAnalysis,
};
use crate::aspects::{
    quoted_themes_schema, rule_category, CategorisedBy, QuotedThemes, ReviewAspect,
};
use crate::churn::ChurnRisk;
use crate::enums::{RecommendationType, Urgency};
use crate::error::SchemaError;
use crate::executive::ExecutiveStats;
use crate::faithfulness::{self, Grounded};
use crate::playbooks::{
    order_by_scores, rank_plays, ChosenBy, ChosenPlay, Facts, Play, Playbooks, EXECUTIVE_ACTIONS,
    MARKETING_PLAYS, RETENTION_ACTIONS,
};
use crate::privacy::{NameDirectory, Redactor};
use crate::prompts::{Prompt, PromptBuilder, ReviewInput, TicketInput};
use crate::quote::{
    is_quoted, quotable_spans, sentence_containing, summary_sentence, MAX_QUOTE_CANDIDATES,
};
use crate::recommendations::{
    product_recommendations, rank_recommendations, Recommendation, RecommendationInputs,
    MAX_PRODUCT_RECOMMENDATIONS,
};
use crate::records::Customer;
use crate::resolutions::ResolutionPlaybook;
use crate::segments::SegmentStats;
use crate::sentiment::{Polarity, ReviewSentiment, TicketSentiment};
use crate::sentiment_model::SentimentModel;
use crate::status::CustomerSnapshot;
use crate::taxonomy::Taxonomy;
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
    /// The engine sentiment is classified on, when it is not `engine` (a model per task).
    classifier: Option<&'e Engine>,
    base: GenerateOptions,
    prompts: PromptBuilder,
    sentiment: SentimentModel,
    taxonomy: Arc<Taxonomy>,
    playbooks: Arc<Playbooks>,
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

/// Whether a sentence turns on a contrast ("good, but …"), so its polarity may differ from
/// the review's.
///
/// ```
/// use steadytext_schema::analysis::has_contrast;
/// assert!(has_contrast("Great screen, but the battery dies fast."));
/// assert!(has_contrast("Although it was late, it works."));
/// assert!(!has_contrast("The battery dies fast."));
/// ```
pub fn has_contrast(sentence: &str) -> bool {
    const CONTRAST: &[&str] = &[
        "but",
        "however",
        "though",
        "although",
        "except",
        "yet",
        "otherwise",
        "whereas",
        "despite",
        "still",
        "unfortunately",
        "sadly",
        "only",
    ];
    sentence
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| CONTRAST.contains(&w.to_lowercase().as_str()))
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
            classifier: None,
            base: GenerateOptions::default().repeat_penalty(ANALYSIS_REPEAT_PENALTY),
            prompts: PromptBuilder::new(),
            sentiment: SentimentModel::default(),
            taxonomy: Arc::new(Taxonomy::default()),
            playbooks: Arc::new(Playbooks::default()),
            playbook: Arc::new(ResolutionPlaybook::default()),
            triage: Arc::new(TriageRules::default()),
        }
    }

    /// Choose actions from these playbooks instead of the shipped defaults
    /// ([`crate::playbooks`]).
    ///
    /// ```no_run
    /// # fn demo(engine: &steadytext_core::Engine) {
    /// use steadytext_schema::{playbooks::Playbooks, Analyst};
    /// let mut books = Playbooks::default();
    /// books.retention.retain(|p| p.id != "targeted-discount"); // no discounts here
    /// let analyst = Analyst::new(engine).with_playbooks(books);
    /// assert!(analyst.playbooks().retention.iter().all(|p| p.id != "targeted-discount"));
    /// # }
    /// ```
    pub fn with_playbooks(mut self, playbooks: impl Into<Arc<Playbooks>>) -> Self {
        self.playbooks = playbooks.into();
        self
    }

    /// The playbooks in use.
    pub fn playbooks(&self) -> &Playbooks {
        &self.playbooks
    }

    /// File review themes and tickets under this taxonomy (default [`Taxonomy::default`]).
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

    /// Classify review sentiment with this calibrated model instead of the built-in one
    /// ([`SentimentModel::default`]); every review result records its calibration's id.
    pub fn with_sentiment(mut self, sentiment: SentimentModel) -> Self {
        self.sentiment = sentiment;
        self
    }

    /// Classify sentiment (of reviews and of their themes' sentences) on another model's
    /// engine, read through `sentiment`, a calibration fitted on *that* model's scores (e.g.
    /// [`SentimentModel::shipped_for`] its backend identity). Every other analysis stays on
    /// the analyst's own engine. Both engines' results are cached under their own model.
    ///
    /// ```no_run
    /// # async fn demo(smollm2: &steadytext_core::Engine, gemma: &steadytext_core::Engine) {
    /// use steadytext_schema::{Analyst, SentimentModel};
    /// let sentiment = SentimentModel::shipped_for(gemma.backend().identity()).unwrap();
    /// let analyst = Analyst::new(smollm2).with_classifier(gemma, sentiment);
    /// # }
    /// ```
    pub fn with_classifier(mut self, engine: &'e Engine, sentiment: SentimentModel) -> Self {
        self.classifier = Some(engine);
        self.sentiment = sentiment;
        self
    }

    /// The engine sentiment is classified on (the analyst's own unless
    /// [`with_classifier`](Self::with_classifier) set another).
    pub fn classifier_engine(&self) -> &Engine {
        self.classifier.unwrap_or(self.engine)
    }

    /// The sentiment classifier in use.
    pub fn sentiment_model(&self) -> &SentimentModel {
        &self.sentiment
    }

    /// Bound ticket urgency and sentiment by these rules (default [`TriageRules::default`]).
    pub fn with_triage_rules(mut self, rules: impl Into<Arc<TriageRules>>) -> Self {
        self.triage = rules.into();
        self
    }

    /// The taxonomy themes and tickets are filed under.
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

    /// This analyst for a row written by `owner` (if any): prompts redacted of the owner's
    /// names and email, of every customer name in `names`, and of cue-introduced names ("by
    /// Maria Garcia"). The demo and the PostgreSQL path both redact this way.
    pub fn for_author(&self, owner: Option<&Customer>, names: &Arc<NameDirectory>) -> Self {
        let redactor = match owner {
            Some(c) => Redactor::for_customer(c),
            None => Redactor::new(),
        }
        .with_directory(names.clone());
        self.clone()
            .with_prompts(PromptBuilder::with_redactor(redactor))
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

    /// Up to `n` plays for `facts`, in rule order ([`crate::playbooks`]); a tie group that
    /// straddles the cut is ordered by the model's choice scores over the plays' titles, given
    /// `facts_line` (a redacted statement of the facts).
    pub async fn choose_plays(
        &self,
        plays: &[Play],
        facts: &Facts,
        n: usize,
        area: &str,
        facts_line: &str,
    ) -> AnalysisResult<Vec<ChosenPlay>> {
        let mut out: Vec<ChosenPlay> = Vec::new();
        for group in rank_plays(plays, facts) {
            if out.len() >= n {
                break;
            }
            // Plays whose filled titles repeat one already chosen add nothing.
            let mut titles: Vec<String> = out.iter().map(|c| c.title.to_lowercase()).collect();
            let mut members: Vec<(&Play, ChosenPlay)> = Vec::new();
            for p in group {
                if let Some(c) = p.fill(facts) {
                    if !titles.contains(&c.title.to_lowercase()) {
                        titles.push(c.title.to_lowercase());
                        members.push((p, c));
                    }
                }
            }
            if members.len() > 1 && out.len() + members.len() > n {
                let options: Vec<&str> = members.iter().map(|(_, c)| c.title.as_str()).collect();
                let prompt = self.prompts.play_choice(area, facts_line);
                let choice = self
                    .engine
                    .choice(prompt.as_str(), &options, &self.base)
                    .await?;
                let scores: Vec<f64> = choice.scores.iter().map(|s| s.normalized).collect();
                let group: Vec<&Play> = members.iter().map(|(p, _)| *p).collect();
                let ordered = order_by_scores(&group, &scores);
                let mut by_id: Vec<(&Play, ChosenPlay)> = Vec::new();
                for p in ordered {
                    if let Some(i) = members.iter().position(|(q, _)| q.id == p.id) {
                        let (q, mut c) = members.remove(i);
                        c.chosen_by = ChosenBy::ModelScore;
                        by_id.push((q, c));
                    }
                }
                members = by_id;
            }
            out.extend(members.into_iter().map(|(_, c)| c).take(n - out.len()));
        }
        Ok(out)
    }

    /// Five-way sentiment of a review and the decision margin (nats) between the best and the
    /// second-best label (see [`SentimentModel`]).
    pub async fn review_sentiment(
        &self,
        review: &ReviewInput<'_>,
    ) -> AnalysisResult<(ReviewSentiment, f64)> {
        self.sentiment
            .classify(self.classifier_engine(), &self.prompts, review, &self.base)
            .await
    }

    /// The seed's review analysis, grounded: sentiment (the calibrated classifier); up to three
    /// themes, each a phrase quoted verbatim from the review (the model chooses among the
    /// review's own [`quotable_spans`], enforced token by token), filed under a [`Taxonomy`]
    /// category (keyword rule, else model scoring over the labels on the phrase's sentence)
    /// with a polarity (the review's, for a sentence without a contrast in a review that is not
    /// neutral; else the classifier on its sentence); and a summary quoted from the review: the
    /// sentence of its lead theme ([`summary_sentence`]).
    pub async fn review(&self, review: &ReviewInput<'_>) -> AnalysisResult<ReviewAnalysis> {
        // The sentiment and the quoted phrases do not depend on each other: both in flight.
        let (sentiment, phrases) =
            futures_util::future::join(self.review_sentiment(review), self.quoted_phrases(review))
                .await;
        let (sentiment, margin) = sentiment?;
        let aspects = self
            .aspects_of(phrases?, Some(sentiment.polarity()))
            .await?;
        let (title, text) = self.prompts.review_quotable(review);
        let phrases: Vec<&str> = aspects.iter().map(|a| a.phrase.as_str()).collect();
        let summary = match (text.as_deref(), title.as_deref()) {
            (Some(text), _) => summary_sentence(text, &phrases),
            (None, Some(title)) => summary_sentence(title, &phrases),
            (None, None) => String::new(),
        };
        Ok(ReviewAnalysis {
            calibration: Some(self.sentiment.calibration_id().to_string()),
            ..ReviewAnalysis::from_aspects(sentiment, summary, aspects, Some(margin))
        })
    }

    /// The review's aspects (see [`Analyst::review`]): quoted phrases, each verified against
    /// the original title or text, with polarity and category; each sentence's polarity from
    /// the calibrated classifier. Empty when the review has no quotable phrase (no model call
    /// then).
    pub async fn review_aspects(
        &self,
        review: &ReviewInput<'_>,
    ) -> AnalysisResult<Vec<ReviewAspect>> {
        let phrases = self.quoted_phrases(review).await?;
        self.aspects_of(phrases, None).await
    }

    /// Up to three phrases the model quotes from the review (an `enum` of its
    /// [`quotable_spans`]), each verified against the original title or text, without
    /// case-insensitive duplicates, each with its sentence (as prompts show it).
    async fn quoted_phrases(
        &self,
        review: &ReviewInput<'_>,
    ) -> AnalysisResult<Vec<(String, String)>> {
        let (title, text) = self.prompts.review_quotable(review);
        let mut spans = Vec::new();
        for part in [&title, &text].into_iter().flatten() {
            for s in quotable_spans(part, MAX_QUOTE_CANDIDATES) {
                if spans.len() < MAX_QUOTE_CANDIDATES && !spans.contains(&s) {
                    spans.push(s);
                }
            }
        }
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        let prompt = self.prompts.review_themes(review);
        let value = self
            .engine
            .generate_json(
                prompt.as_str(),
                &quoted_themes_schema(&spans),
                &self.opts(&prompt),
            )
            .await?;
        let quoted: QuotedThemes = serde_json::from_value(value)
            .map_err(|e| steadytext_core::Error::Deserialize(e.to_string()))?;
        let original =
            |p: &str| is_quoted(p, review.text) || review.title.is_some_and(|t| is_quoted(p, t));
        let mut out: Vec<(String, String)> = Vec::new();
        for phrase in quoted.themes {
            if !original(&phrase) || out.iter().any(|(p, _)| p.eq_ignore_ascii_case(&phrase)) {
                continue;
            }
            let sentence = [&text, &title]
                .into_iter()
                .flatten()
                .find_map(|part| sentence_containing(part, &phrase))
                .unwrap_or(&phrase)
                .to_string();
            out.push((phrase, sentence));
        }
        Ok(out)
    }

    /// Category and polarity of each `(phrase, sentence)`, all in flight at once, in order.
    /// Given the review's own polarity, a theme whose sentence has no contrast
    /// ([`has_contrast`]: "but", "however", "though", …) in a review that is not neutral
    /// takes the review's polarity; any other sentence is classified on its own by the
    /// calibrated classifier.
    async fn aspects_of(
        &self,
        phrases: Vec<(String, String)>,
        overall: Option<Polarity>,
    ) -> AnalysisResult<Vec<ReviewAspect>> {
        futures_util::future::try_join_all(phrases.into_iter().map(
            |(phrase, sentence)| async move {
                let (category, categorised_by) =
                    match rule_category(&self.taxonomy, &phrase, &sentence) {
                        Some(found) => found,
                        None => (
                            self.model_category(&sentence, &phrase).await?,
                            CategorisedBy::Model,
                        ),
                    };
                let inherited =
                    overall.filter(|p| *p != Polarity::Neutral && !has_contrast(&sentence));
                let polarity = match inherited {
                    Some(p) => p,
                    None => {
                        let input = ReviewInput {
                            rating: None,
                            title: None,
                            text: &sentence,
                        };
                        let (s, _) = self
                            .sentiment
                            .classify(self.classifier_engine(), &self.prompts, &input, &self.base)
                            .await?;
                        s.polarity()
                    }
                };
                Ok::<_, AnalysisError>(ReviewAspect {
                    phrase,
                    category,
                    polarity,
                    categorised_by,
                })
            },
        ))
        .await
    }

    /// The taxonomy category the model scores highest for `phrase` of `review`.
    async fn model_category(&self, sentence: &str, phrase: &str) -> AnalysisResult<String> {
        let labels = self.taxonomy.labels();
        let prompt = self.prompts.review_category(sentence, phrase, &labels);
        let choice = self
            .engine
            .choice(prompt.as_str(), &labels, &self.base)
            .await?;
        Ok(self.taxonomy.categories()[choice.index].key.clone())
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
    /// `None` below that. The actions are up to [`RETENTION_ACTIONS`] retention plays chosen
    /// by rules over the risk's facts ([`ChurnRisk::facts`]) and model scoring; the model
    /// writes prose explaining them, shown only when it passes the faithfulness check, else
    /// the facts and actions (labelled fallback).
    pub async fn retention_strategy(
        &self,
        customer_id: i32,
        risk: &ChurnRisk,
    ) -> AnalysisResult<Option<RetentionStrategy>> {
        if !risk.is_reportable() {
            return Ok(None);
        }
        let line = self
            .prompts
            .retention_strategy(risk, &[])
            .facts()
            .to_string();
        let actions = self
            .choose_plays(
                &self.playbooks.retention,
                &risk.facts(),
                RETENTION_ACTIONS,
                "retention",
                &line,
            )
            .await?;
        let text = self
            .grounded_text(self.prompts.retention_strategy(risk, &actions))
            .await?;
        Ok(Some(RetentionStrategy::new(
            customer_id,
            risk.clone(),
            text,
            actions,
        )))
    }

    /// A segment's profile text (checked prose or its facts) and exactly three marketing
    /// strategies: marketing plays chosen by rules over the segment's facts
    /// ([`SegmentStats::facts`], with the name and themes redacted) and model scoring, their
    /// templates filled with those facts.
    pub async fn segment_profile(&self, stats: &SegmentStats) -> AnalysisResult<SegmentProfile> {
        let profile = self
            .grounded_text(self.prompts.segment_profile(stats))
            .await?;
        let mut shown = stats.clone();
        shown.segment_name = self.prompts.redacted_short(&stats.segment_name);
        shown.common_themes = stats
            .common_themes
            .iter()
            .map(|t| self.prompts.redacted_short(t))
            .collect();
        let plays = self
            .choose_plays(
                &self.playbooks.marketing,
                &shown.facts(),
                MARKETING_PLAYS,
                "marketing",
                &self.prompts.segment_facts_line(stats),
            )
            .await?;
        let strategies = SegmentStrategies {
            strategies: plays.iter().map(MarketingStrategy::from_play).collect(),
        };
        Ok(SegmentProfile::new(stats, profile, strategies)?)
    }

    /// Product, retention and upsell recommendations for one customer, ranked by the seed's
    /// priorities (retention first when churn risk > 0.5) and cut to `limit`
    /// ([`crate::recommendations`]): products only from the data
    /// ([`product_recommendations`]), one retention and one upsell play chosen by rules over
    /// the customer's facts and model scoring. No text in them is the model's.
    pub async fn recommendations(
        &self,
        customer_id: i32,
        inputs: &RecommendationInputs,
        limit: usize,
    ) -> AnalysisResult<CustomerRecommendations> {
        let risk = inputs.profile.churn_risk;
        let mut recs: Vec<Recommendation> = product_recommendations(
            &inputs.segment_products,
            &inputs.all_products,
            &inputs.reviewed_products,
            MAX_PRODUCT_RECOMMENDATIONS,
        )
        .iter()
        .map(|p| Recommendation::product(p, inputs.profile.segment.as_deref(), risk))
        .collect();
        let mut shown = inputs.clone();
        shown.profile.segment = inputs
            .profile
            .segment
            .as_deref()
            .map(|s| self.prompts.redacted_short(s));
        shown.profile.interests = inputs
            .profile
            .interests
            .iter()
            .map(|t| self.prompts.redacted_short(t))
            .collect();
        let facts = shown.facts();
        let line = shown.facts_line();
        for (kind, plays) in [
            (RecommendationType::Retention, &self.playbooks.retention),
            (RecommendationType::Upsell, &self.playbooks.upsell),
        ] {
            let chosen = self
                .choose_plays(plays, &facts, 1, kind.as_str(), &line)
                .await?;
            if let Some(play) = chosen.first() {
                recs.push(Recommendation::from_play(kind, play, risk));
            }
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

    /// The executive summary: up to [`EXECUTIVE_ACTIONS`] company-wide plays chosen by rules
    /// over the numbers ([`ExecutiveStats::facts`]) and model scoring, and prose explaining
    /// them that is shown only when it passes the faithfulness check, else the numbers and
    /// actions (labelled fallback).
    pub async fn executive_summary(
        &self,
        stats: &ExecutiveStats,
    ) -> AnalysisResult<ExecutiveSummary> {
        let line = self
            .prompts
            .executive_summary(stats, &[])
            .facts()
            .to_string();
        let actions = self
            .choose_plays(
                &self.playbooks.executive,
                &stats.facts(),
                EXECUTIVE_ACTIONS,
                "company-wide",
                &line,
            )
            .await?;
        let text = self
            .grounded_text(self.prompts.executive_summary(stats, &actions))
            .await?;
        Ok(ExecutiveSummary::new(stats.clone(), text, actions))
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
