//! Names: the ones we know (the customer's, every customer's in a [`NameDirectory`]) matched
//! in the folded text, and the ones a cue introduces ("by Maria Garcia", "my name is Jose",
//! "Regards,\nAnna"), found in the original text by their capitals.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

use super::normalise::{fold, Folded};
use super::{Span, NAME_PLACEHOLDER};

/// When a known name counts as a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rule {
    /// Only where the text spells it with a capital (`Price` the surname, not "a fair price").
    Capitalised,
    /// In any case.
    AnyCase,
}

/// Separators seen between a first and a last name in handles and signatures.
const PAIR_SEPARATORS: [&str; 5] = ["", " ", "_", ".", "-"];

/// Folded name patterns and their rules; the stronger rule wins for a pattern given twice.
#[derive(Debug, Clone, Default)]
pub(crate) struct Patterns(BTreeMap<String, Rule>);

impl Patterns {
    fn add(&mut self, pattern: String, rule: Rule) {
        if pattern.chars().count() < 2 {
            return;
        }
        let r = self.0.entry(pattern).or_insert(rule);
        *r = (*r).max(rule);
    }

    /// The folded parts of a name (split on whitespace and hyphens), each with its
    /// apostrophe-less spelling (`o'neil`, `oneil`), parts of one character dropped.
    fn parts(name: &str) -> Vec<String> {
        let folded = fold(name);
        let mut parts = Vec::new();
        for part in folded.split(|c: char| c.is_whitespace() || c == '-') {
            let part = part.trim_matches(|c: char| !c.is_alphanumeric());
            if part.chars().count() < 2 {
                continue;
            }
            parts.push(part.to_string());
            if part.contains('\'') {
                parts.push(part.replace('\'', ""));
            }
        }
        parts
    }

    /// One person: each name part under `single`, and every first–last pairing (`anna oneil`,
    /// `anna_oneil`, `oneil.anna`, `annaoneil`) in any case.
    pub fn add_person(&mut self, first: Option<&str>, last: Option<&str>, single: Rule) {
        let firsts = first.map(Self::parts).unwrap_or_default();
        let lasts = last.map(Self::parts).unwrap_or_default();
        for p in firsts.iter().chain(&lasts) {
            self.add(p.clone(), single);
        }
        for f in &firsts {
            for l in &lasts {
                for sep in PAIR_SEPARATORS {
                    self.add(format!("{f}{sep}{l}"), Rule::AnyCase);
                    // "the price will do" is no "Will Price": reversed only in handles.
                    if sep != " " {
                        self.add(format!("{l}{sep}{f}"), Rule::AnyCase);
                    }
                }
            }
        }
    }

    /// Every part of `name` under `rule`.
    pub fn add_name(&mut self, name: &str, rule: Rule) {
        for p in Self::parts(name) {
            self.add(p, rule);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Finds known names in a folded text, as whole words: a match may not touch another letter
/// (`John` is not in `Johnson`), but digits, underscores, dots and apostrophes end a word
/// (`anna_oneil`, `anna.oneil85`, `John's`).
#[derive(Debug, Clone, Default)]
pub(crate) struct NameMatcher {
    ac: Option<AhoCorasick>,
    rules: Vec<Rule>,
}

impl NameMatcher {
    pub fn new(patterns: &Patterns) -> Self {
        if patterns.is_empty() {
            return Self::default();
        }
        let (words, rules): (Vec<&str>, Vec<Rule>) =
            patterns.0.iter().map(|(p, r)| (p.as_str(), *r)).unzip();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(words)
            .expect("a set of name literals builds");
        Self {
            ac: Some(ac),
            rules,
        }
    }

    /// Spans (original offsets) of the names in `f`, folded from `original`.
    pub fn spans(&self, f: &Folded, original: &str, out: &mut Vec<Span>) {
        let Some(ac) = &self.ac else { return };
        let mut found: Vec<(usize, usize)> = ac
            .find_overlapping_iter(&f.text)
            .filter(|m| {
                let whole = !f.char_before(m.start()).is_some_and(char::is_alphabetic)
                    && !f.char_at(m.end()).is_some_and(char::is_alphabetic);
                whole
                    && match self.rules[m.pattern().as_usize()] {
                        Rule::AnyCase => true,
                        Rule::Capitalised => {
                            let (start, _) = f.original_range(m.start(), m.end());
                            original[start..]
                                .chars()
                                .next()
                                .is_some_and(char::is_uppercase)
                        }
                    }
            })
            .map(|m| (m.start(), m.end()))
            .collect();
        // Leftmost, then longest (`anna_oneil` over `anna`), never overlapping.
        found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut last_end = 0;
        for (s, e) in found {
            if s < last_end {
                continue;
            }
            last_end = e;
            // `maria garcia` is two names, as `Maria` and `Garcia` would be: one placeholder
            // per word.
            let mut at = s;
            for word in f.text[s..e].split(' ') {
                if !word.is_empty() {
                    let (start, end) = f.original_range(at, at + word.len());
                    out.push(Span {
                        start,
                        end,
                        placeholder: NAME_PLACEHOLDER,
                    });
                }
                at += word.len() + 1;
            }
        }
    }
}

/// Every customer name a database knows, ready to match: give it to
/// [`Redactor::with_directory`](super::Redactor::with_directory). Build it once per run (it
/// is an automaton over all the names) and share it.
///
/// A single name part matches where the text spells it with a capital (`Price` the surname,
/// not "a fair price"; `JOSÉ`, `Jose`); a first name and a last name of the same person
/// together (`maria garcia`, `maria_garcia`, `garcia.maria`) match in any case.
///
/// ```
/// use steadytext_schema::privacy::{NameDirectory, Redactor};
/// use std::sync::Arc;
///
/// let names = NameDirectory::new([(Some("María"), Some("Price")), (Some("Tom"), None)]);
/// let r = Redactor::new().with_directory(Arc::new(names));
/// assert_eq!(
///     r.redact("MARIA said the price was fair; ask maria_price or Tom."),
///     "[name] said the price was fair; ask [name] or [name]."
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct NameDirectory {
    matcher: NameMatcher,
    patterns: usize,
}

impl NameDirectory {
    /// A directory of these people's `(first_name, last_name)`.
    pub fn new<'a>(people: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Self {
        let mut patterns = Patterns::default();
        for (first, last) in people {
            patterns.add_person(first, last, Rule::Capitalised);
        }
        Self {
            matcher: NameMatcher::new(&patterns),
            patterns: patterns.len(),
        }
    }

    /// Name patterns held (parts and pairings).
    pub fn len(&self) -> usize {
        self.patterns
    }

    /// No names at all.
    pub fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    pub(crate) fn matcher(&self) -> &NameMatcher {
        &self.matcher
    }
}

/// A capitalised, name-like word: `Maria`, `JOSÉ`, `O’Neil`, `Mary-Jane`.
const NAME_WORD: &str = r"\p{Lu}[\p{L}\p{M}'’ʼ]*(?:-\p{Lu}[\p{L}\p{M}'’ʼ]*)?";
/// An optional title before the names.
const TITLE: &str = r"(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir)\.?[ \t]+)?";

/// "by X Y", "from X", "my name is X", "I am X", "I'm X", "this is X", "ask for X", …
static INTRO_CUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i:\b(?:by|from|my\s+name\s+is|my\s+name's|my\s+name’s|name's|name’s|i\s+am|i'm|i’m|this\s+is|ask\s+for|asked\s+for|spoke\s+to|spoke\s+with|talked\s+to|signed)\b)[ \t]+{TITLE}(?P<n>{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,2}})"
    ))
    .expect("valid intro cue regex")
});

/// "Regards,\nX", "thanks, X", "Cheers X" — the name ends the text, a line or a sentence.
static SIGNOFF_CUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i:\b(?:best\s+regards|kind\s+regards|warm\s+regards|regards|many\s+thanks|thank\s+you|thanks|thx|cheers|best|sincerely|yours\s+truly|yours|respectfully))[ \t]*[,!.]?\s*{TITLE}(?P<n>{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,2}})"
    ))
    .expect("valid sign-off cue regex")
});

/// "- X" / "— X" signature: a dash at a line's or sentence's start, the name ending the text,
/// a line or a sentence.
static DASH_CUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?:^|\s)[-–—~]+[ \t]*{TITLE}(?P<n>{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,2}})"
    ))
    .expect("valid dash cue regex")
});

/// Capitalised words that follow a cue without being a name ("by The way", "I am Very happy",
/// "from Monday", "thanks, Great service"), folded.
const NOT_NAMES: &[&str] = &[
    "a",
    "an",
    "the",
    "my",
    "our",
    "your",
    "his",
    "her",
    "their",
    "this",
    "that",
    "these",
    "those",
    "it",
    "its",
    "i",
    "we",
    "you",
    "he",
    "she",
    "they",
    "me",
    "us",
    "them",
    "and",
    "or",
    "but",
    "not",
    "no",
    "yes",
    "so",
    "very",
    "really",
    "still",
    "just",
    "also",
    "now",
    "here",
    "there",
    "sorry",
    "happy",
    "glad",
    "sad",
    "writing",
    "disappointed",
    "satisfied",
    "great",
    "good",
    "bad",
    "ok",
    "okay",
    "all",
    "everyone",
    "again",
    "in",
    "on",
    "at",
    "to",
    "for",
    "of",
    "with",
    "customer",
    "customers",
    "support",
    "service",
    "team",
    "staff",
    "sales",
    "store",
    "shop",
    "amazing",
    "excellent",
    "terrible",
    "awful",
    "love",
    "loved",
    "hate",
    "please",
    "never",
    "always",
    "today",
    "tomorrow",
    "yesterday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "what",
    "when",
    "where",
    "why",
    "how",
    "who",
    "is",
    "was",
    "are",
    "will",
    "would",
    "can",
    "could",
    "did",
    "do",
    "does",
    "if",
    "as",
    "then",
    "than",
    "one",
    "two",
    "three",
    "far",
    "now",
    "again",
    "best",
    "regards",
    "thanks",
    "cheers",
    "order",
    "product",
    "item",
    "delivery",
];

/// Spans of names a cue introduces in `original`, and their words (for matching elsewhere in
/// the same text in any case).
pub(crate) fn cue_names(original: &str, out: &mut Vec<Span>, words: &mut Vec<String>) {
    let mut push = |caps: regex::Captures<'_>, needs_end: bool| {
        let Some(m) = caps.name("n") else { return };
        if needs_end {
            let next = original[m.end()..].chars().next();
            if !next.is_none_or(|c| "\r\n.,!;:)".contains(c)) {
                return;
            }
        }
        let mut at = m.start();
        for word in m.as_str().split([' ', '\t']) {
            let start = at;
            at += word.len() + 1;
            if word.is_empty() {
                continue;
            }
            // `X200` is a model number, not a name; nor is a single capital.
            let glued = original[start + word.len()..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric);
            if glued || word.chars().count() < 2 || NOT_NAMES.contains(&fold(word).as_str()) {
                break;
            }
            out.push(Span {
                start,
                end: start + word.len(),
                placeholder: NAME_PLACEHOLDER,
            });
            words.push(word.to_string());
        }
    };
    for caps in INTRO_CUE.captures_iter(original) {
        push(caps, false);
    }
    for caps in SIGNOFF_CUE.captures_iter(original) {
        push(caps, true);
    }
    for caps in DASH_CUE.captures_iter(original) {
        push(caps, true);
    }
}
