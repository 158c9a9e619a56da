//! The token-level model interface that decoding and constraints are written against.
//!
//! A [`LanguageModel`] turns token ids into next-token logits and keeps its own KV cache; the
//! greedy decoder ([`crate::decode`]) and the constraint machinery work over any implementation,
//! so a new architecture only has to implement this trait.

use crate::error::Result;

/// A causal language model with an internal KV cache.
pub trait LanguageModel: Send {
    /// Feed `tokens` at positions `pos .. pos + tokens.len()` and return the logits for the token
    /// after the last one. `pos` must equal the number of tokens already in the KV cache; `pos == 0`
    /// starts a fresh sequence.
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>>;

    /// Like [`LanguageModel::forward`] when the logits are not needed (a prompt chunk that is not
    /// the last); implementations may skip computing them.
    fn feed(&mut self, tokens: &[u32], pos: usize) -> Result<()> {
        self.forward(tokens, pos).map(drop)
    }

    /// This model as our own llama implementation, when it is one (it can then be stepped in
    /// batches with other sequences).
    fn as_native(&mut self) -> Option<&mut crate::transformer::NativeModel> {
        None
    }

    /// The context window in tokens.
    fn context_length(&self) -> usize;

    /// Number of logits per step.
    fn vocab_size(&self) -> usize;

    /// An independent copy that shares the weights and starts from the same KV state (used to
    /// explore several continuations of one prefill).
    fn fork(&self) -> Box<dyn LanguageModel>;
}
