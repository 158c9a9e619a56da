//! Our own llama forward pass on the quantised kernels of [`crate::quant`].
//!
//! [`LlamaWeights`] holds the weights once (shared by every sequence); [`KvCache`] holds one
//! sequence's keys and values; [`LlamaWeights::forward`] advances any number of sequences by any
//! number of tokens each in one batched step. [`NativeLlama`] is one sequence as a
//! [`LanguageModel`], for the decoding and constraint code.

mod attention;
mod forward;
mod math;
mod weights;

use std::sync::Arc;

pub use forward::{KvCache, SeqStep};
pub use weights::{Layer, LlamaConfig, LlamaWeights, MAX_CONTEXT};

use crate::error::{Error, Result};
use crate::model::LanguageModel;

/// One sequence over shared weights.
#[derive(Debug, Clone)]
pub struct NativeLlama {
    weights: Arc<LlamaWeights>,
    kv: KvCache,
}

impl NativeLlama {
    /// A fresh sequence.
    pub fn new(weights: Arc<LlamaWeights>) -> Self {
        let kv = KvCache::new(weights.config.layers);
        Self { weights, kv }
    }

    /// A sequence over `weights` holding `kv`.
    pub fn with_kv(weights: Arc<LlamaWeights>, kv: KvCache) -> Self {
        Self { weights, kv }
    }

    /// The shared weights.
    pub fn weights(&self) -> &Arc<LlamaWeights> {
        &self.weights
    }

    /// This sequence's KV cache.
    pub fn kv(&self) -> &KvCache {
        &self.kv
    }
}

impl NativeLlama {
    fn run(&mut self, tokens: &[u32], pos: usize, logits: bool) -> Result<Vec<f32>> {
        if pos > self.kv.len() {
            return Err(Error::Inference(format!(
                "position {pos} is past the {} cached tokens",
                self.kv.len()
            )));
        }
        self.kv.truncate(pos, self.weights.config.kv_dim());
        let mut step = [SeqStep {
            kv: &mut self.kv,
            tokens,
            logits,
        }];
        Ok(self
            .weights
            .forward(&mut step)?
            .pop()
            .expect("one sequence in, one out"))
    }

    /// Take this sequence's KV cache out (leaving it empty), e.g. to step it in a batch.
    pub fn take_kv(&mut self) -> KvCache {
        std::mem::take(&mut self.kv)
    }
}

impl LanguageModel for NativeLlama {
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        self.run(tokens, pos, true)
    }

    fn feed(&mut self, tokens: &[u32], pos: usize) -> Result<()> {
        self.run(tokens, pos, false).map(drop)
    }

    fn as_native(&mut self) -> Option<&mut NativeLlama> {
        Some(self)
    }

    fn context_length(&self) -> usize {
        self.weights.config.context
    }

    fn vocab_size(&self) -> usize {
        self.weights.config.vocab
    }

    fn fork(&self) -> Box<dyn LanguageModel> {
        Box::new(self.clone())
    }
}
