//! Parsers for the numeric command-line options, used as clap `value_parser`s so that a value
//! that cannot work is a usage error (exit status 2, with the option named) instead of a panic
//! deep inside (`Duration::from_secs_f64(1e20)`, `Vec::with_capacity(u64::MAX)`, `2 * n + 4`
//! overflowing, a thread pool of 2^64 threads).
//!
//! | option | accepted | why the bound |
//! |---|---|---|
//! | `--request-timeout`, `--lease`, `--poll-interval` | finite, `> 0`, at most [`MAX_SECONDS`] | a `Duration` must exist; a week is longer than any request or job |
//! | `--shutdown-grace` | finite, `>= 0`, at most [`MAX_SECONDS`] | 0 releases jobs at once |
//! | `--concurrency` | 1 to [`MAX_CONCURRENCY`] | each slot is a task, a pool connection and model memory |
//! | `--threads` (bench) | 1 to [`MAX_THREADS`] | one OS thread each |
//! | `--runs`, `--prompt-tokens`, `--decode-tokens`, `--batch` (bench) | 1 to [`MAX_BENCH`] | buffers of that many items |
//!
//! `--max-tokens` needs no parser: the engine rejects 0 and anything above the model's context
//! with a typed error before allocating. `--seed` and `--max-attempts` take their whole range.

use std::ops::RangeInclusive;

/// Longest duration any seconds option accepts: one week.
pub const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Most model calls or jobs kept in flight (`--concurrency`). On the measured 2-core machine 8
/// already saturates the model; 256 leaves room for an inference server with many slots.
pub const MAX_CONCURRENCY: usize = 256;

/// Most kernel threads `bench --threads` starts.
pub const MAX_THREADS: usize = 1024;

/// Upper bound of bench's counts (`--runs`, `--prompt-tokens`, `--decode-tokens`, `--batch`).
pub const MAX_BENCH: usize = 65_536;

fn float(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("{s:?} is not a number of seconds"))
}

fn bounded_seconds(s: &str, allow_zero: bool) -> Result<f64, String> {
    let v = float(s)?;
    let low_ok = if allow_zero { v >= 0.0 } else { v > 0.0 };
    if !v.is_finite() || !low_ok || v > MAX_SECONDS {
        let low = if allow_zero {
            "between 0"
        } else {
            "greater than 0 and at most"
        };
        let and = if allow_zero { " and" } else { "" };
        return Err(format!(
            "{s} seconds is out of range: must be {low}{and} {MAX_SECONDS} (one week)"
        ));
    }
    Ok(v)
}

/// A positive, finite number of seconds up to [`MAX_SECONDS`].
pub fn seconds(s: &str) -> Result<f64, String> {
    bounded_seconds(s, false)
}

/// Like [`seconds`], but 0 is allowed.
pub fn seconds_or_zero(s: &str) -> Result<f64, String> {
    bounded_seconds(s, true)
}

fn count_in(s: &str, range: RangeInclusive<usize>) -> Result<usize, String> {
    let v: u128 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    match usize::try_from(v) {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(format!(
            "{s} is out of range: must be between {} and {}",
            range.start(),
            range.end()
        )),
    }
}

/// `--concurrency`: 1 to [`MAX_CONCURRENCY`].
pub fn concurrency(s: &str) -> Result<usize, String> {
    count_in(s, 1..=MAX_CONCURRENCY)
}

/// `bench --threads`: 1 to [`MAX_THREADS`].
pub fn threads(s: &str) -> Result<usize, String> {
    count_in(s, 1..=MAX_THREADS)
}

/// bench's counts: 1 to [`MAX_BENCH`].
pub fn bench_count(s: &str) -> Result<usize, String> {
    count_in(s, 1..=MAX_BENCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_reject_what_duration_cannot_hold() {
        for bad in [
            "1e20", "nan", "NaN", "inf", "-inf", "-1", "0", "abc", "", "604801",
        ] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(seconds("0.5"), Ok(0.5));
        assert_eq!(seconds("604800"), Ok(MAX_SECONDS));
        assert_eq!(seconds_or_zero("0"), Ok(0.0));
        assert!(seconds_or_zero("-0.1").is_err());
        // Whatever passes fits a Duration.
        assert!(std::time::Duration::try_from_secs_f64(MAX_SECONDS).is_ok());
    }

    #[test]
    fn counts_are_bounded() {
        assert_eq!(concurrency("8"), Ok(8));
        assert_eq!(concurrency("256"), Ok(256));
        for bad in [
            "0",
            "257",
            "18446744073709551615",
            "18446744073709551616",
            "-1",
            "x",
        ] {
            assert!(concurrency(bad).is_err(), "{bad}");
        }
        assert!(threads("0").is_err() && threads("1025").is_err());
        assert_eq!(bench_count("65536"), Ok(65_536));
        assert!(bench_count("0").is_err());
    }
}
