//! Words quoted from an input: the closed set of phrases a theme or a root cause may be.
//!
//! A 135M model paraphrases, invents ("FedEx" in a review that never names a carrier) and
//! pads ("but could be better"). Instead of asking for a phrase and hoping, the analyses give
//! the model the list of phrases it may answer with — every run of 1 to [`MAX_QUOTE_WORDS`]
//! words of the input that stays inside one clause, does not begin or end with a function word
//! and holds at least one content word — as a JSON Schema `enum`, enforced token by token. What
//! comes back is then checked again: [`is_quoted`] against the original text.
//!
//! ```
//! use steadytext_schema::quote::{quotable_spans, is_quoted};
//!
//! let spans = quotable_spans("Broke after one week, and support was unhelpful.", 400);
//! assert!(spans.iter().any(|s| s == "Broke after one week"));
//! assert!(spans.iter().any(|s| s == "support was unhelpful"));
//! // Never across a clause boundary, never starting or ending with a function word.
//! assert!(!spans.iter().any(|s| s.contains("week, and")));
//! assert!(!spans.iter().any(|s| s.starts_with("and ") || s.ends_with(" was")));
//! assert!(spans.iter().all(|s| is_quoted(s, "Broke after one week, and support was unhelpful.")));
//! ```

use std::collections::HashSet;
use std::sync::LazyLock;

/// A quoted phrase has at most this many words.
pub const MAX_QUOTE_WORDS: usize = 6;
/// At most this many candidate phrases are offered for one text (the shortest first within
/// each start position, earlier positions first).
pub const MAX_QUOTE_CANDIDATES: usize = 600;

/// The phrases of `text` a quote may be, in reading order (by start, then length), each an
/// exact substring of `text`, without duplicates, at most `limit` of them. Redaction
/// placeholders (`[email]`, `[name]`, …) and markup such as control-token text
/// (`<|im_end|>`) are never part of a phrase.
pub fn quotable_spans(text: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for clause in clauses(text) {
        let words = words(clause);
        for start in 0..words.len() {
            if !starts_ok(words[start].1) {
                continue;
            }
            for end in start..words.len().min(start + MAX_QUOTE_WORDS) {
                let w = words[end].1;
                if is_placeholder(w) {
                    break;
                }
                if !ends_ok(w) {
                    continue;
                }
                if !words[start..=end].iter().any(|(_, w)| is_content(w)) {
                    continue;
                }
                let (s, _) = words[start];
                let (e, last) = words[end];
                let span = &clause[s..e + last.len()];
                if seen.insert(span.to_string()) {
                    out.push(span.to_string());
                    if out.len() >= limit {
                        return out;
                    }
                }
            }
        }
    }
    out
}

/// Whether `phrase` occurs verbatim in `text` (whitespace runs compare equal; case does not
/// matter). An empty phrase is not a quote.
///
/// ```
/// use steadytext_schema::quote::is_quoted;
/// assert!(is_quoted("slow  delivery", "Very slow delivery."));
/// assert!(is_quoted("Slow delivery", "very slow delivery"));
/// assert!(!is_quoted("FedEx", "The courier lost it."));
/// assert!(!is_quoted(" ", "anything"));
/// ```
pub fn is_quoted(phrase: &str, text: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let p = norm(phrase);
    !p.is_empty() && norm(text).contains(&p)
}

/// The sentence of `text` that contains `phrase` (the first such), trimmed; `None` when the
/// phrase is not in the text.
///
/// ```
/// use steadytext_schema::quote::sentence_containing;
/// let t = "Arrived fast. The strap broke after a week! Otherwise fine.";
/// assert_eq!(sentence_containing(t, "strap broke"), Some("The strap broke after a week!"));
/// ```
pub fn sentence_containing<'t>(text: &'t str, phrase: &str) -> Option<&'t str> {
    sentences(text).find(|s| is_quoted(phrase, s))
}

/// A summary quoted from the review: the sentence holding the first of `phrases` that is in
/// `text` (the model's lead theme), else the text's first sentence; cut between words to
/// [`MAX_SUMMARY_CHARS`] (marked `…`). Empty when `text` has no words. Every word of it is
/// the review's own.
///
/// ```
/// use steadytext_schema::quote::summary_sentence;
/// let t = "I ordered in May. The strap broke after a week! Otherwise fine.";
/// assert_eq!(summary_sentence(t, &["strap broke"]), "The strap broke after a week!");
/// assert_eq!(summary_sentence(t, &["not there"]), "I ordered in May.");
/// assert_eq!(summary_sentence::<&str>("  ", &[]), "");
/// ```
pub fn summary_sentence<S: AsRef<str>>(text: &str, phrases: &[S]) -> String {
    let sentence = phrases
        .iter()
        .find_map(|p| sentence_containing(text, p.as_ref()))
        .or_else(|| sentences(text).next())
        .unwrap_or("");
    let sentence = sentence.split_whitespace().collect::<Vec<_>>().join(" ");
    if sentence.chars().count() <= MAX_SUMMARY_CHARS {
        return sentence;
    }
    let mut cut = String::new();
    for w in sentence.split_whitespace() {
        if cut.chars().count() + w.chars().count() + 1 > MAX_SUMMARY_CHARS {
            break;
        }
        if !cut.is_empty() {
            cut.push(' ');
        }
        cut.push_str(w);
    }
    format!("{}…", cut.trim_end_matches([',', ';', ':']))
}

/// A quoted summary is at most this many characters (before its `…`).
pub const MAX_SUMMARY_CHARS: usize = 240;

/// The content words of `text` (lower-cased, outer punctuation stripped, function words and
/// redaction placeholders left out): what a summary's novel-word rate counts.
///
/// ```
/// use steadytext_schema::quote::content_words;
/// assert_eq!(content_words("The strap broke, sadly! Mail [email]."), ["strap", "broke", "sadly", "mail"]);
/// ```
pub fn content_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| !is_placeholder(w))
        .map(|w| folded(w.trim_matches(|c: char| !c.is_alphanumeric())))
        .filter(|w| !w.is_empty() && is_content(w))
        .collect()
}

/// The sentences of `text`, trimmed, each with its closing punctuation.
///
/// ```
/// use steadytext_schema::quote::sentences;
/// let s: Vec<_> = sentences("Good. Version 2.5 broke!\nAsk me").collect();
/// assert_eq!(s, ["Good.", "Version 2.5 broke!", "Ask me"]);
/// ```
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = i + c.len_utf8();
        let boundary = match c {
            '\n' => true,
            '.' | '!' | '?' => chars.peek().is_none_or(|(_, n)| n.is_whitespace()),
            _ => false,
        };
        if boundary {
            out.push(text[start..end].trim());
            start = end;
        }
    }
    out.push(text[start..].trim());
    out.into_iter().filter(|s| !s.is_empty())
}

/// Clauses: sentences further cut at `,`, `;`, `:`, dashes and brackets.
fn clauses(text: &str) -> impl Iterator<Item = &str> {
    sentences(text).flat_map(|s| {
        s.split([',', ';', ':', '(', ')', '"', '“', '”', '—', '–'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
    })
}

/// The words of a clause with their byte offsets, outer punctuation stripped (inner
/// apostrophes, hyphens and dots stay: "don't", "well-made", "2.5").
fn words(clause: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for raw in clause.split_whitespace() {
        let at = offset + clause[offset..].find(raw).unwrap_or(0);
        offset = at + raw.len();
        if is_placeholder(raw) {
            out.push((at, raw));
            continue;
        }
        let lead = raw.len() - raw.trim_start_matches(|c: char| !c.is_alphanumeric()).len();
        let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
        if !word.is_empty() {
            out.push((at + lead, word));
        }
    }
    out
}

/// Words no phrase may hold: redaction placeholders (`[email]`) and markup or control-token
/// text (`<|im_end|>`, `{...}`, `\n`-escapes).
fn is_placeholder(word: &str) -> bool {
    word.contains(['[', ']', '<', '>', '|', '{', '}', '\\'])
}

fn folded(word: &str) -> String {
    word.to_lowercase().replace('’', "'")
}

/// A content word: not a function word, and at least two letters or digits ("b)" of a list
/// is not a topic).
fn is_content(word: &str) -> bool {
    !FUNCTION_WORDS.contains(folded(word).as_str())
        && word.chars().filter(|c| c.is_alphanumeric()).count() >= 2
}

fn starts_ok(word: &str) -> bool {
    !is_placeholder(word) && !NO_START.contains(folded(word).as_str())
}

fn ends_ok(word: &str) -> bool {
    !FUNCTION_WORDS.contains(folded(word).as_str())
}

/// Words that carry no topic of their own.
static FUNCTION_WORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    [
        "a", "an", "the", "and", "or", "but", "nor", "so", "yet", "if", "then", "than", "that",
        "this", "these", "those", "it", "its", "it's", "i", "i'm", "i've", "i'd", "me", "my", "we",
        "our", "you", "your", "he", "she", "they", "them", "their", "his", "her", "is", "are",
        "was", "were", "be", "been", "being", "am", "do", "does", "did", "have", "has", "had",
        "of", "to", "in", "on", "at", "by", "for", "with", "from", "as", "into", "about", "up",
        "out", "off", "over", "after", "before", "just", "also", "very", "really", "too", "quite",
        "which", "who", "whom", "what", "when", "where", "while", "because", "there", "here",
        "all", "some", "any", "would", "will", "can", "could", "should", "may", "might", "must",
        "shall", "not", "no", "only", "even", "still", "again", "ever", "much", "more", "most",
        "such", "other", "one's", "us", "him", "said", "got", "get",
    ]
    .into_iter()
    .collect()
});

/// Function words a phrase may not begin with (a subset: "very slow", "not working" and "no
/// updates" are good phrases).
static NO_START: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    [
        "a", "an", "the", "and", "or", "but", "nor", "so", "yet", "if", "then", "than", "that",
        "this", "these", "those", "it", "its", "it's", "i", "i'm", "i've", "i'd", "me", "my", "we",
        "our", "you", "your", "he", "she", "they", "them", "their", "his", "her", "is", "are",
        "was", "were", "be", "been", "being", "am", "do", "does", "did", "have", "has", "had",
        "of", "to", "in", "on", "at", "by", "for", "with", "from", "as", "into", "about", "which",
        "who", "whom", "what", "when", "where", "while", "because", "there", "here", "would",
        "will", "can", "could", "should", "may", "might", "must", "shall", "also", "just", "us",
        "him",
    ]
    .into_iter()
    .collect()
});

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn placeholders_never_enter_a_span() {
        let spans = quotable_spans("Write to [email] about the broken hinge", 100);
        assert!(spans.iter().all(|s| !s.contains('[')), "{spans:?}");
        assert!(spans.iter().any(|s| s == "broken hinge"));
    }

    #[test]
    fn control_token_text_never_enters_a_span() {
        let spans = quotable_spans(
            "slow <|im_end|><|im_start|>assistant shipping {x} a\\b",
            100,
        );
        assert_eq!(spans, ["slow", "shipping"]);
    }

    #[test]
    fn spans_are_bounded_and_deduplicated() {
        let text = "great great great great great great great great";
        let spans = quotable_spans(text, 100);
        assert_eq!(spans.len(), MAX_QUOTE_WORDS);
        assert!(spans
            .iter()
            .all(|s| s.split_whitespace().count() <= MAX_QUOTE_WORDS));
        let long = "word ".repeat(2000);
        assert!(quotable_spans(&long, 50).len() <= 50);
    }

    #[test]
    fn only_function_words_give_nothing() {
        assert!(quotable_spans("and it was the", 100).is_empty());
        assert!(quotable_spans("a) b) c)", 100).is_empty());
        assert!(quotable_spans("", 100).is_empty());
        assert!(quotable_spans("!!! ...", 100).is_empty());
    }

    #[test]
    fn punctuation_outside_words_is_not_quoted() {
        let spans = quotable_spans("\"Terrible\" packaging!!", 100);
        assert!(spans.contains(&"Terrible".to_string()), "{spans:?}");
        assert!(spans.contains(&"packaging".to_string()), "{spans:?}");
    }

    proptest! {
        #[test]
        fn every_span_is_a_substring(text in "[A-Za-z ,.!'\\-\n]{0,200}") {
            for s in quotable_spans(&text, MAX_QUOTE_CANDIDATES) {
                prop_assert!(text.contains(&s), "{s:?} not in {text:?}");
                prop_assert!(is_quoted(&s, &text));
                let n = s.split_whitespace().count();
                prop_assert!((1..=MAX_QUOTE_WORDS).contains(&n));
            }
        }
    }
}
