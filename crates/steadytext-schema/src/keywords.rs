//! Keyword stems matched against a text: the one rule behind taxonomy categories
//! ([`Taxonomy::match_keywords`](crate::taxonomy::Taxonomy::match_keywords)), triage rules
//! ([`crate::ticket_triage`]), resolution causes ([`crate::resolutions`]) and ticket tags.
//!
//! The text is case- and accent-folded ([`crate::privacy::fold`]) and cut into words (letters,
//! digits and inner apostrophes). A keyword is one or more stems: a word matches a stem it
//! begins with, except that a stem under four letters matches only the whole word or its plural
//! ("app" is not "apparently"); the words of a multi-word keyword must be consecutive and all
//! but the last whole ("stopped working" matches "stopped working", not "stop working").
//!
//! ```
//! use steadytext_schema::keywords::Words;
//!
//! let w = Words::new("The site is DOWN and I can't log in!");
//! assert!(w.contains("site is down"));
//! assert!(w.contains("can't log in"));
//! assert!(!w.contains("log out"));
//! assert_eq!(w.first_of(&["refund", "site"]), Some("site"));
//! ```

use crate::privacy::fold;

/// A text's folded words, ready to match keywords against.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Words(Vec<String>);

impl Words {
    /// The words of `text` (folded).
    pub fn new(text: &str) -> Self {
        Self(
            fold(text)
                .split(|c: char| !c.is_alphanumeric() && c != '\'')
                .map(|w| w.trim_matches('\''))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }

    /// Whether the text has no words.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `keyword` occurs in the text (see the module docs). An empty keyword never does.
    pub fn contains(&self, keyword: &str) -> bool {
        let stems: Vec<String> = fold(keyword)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        !stems.is_empty()
            && self.0.windows(stems.len()).any(|win| {
                win.iter().zip(&stems).enumerate().all(|(i, (w, s))| {
                    if i + 1 < stems.len() {
                        w == s
                    } else {
                        word_matches(w, s)
                    }
                })
            })
    }

    /// The first of `keywords` that occurs in the text.
    pub fn first_of<'k, K: AsRef<str>>(&self, keywords: &'k [K]) -> Option<&'k str> {
        keywords
            .iter()
            .map(AsRef::as_ref)
            .find(|k| self.contains(k))
    }
}

/// A word matches a stem it begins with; a stem under four letters only the whole word or its
/// plural.
fn word_matches(word: &str, stem: &str) -> bool {
    if stem.chars().count() < 4 {
        word == stem || word.strip_suffix('s') == Some(stem)
    } else {
        word.starts_with(stem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_short_stems_and_phrases() {
        let w = Words::new("Apparently the apps crashed; it stopped working. Wont turn on.");
        assert!(w.contains("app"), "plural of a short stem");
        assert!(!Words::new("apparently").contains("app"));
        assert!(w.contains("crash"));
        assert!(w.contains("stopped working"));
        assert!(
            !w.contains("stop working"),
            "all but the last word are whole"
        );
        assert!(w.contains("wont turn on"));
        assert!(!w.contains(""));
        assert!(!w.contains("   "));
        assert!(
            Words::new("CAN’T LOG IN").contains("can't log in"),
            "curly apostrophe"
        );
        assert!(Words::new("“Charged twice”").contains("charged twice"));
    }
}
