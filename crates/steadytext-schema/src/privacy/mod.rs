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
//!    names introduced by a cue ("by Maria Garcia", "my name is Jose", "Regards,\nAnna",
//!    "- John") `[name]`, and, with [`Redactor::for_customer`] and
//!    [`Redactor::with_directory`], the customer's own names and every name the database knows.
//!
//! **Matching on folded text.** People write their identifiers in many forms: `José`, `Jose`,
//! `JOSÉ`; `O’Neil`, `O'Neil`, `oneil`; `anna_oneil`; `06–12–34–56–78`, full-width digits,
//! `Tel.090-1234-5678`; `josé@exämple.com`. Every detector runs on the [`fold`]ed text (NFKC,
//! accents dropped, lower case, one apostrophe, one dash) and replaces what it found in the
//! original text.
//!
//! **Cut first.** Prompt builders cut free text to its budget *before* redacting it, at a
//! word boundary that splits no number (see [`crate::prompts`]), so what is redacted is what
//! the model sees and no identifier is ever cut in half.
//!
//! The redaction is deliberately greedy: a long digit run (an order number of 10+ digits, say)
//! is treated as a phone number, and a first name that is also a word ("Will", "Grace") is
//! replaced wherever it stands as a whole word. Privacy wins over fidelity; the analyses lose
//! little, since no sentiment or theme hangs on a number or a name.

mod names;
mod normalise;
mod numbers;

use std::sync::{Arc, LazyLock};

use regex::Regex;

pub use names::NameDirectory;
pub use normalise::fold;

use names::{NameMatcher, Patterns, Rule};
use normalise::Folded;

use crate::records::Customer;

/// Replaces an email address.
pub const EMAIL_PLACEHOLDER: &str = "[email]";
/// Replaces a phone number.
pub const PHONE_PLACEHOLDER: &str = "[phone]";
/// Replaces a payment-card number.
pub const CARD_PLACEHOLDER: &str = "[card]";
/// Replaces a name.
pub const NAME_PLACEHOLDER: &str = "[name]";

/// An email address in the folded text; local part and domain may be any letters (`josé`
/// folds to `jose`, `пример` stays Cyrillic).
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[\p{L}\p{N}._%+\-']+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)*\.\p{L}{2,}")
        .expect("valid email regex")
});

/// What to replace: original byte offsets and the placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub placeholder: &'static str,
}

/// Where two findings overlap, the stronger placeholder stands for both.
fn strength(placeholder: &str) -> u8 {
    match placeholder {
        EMAIL_PLACEHOLDER => 3,
        CARD_PLACEHOLDER => 2,
        PHONE_PLACEHOLDER => 1,
        _ => 0,
    }
}

/// Replace `spans` of `text` (merged where they overlap or touch through combining marks).
fn apply(text: &str, mut spans: Vec<Span>) -> String {
    if spans.is_empty() {
        return text.to_string();
    }
    spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for mut s in spans {
        // A combining mark after the match belongs to its last letter (`Jose\u{301}`).
        s.end += text[s.end..]
            .chars()
            .take_while(|&c| unicode_normalization::char::is_combining_mark(c))
            .map(char::len_utf8)
            .sum::<usize>();
        match merged.last_mut() {
            Some(last) if s.start < last.end => {
                last.end = last.end.max(s.end);
                if strength(s.placeholder) > strength(last.placeholder) {
                    last.placeholder = s.placeholder;
                }
            }
            _ => merged.push(s),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for s in merged {
        out.push_str(&text[at..s.start]);
        out.push_str(s.placeholder);
        at = s.end;
    }
    out.push_str(&text[at..]);
    out
}

fn email_spans(f: &Folded, out: &mut Vec<Span>) {
    for m in EMAIL.find_iter(&f.text) {
        let (start, end) = f.original_range(m.start(), m.end());
        out.push(Span {
            start,
            end,
            placeholder: EMAIL_PLACEHOLDER,
        });
    }
}

/// Redact emails, card numbers and phone numbers from free text (no names: use a
/// [`Redactor`] for those).
///
/// ```
/// use steadytext_schema::privacy::redact;
///
/// let text = "Email me at jane.smith@email.com or call +1 (555) 123-4567, order 2024-05-01.";
/// assert_eq!(redact(text), "Email me at [email] or call [phone], order 2024-05-01.");
/// assert_eq!(redact("card 4111 1111 1111 1111 please"), "card [card] please");
/// assert_eq!(redact("It cost $25.99 and took 10 days"), "It cost $25.99 and took 10 days");
/// assert_eq!(redact("Tel.090–1234–5678, ０６ １２ ３４ ５６ ７８"), "Tel.[phone], [phone]");
/// assert_eq!(redact("écrivez à josé@exämple.fr"), "écrivez à [email]");
/// ```
pub fn redact(text: &str) -> String {
    let f = Folded::new(text);
    let mut spans = Vec::new();
    email_spans(&f, &mut spans);
    numbers::spans(&f, &mut spans);
    apply(text, spans)
}

/// A redactor for free text. [`Redactor::new`] redacts emails, card numbers, phone numbers
/// ([`redact`]) and names introduced by a cue ("by Maria Garcia", "my name is Jose",
/// "Regards,\nAnna", "- John": capitalised words only); [`Redactor::for_customer`] also removes
/// one customer's own names and email address (whole words, in any case, with or without
/// accents, across apostrophe variants and in handles such as `john_doe`), which they often
/// type into their own reviews ("— John"); [`Redactor::with_directory`] adds every name the
/// database knows ([`NameDirectory`]).
///
/// ```
/// use steadytext_schema::{privacy::Redactor, Customer};
///
/// let r = Redactor::for_customer(&Customer::example()); // John Doe
/// assert_eq!(
///     r.redact("Thanks, JOHN DOE (john.doe@email.com). Johnson was great."),
///     "Thanks, [name] [name] ([email]). Johnson was great."
/// );
/// assert_eq!(
///     r.redact("Guest order by Maria García; maria was kind. — jöhn_doe"),
///     "Guest order by [name] [name]; [name] was kind. — [name]"
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Redactor {
    own: Patterns,
    own_matcher: NameMatcher,
    directory: Option<Arc<NameDirectory>>,
    /// Folded known addresses.
    known_emails: Vec<String>,
    cues: bool,
}

impl Default for Redactor {
    fn default() -> Self {
        Self {
            own: Patterns::default(),
            own_matcher: NameMatcher::default(),
            directory: None,
            known_emails: Vec::new(),
            cues: true,
        }
    }
}

impl Redactor {
    /// The generic redactor: emails, card numbers, phone numbers, cue-introduced names.
    pub fn new() -> Self {
        Self::default()
    }

    /// The generic redactor plus this customer's first and last names and email.
    pub fn for_customer(customer: &Customer) -> Self {
        Self::new()
            .with_person(
                customer.first_name.as_deref(),
                customer.last_name.as_deref(),
            )
            .with_email(&customer.email)
    }

    /// Also replace these names with [`NAME_PLACEHOLDER`]: each whitespace- or hyphen-separated
    /// part of at least two characters, as a whole word, in any case, with or without accents.
    pub fn with_names<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        for name in names {
            self.own.add_name(name, Rule::AnyCase);
        }
        self.own_matcher = NameMatcher::new(&self.own);
        self
    }

    /// Also replace one person's names (as [`with_names`](Self::with_names)) and their
    /// pairings in handles and signatures (`anna_oneil`, `oneil.anna`, `annaoneil`).
    pub fn with_person(mut self, first: Option<&str>, last: Option<&str>) -> Self {
        self.own.add_person(first, last, Rule::AnyCase);
        self.own_matcher = NameMatcher::new(&self.own);
        self
    }

    /// Also replace every name in `directory` (see [`NameDirectory`] for how they match).
    pub fn with_directory(mut self, directory: Arc<NameDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Whether cue-introduced names are redacted (on by default).
    pub fn with_cues(mut self, on: bool) -> Self {
        self.cues = on;
        self
    }

    /// Also replace this exact address (ignoring case and accents) with [`EMAIL_PLACEHOLDER`],
    /// even where the generic email pattern would miss it (e.g. an address with unusual
    /// characters).
    pub fn with_email(mut self, email: &str) -> Self {
        let email = fold(email.trim());
        if !email.is_empty() {
            self.known_emails.push(email);
        }
        self
    }

    /// Redact `text`.
    pub fn redact(&self, text: &str) -> String {
        let f = Folded::new(text);
        let mut spans = Vec::new();
        for email in &self.known_emails {
            for (at, _) in f.text.match_indices(email.as_str()) {
                let (start, end) = f.original_range(at, at + email.len());
                spans.push(Span {
                    start,
                    end,
                    placeholder: EMAIL_PLACEHOLDER,
                });
            }
        }
        email_spans(&f, &mut spans);
        numbers::spans(&f, &mut spans);
        self.own_matcher.spans(&f, text, &mut spans);
        if let Some(d) = &self.directory {
            d.matcher().spans(&f, text, &mut spans);
        }
        if self.cues {
            let mut words = Vec::new();
            names::cue_names(text, &mut spans, &mut words);
            if !words.is_empty() {
                // A name once introduced is a name everywhere in the text, in any case.
                let mut found = Patterns::default();
                for w in &words {
                    found.add_name(w, Rule::AnyCase);
                }
                NameMatcher::new(&found).spans(&f, text, &mut spans);
            }
        }
        apply(text, spans)
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

    fn customer(first: &str, last: &str, email: &str) -> Customer {
        Customer {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: email.into(),
            ..Customer::example()
        }
    }

    #[test]
    fn names_with_and_without_accents_in_any_case() {
        let r = Redactor::for_customer(&customer("José", "Núñez", "jn@mail.es"));
        assert_eq!(
            r.redact("jose, JOSÉ, Jose\u{301}, Nunez, NÚÑEZ, ｊｏｓｅ; Josefina stays"),
            "[name], [name], [name], [name], [name], [name]; Josefina stays"
        );
        // Accents in the text but not in the record.
        let r = Redactor::for_customer(&customer("Zoe", "Bjork", "z@b.is"));
        assert_eq!(r.redact("Zoë Björk wrote"), "[name] [name] wrote");
    }

    #[test]
    fn apostrophes_and_handles() {
        let r = Redactor::for_customer(&customer("Anna", "O'Neil", "a@o.ie"));
        for text in [
            "O’Neil",
            "O'Neil",
            "Oʼneil",
            "O‘NEIL",
            "oneil",
            "ONeil",
            "anna_oneil",
            "anna.oneil",
            "oneil_anna",
            "AnnaONeil",
            "anna_o'neil",
            "@anna_oneil85",
        ] {
            let out = r.redact(&format!("by {text} today"));
            assert!(
                !fold(&out).contains("neil") && !fold(&out).contains("anna"),
                "{text}: {out}"
            );
        }
        assert_eq!(r.redact("John's order"), "John's order");
        assert_eq!(r.redact("Anna's order"), "[name]'s order");
    }

    #[test]
    fn phones_in_many_forms() {
        for phone in [
            "555–123–4567",
            "555—123—4567",
            "555/123/4567",
            "0171/1234567",
            "06 12 34 56 78",
            "06.12.34.56.78",
            "612 345 678",
            "０６ １２ ３４ ５６ ７８",
            "＋３３ ６ １２ ３４ ５６ ７８",
            "+81 90-1234-5678",
            "555 - 123 - 4567",
            "(06) 12 34 56 78",
        ] {
            assert_eq!(
                redact(&format!("call {phone} now")),
                "call [phone] now",
                "{phone}"
            );
            assert_eq!(redact(&format!("{phone}.")), "[phone].", "{phone}");
        }
        for (text, out) in [
            ("Tel.090-1234-5678", "Tel.[phone]"),
            ("tel:+33612345678", "tel:[phone]"),
            ("Ph:555-123-4567", "Ph:[phone]"),
            ("Tél. 06 12 34 56 78", "Tél. [phone]"),
            ("Phone:1234567", "Phone:[phone]"),
        ] {
            assert_eq!(redact(text), out, "{text}");
        }
    }

    #[test]
    fn numbers_that_are_not_identifiers_survive() {
        for text in [
            "delivered 2024-05-01",
            "delivered 2024–05–01",
            "on 2024-05-01 10:30",
            "It cost $25.99",
            "took 10 days",
            "the X200 model",
            "model X200-500",
            "season 2023/2024",
            "10 20 30 40",
            "rated 4/5",
            "24/7 support",
        ] {
            assert_eq!(Redactor::new().redact(text), text);
        }
    }

    #[test]
    fn unicode_emails() {
        for email in [
            "josé@exämple.com",
            "JOSÉ.NÚÑEZ@Correo.ES",
            "пользователь@пример.рф",
            "用户@例子.中国",
            "anna_o'neil@mail.ie",
            "ｊｏｓｅ＠ｍａｉｌ．ｃｏｍ",
        ] {
            assert_eq!(
                redact(&format!("write {email} now")),
                "write [email] now",
                "{email}"
            );
        }
        // A known address with characters the generic pattern misses, in another case.
        let r = Redactor::new().with_email("weird!addr@Host");
        assert_eq!(r.redact("to WEIRD!ADDR@host."), "to [email].");
    }

    #[test]
    fn cue_introduced_names() {
        let r = Redactor::new();
        for (text, out) in [
            (
                "Guest order by Maria Garcia",
                "Guest order by [name] [name]",
            ),
            ("a gift from Zoë", "a gift from [name]"),
            ("Hi, my name is José and", "Hi, my name is [name] and"),
            ("I am Anna O’Neil, a client", "I am [name] [name], a client"),
            ("I'm Tom.", "I'm [name]."),
            (
                "Great.\nRegards,\nMaria Garcia",
                "Great.\nRegards,\n[name] [name]",
            ),
            ("Kind regards, Dr. Ng", "Kind regards, Dr. [name]"),
            ("thanks, Tom", "thanks, [name]"),
            ("Loved it.\n- John", "Loved it.\n- [name]"),
            ("Works. — Ana", "Works. — [name]"),
            // Once introduced, the name goes everywhere in the text.
            ("by Maria. maria was great", "by [name]. [name] was great"),
        ] {
            assert_eq!(r.redact(text), out, "{text}");
        }
        for text in [
            "written by the team",
            "by The way, it broke",
            "I am Very happy",
            "I am happy",
            "from Monday on",
            "Thanks, Great service",
            "thanks for the help",
            "a top-Notch product",
            "Cheers to the team",
        ] {
            assert_eq!(r.redact(text), text);
        }
        assert_eq!(
            Redactor::new().with_cues(false).redact("by Maria"),
            "by Maria"
        );
    }

    #[test]
    fn directory_names() {
        let d = Arc::new(NameDirectory::new([
            (Some("Maria"), Some("Garcia")),
            (Some("Will"), Some("Price")),
            (None, Some("Ng")),
        ]));
        assert!(!d.is_empty());
        let r = Redactor::new().with_directory(d);
        assert_eq!(
            r.redact("Maria and GARCIA and Ng helped; maria_garcia too"),
            "[name] and [name] and [name] helped; [name] too"
        );
        // Single parts only where capitalised: words that are also names survive in prose.
        assert_eq!(
            r.redact("the price will do; Will Price said"),
            "the price will do; [name] [name] said"
        );
        assert!(NameDirectory::new([(None, None)]).is_empty());
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

    // ---- generated identities in the forms people write them ------------------------------

    const FILLER: &[&str] = &[
        "the",
        "product",
        "arrived",
        "late",
        "quality",
        "is",
        "great",
        "please",
        "refund",
        "broken",
        "box",
        "support",
        "was",
        "helpful",
        "never",
        "again",
        "love",
        "it",
        "and",
        "Order",
        "Thanks!",
        "I",
        "think",
        "so.",
        "Really",
        "good,",
        "price",
        "on",
        "2024-05-01",
        "$25.99",
        "10",
        "days",
        "X200",
    ];

    fn sentence() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(FILLER), 0..10).prop_map(|w| w.join(" "))
    }

    /// A name part, often with accents.
    fn name_part() -> impl Strategy<Value = String> {
        "[A-ZÁÉÖÑ][a-záéíóúüñçø]{2,8}"
    }

    fn digits(n: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[0-9]{{{n}}}")).unwrap()
    }

    fn full_width(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap(),
                '+' => '＋',
                other => other,
            })
            .collect()
    }

    /// Phones in the forms of the issue: en/em dashes, slashes, spaced and domestic groupings,
    /// full-width digits, glued `Tel.` prefixes.
    fn any_phone() -> impl Strategy<Value = String> {
        prop_oneof![
            (digits(3), digits(3), digits(4)).prop_map(|(a, b, c)| format!("{a}–{b}–{c}")),
            (digits(3), digits(3), digits(4)).prop_map(|(a, b, c)| format!("{a}—{b}—{c}")),
            (digits(3), digits(3), digits(4)).prop_map(|(a, b, c)| format!("{a}/{b}/{c}")),
            (digits(4), digits(7)).prop_map(|(a, b)| format!("0{}/{b}", &a[1..])),
            proptest::collection::vec(digits(2), 4).prop_map(|g| format!("06 {}", g.join(" "))),
            (digits(3), digits(3), digits(3)).prop_map(|(a, b, c)| format!("6{} {b} {c}", &a[1..])),
            proptest::collection::vec(digits(2), 4)
                .prop_map(|g| full_width(&format!("06 {}", g.join(" ")))),
            (digits(3), digits(4)).prop_map(|(a, b)| format!("Tel.090-{a}{}-{b}", &b[..1])),
            digits(9).prop_map(|d| format!("tel:+33{d}")),
            (digits(3), digits(3), digits(4)).prop_map(|(a, b, c)| format!("Ph:{a}-{b}-{c}")),
            (digits(3), digits(3), digits(4)).prop_map(|(a, b, c)| format!("({a}) {b}-{c}")),
            (digits(2), digits(4), digits(4)).prop_map(|(a, b, c)| format!("+44 {a} {b} {c}")),
        ]
    }

    /// Emails with non-ASCII local parts and domains.
    fn any_email() -> impl Strategy<Value = String> {
        (
            "[a-zéèàüöñç0-9][a-zéèàüöñç0-9._]{0,8}[a-zéüñ0-9]",
            "[a-zéüа-я]{2,8}",
            proptest::sample::select(vec!["com", "fr", "рф", "de", "es"]),
        )
            .prop_map(|(l, d, t)| format!("{l}@{d}.{t}"))
    }

    #[derive(Debug, Clone)]
    struct Identity {
        /// As the database has them.
        record_first: String,
        record_last: String,
        email: String,
        phone: String,
        /// How the text spells the names.
        written: String,
    }

    fn strip_accents(s: &str) -> String {
        use unicode_normalization::UnicodeNormalization;
        s.nfd()
            .filter(|&c| !unicode_normalization::char::is_combining_mark(c))
            .collect()
    }

    fn identity() -> impl Strategy<Value = Identity> {
        (
            name_part(),
            name_part(),
            any::<bool>(), // last name with an O' prefix
            any::<bool>(), // the record has the accents (else the text does)
            0..9usize,     // how the text writes the names
            any_email(),
            any_email(),
            any_phone(),
        )
            .prop_map(
                |(first, last, irish, record_accents, form, email, other, phone)| {
                    let last = if irish { format!("O'{last}") } else { last };
                    let (record_first, record_last) = if record_accents {
                        (first.clone(), last.clone())
                    } else {
                        (strip_accents(&first), strip_accents(&last))
                    };
                    let written = match form {
                        0 => format!("{first} {last}"),
                        1 => format!("{} {}", strip_accents(&first), strip_accents(&last)),
                        2 => format!("{} {}", first.to_uppercase(), last.to_uppercase()),
                        3 => format!(
                            "{} {}",
                            first.to_lowercase(),
                            last.replace('\'', "’").to_lowercase()
                        ),
                        4 => format!(
                            "{}_{}",
                            first.to_lowercase(),
                            strip_accents(&last).replace('\'', "").to_lowercase()
                        ),
                        5 => format!(
                            "{}.{}",
                            strip_accents(&first).to_lowercase(),
                            last.to_lowercase()
                        ),
                        6 => format!("Regards,\n{first} {}", last.replace('\'', "ʼ")),
                        7 => format!("my name is {first} and {other} is my wife's"),
                        _ => format!("by {} {}", first.to_uppercase(), last.replace('\'', "‘")),
                    };
                    Identity {
                        record_first,
                        record_last,
                        email,
                        phone,
                        written,
                    }
                },
            )
    }

    /// Folded alphabetic words of `s`.
    fn folded_words(s: &str) -> Vec<String> {
        fold(s)
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| w.chars().count() >= 2)
            .map(str::to_string)
            .collect()
    }

    /// The folded forms a name can take: its words, and its words with apostrophes dropped.
    fn name_forms(name: &str) -> Vec<String> {
        let mut forms = folded_words(name);
        forms.extend(folded_words(&fold(name).replace('\'', "")));
        forms
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// None of a customer's identifiers survives in any of the forms people write them,
        /// embedded in review sentences: after folding, the output holds no word of their
        /// names, none of their email, and not their phone's digits.
        #[test]
        fn identities_never_survive(id in identity(), a in sentence(), b in sentence(), c in sentence(), d in sentence()) {
            let forms: Vec<String> = name_forms(&id.record_first).into_iter().chain(name_forms(&id.record_last)).collect();
            let filler: Vec<String> = FILLER.iter().flat_map(|w| folded_words(w)).collect();
            prop_assume!(forms.iter().all(|f| !filler.contains(f) && !["name", "phone", "email", "card", "regards", "my", "is", "by", "and", "wife"].contains(&f.as_str())));

            let customer = customer(&id.record_first, &id.record_last, &id.email);
            let email_form = if id.phone.len() % 2 == 0 { id.email.to_uppercase() } else { id.email.clone() };
            let text = format!("{a} {} {b} mail {email_form} {c}, call {} {d}", id.written, id.phone);
            let out = Redactor::for_customer(&customer).redact(&text);
            let words = folded_words(&out);
            for f in &forms {
                prop_assert!(!words.contains(f), "{f:?} survived: {text:?} -> {out:?}");
            }
            prop_assert!(!fold(&out).contains(&fold(&id.email)), "{text:?} -> {out:?}");
            prop_assert!(!out.contains('@'), "{text:?} -> {out:?}");
            let phone_digits: String = fold(&id.phone).chars().filter(char::is_ascii_digit).collect();
            let out_digits: String = fold(&out).chars().filter(char::is_ascii_digit).collect();
            prop_assert!(!out_digits.contains(&phone_digits), "{text:?} -> {out:?}");
            // What is no identifier survives.
            for keep in ["2024-05-01", "$25.99", "X200"] {
                prop_assert_eq!(text.matches(keep).count(), out.matches(keep).count(), "{} in {:?}", keep, out);
            }
        }

        /// Tickets with no customer: a name the directory knows, written in any of the forms,
        /// does not survive either.
        #[test]
        fn directory_names_never_survive(id in identity(), a in sentence(), b in sentence()) {
            let forms: Vec<String> = name_forms(&id.record_first).into_iter().chain(name_forms(&id.record_last)).collect();
            let filler: Vec<String> = FILLER.iter().flat_map(|w| folded_words(w)).collect();
            prop_assume!(forms.iter().all(|f| !filler.contains(f) && !["name", "email", "regards", "my", "is", "by", "and", "wife"].contains(&f.as_str())));
            let directory = NameDirectory::new([
                (Some("Someone"), Some("Else")),
                (Some(id.record_first.as_str()), Some(id.record_last.as_str())),
            ]);
            let r = Redactor::new().with_directory(Arc::new(directory));
            let text = format!("{a} {} {b}", id.written);
            let out = r.redact(&text);
            let words = folded_words(&out);
            for f in &forms {
                prop_assert!(!words.contains(f), "{f:?} survived: {text:?} -> {out:?}");
            }
        }
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
