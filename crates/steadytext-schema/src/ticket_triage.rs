//! Ticket triage rules: the documented, data-driven half of every ticket decision
//! ([`crate::Analyst::ticket`] is the other half: model scoring over closed sets).
//!
//! | field | how it is decided |
//! |---|---|
//! | `category` | taxonomy keyword rule over the subject, then the description ([`Taxonomy::match_keywords`]), then the ticket's own category field; model choice over the taxonomy's labels only when no keyword matches ([`category_by_keywords`]) |
//! | `urgency` | model choice over the four labels, capped at [`MODEL_MAX_URGENCY`] (the small model calls everything high; high and critical need a rule); then raised to the highest floor of the [`UrgencyRule`]s whose keywords the ticket contains ([`TriageRules::urgency`]) |
//! | `sentiment` | model choice over the five labels, kept at or above [`MODEL_MIN_SENTIMENT`] (the small model calls everyone angry; frustrated and angry need a rule); then lowered to the lowest ceiling of the [`SentimentRule`]s that match ([`TriageRules::sentiment`]) |
//! | `tags` | taxonomy keys: the category first, then every other category whose keywords the ticket contains, in taxonomy order, at most 5 ([`ticket_tags`]) |
//! | `root_cause` | a phrase quoted from the description (the subject when there is none), chosen by the model among [`cause_candidates`] |
//! | `suggested_resolution` | the [`crate::resolutions`] entry for the category and the root cause |
//! | `follow_up_needed` | [`follow_up`]: urgency ≥ high, or an angry or frustrated customer, or a category in [`FOLLOW_UP_CATEGORIES`] |
//!
//! The default rule table ships as `defaults/triage_rules.json` ([`TriageRules::default`]):
//!
//! | rule | effect | e.g. |
//! |---|---|---|
//! | safety hazard | urgency ≥ critical | "caught fire", "smoke", "electric shock", "injured" |
//! | legal threat | urgency ≥ critical | "lawyer", "lawsuit", "legal action", "small claims" |
//! | data breach | urgency ≥ critical | "data breach", "hacked", "someone else's account" |
//! | outage | urgency ≥ high | "outage", "site is down", "error 503" |
//! | cannot log in | urgency ≥ high | "can't log in", "locked out" |
//! | stopped working or broke | urgency ≥ high | "stopped working", "won't turn on", "broken" |
//! | double or wrong charge | urgency ≥ high | "charged twice", "billed two times", "overcharged" |
//! | anger words | sentiment = angry | "furious", "unacceptable", "scam", "fix this now" |
//! | frustration words | sentiment ≤ frustrated | "still hasnt", "no updates", "third time" |
//! | reports a problem | sentiment ≤ neutral | "stopped working", "late", "charged twice" |
//!
//! Rules match keywords ([`crate::keywords`]) in the ticket's subject and description; they
//! do not understand negation ("it is not broken" matches "broken"), which only ever errs
//! towards more attention. Every rule that fires is named in the analysis's `rules`.
//!
//! ```
//! use steadytext_schema::keywords::Words;
//! use steadytext_schema::ticket_triage::TriageRules;
//! use steadytext_schema::{TicketSentiment, Urgency};
//!
//! let rules = TriageRules::default();
//! let text = Words::new("Site is down. I was charged twice and I am furious.");
//! let u = rules.urgency(Urgency::Low, &text);
//! assert_eq!(u.value, Urgency::High);
//! assert_eq!(u.rules, [
//!     "urgency: outage (\"site is down\") ⇒ ≥ high",
//!     "urgency: double or wrong charge (\"charged twice\") ⇒ ≥ high",
//! ]);
//! assert_eq!(rules.urgency(Urgency::Critical, &Words::new("A question")).value, Urgency::Medium);
//! assert_eq!(rules.sentiment(TicketSentiment::Happy, &text).value, TicketSentiment::Angry);
//! ```

use serde::{Deserialize, Serialize};

use crate::enums::Urgency;
use crate::keywords::Words;
use crate::prompts::TicketInput;
use crate::sentiment::TicketSentiment;
use crate::taxonomy::{Category, Taxonomy};
use crate::themes::MAX_TAGS;

/// The shipped rule table (`defaults/triage_rules.json`).
pub const DEFAULT_TRIAGE_RULES_JSON: &str = include_str!("../defaults/triage_rules.json");

/// The highest urgency the model's choice alone may give: `high` and `critical` need a rule.
/// Measured on the default 135M model, its urgency choice is `high` for nearly every ticket
/// (a question about a scarf's colours included), so it only decides low against medium.
pub const MODEL_MAX_URGENCY: Urgency = Urgency::Medium;

/// The most negative sentiment the model's choice alone may give: `frustrated` and `angry`
/// need a rule. Measured on the default 135M model, its sentiment choice is `angry` for nearly
/// every ticket (a polite question included), so it only decides among neutral, satisfied
/// and happy.
pub const MODEL_MIN_SENTIMENT: TicketSentiment = TicketSentiment::Neutral;

/// Categories whose tickets always get a follow-up (money or a failed product is involved).
pub const FOLLOW_UP_CATEGORIES: [&str; 3] =
    ["billing_payment", "returns_refunds", "defects_durability"];

/// A rule that sets a floor under a ticket's urgency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrgencyRule {
    /// Its name, as listed in `rules` (e.g. `outage`).
    pub name: String,
    /// The lowest urgency a matching ticket may have.
    pub floor: Urgency,
    /// Keyword stems ([`crate::keywords`]); any one fires the rule.
    pub keywords: Vec<String>,
}

/// A rule that sets a ceiling over a ticket's sentiment (by score: angry < frustrated < neutral
/// < satisfied < happy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentimentRule {
    /// Its name, as listed in `rules`.
    pub name: String,
    /// The most positive sentiment a matching ticket may have.
    pub ceiling: TicketSentiment,
    /// Keyword stems; any one fires the rule.
    pub keywords: Vec<String>,
}

/// The rule table (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageRules {
    /// Floors under urgency.
    #[serde(default)]
    pub urgency: Vec<UrgencyRule>,
    /// Ceilings over sentiment.
    #[serde(default)]
    pub sentiment: Vec<SentimentRule>,
}

/// A decided value and the rules that fired on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided<T> {
    /// The value.
    pub value: T,
    /// Every rule that fired, described.
    pub rules: Vec<String>,
}

impl Default for TriageRules {
    /// The shipped table.
    fn default() -> Self {
        serde_json::from_str(DEFAULT_TRIAGE_RULES_JSON).expect("the shipped triage rules parse")
    }
}

impl TriageRules {
    /// The rules from their JSON form (`{"urgency": [...], "sentiment": [...]}`).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The model's urgency, capped at [`MODEL_MAX_URGENCY`], raised to the highest floor of
    /// the rules that match `text`.
    pub fn urgency(&self, model: Urgency, text: &Words) -> Decided<Urgency> {
        let mut rules = Vec::new();
        let mut value = model;
        if value > MODEL_MAX_URGENCY {
            value = MODEL_MAX_URGENCY;
            rules.push(format!(
                "urgency: model chose {model}; only a rule gives more than {MODEL_MAX_URGENCY}"
            ));
        }
        for r in &self.urgency {
            if let Some(k) = text.first_of(&r.keywords) {
                rules.push(format!("urgency: {} (\"{k}\") ⇒ ≥ {}", r.name, r.floor));
                value = value.max(r.floor);
            }
        }
        Decided { value, rules }
    }

    /// The model's sentiment, kept at or above [`MODEL_MIN_SENTIMENT`], lowered to the lowest
    /// ceiling of the rules that match `text`.
    pub fn sentiment(&self, model: TicketSentiment, text: &Words) -> Decided<TicketSentiment> {
        let mut rules = Vec::new();
        let mut value = model;
        if value.score() < MODEL_MIN_SENTIMENT.score() {
            value = MODEL_MIN_SENTIMENT;
            rules.push(format!(
                "sentiment: model chose {model}; only a rule gives less than {MODEL_MIN_SENTIMENT}"
            ));
        }
        for r in &self.sentiment {
            if let Some(k) = text.first_of(&r.keywords) {
                rules.push(format!("sentiment: {} (\"{k}\") ⇒ ≤ {}", r.name, r.ceiling));
                if r.ceiling.score() < value.score() {
                    value = r.ceiling;
                }
            }
        }
        Decided { value, rules }
    }

    /// Keywords of the urgency rules that match `text` (a root cause should mention them).
    pub fn matched_keywords<'r>(&'r self, text: &Words) -> Vec<&'r str> {
        self.urgency
            .iter()
            .filter_map(|r| text.first_of(&r.keywords))
            .collect()
    }
}

/// The words the rules read: the ticket's subject and description.
pub fn ticket_words(ticket: &TicketInput<'_>) -> Words {
    Words::new(&ticket_text(ticket))
}

/// The ticket's subject and description, one after the other.
pub fn ticket_text(ticket: &TicketInput<'_>) -> String {
    [ticket.subject, ticket.description]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(". ")
}

/// The category by keyword rule: the subject, then the description
/// ([`Taxonomy::match_keywords`]), then the ticket's own category field; with what decided it
/// (`"subject or description"` or `"ticket category field"`). `None`: leave it to the model.
pub fn category_by_keywords<'t>(
    taxonomy: &'t Taxonomy,
    ticket: &TicketInput<'_>,
) -> Option<(&'t Category, &'static str)> {
    taxonomy
        .match_keywords(
            ticket.subject.unwrap_or(""),
            ticket.description.unwrap_or(""),
        )
        .map(|c| (c, "subject or description"))
        .or_else(|| {
            ticket
                .category
                .and_then(|c| taxonomy.match_keywords(c, ""))
                .map(|c| (c, "ticket category field"))
        })
}

/// Tags: `category` first, then the key of every other category (in taxonomy order, the
/// catch-all `other` excepted) whose keywords `text` contains; at most [`MAX_TAGS`].
///
/// ```
/// use steadytext_schema::{keywords::Words, taxonomy::Taxonomy, ticket_triage::ticket_tags};
/// let t = Taxonomy::default();
/// let w = Words::new("Charged twice and the parcel arrived late");
/// assert_eq!(ticket_tags(&t, "billing_payment", &w), ["billing_payment", "shipping_delivery", "packaging"]);
/// ```
pub fn ticket_tags(taxonomy: &Taxonomy, category: &str, text: &Words) -> Vec<String> {
    let mut tags = vec![category.to_string()];
    for c in taxonomy.categories() {
        if tags.len() >= MAX_TAGS {
            break;
        }
        if c.key != category && c.key != "other" && text.first_of(&c.keywords).is_some() {
            tags.push(c.key.clone());
        }
    }
    tags
}

/// The phrases a root cause may be chosen from: those of `spans` that contain one of
/// `keywords` (the category's and the fired rules'), or all of them when none does; of these,
/// the phrases of two words or more when there are any (a bare "Tracking" names no cause).
pub fn cause_candidates<K: AsRef<str>>(spans: Vec<String>, keywords: &[K]) -> Vec<String> {
    let focused: Vec<String> = spans
        .iter()
        .filter(|s| Words::new(s).first_of(keywords).is_some())
        .cloned()
        .collect();
    let pool = if focused.is_empty() { spans } else { focused };
    let phrases: Vec<String> = pool
        .iter()
        .filter(|s| s.split_whitespace().count() >= 2)
        .cloned()
        .collect();
    if phrases.is_empty() {
        pool
    } else {
        phrases
    }
}

/// Whether someone should follow up with the customer: urgency ≥ high, an angry or frustrated
/// customer, or a category in [`FOLLOW_UP_CATEGORIES`]; with the reasons.
///
/// ```
/// use steadytext_schema::{ticket_triage::follow_up, TicketSentiment, Urgency};
/// assert!(!follow_up(Urgency::Low, TicketSentiment::Neutral, "shipping_delivery").value);
/// assert!(follow_up(Urgency::High, TicketSentiment::Neutral, "shipping_delivery").value);
/// assert!(follow_up(Urgency::Low, TicketSentiment::Frustrated, "other").value);
/// assert!(follow_up(Urgency::Low, TicketSentiment::Happy, "billing_payment").value);
/// ```
pub fn follow_up(urgency: Urgency, sentiment: TicketSentiment, category: &str) -> Decided<bool> {
    let mut rules = Vec::new();
    if urgency >= Urgency::High {
        rules.push(format!("follow-up: urgency {urgency}"));
    }
    if sentiment.score() < 0.0 {
        rules.push(format!("follow-up: customer {sentiment}"));
    }
    if FOLLOW_UP_CATEGORIES.contains(&category) {
        rules.push(format!("follow-up: category {category}"));
    }
    Decided {
        value: !rules.is_empty(),
        rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn floor(text: &str) -> Urgency {
        TriageRules::default()
            .urgency(Urgency::Low, &Words::new(text))
            .value
    }

    #[test]
    fn the_rule_table_raises_what_it_documents() {
        for (text, want) in [
            ("The site is down since this morning", Urgency::High),
            ("Your website is down again", Urgency::High),
            ("I can't log in to my account", Urgency::High),
            ("Locked out after the update", Urgency::High),
            ("It stopped working after a week", Urgency::High),
            ("It wont turn on anymore", Urgency::High),
            ("The handle broke on day two", Urgency::High),
            ("I was charged twice for one order", Urgency::High),
            ("I was billed two times for the same order", Urgency::High),
            ("You overcharged me", Urgency::High),
            ("The charger caught fire on my desk", Urgency::Critical),
            ("It gave me an electric shock", Urgency::Critical),
            ("My lawyer will be in touch", Urgency::Critical),
            ("I see someone else's account and orders", Urgency::Critical),
            ("Was my account hacked?", Urgency::Critical),
            ("What colours does it come in?", Urgency::Low),
            ("The price went down after I bought it", Urgency::Low),
            ("Firefox shows the page fine", Urgency::Low),
            ("Thanks for the courteous help", Urgency::Low),
        ] {
            assert_eq!(floor(text), want, "{text}");
        }
    }

    #[test]
    fn sentiment_ceilings() {
        let r = TriageRules::default();
        let s = |m, t| r.sentiment(m, &Words::new(t)).value;
        use TicketSentiment::*;
        assert_eq!(s(Happy, "Thanks, all good"), Happy);
        assert_eq!(s(Happy, "It stopped working"), Neutral);
        assert_eq!(s(Neutral, "Still waiting, no updates"), Frustrated);
        assert_eq!(
            s(Angry, "Still waiting, no updates"),
            Frustrated,
            "angry needs anger words"
        );
        assert_eq!(s(Angry, "Hello"), Neutral);
        assert_eq!(s(Angry, "It stopped working despite the reset"), Frustrated);
        assert_eq!(s(Satisfied, "This is unacceptable"), Angry);
    }

    #[test]
    fn the_seed_tickets() {
        let tax = Taxonomy::default();
        let rules = TriageRules::default();
        let late = TicketInput {
            category: Some("shipping"),
            subject: Some("Late delivery"),
            description: Some("My order was supposed to arrive last week but still hasnt been delivered. Tracking shows no updates."),
        };
        let (c, how) = category_by_keywords(&tax, &late).unwrap();
        assert_eq!(
            (c.key.as_str(), how),
            ("shipping_delivery", "subject or description")
        );
        let w = ticket_words(&late);
        assert_eq!(ticket_tags(&tax, &c.key, &w), ["shipping_delivery"]);
        assert_eq!(rules.urgency(Urgency::Low, &w).value, Urgency::Low);
        assert_eq!(
            rules.sentiment(TicketSentiment::Angry, &w).value,
            TicketSentiment::Frustrated
        );
        assert_eq!(
            rules.sentiment(TicketSentiment::Neutral, &w).value,
            TicketSentiment::Frustrated
        );

        let defect = TicketInput {
            category: Some("product_issue"),
            subject: Some("Product defect"),
            description: Some("The product stopped working after one week. It wont turn on anymore despite following all troubleshooting steps."),
        };
        let (c, _) = category_by_keywords(&tax, &defect).unwrap();
        assert_eq!(c.key, "defects_durability");
        let w = ticket_words(&defect);
        assert_eq!(
            ticket_tags(&tax, &c.key, &w),
            ["defects_durability", "product_quality"]
        );
        let u = rules.urgency(Urgency::Low, &w);
        assert_eq!(u.value, Urgency::High);
        assert_eq!(
            u.rules,
            ["urgency: stopped working or broke (\"stopped working\") ⇒ ≥ high"]
        );
    }

    #[test]
    fn category_falls_back_to_the_field_then_to_nobody() {
        let tax = Taxonomy::default();
        let t = TicketInput {
            category: Some("billing"),
            subject: Some("Question"),
            description: Some("Hello, quick question."),
        };
        let (c, how) = category_by_keywords(&tax, &t).unwrap();
        assert_eq!(
            (c.key.as_str(), how),
            ("billing_payment", "ticket category field")
        );
        assert!(category_by_keywords(
            &tax,
            &TicketInput {
                category: None,
                ..t
            }
        )
        .is_none());
    }

    #[test]
    fn candidates_focus_on_keywords_when_they_can() {
        let spans = vec![
            "order".to_string(),
            "stopped working".to_string(),
            "Tracking".to_string(),
            "Tracking shows no updates".to_string(),
        ];
        assert_eq!(
            cause_candidates(spans.clone(), &["stopped working"]),
            ["stopped working"]
        );
        assert_eq!(
            cause_candidates(spans.clone(), &["tracking"]),
            ["Tracking shows no updates"],
            "two words or more when there are any"
        );
        assert_eq!(
            cause_candidates(spans.clone(), &["refund"]),
            ["stopped working", "Tracking shows no updates"]
        );
        assert_eq!(
            cause_candidates(vec!["order".into()], &["refund"]),
            ["order"]
        );
    }

    #[test]
    fn a_rule_table_round_trips_and_user_tables_work() {
        let r = TriageRules::default();
        assert_eq!(
            TriageRules::from_json(&serde_json::to_string(&r).unwrap()).unwrap(),
            r
        );
        let mine = TriageRules::from_json(
            r#"{"urgency": [{"name": "vip", "floor": "critical", "keywords": ["ceo"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            mine.urgency(Urgency::Low, &Words::new("our CEO is waiting"))
                .value,
            Urgency::Critical
        );
        assert!(TriageRules::from_json(
            r#"{"urgency": [{"name": "x", "floor": "urgent", "keywords": []}]}"#
        )
        .is_err());
    }

    fn urgency() -> impl Strategy<Value = Urgency> {
        proptest::sample::select(Urgency::ALL.to_vec())
    }

    fn sentiment() -> impl Strategy<Value = TicketSentiment> {
        proptest::sample::select(TicketSentiment::ALL.to_vec())
    }

    fn ticket_text_strategy() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("site"),
                Just("is"),
                Just("down"),
                Just("charged"),
                Just("twice"),
                Just("stopped"),
                Just("working"),
                Just("furious"),
                Just("still"),
                Just("no"),
                Just("updates"),
                Just("fire"),
                Just("caught"),
                Just("hello"),
                Just("thanks"),
                Just("lawyer"),
                Just("late"),
                Just("can't"),
                Just("log"),
                Just("in"),
            ],
            0..12,
        )
        .prop_map(|w| w.join(" "))
    }

    proptest! {
        /// Urgency never falls below a fired rule's floor, never exceeds the model's choice
        /// unless a rule raised it, and high or critical always has a rule behind it.
        #[test]
        fn urgency_rules_are_floors(model in urgency(), text in ticket_text_strategy()) {
            let rules = TriageRules::default();
            let w = Words::new(&text);
            let d = rules.urgency(model, &w);
            let floor = rules.urgency.iter().filter(|r| w.first_of(&r.keywords).is_some()).map(|r| r.floor).max();
            if let Some(f) = floor {
                prop_assert!(d.value >= f);
            }
            prop_assert_eq!(d.value, model.min(MODEL_MAX_URGENCY).max(floor.unwrap_or(Urgency::Low)));
            if d.value == Urgency::Critical {
                prop_assert!(d.rules.iter().any(|r| r.ends_with("≥ critical")));
            }
            if d.value > MODEL_MAX_URGENCY {
                prop_assert!(d.rules.iter().any(|r| r.contains(") ⇒ ≥")));
            }
        }

        /// Sentiment never rises above a fired rule's ceiling nor above the model's choice (or
        /// frustrated), and angry always has a rule behind it.
        #[test]
        fn sentiment_rules_are_ceilings(model in sentiment(), text in ticket_text_strategy()) {
            let rules = TriageRules::default();
            let w = Words::new(&text);
            let d = rules.sentiment(model, &w);
            prop_assert!(d.value.score() <= model.score().max(MODEL_MIN_SENTIMENT.score()));
            if d.value == TicketSentiment::Angry {
                prop_assert!(d.rules.iter().any(|r| r.ends_with("≤ angry")));
            }
            if d.value.score() < 0.0 {
                prop_assert!(d.rules.iter().any(|r| r.contains(") ⇒ ≤")));
            }
            for r in &rules.sentiment {
                if w.first_of(&r.keywords).is_some() {
                    prop_assert!(d.value.score() <= r.ceiling.score());
                }
            }
        }

        /// Tags are taxonomy keys, distinct, at most 5, the category first.
        #[test]
        fn tags_are_taxonomy_keys(text in ticket_text_strategy(), i in 0usize..13) {
            let tax = Taxonomy::default();
            let category = tax.categories()[i].key.clone();
            let tags = ticket_tags(&tax, &category, &Words::new(&text));
            prop_assert_eq!(&tags[0], &category);
            prop_assert!(tags.len() <= MAX_TAGS);
            let mut seen = std::collections::HashSet::new();
            for t in &tags {
                prop_assert!(tax.get(t).is_some());
                prop_assert!(seen.insert(t));
            }
        }

        /// Follow-up is needed exactly when one of its three conditions holds.
        #[test]
        fn follow_up_rule(u in urgency(), s in sentiment(), i in 0usize..13) {
            let tax = Taxonomy::default();
            let c = &tax.categories()[i].key;
            let want = u >= Urgency::High || s.score() < 0.0 || FOLLOW_UP_CATEGORIES.contains(&c.as_str());
            let d = follow_up(u, s, c);
            prop_assert_eq!(d.value, want);
            prop_assert_eq!(d.value, !d.rules.is_empty());
        }
    }
}
