//! Our own forward passes on the quantised kernels of [`crate::quant`], one file per
//! architecture: llama ([`LlamaWeights`], in `weights.rs` and `forward.rs`) and Gemma 3 ([`gemma3`]).
//!
//! [`Weights`] holds a model's weights once (shared by every sequence); [`KvCache`] holds one
//! sequence's keys and values; [`Weights::forward`] advances any number of sequences by any
//! number of tokens each in one batched step. [`NativeModel`] is one sequence as a
//! [`LanguageModel`], for the decoding and constraint code.

mod attention;
mod forward;
pub mod gemma3;
mod linear;
mod math;
mod weights;

use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::gguf_file::Content;

pub use forward::{KvCache, SeqStep};
pub use gemma3::{Gemma3Config, Gemma3Weights};
pub use weights::{Layer, LlamaConfig, LlamaWeights, MAX_CONTEXT};

use crate::error::{Error, Result};
use crate::model::LanguageModel;
use crate::quant::Isa;

/// The weights of a model the native runtime runs, by architecture.
#[derive(Debug)]
pub enum Weights {
    /// `general.architecture = llama` (SmolLM2, Llama, …).
    Llama(LlamaWeights),
    /// `general.architecture = gemma3`.
    Gemma3(Gemma3Weights),
}

impl Weights {
    /// Load the GGUF at `path` (any architecture of [`crate::llama::SUPPORTED_ARCHITECTURES`]).
    pub fn load(path: &Path) -> Result<Self> {
        let (ct, _) = crate::llama::read_header(path)?;
        Self::from_header(path, &ct)
    }

    /// Load the weights of the GGUF at `path` whose header was already read (`ct`).
    pub fn from_header(path: &Path, ct: &Content) -> Result<Self> {
        match crate::llama::supported_architecture(ct, path)?.as_str() {
            "gemma3" => Gemma3Weights::from_header(path, ct).map(Weights::Gemma3),
            _ => LlamaWeights::from_header(path, ct).map(Weights::Llama),
        }
    }

    /// Run one step over several sequences; returns, per sequence, the logits after its last
    /// token (an empty vector where [`SeqStep::logits`] is false).
    pub fn forward(&self, seqs: &mut [SeqStep<'_>]) -> Result<Vec<Vec<f32>>> {
        match self {
            Weights::Llama(w) => w.forward(seqs),
            Weights::Gemma3(w) => w.forward(seqs),
        }
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> &'static str {
        match self {
            Weights::Llama(_) => "llama",
            Weights::Gemma3(_) => "gemma3",
        }
    }

    /// Transformer blocks.
    pub fn layers(&self) -> usize {
        match self {
            Weights::Llama(w) => w.config.layers,
            Weights::Gemma3(w) => w.config.layers,
        }
    }

    /// Width of one position's keys (and values) in a layer.
    pub fn kv_dim(&self) -> usize {
        match self {
            Weights::Llama(w) => w.config.kv_dim(),
            Weights::Gemma3(w) => w.config.kv_dim(),
        }
    }

    /// Usable context.
    pub fn context(&self) -> usize {
        match self {
            Weights::Llama(w) => w.config.context,
            Weights::Gemma3(w) => w.config.context,
        }
    }

    /// Logits per step.
    pub fn vocab(&self) -> usize {
        match self {
            Weights::Llama(w) => w.config.vocab,
            Weights::Gemma3(w) => w.config.vocab,
        }
    }

    /// The instruction set the kernels use.
    pub fn isa(&self) -> Isa {
        match self {
            Weights::Llama(w) => w.isa,
            Weights::Gemma3(w) => w.isa,
        }
    }

    /// Use another instruction set (e.g. to compare kernels); results are bit-identical.
    pub fn set_isa(&mut self, isa: Isa) {
        match self {
            Weights::Llama(w) => w.isa = isa,
            Weights::Gemma3(w) => w.isa = isa,
        }
    }

    /// Tensors re-quantised to eight bits because no kernel reads their format (empty for the
    /// default model and for Gemma 3 270M Q4_K_M).
    pub fn requantized(&self) -> &[String] {
        match self {
            Weights::Llama(w) => &w.requantized,
            Weights::Gemma3(w) => &w.requantized,
        }
    }

    /// Bytes of weights in memory.
    pub fn bytes(&self) -> usize {
        match self {
            Weights::Llama(w) => w.bytes(),
            Weights::Gemma3(w) => w.bytes(),
        }
    }
}

impl From<LlamaWeights> for Weights {
    fn from(w: LlamaWeights) -> Self {
        Weights::Llama(w)
    }
}

/// One sequence over shared weights.
#[derive(Debug, Clone)]
pub struct NativeModel {
    weights: Arc<Weights>,
    kv: KvCache,
}

impl NativeModel {
    /// A fresh sequence.
    pub fn new(weights: Arc<Weights>) -> Self {
        let kv = KvCache::new(weights.layers());
        Self { weights, kv }
    }

    /// A sequence over `weights` holding `kv`.
    pub fn with_kv(weights: Arc<Weights>, kv: KvCache) -> Self {
        Self { weights, kv }
    }

    /// The shared weights.
    pub fn weights(&self) -> &Arc<Weights> {
        &self.weights
    }

    /// This sequence's KV cache.
    pub fn kv(&self) -> &KvCache {
        &self.kv
    }
}

impl NativeModel {
    fn run(&mut self, tokens: &[u32], pos: usize, logits: bool) -> Result<Vec<f32>> {
        if pos > self.kv.len() {
            return Err(Error::Inference(format!(
                "position {pos} is past the {} cached tokens",
                self.kv.len()
            )));
        }
        self.kv.truncate(pos, self.weights.kv_dim());
        let mut step = [SeqStep {
            kv: &mut self.kv,
            tokens,
            logits,
            rows: None,
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

impl LanguageModel for NativeModel {
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        self.run(tokens, pos, true)
    }

    fn feed(&mut self, tokens: &[u32], pos: usize) -> Result<()> {
        self.run(tokens, pos, false).map(drop)
    }

    fn as_native(&mut self) -> Option<&mut NativeModel> {
        Some(self)
    }

    fn context_length(&self) -> usize {
        self.weights.context()
    }

    fn vocab_size(&self) -> usize {
        self.weights.vocab()
    }

    fn fork(&self) -> Box<dyn LanguageModel> {
        Box::new(self.clone())
    }
}
