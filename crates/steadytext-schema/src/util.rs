//! Small private helpers: finite-number cleaning, deterministic number formatting, text hygiene.

/// `Some(x)` only when `x` is finite: NaN and infinities count as missing data.
pub(crate) fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// Round half away from zero to `dp` decimals (PostgreSQL's `ROUND(numeric, dp)`), never `-0`.
pub(crate) fn round_to(x: f64, dp: i32) -> f64 {
    let f = 10f64.powi(dp);
    let r = (x * f).round() / f;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// Fixed-point text with `dp` decimals, rounding as [`round_to`] does and never printing `-0.00`.
pub(crate) fn fixed(x: f64, dp: usize) -> String {
    format!("{:.*}", dp, round_to(x, dp as i32))
}

/// `"1 customer"`, `"2 customers"`.
pub(crate) fn count(n: u64, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// Collapse every run of whitespace (newlines included) to one space and trim the ends.
pub(crate) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Collapse runs of spaces and tabs to one space and runs of whitespace holding a line break
/// to one `\n`, trimming the ends: the line structure a signature cue needs survives.
pub(crate) fn tidy_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s
        .split('\n')
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&line);
    }
    out
}

/// The first at most `max` characters of `s`, cut before redaction: at a whitespace boundary
/// whose preceding word holds no digit and no `@`, so the cut can split no phone or card
/// number (whose groups are separated by spaces) and no email address. Searches back to half
/// of `max`; `None` if `s` is short enough, `Some(s)` (uncut) if no safe boundary was found.
pub(crate) fn cut_for_redaction(s: &str, max: usize) -> Option<&str> {
    let (limit, _) = s.char_indices().nth(max)?;
    let floor = s.char_indices().nth(max / 2).map_or(0, |(b, _)| b);
    let mut end = limit;
    // The boundary at `limit` itself is fine when the text continues with whitespace.
    let mut at_space = s[limit..].starts_with(char::is_whitespace);
    loop {
        if at_space {
            let word_start = s[..end]
                .rfind(char::is_whitespace)
                .map_or(0, |i| i + s[i..].chars().next().map_or(1, char::len_utf8));
            let word = &s[word_start..end];
            if !word.is_empty() && !word.contains(|c: char| c.is_numeric() || c == '@' || c == '＠')
            {
                return Some(s[..end].trim_end());
            }
        }
        let Some((i, c)) = s[..end].char_indices().next_back() else {
            return Some(s);
        };
        if i < floor {
            return Some(s);
        }
        at_space = c.is_whitespace();
        end = i;
    }
}

/// At most `max` characters, cut on a character boundary, with `…` marking a cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((byte, _)) => {
            let mut out = s[..byte].trim_end().to_string();
            out.push('…');
            out
        }
    }
}

/// Arithmetic mean of the finite values, `None` when there are none.
pub(crate) fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_never_prints_negative_zero() {
        assert_eq!(fixed(-0.001, 2), "0.00");
        assert_eq!(fixed(2.345, 1), "2.3");
        assert_eq!(fixed(2500.0, 2), "2500.00");
    }

    #[test]
    fn truncation_is_on_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 10), "héllo");
        assert_eq!(truncate_chars("héllo wörld", 7), "héllo w…");
        assert_eq!(truncate_chars("héllo wörld", 6), "héllo…");
    }

    #[test]
    fn whitespace_keeps_line_breaks() {
        assert_eq!(tidy_whitespace("  a \t b \r\n\n  c  "), "a b\nc");
    }

    #[test]
    fn cuts_split_no_number_or_email() {
        assert_eq!(cut_for_redaction("short", 10), None);
        assert_eq!(cut_for_redaction("aaaa bbbb cccc", 7), Some("aaaa"));
        assert_eq!(cut_for_redaction("aaaa bbbb cccc", 9), Some("aaaa bbbb"));
        assert_eq!(
            cut_for_redaction("call me on 06 12 34 56 78 ok", 20),
            Some("call me on")
        );
        assert_eq!(
            cut_for_redaction("mail x jane@mail.example ok", 12),
            Some("mail x")
        );
        // No safe boundary in the second half: uncut (redact all, then cut).
        assert_eq!(
            cut_for_redaction("1 2 3 4 5 6 7 8", 8),
            Some("1 2 3 4 5 6 7 8")
        );
    }

    #[test]
    fn mean_skips_non_finite() {
        assert_eq!(mean([1.0, f64::NAN, 3.0]), Some(2.0));
        assert_eq!(mean([f64::INFINITY]), None);
        assert_eq!(mean(std::iter::empty()), None);
    }
}
