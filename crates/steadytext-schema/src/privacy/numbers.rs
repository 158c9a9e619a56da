//! Phone and payment-card numbers, found in the folded text ([`super::normalise`]): full-width
//! digits are ASCII there and every dash variant is `-`.

use std::sync::LazyLock;

use regex::Regex;

use super::normalise::Folded;
use super::{Span, CARD_PLACEHOLDER, PHONE_PLACEHOLDER};

/// A run of digit groups that could be a phone or card number: an optional `+country` code, an
/// optional `(area)` code, then digit groups joined by one space, dot, hyphen or slash (a
/// hyphen or slash may have a space on either side). [`classify_number`] decides what it is.
static NUMBER_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\+ ?\d{1,3}[ .\-/]?)?(?:\(\d{1,4}\) ?[.\-/]? ?)?\d+(?:(?:[ .]|[ ]?[\-/][ ]?)\d+)*",
    )
    .expect("valid number regex")
});

/// Words that introduce a phone number, possibly glued to it (`Tel.090…`, `tel:+33…`, `Ph:555…`).
const PHONE_CUES: &[&str] = &[
    "tel",
    "tele",
    "telephone",
    "phone",
    "ph",
    "mob",
    "mobile",
    "cell",
    "fax",
    "whatsapp",
    "tlf",
    "tfn",
    "call",
    "t",
    "m",
];

/// The number spans in `f` (original byte offsets).
pub(crate) fn spans(f: &Folded, out: &mut Vec<Span>) {
    let text = f.text.as_str();
    for m in NUMBER_RUN.find_iter(text) {
        let cued = cue_before(&text[..m.start()]);
        let before = f.char_before(m.start());
        let after = f.char_at(m.end());
        let glued_before = before.is_some_and(|c| c.is_alphanumeric() || "_$€£¥.,/".contains(c));
        let glued_after = after.is_some_and(|c| c.is_alphanumeric() || c == '_');
        // `2024-05-01 10:30`: the run ends in a clock time's hour; it is a date, not a phone.
        let clock = after == Some(':')
            && text[m.end() + 1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit());
        if (glued_before && !cued) || glued_after || clock {
            continue;
        }
        let mut push = |s: usize, e: usize, cued: bool| {
            if let Some(placeholder) = classify_number(&text[s..e], cued) {
                let (start, end) = f.original_range(s, e);
                out.push(Span {
                    start,
                    end,
                    placeholder,
                });
            }
        };
        let run = m.as_str();
        if !run.split(' ').any(|c| looks_like_date(c) || is_decimal(c)) {
            push(m.start(), m.end(), cued);
            continue;
        }
        // `612 345 678 2024-05-01`: a phone run on into a date or a price is no one number;
        // classify the pieces between the dates and decimals on their own.
        let mut segment: Option<(usize, usize)> = None;
        let mut at = m.start();
        for chunk in m.as_str().split(' ') {
            let (s, e) = (at, at + chunk.len());
            at = e + 1;
            if looks_like_date(chunk) || is_decimal(chunk) {
                if let Some((a, b)) = segment.take() {
                    push(a, b, cued && a == m.start());
                }
            } else if !chunk.is_empty() {
                segment = Some((segment.map_or(s, |(a, _)| a), e));
            }
        }
        if let Some((a, b)) = segment {
            push(a, b, cued && a == m.start());
        }
    }
}

/// Does `before` (folded text) end with a phone cue such as `tel.`, `ph:` or `phone `?
fn cue_before(before: &str) -> bool {
    let trimmed = before.trim_end_matches([' ', '.', ':', '-', '#']);
    if trimmed.len() == before.len() && !before.is_empty() {
        // Glued with no punctuation (`tel0612…`) is no cue: too easily part of a word.
        return false;
    }
    let word_start = trimmed
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_alphabetic())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &trimmed[word_start..];
    !word.is_empty() && PHONE_CUES.contains(&word)
}

/// Decide whether a digit run is a card number, a phone number, or neither. `cued`: a phone
/// cue (`Tel.`) stands right before it.
fn classify_number(run: &str, cued: bool) -> Option<&'static str> {
    let digits: Vec<u32> = run.chars().filter_map(|c| c.to_digit(10)).collect();
    let groups: Vec<&str> = run
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let n = digits.len();
    if (13..=19).contains(&n) && luhn_valid(&digits) {
        return Some(CARD_PLACEHOLDER);
    }
    if !(7..=15).contains(&n) || groups.len() > 7 || looks_like_date(run) || is_decimal(run) {
        return None;
    }
    // `2023/2024`: slashes join years and ratios; a phone with slashes is longer.
    if run.contains('/') && !cued && n < 9 {
        return None;
    }
    let international = run.starts_with('+') || run.contains('(');
    let longest = groups.iter().map(|g| g.len()).max().unwrap_or(0);
    let phone = if groups.len() == 1 {
        n >= 10 || (international && n >= 8) || cued
    } else {
        // Domestic groupings of two to four digits: `06 12 34 56 78`, `0612 34 56 78`;
        // `10 20 30 40` (eight digits, no trunk zero) stays a list of numbers.
        let spaced = groups.iter().all(|g| (2..=4).contains(&g.len()))
            && (n >= 10 || (run.starts_with('0') && n >= 8));
        international || cued || longest >= 3 || spaced
    };
    phone.then_some(PHONE_PLACEHOLDER)
}

/// `123.456`: one dot, nothing else between the digits.
fn is_decimal(run: &str) -> bool {
    run.chars().filter(|c| !c.is_ascii_digit()).eq(['.'])
}

fn looks_like_date(run: &str) -> bool {
    let groups: Vec<&str> = run
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    groups.len() == 3
        && !run.contains(['+', '('])
        && matches!(
            groups
                .iter()
                .map(|g| g.len())
                .collect::<Vec<_>>()
                .as_slice(),
            [4, 1..=2, 1..=2] | [1..=2, 1..=2, 4] | [1..=2, 1..=2, 2]
        )
}

fn luhn_valid(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}
