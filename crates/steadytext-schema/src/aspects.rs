//! Review aspects: each theme of a review is a phrase quoted from it, filed under a
//! [`Taxonomy`] category, with the customer's polarity about it (aspect-level sentiment).
//!
//! The model answers one JSON value whose phrases are an `enum` of the review's
//! [`quotable_spans`](crate::quote::quotable_spans) ([`quoted_themes_schema`]), so a theme
//! cannot be a paraphrase or an invention. Each phrase's polarity is the calibrated sentiment
//! classifier's ([`crate::SentimentModel`]) on the sentence that holds it — not the model's
//! greedy guess inside the JSON, which called "Very disappointed" positive. The category is a
//! documented keyword rule ([`Taxonomy::match_keywords`]) and model scoring only when no
//! keyword matches.
//!
//! ```
//! use steadytext_schema::aspects::{quoted_themes_schema, QuotedThemes};
//!
//! let schema = quoted_themes_schema(&["slow delivery".into(), "great sound".into()]);
//! assert_eq!(schema["properties"]["themes"]["maxItems"], 3);
//! assert_eq!(schema["properties"]["themes"]["items"]["enum"][1], "great sound");
//!
//! let out: QuotedThemes = serde_json::from_str(r#"{"themes": ["slow delivery"]}"#).unwrap();
//! assert_eq!(out.themes, ["slow delivery"]);
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::sentiment::Polarity;
use crate::taxonomy::Taxonomy;
use crate::themes::MAX_THEMES;

/// One aspect of a review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewAspect {
    /// The phrase, exactly as the review wrote it.
    pub phrase: String,
    /// The [`Taxonomy`] category key it is filed under.
    pub category: String,
    /// The customer's opinion of it.
    pub polarity: Polarity,
    /// How the category was decided.
    pub categorised_by: CategorisedBy,
}

/// How an aspect's category was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CategorisedBy {
    /// A keyword of the category occurs in the phrase.
    Phrase,
    /// A keyword of the category occurs in the phrase's sentence.
    Sentence,
    /// No keyword matched; the model's scoring over the category labels chose it.
    Model,
}

/// What the model answers: up to three phrases, each one of the offered ones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotedThemes {
    /// The themes in the model's order.
    pub themes: Vec<String>,
}

/// The JSON Schema of [`QuotedThemes`] for a review whose quotable phrases are `spans` (not
/// empty): 1 to [`MAX_THEMES`] themes, each one of `spans`.
pub fn quoted_themes_schema(spans: &[String]) -> Value {
    json!({
        "type": "object",
        "properties": {
            "themes": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_THEMES,
                "items": {"type": "string", "enum": spans},
            }
        },
        "required": ["themes"],
        "additionalProperties": false,
    })
}

/// The rule half of categorisation: the category of `phrase` (found in `sentence`) by
/// keywords, with how it was found; `None` when the model must choose.
///
/// ```
/// use steadytext_schema::{aspects::{rule_category, CategorisedBy}, taxonomy::Taxonomy};
/// let t = Taxonomy::default();
/// assert_eq!(rule_category(&t, "late", "It came late."), Some(("shipping_delivery".into(), CategorisedBy::Phrase)));
/// assert_eq!(rule_category(&t, "so slow", "The agent was so slow."), Some(("customer_service".into(), CategorisedBy::Sentence)));
/// assert_eq!(rule_category(&t, "lovely", "Lovely."), None);
/// ```
pub fn rule_category(
    taxonomy: &Taxonomy,
    phrase: &str,
    sentence: &str,
) -> Option<(String, CategorisedBy)> {
    if let Some(c) = taxonomy.match_keywords(phrase, "") {
        return Some((c.key.clone(), CategorisedBy::Phrase));
    }
    taxonomy
        .match_keywords("", sentence)
        .map(|c| (c.key.clone(), CategorisedBy::Sentence))
}

/// Per category, how many aspects are positive, neutral and negative — what the dashboard and
/// segment profiles aggregate instead of free strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TopicCount {
    /// The category key.
    pub category: String,
    /// Positive aspects.
    pub positive: u64,
    /// Neutral aspects.
    pub neutral: u64,
    /// Negative aspects.
    pub negative: u64,
}

impl TopicCount {
    /// How a prompt or report states it: the category's label (from `taxonomy`, else the
    /// key) and its non-zero counts, e.g. `shipping & delivery (2 negative, 1 positive)`.
    ///
    /// ```
    /// use steadytext_schema::{aspects::TopicCount, taxonomy::Taxonomy};
    /// let t = TopicCount { category: "shipping_delivery".into(), positive: 1, neutral: 0, negative: 2 };
    /// assert_eq!(t.phrase(&Taxonomy::default()), "shipping & delivery (2 negative, 1 positive)");
    /// ```
    pub fn phrase(&self, taxonomy: &Taxonomy) -> String {
        let label = taxonomy
            .get(&self.category)
            .map_or(self.category.as_str(), |c| c.label.as_str());
        let parts: Vec<String> = [
            (self.negative, "negative"),
            (self.neutral, "neutral"),
            (self.positive, "positive"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
        format!("{label} ({})", parts.join(", "))
    }

    /// All aspects of the category.
    pub fn total(&self) -> u64 {
        self.positive + self.neutral + self.negative
    }
}

/// Count `aspects` by category, most mentioned first (ties by category key).
///
/// ```
/// use steadytext_schema::{aspects::{count_topics, ReviewAspect, CategorisedBy}, Polarity};
/// let a = |c: &str, p| ReviewAspect { phrase: "x".into(), category: c.into(), polarity: p, categorised_by: CategorisedBy::Phrase };
/// let counts = count_topics([&a("price_value", Polarity::Negative), &a("packaging", Polarity::Positive), &a("price_value", Polarity::Positive)]);
/// assert_eq!(counts[0].category, "price_value");
/// assert_eq!((counts[0].positive, counts[0].negative), (1, 1));
/// ```
pub fn count_topics<'a>(aspects: impl IntoIterator<Item = &'a ReviewAspect>) -> Vec<TopicCount> {
    count_topics_counted(
        aspects
            .into_iter()
            .map(|a| (a.category.as_str(), a.polarity, 1)),
    )
}

/// [`count_topics`] from counts already made (e.g. `GROUP BY category, polarity` in SQL).
pub fn count_topics_counted<'a>(
    counted: impl IntoIterator<Item = (&'a str, Polarity, u64)>,
) -> Vec<TopicCount> {
    let mut by: std::collections::BTreeMap<&str, TopicCount> = Default::default();
    for (category, polarity, n) in counted {
        let t = by.entry(category).or_insert_with(|| TopicCount {
            category: category.to_string(),
            positive: 0,
            neutral: 0,
            negative: 0,
        });
        match polarity {
            Polarity::Positive => t.positive += n,
            Polarity::Neutral => t.neutral += n,
            Polarity::Negative => t.negative += n,
        }
    }
    let mut out: Vec<TopicCount> = by.into_values().collect();
    out.sort_by(|a, b| b.total().cmp(&a.total()).then(a.category.cmp(&b.category)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aspects_serialise_with_snake_case_provenance() {
        let a = ReviewAspect {
            phrase: "slow delivery".into(),
            category: "shipping_delivery".into(),
            polarity: Polarity::Negative,
            categorised_by: CategorisedBy::Model,
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["categorised_by"], "model");
        assert_eq!(v["polarity"], "negative");
        assert_eq!(serde_json::from_value::<ReviewAspect>(v).unwrap(), a);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(serde_json::from_str::<QuotedThemes>(r#"{"themes": ["x"], "extra": 1}"#).is_err());
    }
}
