//! The feedback taxonomy: the closed set of categories a review theme or a ticket is filed
//! under, so dashboards and segments aggregate by category rather than by free strings.
//!
//! A [`Taxonomy`] is data: library users build their own ([`Taxonomy::new`], or JSON through
//! serde), a database keeps its own in `steadytext.taxonomy` (seeded with
//! [`Taxonomy::default`]). A phrase is filed by a documented rule first — the first category
//! (in taxonomy order) one of whose keywords begins a word of the phrase, or of its sentence
//! when the phrase itself has none ([`Taxonomy::match_keywords`]) — and by model scoring over the
//! category labels only when no keyword matches.
//!
//! ```
//! use steadytext_schema::taxonomy::Taxonomy;
//!
//! let t = Taxonomy::default();
//! assert_eq!(t.match_keywords("arrived two weeks late", "").unwrap().key, "shipping_delivery");
//! assert_eq!(t.match_keywords("stopped working", "").unwrap().key, "defects_durability");
//! assert_eq!(t.match_keywords("way too expensive", "").unwrap().key, "price_value");
//! // The phrase has no keyword; its sentence does.
//! assert_eq!(t.match_keywords("so rude", "The support agent was so rude.").unwrap().key, "customer_service");
//! assert!(t.match_keywords("lovely", "Lovely.").is_none());
//! ```

use serde::{Deserialize, Serialize};

use crate::keywords::Words;

/// One category: a stable key (stored), a label (shown, and what model scoring chooses
/// among) and the keyword stems of its rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Stable identifier, e.g. `shipping_delivery`.
    pub key: String,
    /// Human-readable label, e.g. `shipping & delivery`.
    pub label: String,
    /// Word stems: a word that begins with one (after case and accent folding) matches; a
    /// stem under four letters matches only the whole word or its plural. A multi-word stem
    /// matches consecutive words (all but the last whole).
    #[serde(default)]
    pub keywords: Vec<String>,
}

impl Category {
    /// A category from its parts.
    pub fn new(key: &str, label: &str, keywords: &[&str]) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            keywords: keywords.iter().map(|k| (*k).into()).collect(),
        }
    }
}

/// An ordered set of categories; the last is the catch-all when it is keyed `other`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxonomy {
    categories: Vec<Category>,
}

/// What can be wrong with a taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxonomyError {
    /// No categories.
    #[error("a taxonomy needs at least two categories")]
    TooFew,
    /// A key or label appears twice, or is empty.
    #[error("category {0:?} is empty or appears twice")]
    Duplicate(String),
}

impl Taxonomy {
    /// A taxonomy from categories: at least two, keys and labels non-empty and unique.
    pub fn new(categories: Vec<Category>) -> Result<Self, TaxonomyError> {
        if categories.len() < 2 {
            return Err(TaxonomyError::TooFew);
        }
        let mut keys = std::collections::HashSet::new();
        let mut labels = std::collections::HashSet::new();
        for c in &categories {
            if c.key.trim().is_empty() || !keys.insert(c.key.clone()) {
                return Err(TaxonomyError::Duplicate(c.key.clone()));
            }
            if c.label.trim().is_empty() || !labels.insert(c.label.to_lowercase()) {
                return Err(TaxonomyError::Duplicate(c.label.clone()));
            }
        }
        Ok(Self { categories })
    }

    /// The categories, in order.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The category with this key.
    pub fn get(&self, key: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.key == key)
    }

    /// The category with this label (case-insensitive).
    pub fn by_label(&self, label: &str) -> Option<&Category> {
        self.categories
            .iter()
            .find(|c| c.label.eq_ignore_ascii_case(label))
    }

    /// The labels, in order (the options of model scoring).
    pub fn labels(&self) -> Vec<&str> {
        self.categories.iter().map(|c| c.label.as_str()).collect()
    }

    /// A short, stable identity of the taxonomy's content (part of analyses' cache identity
    /// and stored beside results).
    ///
    /// ```
    /// use steadytext_schema::taxonomy::Taxonomy;
    /// assert_eq!(Taxonomy::default().identity(), Taxonomy::default().identity());
    /// assert_eq!(Taxonomy::default().identity().len(), 16);
    /// ```
    pub fn identity(&self) -> String {
        let json = serde_json::to_vec(&self.categories).unwrap_or_default();
        blake3::hash(&json).to_hex()[..16].to_string()
    }

    /// The rule: the first category with a keyword that begins a word of `phrase`; failing
    /// that, of `context` (the phrase's sentence). `None` when neither has one.
    pub fn match_keywords(&self, phrase: &str, context: &str) -> Option<&Category> {
        self.first_match(phrase)
            .or_else(|| self.first_match(context))
    }

    fn first_match(&self, text: &str) -> Option<&Category> {
        let words = Words::new(text);
        if words.is_empty() {
            return None;
        }
        self.categories
            .iter()
            .find(|c| c.keywords.iter().any(|k| words.contains(k)))
    }
}

impl Default for Taxonomy {
    /// A taxonomy for e-commerce feedback. Order matters: a defect outranks the product's
    /// quality, a refund outranks billing, and so on.
    fn default() -> Self {
        let c = Category::new;
        Self {
            categories: vec![
                c(
                    "defects_durability",
                    "defects & durability",
                    &[
                        "broke",
                        "broken",
                        "break",
                        "defect",
                        "faulty",
                        "stopped working",
                        "stop working",
                        "not working",
                        "doesn't work",
                        "does not work",
                        "didn't work",
                        "dead",
                        "crack",
                        "tore",
                        "torn",
                        "ripped",
                        "fell apart",
                        "malfunction",
                        "durab",
                        "flimsy",
                        "wore out",
                        "worn",
                        "leak",
                        "died",
                        "damaged",
                        "fails",
                        "failed",
                    ],
                ),
                c(
                    "shipping_delivery",
                    "shipping & delivery",
                    &[
                        "ship",
                        "deliver",
                        "arriv",
                        "late",
                        "courier",
                        "tracking",
                        "transit",
                        "dispatch",
                        "lost in",
                        "never came",
                        "never received",
                        "postage",
                        "carrier",
                        "days to",
                        "weeks to",
                    ],
                ),
                c(
                    "packaging",
                    "packaging",
                    &[
                        "packag",
                        "box",
                        "boxes",
                        "cardboard",
                        "wrap",
                        "packed",
                        "seal",
                        "parcel",
                    ],
                ),
                c(
                    "returns_refunds",
                    "returns & refunds",
                    &[
                        "refund",
                        "return",
                        "exchange",
                        "replacement",
                        "money back",
                        "warrant",
                    ],
                ),
                c(
                    "billing_payment",
                    "billing & payment",
                    &[
                        "bill",
                        "charge",
                        "payment",
                        "invoice",
                        "card",
                        "paid",
                        "pay",
                        "subscription",
                        "double charged",
                        "overcharg",
                    ],
                ),
                c(
                    "price_value",
                    "price & value",
                    &[
                        "price",
                        "pric",
                        "cost",
                        "expensive",
                        "cheap",
                        "value",
                        "worth",
                        "money",
                        "afford",
                        "overpriced",
                        "bargain",
                        "deal",
                    ],
                ),
                c(
                    "customer_service",
                    "customer service",
                    &[
                        "support",
                        "service",
                        "staff",
                        "agent",
                        "representative",
                        "helpdesk",
                        "help desk",
                        "respon",
                        "rude",
                        "helpful",
                        "unhelpful",
                        "call center",
                        "customer care",
                        "contacted",
                        "email back",
                    ],
                ),
                c(
                    "account_access",
                    "account & access",
                    &[
                        "account",
                        "login",
                        "log in",
                        "password",
                        "sign in",
                        "signin",
                        "locked out",
                        "access",
                        "two-factor",
                        "verification",
                    ],
                ),
                c(
                    "technical_issue",
                    "technical issue",
                    &[
                        "outage",
                        "down",
                        "crash",
                        "error",
                        "bug",
                        "app",
                        "website",
                        "site",
                        "server",
                        "the update",
                        "an update",
                        "app update",
                        "software",
                        "firmware",
                        "connect",
                        "sync",
                        "wifi",
                        "bluetooth",
                        "install",
                    ],
                ),
                c(
                    "usability",
                    "usability",
                    &[
                        "easy",
                        "simple",
                        "intuitive",
                        "confusing",
                        "complicated",
                        "hard to",
                        "difficult",
                        "instructions",
                        "setup",
                        "set up",
                        "assemble",
                        "assembly",
                        "user-friendly",
                        "to use",
                    ],
                ),
                c(
                    "size_fit",
                    "size & fit",
                    &["size", "fit", "small", "large", "tight", "loose", "big"],
                ),
                c(
                    "product_quality",
                    "product quality",
                    &[
                        "quality",
                        "material",
                        "build",
                        "made",
                        "design",
                        "sturdy",
                        "solid",
                        "comfortable",
                        "comfort",
                        "perform",
                        "sound",
                        "battery",
                        "screen",
                        "taste",
                        "smell",
                        "color",
                        "colour",
                        "look",
                        "feel",
                        "works",
                        "product",
                        "feature",
                    ],
                ),
                c("other", "other", &[]),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taxonomy_round_trips_through_json() {
        let t = Taxonomy::default();
        let json = serde_json::to_string(&t).unwrap();
        let back: Taxonomy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.identity(), t.identity());
    }

    #[test]
    fn invalid_taxonomies_are_refused() {
        assert_eq!(
            Taxonomy::new(vec![Category::new("a", "A", &[])]),
            Err(TaxonomyError::TooFew)
        );
        assert!(matches!(
            Taxonomy::new(vec![
                Category::new("a", "A", &[]),
                Category::new("a", "B", &[])
            ]),
            Err(TaxonomyError::Duplicate(_))
        ));
        assert!(matches!(
            Taxonomy::new(vec![
                Category::new("a", "A", &[]),
                Category::new("b", "a", &[])
            ]),
            Err(TaxonomyError::Duplicate(_))
        ));
    }

    #[test]
    fn keywords_match_word_starts_folded() {
        let t = Taxonomy::default();
        assert_eq!(
            t.match_keywords("LIVRAISON", "").map(|c| c.key.as_str()),
            None
        );
        assert_eq!(
            t.match_keywords("Shipping was slow", "").unwrap().key,
            "shipping_delivery"
        );
        // "rebuild" does not begin with "build"; "unhelpful" matches its own keyword.
        assert_eq!(
            t.match_keywords("rebuild", "").map(|c| c.key.as_str()),
            None
        );
        assert_eq!(
            t.match_keywords("unhelpful", "").unwrap().key,
            "customer_service"
        );
        // Multi-word keywords need their words in a row.
        assert_eq!(
            t.match_keywords("it stopped working", "").unwrap().key,
            "defects_durability"
        );
        // A changed taxonomy has another identity.
        let mut other = t.clone();
        other.categories[0].keywords.push("wobbly".into());
        assert_ne!(other.identity(), t.identity());
    }
}
