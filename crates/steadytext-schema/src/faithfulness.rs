//! The faithfulness check: free model prose is shown only when every number and name in it
//! appears in the facts it was given, and it does not loop; otherwise the facts themselves are
//! shown, labelled as a fallback.
//!
//! A 135M model writes fluent, confident and invented business prose ("a 10% reduction in
//! support requests", "Salesforce and Bossy are key players"). The check is code, not hope:
//!
//! - **Numbers**: every number in the text (digits, with `.`/`,` separators, `%` or `$` around
//!   them, and number words such as "ten" or "percent") must occur among the facts' numbers
//!   (compared by value: `0.70` is `0.7`).
//! - **Names**: every capitalised word that is not a plain English word starting a sentence —
//!   a proper noun, a product or company name, an acronym — must occur in the facts or the
//!   prompt (case-insensitively).
//!   A minus right before the digits is the number's sign: `0.50` does not ground on `-0.50`.
//! - **Claims**: a sentiment word ("positive", "satisfied", "loyal", ...) or a level phrase
//!   ("low risk", "high satisfaction") must be said by the facts or the prompt, so a customer
//!   whose facts say "negative" and "medium risk" is never called "positive" or "low risk".
//! - **Loops**: no sequence of six words occurs twice.
//! - **Empty**: a text with no words fails.
//!
//! ```
//! use steadytext_schema::faithfulness::{check, ground, Grounding, Unfaithful};
//! let facts = "3 customers, 1 at high churn risk (score above 0.7). 2 open support tickets.";
//! assert!(check("One of 3 customers is at high risk; resolve the 2 open tickets.", facts, "").is_ok());
//! assert_eq!(
//!     check("Risk is low; customers are positive.", facts, ""),
//!     Err(Unfaithful::Claim("positive".into()))
//! );
//! assert_eq!(
//!     check("Expect a 10% reduction in tickets.", facts, ""),
//!     Err(Unfaithful::Number("10%".into()))
//! );
//! assert_eq!(
//!     check("Partner with Salesforce to keep them.", facts, ""),
//!     Err(Unfaithful::Name("Salesforce".into()))
//! );
//! let shown = ground("Partner with Salesforce.", facts, "");
//! assert_eq!(shown.grounding, Grounding::Fallback);
//! assert_eq!(shown.text, facts);
//! ```

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Whether a shown text is model prose that passed the check, or the facts template.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Grounding {
    /// Model prose whose numbers and names all appear in its facts, without loops.
    Checked,
    /// The model's text failed the check (or was not asked for): the facts template is shown.
    #[default]
    Fallback,
}

impl Grounding {
    /// `"checked"` or `"fallback"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Grounding::Checked => "checked",
            Grounding::Fallback => "fallback",
        }
    }
}

/// Why a text failed the check: the first offending piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfaithful {
    /// A number not among the facts' numbers.
    Number(String),
    /// A name not in the facts or the prompt.
    Name(String),
    /// An evaluative claim ("positive", "low risk", "high satisfaction") the facts do not make.
    Claim(String),
    /// A six-word sequence that occurs twice.
    Loop(String),
    /// No words at all.
    Empty,
}

impl std::fmt::Display for Unfaithful {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfaithful::Number(n) => write!(f, "the number {n:?} is not in the facts"),
            Unfaithful::Name(n) => write!(f, "the name {n:?} is not in the facts"),
            Unfaithful::Claim(c) => write!(f, "the claim {c:?} is not in the facts"),
            Unfaithful::Loop(s) => write!(f, "the text repeats {s:?}"),
            Unfaithful::Empty => write!(f, "the text is empty"),
        }
    }
}

/// A text as shown: the model's prose when it passed, else the facts; with the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grounded {
    /// What is shown.
    pub text: String,
    /// Which of the two it is.
    pub grounding: Grounding,
    /// Why the model's text was not shown (`None` when it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_because: Option<String>,
}

/// Check `text` against `facts` (and the `prompt` it answered, whose words count as known):
/// `Ok` when every number (with its sign: `0.50` does not ground on `-0.50`), every name and
/// every evaluative claim in it is grounded, and it does not loop. Evaluative claims are the
/// sentiment words of [`STANCE_WORDS`] ("positive", "satisfied", ...) and level phrases such as
/// "low risk" or "high satisfaction": the facts must say them (so a customer
/// whose facts say "negative" is never called "positive").
pub fn check(text: &str, facts: &str, prompt: &str) -> Result<(), Unfaithful> {
    let words: Vec<String> = WORD
        .find_iter(text)
        .map(|m| m.as_str().to_lowercase())
        .collect();
    if words.is_empty() {
        return Err(Unfaithful::Empty);
    }
    let known_numbers: Vec<f64> = numbers(facts).into_iter().map(|(_, v)| v).collect();
    for (raw, value) in numbers(text) {
        if !known_numbers.iter().any(|k| (k - value).abs() < 1e-9) {
            return Err(Unfaithful::Number(raw));
        }
    }
    let known_words: HashSet<String> = WORD
        .find_iter(&format!("{facts} {prompt}"))
        .map(|m| m.as_str().to_lowercase())
        .collect();
    for w in &words {
        if let Some(value) = number_word(w) {
            if !known_numbers.iter().any(|k| (k - value).abs() < 1e-9) && !known_words.contains(w) {
                return Err(Unfaithful::Number(w.clone()));
            }
        }
    }
    for name in names(text) {
        let lower = name.to_lowercase();
        if !known_words.contains(&lower) && !facts.to_lowercase().contains(&lower) {
            return Err(Unfaithful::Name(name));
        }
    }
    let mut seen = HashSet::new();
    for window in words.windows(6) {
        let key = window.join(" ");
        if !seen.insert(key.clone()) {
            return Err(Unfaithful::Loop(key));
        }
    }
    for w in &words {
        if STANCE_WORDS.contains(&w.as_str()) && !known_words.contains(w) {
            return Err(Unfaithful::Claim(w.clone()));
        }
    }
    let known_text = format!("{facts} {prompt}").to_lowercase();
    let known_text = WORD
        .find_iter(&known_text)
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for m in LEVEL_PHRASE.captures_iter(&words.join(" ")) {
        // "high risk" is grounded by "high risk" or "high churn risk" in the facts.
        let said = Regex::new(&format!(
            r"\b{} (?:\w+ )?{}\b",
            regex::escape(&m["level"]),
            regex::escape(&m["what"])
        ))
        .expect("valid level pattern");
        if !said.is_match(&known_text) {
            return Err(Unfaithful::Claim(m[0].to_string()));
        }
    }
    Ok(())
}

/// The text to show: `model_text` when it passes [`check`], else `facts` as the fallback.
pub fn ground(model_text: &str, facts: &str, prompt: &str) -> Grounded {
    let model_text = model_text.trim();
    match check(model_text, facts, prompt) {
        Ok(()) => Grounded {
            text: model_text.to_string(),
            grounding: Grounding::Checked,
            rejected_because: None,
        },
        Err(why) => Grounded {
            text: facts.trim().to_string(),
            grounding: Grounding::Fallback,
            rejected_because: Some(why.to_string()),
        },
    }
}

static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{L}\p{N}][\p{L}\p{N}'’\-]*").expect("valid word regex"));

/// A number in digits: optional currency, digits with `,`/`.` groups, optional `%`.
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[$€£]?\d+(?:[.,]\d+)*%?").expect("valid number regex"));

/// Sentiment words that state how a customer or segment feels: a claim the facts must make.
pub const STANCE_WORDS: [&str; 17] = [
    "positive",
    "negative",
    "neutral",
    "mixed",
    "satisfied",
    "dissatisfied",
    "unsatisfied",
    "happy",
    "unhappy",
    "pleased",
    "displeased",
    "delighted",
    "loyal",
    "frustrated",
    "angry",
    "upset",
    "disappointed",
];

/// A level claim: "low risk", "high churn", "moderate satisfaction", ... (lower-cased words).
static LEVEL_PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:very |extremely )?(?P<level>low|lower|medium|moderate|high|higher|elevated|minimal) (?P<what>churn|risk|satisfaction|sentiment|engagement|loyalty)\b",
    )
    .expect("valid level regex")
});

/// Every number in `text` with its value (`$1,234.50` is 1234.5, `70%` is 70, `0.70` is 0.7,
/// `-0.40` is -0.4: a minus right before the digits, at the start or after a space or bracket,
/// is a sign; in `1-5` it is not).
fn numbers(text: &str) -> Vec<(String, f64)> {
    NUMBER
        .find_iter(text)
        .filter_map(|m| {
            let before = &text[..m.start()];
            let negative = before
                .strip_suffix('-')
                .or_else(|| before.strip_suffix('−'))
                .is_some_and(|b| {
                    b.chars()
                        .last()
                        .is_none_or(|c| c.is_whitespace() || "([".contains(c))
                });
            let raw = m.as_str();
            let digits = raw
                .trim_start_matches(['$', '€', '£'])
                .trim_end_matches('%');
            // A comma followed by exactly three digits groups thousands; else it is a decimal
            // comma only when there is no dot.
            let thousands = digits
                .split(',')
                .skip(1)
                .all(|g| g.len() == 3 && digits.contains(','));
            let normalised = if digits.contains('.') || thousands {
                digits.replace(',', "")
            } else {
                digits.replace(',', ".")
            };
            // A sentence-final dot ("in 30 days.") is not part of the number.
            let normalised = normalised.trim_end_matches('.');
            normalised.parse::<f64>().ok().map(|v| {
                if negative {
                    (format!("-{raw}"), -v)
                } else {
                    (raw.to_string(), v)
                }
            })
        })
        .collect()
}

/// The value of a number word ("ten" → 10, "percent" → a marker value that never matches a
/// fact unless the word itself is in the facts).
fn number_word(w: &str) -> Option<f64> {
    const WORDS: [(&str, f64); 25] = [
        ("zero", 0.0),
        ("two", 2.0),
        ("three", 3.0),
        ("four", 4.0),
        ("five", 5.0),
        ("six", 6.0),
        ("seven", 7.0),
        ("eight", 8.0),
        ("nine", 9.0),
        ("ten", 10.0),
        ("eleven", 11.0),
        ("twelve", 12.0),
        ("fifteen", 15.0),
        ("twenty", 20.0),
        ("thirty", 30.0),
        ("forty", 40.0),
        ("fifty", 50.0),
        ("hundred", 100.0),
        ("thousand", 1e3),
        ("million", 1e6),
        ("billion", 1e9),
        ("dozen", 12.0),
        ("percent", f64::NAN),
        ("double", f64::NAN),
        ("triple", f64::NAN),
    ];
    WORDS.iter().find(|(k, _)| *k == w).map(|(_, v)| *v)
}

/// Capitalised words that name something: any capitalised word not at a sentence start, and a
/// sentence-start word unless it is a common English word (a name can start a sentence too:
/// "Salesforce is ..."). All-caps words of two letters or more count as names.
fn names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut sentence_start = true;
    let mut last_end = 0usize;
    for m in WORD.find_iter(text) {
        let between = &text[last_end..m.start()];
        if between.contains(['.', '!', '?', ':', ';', '\n', '(', '"', '-', '—']) || last_end == 0
        {
            sentence_start = true;
        }
        last_end = m.end();
        let w = m.as_str();
        let first = w.chars().next().expect("non-empty word");
        let is_capitalised = first.is_uppercase();
        let start = std::mem::replace(&mut sentence_start, false);
        if !is_capitalised {
            continue;
        }
        if ALWAYS_OK.contains(&w) {
            continue;
        }
        let lower = w.to_lowercase();
        let common = COMMON.contains(lower.as_str())
            || lower
                .strip_suffix('s')
                .is_some_and(|singular| COMMON.contains(singular));
        let acronym = w.chars().count() >= 2 && w.chars().all(|c| !c.is_lowercase());
        if acronym || !start || !common {
            out.push(w.to_string());
        }
    }
    out
}

/// Capitalised forms that never name a third party.
const ALWAYS_OK: [&str; 3] = ["I", "OK", "AI"];

/// Common English words that start sentences of business prose; a capitalised word at a
/// sentence start that is one of these (or its plural) is not a name.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    "a about above accordingly act action actions add additionally address after again all also \
     although always an analyze and another any apply are as ask assign at average based be \
     because before begin below best both boost build but by call can check churn clear \
     collect communicate consider contact continue create customer customers deliver despite \
     do each educate encourage engage ensure especially even every expect explore finally \
     first focus follow following for from further furthermore gather give given go good \
     grow has have help here high highlight however identify if immediately implement improve \
     in include increase instead introduce invest is it its keep key launch lastly let leverage \
     likewise listen look low maintain make many meanwhile monitor moreover most next no not \
     note now offer on once one only or other our over overall partner personalize plan \
     prioritize proactively provide reach reduce regularly reward review run satisfaction \
     schedule second segment send sentiment set share show since so some start strengthen \
     such suggest summary support survey take target thank that the their them then there \
     therefore these they third this those though thus to track try understand unlike use \
     value we welcome what when where whether which while who why with within without work \
     yes you your"
        .split_whitespace()
        .collect()
});

#[cfg(test)]
mod tests {
    use super::*;

    const FACTS: &str = "Churn risk score 0.72. Risk factors: 45 days inactive; average sentiment -0.40; \
                         3 support tickets in the last 90 days; average support satisfaction 2.0 out of 5; \
                         lifetime value $1,250.00.";

    #[test]
    fn invented_figures_companies_and_products_fail() {
        for (text, why) in [
            (
                "Expect a 10% reduction in support requests.",
                Unfaithful::Number("10%".into()),
            ),
            (
                "Salesforce and Bossy are the key players.",
                Unfaithful::Name("Salesforce".into()),
            ),
            (
                "Offer The Ultimate Luxury Luxe 2018 bundle.",
                Unfaithful::Number("2018".into()),
            ),
            (
                "Increase support tickets to seven per month.",
                Unfaithful::Number("seven".into()),
            ),
            (
                "Give a twenty percent discount.",
                Unfaithful::Number("twenty".into()),
            ),
        ] {
            assert_eq!(check(text, FACTS, ""), Err(why), "{text}");
        }
    }

    #[test]
    fn grounded_prose_passes() {
        for text in [
            "The customer has been inactive for 45 days and filed 3 support tickets; call them.",
            "With a churn risk of 0.72 and satisfaction of 2.0 out of 5, offer a personal follow-up.",
            "Focus on the lifetime value of $1,250.00 and reach out this week.",
            "Consider a check-in call. Thank them for their loyalty.",
        ] {
            assert_eq!(check(text, FACTS, ""), Ok(()), "{text}");
        }
        // 0.7 is 0.70: numbers compare by value.
        assert_eq!(check("Risk is above 0.70.", "risk above 0.7", ""), Ok(()));
        assert_eq!(
            check("Offer The Ultimate Luxury Luxe bundle.", FACTS, ""),
            Err(Unfaithful::Name("Ultimate".into()))
        );
    }

    #[test]
    fn a_number_keeps_its_sign_and_a_claim_needs_the_facts() {
        // FACTS: average sentiment -0.40.
        assert_eq!(
            check("Average sentiment is 0.40.", FACTS, ""),
            Err(Unfaithful::Number("0.40".into()))
        );
        assert_eq!(check("Average sentiment is -0.40.", FACTS, ""), Ok(()));
        assert_eq!(
            check(
                "rated 1-5 by 3 support tickets.",
                "1 to 5; 3 support tickets",
                ""
            ),
            Ok(())
        );
        assert_eq!(
            check("The customer is positive about the service.", FACTS, ""),
            Err(Unfaithful::Claim("positive".into()))
        );
        let facts = "Average sentiment -0.75 (negative). Status: medium risk.";
        assert_eq!(
            check("The customer is negative; a medium risk.", facts, ""),
            Ok(())
        );
        assert_eq!(
            check("A low risk rating overall.", facts, ""),
            Err(Unfaithful::Claim("low risk".into()))
        );
        assert_eq!(
            check("Offer a high satisfaction guarantee.", facts, ""),
            Err(Unfaithful::Claim("high satisfaction".into()))
        );
    }

    #[test]
    fn loops_and_empty_text_fail() {
        let looping = "the customer is very happy with the service and the customer is very happy with the service";
        assert!(matches!(
            check(looping, FACTS, ""),
            Err(Unfaithful::Loop(_))
        ));
        assert_eq!(check("  ", FACTS, ""), Err(Unfaithful::Empty));
    }

    #[test]
    fn names_from_the_prompt_or_facts_pass() {
        let prompt = "Create a detailed profile of the \"premium\" customer segment.";
        assert_eq!(
            check("Premium customers buy often.", "Customers: 2.", prompt),
            Ok(())
        );
        assert_eq!(
            check("Premium customers love Nike.", "Customers: 2.", prompt),
            Err(Unfaithful::Name("Nike".into()))
        );
    }

    #[test]
    fn ground_falls_back_to_the_facts() {
        let g = ground("Salesforce is a key player.", FACTS, "");
        assert_eq!(g.grounding, Grounding::Fallback);
        assert_eq!(g.text, FACTS);
        assert!(g.rejected_because.unwrap().contains("Salesforce"));
        let g = ground(" Call them within 3 days. ", "3 support tickets", "");
        assert_eq!(g.grounding, Grounding::Checked);
        assert_eq!(g.text, "Call them within 3 days.");
    }
}
