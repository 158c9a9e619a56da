//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in this crate's pure domain code.
///
/// ```
/// use steadytext_schema::{ReviewSentiment, SchemaError};
///
/// let err = "ecstatic".parse::<ReviewSentiment>().unwrap_err();
/// assert!(matches!(err, SchemaError::UnknownVariant { kind: "review sentiment", .. }));
/// assert!(err.to_string().contains("very_positive"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchemaError {
    /// A string that is not one of a closed set's labels.
    #[error("unknown {kind} {value:?}; expected one of: {expected}")]
    UnknownVariant {
        /// Which closed set (e.g. `"urgency"`).
        kind: &'static str,
        /// The string that was given.
        value: String,
        /// The accepted labels, comma-separated.
        expected: String,
    },
    /// A product rating outside the seed's `CHECK (rating >= 1 AND rating <= 5)`.
    #[error("rating {0} is outside 1..=5")]
    RatingOutOfRange(i64),
    /// A list with the wrong number of items (e.g. marketing strategies must be exactly 3).
    #[error("expected {expected} {what}, got {got}")]
    WrongCount {
        /// What was counted.
        what: &'static str,
        /// The allowed count, in words (e.g. `"exactly 3"`, `"at most 5"`).
        expected: String,
        /// The count found.
        got: usize,
    },
}

/// Shorthand for `Result<T, SchemaError>`.
pub type Result<T, E = SchemaError> = std::result::Result<T, E>;
