//! Keeping personal data out of prompts.
//!
//! Two layers:
//!
//! 1. **Structure.** Prompt builders ([`crate::prompts`]) take PII-free inputs: no name, email,
//!    phone number, `customers.id`, `customer_id` UUID or ticket number is ever a parameter.
//!    Identifiers are *omitted*, not pseudonymised: the model never needs to tell customers
//!    apart within one prompt, and a stable pseudonym would itself link prompts (and cache
//!    entries) to one person.
//! 2. **Free text.** Customers type PII into reviews and tickets ("call me on 555-123-4567").
//!    Every free-text field goes through a [`Redactor`] before it is put into a prompt:
//!    email addresses become `[email]`, payment-card numbers `[card]`, phone numbers `[phone]`,
//!    and, with [`Redactor::for_customer`], the customer's own names `[name]`.
//!
//! The redaction is deliberately greedy: a long digit run (an order number of 10+ digits, say)
//! is treated as a phone number, and a first name that is also a word ("Will", "Grace") is
//! replaced wherever it stands as a whole word. Privacy wins over fidelity; the analyses lose
//! little, since no sentiment or theme hangs on a number or a name.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::records::Customer;

/// Replaces an email address.
pub const EMAIL_PLACEHOLDER: &str = "[email]";
/// Replaces a phone number.
pub const PHONE_PLACEHOLDER: &str = "[phone]";
/// Replaces a payment-card number.
pub const CARD_PLACEHOLDER: &str = "[card]";
/// Replaces one of the customer's names.
pub const NAME_PLACEHOLDER: &str = "[name]";

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
        .expect("valid email regex")
});

/// A run of digit groups that could be a phone or card number: an optional `+country` code, an
/// optional `(area)` code, then digit groups joined by single spaces, dots or hyphens.
/// [`classify_number`] decides what it is.
static NUMBER_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?)?\d+(?:[ .\-]\d+)*")
        .expect("valid number regex")
});

/// Redact emails, card numbers and phone numbers from free text.
///
/// ```
/// use steadytext_schema::privacy::redact;
///
/// let text = "Email me at jane.smith@email.com or call +1 (555) 123-4567, order 2024-05-01.";
/// assert_eq!(redact(text), "Email me at [email] or call [phone], order 2024-05-01.");
/// assert_eq!(redact("card 4111 1111 1111 1111 please"), "card [card] please");
/// assert_eq!(redact("It cost $25.99 and took 10 days"), "It cost $25.99 and took 10 days");
/// ```
pub fn redact(text: &str) -> String {
    let no_emails = EMAIL.replace_all(text, EMAIL_PLACEHOLDER);
    redact_numbers(&no_emails)
}

fn redact_numbers(text: &str) -> String {
    NUMBER_RUN
        .replace_all(text, |caps: &Captures<'_>| {
            let m = caps.get(0).expect("whole match");
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            let bounded = !before.is_some_and(|c| c.is_alphanumeric() || "_$€£¥.,/".contains(c))
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
            match (bounded, classify_number(m.as_str())) {
                (true, Some(placeholder)) => placeholder.to_string(),
                _ => m.as_str().to_string(),
            }
        })
        .into_owned()
}

/// Decide whether a digit run is a card number, a phone number, or neither.
fn classify_number(run: &str) -> Option<&'static str> {
    let digits: Vec<u32> = run.chars().filter_map(|c| c.to_digit(10)).collect();
    let groups: Vec<&str> = run
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let n = digits.len();
    if (13..=19).contains(&n) && luhn_valid(&digits) {
        return Some(CARD_PLACEHOLDER);
    }
    if !(7..=15).contains(&n) || groups.len() > 6 || looks_like_date(run) || is_decimal(run) {
        return None;
    }
    let international = run.starts_with('+') || run.contains('(');
    let longest = groups.iter().map(|g| g.len()).max().unwrap_or(0);
    let phone = if groups.len() == 1 {
        n >= 10 || (international && n >= 8)
    } else {
        international || longest >= 3
    };
    phone.then_some(PHONE_PLACEHOLDER)
}

/// `123.456`: one dot, nothing else between the digits.
fn is_decimal(run: &str) -> bool {
    run.chars().filter(|c| !c.is_ascii_digit()).eq(['.'])
}

fn looks_like_date(run: &str) -> bool {
    let groups: Vec<&str> = run.split(['-', '.', '/', ' ']).collect();
    groups.len() == 3
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
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

/// A redactor for free text. [`Redactor::default`] redacts emails, card numbers and phone
/// numbers ([`redact`]); [`Redactor::for_customer`] also removes one customer's own names and
/// email address (whole words, case-insensitive), which they often type into their own reviews
/// ("— John").
///
/// ```
/// use steadytext_schema::{privacy::Redactor, Customer};
///
/// let r = Redactor::for_customer(&Customer::example()); // John Doe
/// assert_eq!(
///     r.redact("Thanks, JOHN DOE (john.doe@email.com). Johnson was great."),
///     "Thanks, [name] [name] ([email]). Johnson was great."
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    name_parts: Vec<String>,
    names: Option<Regex>,
    known_emails: Vec<Regex>,
}

impl Redactor {
    /// The generic redactor: emails, card numbers, phone numbers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The generic redactor plus this customer's first and last names and email.
    pub fn for_customer(customer: &Customer) -> Self {
        Self::new()
            .with_names(
                [
                    customer.first_name.as_deref(),
                    customer.last_name.as_deref(),
                ]
                .into_iter()
                .flatten(),
            )
            .with_email(&customer.email)
    }

    /// Also replace these names with [`NAME_PLACEHOLDER`]: each whitespace- or hyphen-separated
    /// part of at least two characters, as a whole word, ignoring case.
    pub fn with_names<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        for name in names {
            for part in name.split(|c: char| c.is_whitespace() || c == '-') {
                if part.chars().count() >= 2 {
                    self.name_parts.push(regex::escape(part));
                }
            }
        }
        // Longest first, so "Anna" wins over "Ann" where both are names.
        self.name_parts
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        self.name_parts.dedup();
        if !self.name_parts.is_empty() {
            let pattern = format!(r"(?i)\b(?:{})\b", self.name_parts.join("|"));
            self.names = Some(Regex::new(&pattern).expect("escaped names form a valid regex"));
        }
        self
    }

    /// Also replace this exact address (ignoring case) with [`EMAIL_PLACEHOLDER`], even where
    /// the generic email pattern would miss it (e.g. an address with unusual characters).
    pub fn with_email(mut self, email: &str) -> Self {
        let email = email.trim();
        if !email.is_empty() {
            let pattern = format!("(?i){}", regex::escape(email));
            self.known_emails
                .push(Regex::new(&pattern).expect("an escaped literal is a valid regex"));
        }
        self
    }

    /// Redact `text`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for email in &self.known_emails {
            out = email
                .replace_all(&out, regex::NoExpand(EMAIL_PLACEHOLDER))
                .into_owned();
        }
        out = redact(&out);
        if let Some(names) = &self.names {
            out = names.replace_all(&out, NAME_PLACEHOLDER).into_owned();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phone_formats() {
        for phone in [
            "555-123-4567",
            "(555) 123-4567",
            "555.123.4567",
            "555 123 4567",
            "+1 555 123 4567",
            "+1-555-123-4567",
            "+44 20 7946 0958",
            "+33 6 12 34 56 78",
            "5551234567",
            "123-4567",
        ] {
            assert_eq!(
                redact(&format!("call {phone} now")),
                "call [phone] now",
                "{phone}"
            );
            assert_eq!(redact(&format!("({phone})")), "([phone])", "{phone}");
            assert_eq!(redact(&format!("{phone}.")), "[phone].", "{phone}");
        }
    }

    #[test]
    fn not_phones() {
        for text in [
            "2023-01-15",
            "15/01/2023",
            "01.02.23",
            "rated 5 out of 5",
            "$2500.00 lifetime",
            "1,234,567 units",
            "version 1.2.3",
            "10 20 30 40",
            "TICK-001",
            "order12345678901",
            "3.14159265",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn emails() {
        assert_eq!(redact("a.b+c@mail.co.uk!"), "[email]!");
        assert_eq!(redact("mail me: X_Y@Example.COM."), "mail me: [email].");
        assert_eq!(redact("at @handle"), "at @handle");
    }

    #[test]
    fn cards_need_a_valid_checksum() {
        assert_eq!(redact("4111-1111-1111-1111"), "[card]");
        assert_eq!(redact("378282246310005"), "[card]"); // Amex, 15 digits
                                                         // 16 digits, bad checksum, too long for a phone: left alone.
        assert_eq!(redact("4111 1111 1111 1112"), "4111 1111 1111 1112");
    }

    #[test]
    fn names_whole_words_only() {
        let r = Redactor::new().with_names(["Ann", "Mary-Jane O'Neil"]);
        assert_eq!(
            r.redact("ann and Annual; mary jane o'neil"),
            "[name] and Annual; [name] [name] [name]"
        );
        // One-letter name parts are not redacted (they would eat every "a").
        let r = Redactor::new().with_names(["J"]);
        assert_eq!(r.redact("J is a letter"), "J is a letter");
    }

    fn email() -> impl Strategy<Value = String> {
        (
            "[a-z0-9][a-z0-9._+-]{0,15}",
            "[a-z0-9][a-z0-9-]{0,10}",
            "[a-z]{2,6}",
        )
            .prop_map(|(local, domain, tld)| format!("{local}@{domain}.{tld}"))
    }

    fn phone() -> impl Strategy<Value = String> {
        let d = |n: usize| proptest::string::string_regex(&format!("[0-9]{{{n}}}")).unwrap();
        prop_oneof![
            (d(3), d(3), d(4)).prop_map(|(a, b, c)| format!("{a}-{b}-{c}")),
            (d(3), d(3), d(4)).prop_map(|(a, b, c)| format!("({a}) {b}-{c}")),
            (d(3), d(3), d(4)).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
            (d(3), d(3), d(4)).prop_map(|(a, b, c)| format!("+1 {a} {b} {c}")),
            (d(2), d(4), d(4)).prop_map(|(a, b, c)| format!("+44 {a} {b} {c}")),
            d(10),
        ]
    }

    fn words() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-zA-Z]{1,8}[,.!?]?", 0..8).prop_map(|w| w.join(" "))
    }

    proptest! {
        #[test]
        fn redact_removes_embedded_emails_and_phones(
            a in words(), e in email(), b in words(), p in phone(), c in words()
        ) {
            let text = format!("{a} {e} {b} {p} {c}");
            let out = redact(&text);
            prop_assert!(!out.contains(&e), "{out}");
            prop_assert!(!out.contains(&p), "{out}");
            prop_assert!(!EMAIL.is_match(&out), "{out}");
        }

        #[test]
        fn redact_leaves_plain_words_alone(text in words()) {
            prop_assert_eq!(redact(&text), text);
        }
    }
}
