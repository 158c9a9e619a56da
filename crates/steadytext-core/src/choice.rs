//! Choosing among fixed options by the model's own probabilities.
//!
//! **Scoring rule.** Each option is scored as a complete answer: the sum of the log-probabilities
//! of its tokens after the prompt, plus the log-probability of the end-of-turn token right after
//! it (so "a" and "ab" compete fairly: "a" must also be where the model would stop). The option
//! with the highest total wins; ties go to the lowest index. The per-token average (total /
//! (tokens + 1)) is reported too. All options are scored from one shared prefill of the prompt,
//! and options sharing leading tokens share that computation (a token trie).
//!
//! The output is always exactly one of the given strings: nothing is generated freely.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::LanguageModel;

/// One option's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceScore {
    /// The option.
    pub option: String,
    /// Total log-probability of the option's tokens and the end token after them.
    pub logprob: f64,
    /// `logprob / (tokens + 1)`.
    pub normalized: f64,
    /// Tokens the option took.
    pub tokens: usize,
}

/// The result of [`crate::Engine::choice`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The chosen option, exactly as given.
    pub choice: String,
    /// Its index in the given options.
    pub index: usize,
    /// Every option's score, in the given order.
    pub scores: Vec<ChoiceScore>,
    /// Whether this came from the cache.
    #[serde(default)]
    pub cached: bool,
}

impl Choice {
    /// Total log-probability margin between the best and the second-best option.
    pub fn margin(&self) -> f64 {
        let mut totals: Vec<f64> = self.scores.iter().map(|s| s.logprob).collect();
        totals.sort_by(|a, b| b.total_cmp(a));
        match totals.as_slice() {
            [a, b, ..] => a - b,
            _ => f64::INFINITY,
        }
    }

    /// Pick the best of `scores` (highest total, ties to the lowest index).
    pub fn from_scores(scores: Vec<ChoiceScore>) -> Self {
        let mut best = 0;
        for (i, s) in scores.iter().enumerate() {
            if s.logprob > scores[best].logprob {
                best = i;
            }
        }
        Self {
            choice: scores[best].option.clone(),
            index: best,
            scores,
            cached: false,
        }
    }
}

/// Check an option list: at least two, none empty, no duplicates.
pub fn validate_options<S: AsRef<str>>(options: &[S]) -> Result<Vec<String>> {
    if options.len() < 2 {
        return Err(Error::TooFewChoices(options.len()));
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, o) in options.iter().enumerate() {
        let o = o.as_ref();
        if o.is_empty() {
            return Err(Error::EmptyChoice { index: i });
        }
        if let Some(&first) = seen.get(o) {
            return Err(Error::DuplicateChoice {
                option: o.to_string(),
                first,
                second: i,
            });
        }
        seen.insert(o, i);
    }
    Ok(options.iter().map(|o| o.as_ref().to_string()).collect())
}

/// Log-probabilities from logits (numerically stable, in f64).
pub fn log_softmax_at(logits: &[f32], lse: f64, token: u32) -> f64 {
    logits
        .get(token as usize)
        .map(|&l| l as f64 - lse)
        .unwrap_or(f64::NEG_INFINITY)
}

/// log(sum(exp(logits))).
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = logits
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| (v as f64 - max).exp())
        .sum();
    max + sum.ln()
}

#[derive(Default)]
struct Node {
    children: BTreeMap<u32, Node>,
    /// Options that end exactly here.
    ends: Vec<usize>,
}

/// Score tokenized options after a prompt whose last-position logits are `logits` and whose KV
/// state is in `model` (at position `pos`). `end` is the end-of-turn token.
pub fn score_token_options(
    model: &dyn LanguageModel,
    logits: &[f32],
    pos: usize,
    options: &[Vec<u32>],
    end: u32,
) -> Result<Vec<(f64, usize)>> {
    let mut root = Node::default();
    for (i, ids) in options.iter().enumerate() {
        let mut node = &mut root;
        for &t in ids {
            node = node.children.entry(t).or_default();
        }
        node.ends.push(i);
    }
    let mut out = vec![(f64::NEG_INFINITY, 0usize); options.len()];
    walk(model, logits, pos, &root, 0.0, &mut out, end, options)?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn walk(
    model: &dyn LanguageModel,
    logits: &[f32],
    pos: usize,
    node: &Node,
    acc: f64,
    out: &mut [(f64, usize)],
    end: u32,
    options: &[Vec<u32>],
) -> Result<()> {
    let lse = log_sum_exp(logits);
    for &i in &node.ends {
        out[i] = (acc + log_softmax_at(logits, lse, end), options[i].len());
    }
    for (&token, child) in &node.children {
        let lp = acc + log_softmax_at(logits, lse, token);
        let mut branch = model.fork();
        let next = branch.forward(&[token], pos)?;
        walk(
            branch.as_ref(),
            &next,
            pos + 1,
            child,
            lp,
            out,
            end,
            options,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_lists_are_validated() {
        assert!(matches!(
            validate_options(&["a"]),
            Err(Error::TooFewChoices(1))
        ));
        assert!(matches!(
            validate_options::<&str>(&[]),
            Err(Error::TooFewChoices(0))
        ));
        assert!(matches!(
            validate_options(&["a", ""]),
            Err(Error::EmptyChoice { index: 1 })
        ));
        assert!(matches!(
            validate_options(&["a", "b", "a"]),
            Err(Error::DuplicateChoice {
                first: 0,
                second: 2,
                ..
            })
        ));
        assert_eq!(validate_options(&["a", "ab"]).unwrap(), vec!["a", "ab"]);
    }

    #[test]
    fn ties_go_to_the_lowest_index_and_margin_is_reported() {
        let s = |o: &str, lp: f64| ChoiceScore {
            option: o.into(),
            logprob: lp,
            normalized: lp,
            tokens: 1,
        };
        let c = Choice::from_scores(vec![s("x", -2.0), s("y", -1.0), s("z", -1.0)]);
        assert_eq!((c.index, c.choice.as_str()), (1, "y"));
        assert_eq!(c.margin(), 0.0);
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let lse = log_sum_exp(&[1000.0, 1000.0]);
        assert!((lse - (1000.0 + 2f64.ln())).abs() < 1e-9);
        assert!(
            (log_softmax_at(&[0.0, 0.0], log_sum_exp(&[0.0, 0.0]), 1) - 0.5f64.ln()).abs() < 1e-12
        );
    }
}
