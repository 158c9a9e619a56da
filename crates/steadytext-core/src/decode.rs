//! Deterministic greedy decoding over any [`LanguageModel`].
//!
//! Each step takes the arg-max logit, ties broken by the lowest token id, so the output depends on
//! the logits alone. Generation ends at an end-of-sequence token, before the first occurrence of a
//! stop string, when a constraint is complete, or after `max_tokens`.

use crate::error::Result;
use crate::model::LanguageModel;
use crate::options::FinishReason;
use crate::tokenizer::GgufTokenizer;

/// The arg-max of `logits`, ties to the lowest index; NaN never wins. Returns 0 for an all-NaN
/// or empty slice.
///
/// ```
/// assert_eq!(steadytext_core::decode::argmax(&[0.5, 2.0, 2.0, f32::NAN]), 1);
/// ```
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    let mut found = false;
    for (i, &v) in logits.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if !found || v > best_v {
            best = i;
            best_v = v;
            found = true;
        }
    }
    best as u32
}

/// A token-level constraint: it narrows the choice at each step and says when it is complete.
pub trait TokenConstraint {
    /// Set every logit the constraint forbids at this step to negative infinity.
    fn mask(&mut self, logits: &mut [f32]) -> Result<()>;
    /// Advance past `token`.
    fn consume(&mut self, token: u32) -> Result<()>;
    /// The constraint is complete and admits no further token.
    fn is_stopped(&self) -> bool;
    /// The output so far satisfies the constraint (an end-of-sequence token is allowed now).
    fn is_accepting(&self) -> bool;
    /// The tokens allowed at this step, when there are at most `limit` of them (`None`: more,
    /// or not known). A decoder may then compute only their logits; [`Self::mask`] still runs
    /// and must agree.
    fn allowed(&mut self, limit: usize) -> Result<Option<Vec<u32>>> {
        let _ = limit;
        Ok(None)
    }
}

/// What one decoding run produced.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The generated ids (up to, not including, an end-of-sequence token).
    pub ids: Vec<u32>,
    /// The decoded text, cut before a stop string.
    pub text: String,
    /// Why decoding ended.
    pub finish: FinishReason,
}

/// Parameters of one greedy run.
#[derive(Debug, Clone)]
pub struct DecodeParams<'a> {
    /// Upper bound on generated tokens.
    pub max_tokens: usize,
    /// Stop strings (output is cut before the first occurrence of any of them).
    pub stop: &'a [String],
    /// Ids that end generation.
    pub eos: &'a [u32],
    /// Repetition penalty (1.0 = off): before the arg-max, the logit of every token generated in
    /// the last `repeat_window` steps is divided by this (multiplied when negative), as
    /// llama.cpp's `repeat_penalty` does. Deterministic: it depends only on the output so far.
    pub repeat_penalty: f32,
    /// How many recent generated tokens the penalty looks at.
    pub repeat_window: usize,
}

/// Apply the repetition penalty to `logits` for the tokens in `recent`.
pub fn penalize_repeats(logits: &mut [f32], recent: &[u32], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut seen = std::collections::BTreeSet::new();
    for &t in recent {
        if seen.insert(t) {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
            }
        }
    }
}

fn earliest_stop(text: &str, stop: &[String]) -> Option<usize> {
    stop.iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

/// What [`GreedyState::step`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Feed this token to the model and call `step` again with the logits after it.
    Continue(u32),
    /// Generation is over; call [`GreedyState::finish`].
    Finished(FinishReason),
}

/// Greedy decoding as a state machine, one decision per call: the single-request loop
/// ([`greedy`]) and the batched scheduler drive the same steps, so a request decodes to the same
/// tokens whichever runs it.
#[derive(Debug, Clone, Default)]
pub struct GreedyState {
    ids: Vec<u32>,
}

impl GreedyState {
    /// A fresh state (nothing generated yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens generated so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Decide what follows `logits` (the logits after the prompt or after the last token this
    /// state returned). `logits` is modified (masking, penalties).
    pub fn step(
        &mut self,
        logits: &mut [f32],
        tokenizer: &GgufTokenizer,
        params: &DecodeParams<'_>,
        mut constraint: Option<&mut (dyn TokenConstraint + '_)>,
    ) -> Result<Step> {
        let ids = &mut self.ids;
        if let Some(c) = constraint.as_deref_mut() {
            if c.is_stopped() {
                return Ok(Step::Finished(FinishReason::Stop));
            }
            c.mask(logits)?;
            if !c.is_accepting() {
                for &e in params.eos {
                    if let Some(l) = logits.get_mut(e as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
        }
        if ids.len() >= params.max_tokens {
            return Ok(Step::Finished(FinishReason::Length));
        }
        let recent = &ids[ids.len().saturating_sub(params.repeat_window)..];
        penalize_repeats(logits, recent, params.repeat_penalty);
        let next = argmax(logits);
        if params.eos.contains(&next) {
            return Ok(Step::Finished(FinishReason::Stop));
        }
        if let Some(c) = constraint.as_deref_mut() {
            c.consume(next)?;
        }
        ids.push(next);
        if !params.stop.is_empty() {
            let text = tokenizer.decode(ids)?;
            if earliest_stop(&text, params.stop).is_some() {
                return Ok(Step::Finished(FinishReason::Stop));
            }
        }
        if constraint.as_deref().is_some_and(|c| c.is_stopped()) {
            return Ok(Step::Finished(FinishReason::Stop));
        }
        if ids.len() >= params.max_tokens {
            return Ok(Step::Finished(FinishReason::Length));
        }
        Ok(Step::Continue(next))
    }

    /// The decoded output, cut before a stop string.
    pub fn finish(
        self,
        tokenizer: &GgufTokenizer,
        stop: &[String],
        reason: FinishReason,
    ) -> Result<Decoded> {
        finish(tokenizer, self.ids, stop, reason)
    }
}

/// Greedy decoding, one token at a time, from a model that has just consumed a prompt of `pos`
/// tokens and produced `logits` (see [`crate::prefill::prefill`]).
pub fn greedy(
    model: &mut dyn LanguageModel,
    tokenizer: &GgufTokenizer,
    mut logits: Vec<f32>,
    mut pos: usize,
    params: &DecodeParams<'_>,
    mut constraint: Option<&mut dyn TokenConstraint>,
) -> Result<Decoded> {
    let mut state = GreedyState::new();
    loop {
        match state.step(&mut logits, tokenizer, params, constraint.as_deref_mut())? {
            Step::Continue(next) => {
                logits = model.forward(&[next], pos)?;
                pos += 1;
            }
            Step::Finished(reason) => return state.finish(tokenizer, params.stop, reason),
        }
    }
}

fn finish(
    tokenizer: &GgufTokenizer,
    ids: Vec<u32>,
    stop: &[String],
    reason: FinishReason,
) -> Result<Decoded> {
    let mut text = tokenizer.decode(&ids)?;
    let mut finish = reason;
    if let Some(at) = earliest_stop(&text, stop) {
        text.truncate(at);
        finish = FinishReason::Stop;
    }
    Ok(Decoded { ids, text, finish })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn argmax_ties_go_to_the_lowest_id() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -1.0, -1.0]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    }

    proptest! {
        #[test]
        fn argmax_is_the_first_maximum(v in proptest::collection::vec(-4i8..4, 1..64)) {
            let logits: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            let max = v.iter().max().unwrap();
            let first = v.iter().position(|x| x == max).unwrap();
            prop_assert_eq!(argmax(&logits) as usize, first);
        }
    }

    #[test]
    fn earliest_stop_picks_the_first_occurrence() {
        let stop = vec!["b".to_string(), "a".to_string(), String::new()];
        assert_eq!(earliest_stop("xxbxa", &stop), Some(2));
        assert_eq!(earliest_stop("xyz", &stop), None);
    }
}
