//! Review themes and ticket tags: short labels, normalised.
//!
//! In our design themes are phrases quoted from the review ([`crate::aspects`], generated
//! against an `enum` of the review's own phrases), not free text split on `", "` as the seed
//! does. Labels are still normalised with [`normalize_themes`] before they are stored.

use std::collections::HashSet;

use crate::util;

/// At most this many themes per review (the seed asks for 3).
pub const MAX_THEMES: usize = 3;
/// At most this many tags per ticket analysis.
pub const MAX_TAGS: usize = 5;

/// Normalise theme labels: trim, collapse inner whitespace, drop empties, drop case-insensitive
/// duplicates (the first spelling wins), keep at most [`MAX_THEMES`], in the given order.
///
/// ```
/// use steadytext_schema::normalize_themes;
///
/// let raw = vec![" Quality ".into(), "".into(), "quality".into(), "customer  service".into(),
///                "price".into(), "shipping".into()];
/// assert_eq!(normalize_themes(raw), ["Quality", "customer service", "price"]);
/// ```
pub fn normalize_themes(themes: Vec<String>) -> Vec<String> {
    normalize_labels(themes, MAX_THEMES)
}

/// [`normalize_themes`] with a different cap (ticket tags use [`MAX_TAGS`]).
pub fn normalize_labels(labels: Vec<String>, max: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    labels
        .into_iter()
        .map(|l| util::collapse_whitespace(&l))
        .filter(|l| !l.is_empty())
        .filter(|l| seen.insert(l.to_lowercase()))
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_style_output_with_odd_separators_still_normalises() {
        let from_model = vec!["quality; price".into(), "Price ".into(), "\n".into()];
        assert_eq!(normalize_themes(from_model), ["quality; price", "Price"]);
    }

    #[test]
    fn unicode_case_folding() {
        let v = vec!["Émotion".into(), "émotion".into(), "ÉMOTION".into()];
        assert_eq!(normalize_themes(v), ["Émotion"]);
    }

    proptest! {
        #[test]
        fn normalised_themes_are_few_trimmed_nonempty_and_unique(v in proptest::collection::vec("[ a-zA-Z\t\n]{0,12}", 0..12)) {
            let out = normalize_themes(v.clone());
            prop_assert!(out.len() <= MAX_THEMES);
            let mut lower = HashSet::new();
            for t in &out {
                prop_assert!(!t.is_empty());
                prop_assert_eq!(t.trim(), t.as_str());
                prop_assert!(!t.contains("  "));
                prop_assert!(lower.insert(t.to_lowercase()));
            }
            // Idempotent.
            prop_assert_eq!(normalize_themes(out.clone()), out);
        }
    }
}
