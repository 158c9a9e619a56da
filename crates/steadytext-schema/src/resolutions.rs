//! The resolution playbook: what support does about a ticket, chosen by rule from concrete
//! actions written by people — never generated.
//!
//! A [`ResolutionPlaybook`] is data: an ordered list of [`ResolutionEntry`]s, each a taxonomy
//! category key, cause keywords and a resolution. The defaults ship with the crate
//! (`defaults/resolution_playbook.json`, [`ResolutionPlaybook::default`]); library users pass
//! their own ([`crate::Analyst::with_playbook`]), and a database keeps its own in
//! `steadytext.resolution_playbook` (seeded with the defaults).
//!
//! **Selection** ([`ResolutionPlaybook::select`]), for a ticket of category `c` with root cause
//! `r` and text `t`:
//! 1. the first entry of `c` (in playbook order) with a cause keyword in `r`;
//! 2. else the first entry of `c` with a cause keyword in `t`;
//! 3. else `c`'s default entry (its first entry without cause keywords);
//! 4. else the default entry of [`FALLBACK_CATEGORY`] (`other`), which every playbook has.
//!
//! Keywords match as everywhere else ([`crate::keywords`]).
//!
//! ```
//! use steadytext_schema::resolutions::{ResolutionPlaybook, Matched};
//!
//! let p = ResolutionPlaybook::default();
//! let s = p.select("billing_payment", "charged twice", "I was charged twice for one order.");
//! assert_eq!(s.entry.resolution, "Refund the duplicate charge and confirm by email with the refund reference.");
//! assert_eq!(s.matched, Matched::RootCause("twice".into()));
//! // An unknown category gets the catch-all.
//! assert_eq!(p.select("weather", "rain", "rain").entry.category, "other");
//! ```

use serde::{Deserialize, Serialize};

use crate::keywords::Words;

/// The category whose default entry every playbook must have: the catch-all.
pub const FALLBACK_CATEGORY: &str = "other";

/// The shipped defaults (`defaults/resolution_playbook.json`).
pub const DEFAULT_PLAYBOOK_JSON: &str = include_str!("../defaults/resolution_playbook.json");

/// One play: for tickets of `category` whose cause mentions one of `cause_keywords` (or, with
/// no keywords, any ticket of the category), do `resolution`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolutionEntry {
    /// A taxonomy category key, e.g. `shipping_delivery`.
    pub category: String,
    /// Keyword stems ([`crate::keywords`]); empty: the category's default entry.
    #[serde(default)]
    pub cause_keywords: Vec<String>,
    /// A concrete action, e.g. "Refund the duplicate charge and confirm by email".
    pub resolution: String,
}

impl ResolutionEntry {
    /// Whether this is its category's default (no cause keywords).
    pub fn is_default(&self) -> bool {
        self.cause_keywords.iter().all(|k| k.trim().is_empty())
    }
}

/// An ordered list of plays with a catch-all (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolutionPlaybook {
    entries: Vec<ResolutionEntry>,
}

/// What can be wrong with a playbook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolutionPlaybookError {
    /// No default entry (without cause keywords) for [`FALLBACK_CATEGORY`].
    #[error("the playbook has no default entry (no cause keywords) for category \"{FALLBACK_CATEGORY}\"")]
    NoFallback,
    /// An entry with an empty category or resolution.
    #[error("playbook entry {index} has an empty {field}")]
    Empty {
        /// Its position.
        index: usize,
        /// `category` or `resolution`.
        field: &'static str,
    },
    /// The JSON does not parse as a playbook.
    #[error("invalid playbook JSON: {0}")]
    Json(String),
}

/// Why an entry was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "keyword", rename_all = "snake_case")]
pub enum Matched {
    /// A cause keyword in the root cause.
    RootCause(String),
    /// A cause keyword in the ticket's text.
    TicketText(String),
    /// The category's default entry.
    CategoryDefault,
    /// The catch-all: the category has no entry that applies.
    Fallback,
}

/// The chosen entry and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'p> {
    /// The entry.
    pub entry: &'p ResolutionEntry,
    /// Why.
    pub matched: Matched,
}

impl Selection<'_> {
    /// The rule that fired, as listed in a ticket analysis's `rules`.
    pub fn rule(&self) -> String {
        let c = &self.entry.category;
        match &self.matched {
            Matched::RootCause(k) => {
                format!("resolution: playbook {c}, cause \"{k}\" in root cause")
            }
            Matched::TicketText(k) => format!("resolution: playbook {c}, cause \"{k}\" in ticket"),
            Matched::CategoryDefault => format!("resolution: playbook {c} default"),
            Matched::Fallback => format!("resolution: playbook {c} default (catch-all)"),
        }
    }
}

impl ResolutionPlaybook {
    /// A playbook from entries, in order: every category and resolution non-empty, and a default
    /// entry for [`FALLBACK_CATEGORY`]. Text is trimmed.
    pub fn new(entries: Vec<ResolutionEntry>) -> Result<Self, ResolutionPlaybookError> {
        let mut clean = Vec::with_capacity(entries.len());
        for (index, e) in entries.into_iter().enumerate() {
            let e = ResolutionEntry {
                category: e.category.trim().to_string(),
                cause_keywords: e
                    .cause_keywords
                    .into_iter()
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect(),
                resolution: e.resolution.trim().to_string(),
            };
            for (field, value) in [("category", &e.category), ("resolution", &e.resolution)] {
                if value.is_empty() {
                    return Err(ResolutionPlaybookError::Empty { index, field });
                }
            }
            clean.push(e);
        }
        if !clean
            .iter()
            .any(|e| e.category == FALLBACK_CATEGORY && e.is_default())
        {
            return Err(ResolutionPlaybookError::NoFallback);
        }
        Ok(Self { entries: clean })
    }

    /// A playbook from its JSON form, `{"entries": [{"category", "cause_keywords", "resolution"}, …]}`.
    pub fn from_json(json: &str) -> Result<Self, ResolutionPlaybookError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            entries: Vec<ResolutionEntry>,
        }
        let raw: Raw =
            serde_json::from_str(json).map_err(|e| ResolutionPlaybookError::Json(e.to_string()))?;
        Self::new(raw.entries)
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[ResolutionEntry] {
        &self.entries
    }

    /// A short, stable identity of the playbook's content.
    pub fn identity(&self) -> String {
        let json = serde_json::to_vec(&self.entries).unwrap_or_default();
        blake3::hash(&json).to_hex()[..16].to_string()
    }

    /// The entry for a ticket of `category` with `root_cause` and `ticket_text` (see the module
    /// docs for the rule). Always an entry: the catch-all when nothing else applies.
    pub fn select(&self, category: &str, root_cause: &str, ticket_text: &str) -> Selection<'_> {
        let of: Vec<&ResolutionEntry> = self
            .entries
            .iter()
            .filter(|e| e.category == category)
            .collect();
        for (words, by) in [
            (
                Words::new(root_cause),
                Matched::RootCause as fn(String) -> Matched,
            ),
            (Words::new(ticket_text), Matched::TicketText),
        ] {
            for e in &of {
                if let Some(k) = words.first_of(&e.cause_keywords) {
                    return Selection {
                        entry: e,
                        matched: by(k.to_string()),
                    };
                }
            }
        }
        if let Some(e) = of.iter().find(|e| e.is_default()) {
            return Selection {
                entry: e,
                matched: Matched::CategoryDefault,
            };
        }
        let fallback = self
            .entries
            .iter()
            .find(|e| e.category == FALLBACK_CATEGORY && e.is_default())
            .expect("a playbook always has a catch-all (checked by `new`)");
        Selection {
            entry: fallback,
            matched: Matched::Fallback,
        }
    }
}

impl Default for ResolutionPlaybook {
    /// The shipped playbook for the default e-commerce taxonomy.
    fn default() -> Self {
        Self::from_json(DEFAULT_PLAYBOOK_JSON).expect("the shipped playbook is valid")
    }
}

impl<'de> Deserialize<'de> for ResolutionPlaybook {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            entries: Vec<ResolutionEntry>,
        }
        let raw = Raw::deserialize(d)?;
        Self::new(raw.entries).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taxonomy::Taxonomy;
    use proptest::prelude::*;

    fn entry(category: &str, keywords: &[&str], resolution: &str) -> ResolutionEntry {
        ResolutionEntry {
            category: category.into(),
            cause_keywords: keywords.iter().map(|k| (*k).into()).collect(),
            resolution: resolution.into(),
        }
    }

    #[test]
    fn the_defaults_cover_every_default_category_with_concrete_actions() {
        let p = ResolutionPlaybook::default();
        for c in Taxonomy::default().categories() {
            let s = p.select(&c.key, "", "");
            assert_eq!(s.entry.category, c.key, "{} has a default entry", c.key);
            assert_eq!(s.matched, Matched::CategoryDefault);
        }
        for e in p.entries() {
            assert!(
                Taxonomy::default().get(&e.category).is_some(),
                "{} is a taxonomy key",
                e.category
            );
            assert!(e.resolution.ends_with('.'), "{}", e.resolution);
            assert!(
                e.resolution.split_whitespace().count() >= 6,
                "{}",
                e.resolution
            );
        }
    }

    #[test]
    fn the_seed_tickets_get_their_plays() {
        let p = ResolutionPlaybook::default();
        let late = p.select(
            "shipping_delivery",
            "Tracking shows no updates",
            "Late delivery. My order was supposed to arrive last week but still hasnt been delivered.",
        );
        assert!(late
            .entry
            .resolution
            .starts_with("Open a trace with the carrier"));
        assert_eq!(late.matched, Matched::RootCause("no updates".into()));
        let dead = p.select(
            "defects_durability",
            "product stopped working",
            "It wont turn on anymore",
        );
        assert!(dead
            .entry
            .resolution
            .starts_with("Send a replacement unit by express"));
        assert_eq!(dead.matched, Matched::RootCause("stopped working".into()));
    }

    #[test]
    fn root_cause_outranks_ticket_text_and_order_decides() {
        let p = ResolutionPlaybook::new(vec![
            entry("billing", &["card"], "A"),
            entry("billing", &["twice"], "B"),
            entry("billing", &[], "C"),
            entry("other", &[], "Z"),
        ])
        .unwrap();
        assert_eq!(
            p.select("billing", "charged twice", "my card")
                .entry
                .resolution,
            "B"
        );
        assert_eq!(
            p.select("billing", "charged", "my card, twice")
                .entry
                .resolution,
            "A"
        );
        assert_eq!(
            p.select("billing", "charged", "hello").entry.resolution,
            "C"
        );
        let s = p.select("shipping", "late", "late");
        assert_eq!(
            (s.entry.resolution.as_str(), &s.matched),
            ("Z", &Matched::Fallback)
        );
        assert_eq!(s.rule(), "resolution: playbook other default (catch-all)");
    }

    #[test]
    fn invalid_playbooks_are_refused() {
        assert_eq!(
            ResolutionPlaybook::new(vec![entry("billing", &[], "Refund.")]),
            Err(ResolutionPlaybookError::NoFallback)
        );
        assert_eq!(
            ResolutionPlaybook::new(vec![entry("other", &["x"], "Refund.")]),
            Err(ResolutionPlaybookError::NoFallback),
            "the catch-all has no keywords"
        );
        assert_eq!(
            ResolutionPlaybook::new(vec![entry("other", &[], "  ")]),
            Err(ResolutionPlaybookError::Empty {
                index: 0,
                field: "resolution"
            })
        );
        assert!(matches!(
            ResolutionPlaybook::from_json(
                r#"{"entries": [{"category": "other", "resolution": "x", "extra": 1}]}"#
            ),
            Err(ResolutionPlaybookError::Json(_))
        ));
        let ok: ResolutionPlaybook = serde_json::from_str(
            r#"{"entries": [{"category": "other", "resolution": " Call. "}]}"#,
        )
        .unwrap();
        assert_eq!(ok.entries()[0].resolution, "Call.");
        assert!(serde_json::from_str::<ResolutionPlaybook>(r#"{"entries": []}"#).is_err());
    }

    #[test]
    fn a_playbook_round_trips_through_json() {
        let p = ResolutionPlaybook::default();
        let back: ResolutionPlaybook =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.identity(), p.identity());
    }

    proptest! {
        /// Whatever the ticket, the chosen entry is in the playbook, of the ticket's category
        /// unless the catch-all was used, and the keyword that chose it is in the text it names.
        #[test]
        fn selection_is_total_and_explained(
            category in prop_oneof![
                Just("shipping_delivery".to_string()), Just("billing_payment".to_string()),
                Just("defects_durability".to_string()), Just("nope".to_string()),
            ],
            cause in "[a-z ']{0,40}",
            text in "[a-z ']{0,80}",
        ) {
            let p = ResolutionPlaybook::default();
            let s = p.select(&category, &cause, &text);
            prop_assert!(p.entries().contains(s.entry));
            match &s.matched {
                Matched::RootCause(k) => {
                    prop_assert!(Words::new(&cause).contains(k));
                    prop_assert_eq!(&s.entry.category, &category);
                }
                Matched::TicketText(k) => {
                    prop_assert!(Words::new(&text).contains(k));
                    prop_assert_eq!(&s.entry.category, &category);
                }
                Matched::CategoryDefault => prop_assert_eq!(&s.entry.category, &category),
                Matched::Fallback => prop_assert_eq!(s.entry.category.as_str(), FALLBACK_CATEGORY),
            }
        }
    }
}
