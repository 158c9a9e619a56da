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
    fn mean_skips_non_finite() {
        assert_eq!(mean([1.0, f64::NAN, 3.0]), Some(2.0));
        assert_eq!(mean([f64::INFINITY]), None);
        assert_eq!(mean(std::iter::empty()), None);
    }
}
