//! The folded view of a text that every detector matches on.
//!
//! Folding, one character at a time: NFKC (full-width digits and letters become ASCII, a
//! no-break space a space), then NFD with the combining marks dropped (accents: `é` → `e`),
//! then lower case. Letters that carry their "accent" without a combining mark are spelt out
//! (`ß` → `ss`, `ø` → `o`, `ł` → `l`, `æ` → `ae`, …); every apostrophe variant (`’ ‘ ʼ ´ ` `)
//! becomes `'` and every dash variant (hyphen, non-breaking hyphen, figure dash, en and em
//! dash, minus sign, full-width hyphen) becomes `-`.
//!
//! [`Folded`] keeps, for every byte of the folded text, the byte range of the original
//! character it came from, so a match in the folded text is replaced in the original.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// `text` folded (see the module docs).
///
/// ```
/// use steadytext_schema::privacy::fold;
///
/// assert_eq!(fold("JOSÉ O’Neil"), "jose o'neil");
/// assert_eq!(fold("０６–１２"), "06-12");
/// assert_eq!(fold("Straße"), "strasse");
/// ```
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        fold_char(c, &mut |f| out.push(f));
    }
    out
}

/// Push the folded form of `c` (zero or more characters).
fn fold_char(c: char, push: &mut impl FnMut(char)) {
    if c.is_ascii() {
        push(c.to_ascii_lowercase());
        return;
    }
    let compat: String = std::iter::once(c).nfkc().collect();
    for k in compat.nfd() {
        if is_combining_mark(k) {
            continue;
        }
        match k {
            '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{02BC}' | '\u{02BB}' | '\u{00B4}'
            | '\u{0060}' | '\u{2032}' | '\u{FF07}' => push('\''),
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => {
                push('-')
            }
            'ß' | 'ẞ' => {
                push('s');
                push('s');
            }
            'æ' | 'Æ' => {
                push('a');
                push('e');
            }
            'œ' | 'Œ' => {
                push('o');
                push('e');
            }
            'þ' | 'Þ' => {
                push('t');
                push('h');
            }
            'ø' | 'Ø' => push('o'),
            'ł' | 'Ł' => push('l'),
            'đ' | 'Đ' | 'ð' | 'Ð' => push('d'),
            'ı' => push('i'),
            other => other.to_lowercase().for_each(&mut *push),
        }
    }
}

/// A folded text with the way back to the original.
#[derive(Debug, Clone)]
pub(crate) struct Folded {
    /// The folded text.
    pub text: String,
    /// For each byte of `text`, the original character's byte range.
    origin: Vec<(usize, usize)>,
}

impl Folded {
    pub fn new(original: &str) -> Self {
        let mut text = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        for (start, c) in original.char_indices() {
            let end = start + c.len_utf8();
            fold_char(c, &mut |f| {
                text.push(f);
                origin.extend(std::iter::repeat_n((start, end), f.len_utf8()));
            });
        }
        Self { text, origin }
    }

    /// The original byte range of folded bytes `start..end` (`start < end`).
    pub fn original_range(&self, start: usize, end: usize) -> (usize, usize) {
        (self.origin[start].0, self.origin[end - 1].1)
    }

    /// The folded character before byte `at`.
    pub fn char_before(&self, at: usize) -> Option<char> {
        self.text[..at].chars().next_back()
    }

    /// The folded character at byte `at`.
    pub fn char_at(&self, at: usize) -> Option<char> {
        self.text[at..].chars().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_accents_width_apostrophes_and_dashes() {
        assert_eq!(fold("José JOSÉ Jose\u{301}"), "jose jose jose");
        assert_eq!(fold("O’Neil Oʼneil O'NEIL"), "o'neil o'neil o'neil");
        assert_eq!(fold("０６ １２—３４"), "06 12-34");
        assert_eq!(fold("Tél.\u{a0}090"), "tel. 090");
        assert_eq!(fold("Łukasz Søren Ægir"), "lukasz soren aegir");
    }

    #[test]
    fn maps_back_to_the_original() {
        let original = "Hé ＪＯＳÉ!";
        let f = Folded::new(original);
        assert_eq!(f.text, "he jose!");
        let at = f.text.find("jose").unwrap();
        let (s, e) = f.original_range(at, at + 4);
        assert_eq!(&original[s..e], "ＪＯＳÉ");
    }
}
