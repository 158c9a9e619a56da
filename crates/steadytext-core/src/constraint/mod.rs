//! Token-level output constraints, enforced with llguidance: at each decoding step a mask of the
//! tokens the constraint allows is computed and every other logit is set to negative infinity,
//! so greedy decoding can only produce output that satisfies the constraint.
//!
//! - JSON Schema: compiled with fixed separators (`", "`, `": "`) and no free whitespace (the
//!   small default model otherwise fills flexible whitespace with newlines); free strings and
//!   arrays without bounds get default caps ([`bound_schema`]).
//! - Regex: Rust `regex` syntax, except that `\d` means ASCII `[0-9]` ([`ascii_digits`]); the
//!   whole output must match.
//!
//! Constrained decoding is greedy with a 1.1 repetition penalty over the last 64 tokens
//! ([`crate::engine::CONSTRAINED_REPEAT_PENALTY`], adjustable per call): free-text fields otherwise loop on a small model.
//!
//! Compilation is done once per distinct constraint (keyed by its canonical form) and memoised;
//! each request gets a fresh copy of the compiled matcher. Measured on the project's 2-core
//! machine: compile ~1 ms, mask ~50–100 µs per token — under 1% of a decode step.

mod schema;
mod token_env;

use std::collections::HashMap;
use std::sync::Mutex;

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;
use toktrie::TokEnv;

pub use schema::{
    bound_schema, normalize_schema, SchemaValidator, DEFAULT_MAX_ITEMS, DEFAULT_MAX_STRING_LENGTH,
};
pub use token_env::token_env;

use crate::backend::Constraint;
use crate::cache::canonical_json;
use crate::decode::TokenConstraint;
use crate::error::{Error, Result};
use crate::tokenizer::GgufTokenizer;

/// Bump when compilation options change (they change outputs, so they are part of cache keys).
pub const CONSTRAINT_VERSION: u32 = 2;

/// Rewrite `\d` / `\D` to ASCII digit classes. Rust's `\d` is any Unicode digit, which lets a
/// small model satisfy `\d{4}` with exotic code points; a pattern writer means `[0-9]`.
///
/// ```
/// use steadytext_core::constraint::ascii_digits;
/// assert_eq!(ascii_digits(r"\d{4}-[\da-f]\D\\d"), r"[0-9]{4}-[0-9a-f][^0-9]\\d");
/// ```
pub fn ascii_digits(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('d') => out.push_str(if in_class { "0-9" } else { "[0-9]" }),
                Some('D') if !in_class => out.push_str("[^0-9]"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    out.push(chars.next().unwrap_or(']'));
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            other => out.push(other),
        }
    }
    out
}

/// The regex that decides full matches of `pattern` (with [`ascii_digits`] applied); an invalid
/// pattern is a typed error.
pub fn full_match_regex(pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(&format!("^(?:{})$", ascii_digits(pattern))).map_err(|e| {
        Error::InvalidRegex {
            pattern: pattern.to_string(),
            reason: e.to_string(),
        }
    })
}

/// A constraint's canonical form: what cache keys and the compile memo use.
pub fn canonical(constraint: &Constraint) -> String {
    match constraint {
        Constraint::Regex(p) => format!("regex:v{CONSTRAINT_VERSION}:{p}"),
        Constraint::JsonSchema(s) => format!("json:v{CONSTRAINT_VERSION}:{}", canonical_json(s)),
    }
}

/// Compiles constraints for one tokenizer and memoises the results.
pub struct ConstraintCompiler {
    factory: ParserFactory,
    memo: Mutex<HashMap<String, Matcher>>,
}

impl std::fmt::Debug for ConstraintCompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConstraintCompiler").finish_non_exhaustive()
    }
}

impl ConstraintCompiler {
    /// A compiler over `tokenizer` whose model produces `vocab_size` logits.
    pub fn new(tokenizer: &GgufTokenizer, vocab_size: usize) -> Result<Self> {
        let env: TokEnv = token_env(tokenizer, vocab_size)?;
        let mut factory = ParserFactory::new_simple(&env)
            .map_err(|e| Error::Tokenizer(format!("llguidance token environment: {e}")))?;
        factory.quiet();
        Ok(Self {
            factory,
            memo: Mutex::new(HashMap::new()),
        })
    }

    fn grammar(constraint: &Constraint) -> Result<TopLevelGrammar> {
        Ok(match constraint {
            Constraint::Regex(p) => {
                full_match_regex(p)?;
                TopLevelGrammar::from_regex(&ascii_digits(p))
            }
            Constraint::JsonSchema(s) => {
                let mut s = bound_schema(&normalize_schema(s)?);
                if let Value::Object(map) = &mut s {
                    map.insert(
                        "x-guidance".into(),
                        serde_json::json!({
                            "whitespace_flexible": false,
                            "item_separator": ", ",
                            "key_separator": ": ",
                        }),
                    );
                }
                TopLevelGrammar::from_json_schema(s)
            }
        })
    }

    /// A fresh matcher for `constraint` (compiled on first use, then copied).
    pub fn matcher(&self, constraint: &Constraint) -> Result<Matcher> {
        let key = canonical(constraint);
        if let Some(m) = self.memo.lock().expect("constraint memo").get(&key) {
            return Ok(m.deep_clone());
        }
        let matcher = self.compile(constraint)?;
        let copy = matcher.deep_clone();
        self.memo
            .lock()
            .expect("constraint memo")
            .insert(key, matcher);
        Ok(copy)
    }

    /// Compile `constraint` now, bypassing the memo.
    pub fn compile(&self, constraint: &Constraint) -> Result<Matcher> {
        let grammar = Self::grammar(constraint)?;
        let invalid = |reason: String| match constraint {
            Constraint::Regex(p) => Error::InvalidRegex {
                pattern: p.clone(),
                reason,
            },
            Constraint::JsonSchema(_) => {
                Error::InvalidSchema(format!("cannot be enforced: {reason}"))
            }
        };
        let parser = self
            .factory
            .create_parser(grammar)
            .map_err(|e| invalid(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(invalid(e));
        }
        Ok(matcher)
    }
}

/// A compiled constraint in use during one decoding run.
pub struct MatcherConstraint {
    matcher: Matcher,
    /// This step's mask, when [`TokenConstraint::allowed`] computed it before [`mask`]
    /// (computed once per step either way).
    ///
    /// [`mask`]: TokenConstraint::mask
    pending: Option<toktrie::SimpleVob>,
}

impl MatcherConstraint {
    /// Wrap a fresh matcher.
    pub fn new(matcher: Matcher) -> Self {
        Self {
            matcher,
            pending: None,
        }
    }

    fn compute_mask(&mut self) -> Result<toktrie::SimpleVob> {
        let mask = self
            .matcher
            .compute_mask()
            .map_err(|e| Error::Inference(format!("constraint mask: {e}")))?;
        if mask.is_zero() {
            return Err(Error::Inference(
                "the constraint admits no token at this point".into(),
            ));
        }
        Ok(mask)
    }

    fn check(&self) -> Result<()> {
        match self.matcher.get_error() {
            Some(e) => Err(Error::Inference(format!("constraint engine: {e}"))),
            None => Ok(()),
        }
    }
}

impl TokenConstraint for MatcherConstraint {
    fn mask(&mut self, logits: &mut [f32]) -> Result<()> {
        let mask = match self.pending.take() {
            Some(m) => m,
            None => self.compute_mask()?,
        };
        let n = logits.len();
        mask.iter_unset_entries(|i| {
            if i < n {
                logits[i] = f32::NEG_INFINITY;
            }
        });
        for l in logits.iter_mut().skip(mask.len()) {
            *l = f32::NEG_INFINITY;
        }
        Ok(())
    }

    fn consume(&mut self, token: u32) -> Result<()> {
        self.pending = None;
        self.matcher
            .consume_token(token)
            .map_err(|e| Error::Inference(format!("constraint rejected token {token}: {e}")))?;
        self.check()
    }

    fn is_stopped(&self) -> bool {
        self.matcher.is_stopped()
    }

    fn is_accepting(&self) -> bool {
        self.matcher.clone().is_accepting().unwrap_or(false)
    }

    fn allowed(&mut self, limit: usize) -> Result<Option<Vec<u32>>> {
        if self.matcher.is_stopped() {
            return Ok(None);
        }
        let mask = match self.pending.take() {
            Some(m) => m,
            None => self.compute_mask()?,
        };
        let allowed = (mask.num_set() <= limit).then(|| {
            let mut v = Vec::with_capacity(mask.num_set());
            mask.iter_set_entries(|i| v.push(i as u32));
            v
        });
        self.pending = Some(mask);
        Ok(allowed)
    }
}
