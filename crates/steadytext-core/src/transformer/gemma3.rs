//! Gemma 3 (`general.architecture = gemma3`) on the native kernels: its weights, loaded from a
//! GGUF, and its batched forward pass.
//!
//! What differs from llama ([`super::LlamaWeights`]), as llama.cpp and Hugging Face run it:
//! - the embedding is scaled by `√dim` (and tied to the output head: 262k rows for the 270M
//!   model, most of its weights);
//! - every block normalises its input *and* its output (pre- and post-norms around attention
//!   and around the feed-forward block), and each query and key head is RMS-normalised (QK-norm)
//!   before the rotary embedding, which rotates the two halves of a head together ("NeoX");
//! - the feed-forward block is GeGLU (tanh GELU of the gate times up);
//! - layers alternate local and global attention: in every six layers the first five attend to
//!   the last `sliding_window` positions only and rotate with base 10 000, the sixth attends to
//!   everything with the file's base (`gemma3.rope.freq_base`);
//! - the attention scale is `1/√head_dim` (the 27B model, not run here, uses `dim/heads`).
//!
//! The norm weights in a GGUF already include Gemma's `1 +` offset. The same guarantees as
//! llama: each output depends only on its own sequence, every instruction set gives the same
//! bits, and results do not depend on the batch or the thread count.

use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::quant::{Activations, Isa, QMatrix};

use super::forward::{
    add_then_norm, for_rows, plan_step, sized, step_attention, step_logits, AttnShape, SeqStep,
    Span,
};
use super::linear::{project, Linear};
use super::math::{gelu_mul, rms_norm, rms_norm_in_place, Rope};
use super::weights::{md_f32, md_u32, TensorReader, MAX_CONTEXT};

/// Layers per local/global cycle when the file does not say (`sliding_window_pattern`).
const DEFAULT_PATTERN: usize = 6;

/// Rotary base of the local (sliding-window) layers when the file does not say.
const DEFAULT_LOCAL_ROPE_BASE: f32 = 10_000.0;

/// Hyper-parameters of a Gemma 3 model, from GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Gemma3Config {
    /// Transformer blocks.
    pub layers: usize,
    /// Embedding width.
    pub dim: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Width of one head (`attention.key_length`).
    pub head_dim: usize,
    /// Hidden width of the feed-forward block.
    pub ffn_dim: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// RMS-norm epsilon.
    pub eps: f32,
    /// Rotary base of the global layers.
    pub rope_global: f32,
    /// Rotary base of the local layers.
    pub rope_local: f32,
    /// Positions a local layer attends to (itself included).
    pub sliding_window: usize,
    /// Every `pattern`-th layer is global, the others local.
    pub pattern: usize,
    /// Usable context.
    pub context: usize,
}

impl Gemma3Config {
    /// Width of all query heads.
    pub fn q_dim(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Width of the key (and value) projections.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Whether layer `l` attends to a sliding window (else to every position).
    pub fn is_local(&self, l: usize) -> bool {
        !(l + 1).is_multiple_of(self.pattern)
    }

    /// Read the hyper-parameters of a Gemma 3 GGUF header.
    pub fn from_gguf(ct: &Content, path: &Path) -> Result<Self> {
        let key = |k: &str| format!("gemma3.{k}");
        let dim = md_u32(ct, &key("embedding_length"), path)?;
        let heads = md_u32(ct, &key("attention.head_count"), path)?;
        let kv_heads = md_u32(ct, &key("attention.head_count_kv"), path).unwrap_or(heads);
        let head_dim = md_u32(ct, &key("attention.key_length"), path).unwrap_or(dim / heads.max(1));
        let value_dim = md_u32(ct, &key("attention.value_length"), path).unwrap_or(head_dim);
        let vocab = crate::llama::vocab_size(ct);
        let config = Self {
            layers: md_u32(ct, &key("block_count"), path)?,
            dim,
            heads,
            kv_heads,
            head_dim,
            ffn_dim: md_u32(ct, &key("feed_forward_length"), path)?,
            vocab,
            eps: md_f32(ct, &key("attention.layer_norm_rms_epsilon")).unwrap_or(1e-6),
            rope_global: md_f32(ct, &key("rope.freq_base")).unwrap_or(1_000_000.0),
            rope_local: md_f32(ct, &key("rope.local_freq_base")).unwrap_or(DEFAULT_LOCAL_ROPE_BASE),
            sliding_window: md_u32(ct, &key("attention.sliding_window"), path).unwrap_or(512),
            pattern: md_u32(ct, &key("attention.sliding_window_pattern"), path)
                .unwrap_or(DEFAULT_PATTERN)
                .max(1),
            context: md_u32(ct, &key("context_length"), path)
                .unwrap_or(MAX_CONTEXT)
                .min(MAX_CONTEXT),
        };
        if heads == 0
            || kv_heads == 0
            || !heads.is_multiple_of(kv_heads)
            || value_dim != head_dim
            || !head_dim.is_multiple_of(32)
            || !dim.is_multiple_of(32)
            || !config.ffn_dim.is_multiple_of(32)
            || config.sliding_window == 0
        {
            return Err(Error::ModelLoad {
                path: path.to_path_buf(),
                reason: format!("unsupported gemma3 shape {config:?} (value length {value_dim})"),
            });
        }
        Ok(config)
    }
}

/// One Gemma 3 block.
#[derive(Debug, Clone)]
pub(crate) struct Gemma3Layer {
    attn_norm: Vec<f32>,
    /// q, k, v projections (one parallel pass).
    qkv: [Linear; 3],
    q_norm: Vec<f32>,
    k_norm: Vec<f32>,
    o: Linear,
    post_attn_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
    /// gate and up projections (one parallel pass).
    gate_up: [Linear; 2],
    down: Linear,
    post_ffn_norm: Vec<f32>,
}

/// All weights of a Gemma 3 model.
#[derive(Debug)]
pub struct Gemma3Weights {
    pub(crate) config: Gemma3Config,
    /// Token embedding, also the output head (tied).
    embed: QMatrix,
    out_norm: Vec<f32>,
    layers: Vec<Gemma3Layer>,
    rope_local: Rope,
    rope_global: Rope,
    pub(crate) isa: Isa,
    pub(crate) requantized: Vec<String>,
    scratch: std::sync::Mutex<Vec<Scratch>>,
}

/// The work buffers of one step (see `forward::Scratch`).
#[derive(Debug, Default)]
struct Scratch {
    x: Vec<f32>,
    xn: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate_up: Vec<f32>,
    hidden: Vec<f32>,
    wide: Vec<f32>,
    last: Vec<f32>,
    logits: Vec<f32>,
    acts: Activations,
    spans: Vec<Span>,
}

impl Gemma3Weights {
    /// Load the weights of the Gemma 3 GGUF at `path` whose header was already read (`ct`).
    pub fn from_header(path: &Path, ct: &Content) -> Result<Self> {
        let start = std::time::Instant::now();
        let config = Gemma3Config::from_gguf(ct, path)?;
        let c = &config;
        let tr = TensorReader { ct, path };
        if ct.tensor_infos.contains_key("output.weight") {
            return Err(tr.err("gemma3 with an untied output head is not supported".into()));
        }
        let block = [
            ("attn_q", c.q_dim(), c.dim),
            ("attn_k", c.kv_dim(), c.dim),
            ("attn_v", c.kv_dim(), c.dim),
            ("attn_output", c.dim, c.q_dim()),
            ("ffn_gate", c.ffn_dim, c.dim),
            ("ffn_up", c.ffn_dim, c.dim),
            ("ffn_down", c.dim, c.ffn_dim),
        ];
        let mut specs = Vec::new();
        for l in 0..c.layers {
            for (m, rows, cols) in block {
                specs.push((format!("blk.{l}.{m}.weight"), rows, cols));
            }
        }
        let (embed, loaded) = rayon::join(
            || tr.matrix("token_embd.weight", c.vocab, c.dim),
            || {
                specs
                    .par_iter()
                    .map(|(name, rows, cols)| tr.linear(name, *rows, *cols))
                    .collect::<Result<Vec<_>>>()
            },
        );
        let (embed, embed_lossy) = embed?;
        let mut requantized: Vec<String> = embed_lossy.into_iter().collect();
        let loaded = loaded?;
        requantized.extend(loaded.iter().filter_map(|(_, lossy)| lossy.clone()));
        let mut linears = loaded.into_iter().map(|(m, _)| m);
        let mut layers = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            let mut next = || linears.next().expect("one linear per spec");
            let [q, k, v, o, gate, up, down] = std::array::from_fn(|_| next());
            layers.push(Gemma3Layer {
                attn_norm: tr.vector(&n("attn_norm"), c.dim)?,
                qkv: [q, k, v],
                q_norm: tr.vector(&n("attn_q_norm"), c.head_dim)?,
                k_norm: tr.vector(&n("attn_k_norm"), c.head_dim)?,
                o,
                post_attn_norm: tr.vector(&n("post_attention_norm"), c.dim)?,
                ffn_norm: tr.vector(&n("ffn_norm"), c.dim)?,
                gate_up: [gate, up],
                down,
                post_ffn_norm: tr.vector(&n("post_ffw_norm"), c.dim)?,
            });
        }
        let out_norm = tr.vector("output_norm.weight", c.dim)?;
        tracing::debug!("gemma3 weights loaded in {:?}", start.elapsed());
        if !requantized.is_empty() {
            tracing::info!(
                "re-quantised to 8 bits (no native kernel): {}",
                requantized.join(", ")
            );
        }
        Ok(Self {
            rope_local: Rope::new(c.head_dim, c.rope_local, c.context),
            rope_global: Rope::new(c.head_dim, c.rope_global, c.context),
            config,
            embed,
            out_norm,
            layers,
            isa: Isa::detect(),
            requantized,
            scratch: Default::default(),
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &Gemma3Config {
        &self.config
    }

    /// Bytes of weights in memory.
    pub fn bytes(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                l.qkv.iter().map(Linear::bytes).sum::<usize>()
                    + l.o.bytes()
                    + l.gate_up.iter().map(Linear::bytes).sum::<usize>()
                    + l.down.bytes()
            })
            .sum();
        layers + self.embed.bytes()
    }

    /// Run one step over several sequences (as [`super::LlamaWeights::forward`]).
    pub fn forward(&self, seqs: &mut [SeqStep<'_>]) -> Result<Vec<Vec<f32>>> {
        let pool = || self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let mut scratch = pool().pop().unwrap_or_default();
        let out = rayon::scope(|_| self.forward_in_pool(seqs, &mut scratch));
        pool().push(scratch);
        out
    }

    fn forward_in_pool(
        &self,
        seqs: &mut [SeqStep<'_>],
        scratch: &mut Scratch,
    ) -> Result<Vec<Vec<f32>>> {
        let c = &self.config;
        let (dim, q_dim, kv_dim, hd) = (c.dim, c.q_dim(), c.kv_dim(), c.head_dim);
        let Scratch {
            x,
            xn,
            qkv,
            attn,
            proj,
            gate_up,
            hidden,
            wide,
            last,
            logits,
            acts,
            spans,
        } = scratch;
        let shape = (c.layers, c.kv_heads, kv_dim);
        let total = plan_step(seqs, spans, shape, c.context, c.vocab)?;
        let spans: &[Span] = spans;

        // Residual stream: the scaled embedding of each token.
        let scale = (dim as f32).sqrt();
        let x = sized(x, total * dim);
        for (s, span) in seqs.iter().zip(spans) {
            for (i, &t) in s.tokens.iter().enumerate() {
                let row = &mut x[(span.row + i) * dim..(span.row + i + 1) * dim];
                self.embed.dequantize_row(t as usize, row);
                for v in row.iter_mut() {
                    *v *= scale;
                }
            }
        }

        let qkv_w = q_dim + 2 * kv_dim;
        let xn = sized(xn, total * dim);
        let qkv = sized(qkv, total * qkv_w);
        let attn = sized(attn, total * q_dim);
        let proj = sized(proj, total * dim);
        let gate_up = sized(gate_up, total * 2 * c.ffn_dim);
        let hidden = sized(hidden, total * c.ffn_dim);
        let isa = self.isa;

        if let Some(first) = self.layers.first() {
            add_then_norm(x, None, Some((&first.attn_norm, c.eps)), dim, xn);
        }
        for (l, layer) in self.layers.iter().enumerate() {
            let rope = if c.is_local(l) {
                &self.rope_local
            } else {
                &self.rope_global
            };
            // Attention block (`xn` holds the normalised input).
            acts.quantize(xn, dim);
            let [q, k, v] = &layer.qkv;
            project(isa, &[q, k, v], acts, qkv, qkv_w, wide);
            // QK-norm and rotary embedding per head, then append k and v to the caches.
            for (s, span) in seqs.iter_mut().zip(spans) {
                for i in 0..span.n {
                    let row = &mut qkv[(span.row + i) * qkv_w..(span.row + i + 1) * qkv_w];
                    let (qs, rest) = row.split_at_mut(q_dim);
                    for h in qs.chunks_exact_mut(hd) {
                        rms_norm_in_place(h, &layer.q_norm, c.eps);
                        rope.apply_halves(h, span.pos + i);
                    }
                    for h in rest[..kv_dim].chunks_exact_mut(hd) {
                        rms_norm_in_place(h, &layer.k_norm, c.eps);
                        rope.apply_halves(h, span.pos + i);
                    }
                    for h in 0..c.kv_heads {
                        let (k, v) = (q_dim + h * hd, q_dim + kv_dim + h * hd);
                        s.kv.k[l * c.kv_heads + h].extend_from_slice(&row[k..k + hd]);
                        s.kv.v[l * c.kv_heads + h].extend_from_slice(&row[v..v + hd]);
                    }
                }
            }
            let window = c.is_local(l).then_some(c.sliding_window);
            let shape = AttnShape {
                heads: c.heads,
                kv_heads: c.kv_heads,
                head_dim: hd,
                q_dim,
                kv_dim,
            };
            step_attention(isa, l, shape, window, seqs, spans, qkv, attn);
            acts.quantize(attn, q_dim);
            project(isa, &[&layer.o], acts, proj, dim, wide);
            norm_add_norm(
                x,
                proj,
                &layer.post_attn_norm,
                Some(&layer.ffn_norm),
                c.eps,
                dim,
                xn,
            );

            // Feed-forward block (GeGLU).
            acts.quantize(xn, dim);
            let f = c.ffn_dim;
            let [gate, up] = &layer.gate_up;
            project(isa, &[gate, up], acts, gate_up, 2 * f, wide);
            for_rows(hidden, f, gate_up, 2 * f, |h, gu| {
                gelu_mul(isa, h, &gu[..f], &gu[f..]);
            });
            acts.quantize(hidden, f);
            project(isa, &[&layer.down], acts, proj, dim, wide);
            let next = self.layers.get(l + 1).map(|n| &n.attn_norm[..]);
            norm_add_norm(x, proj, &layer.post_ffn_norm, next, c.eps, dim, xn);
        }
        for (s, span) in seqs.iter_mut().zip(spans) {
            s.kv.len = span.pos + span.n;
        }

        // Logits for the last token of each sequence that wants them (tied head).
        let out = (&self.out_norm[..], c.eps, &self.embed);
        Ok(step_logits(
            isa,
            seqs,
            spans,
            x,
            dim,
            out,
            (acts, last, logits),
        ))
    }
}

/// Row by row: `y = rms_norm(y)` (the block's post-norm), `x += y`, then `out = rms_norm(x)`
/// with the next norm, if any (rows spread over the pool when there are several).
fn norm_add_norm(
    x: &mut [f32],
    y: &mut [f32],
    post: &[f32],
    next: Option<&[f32]>,
    eps: f32,
    dim: usize,
    out: &mut [f32],
) {
    let row = |xr: &mut [f32], yr: &mut [f32], or: &mut [f32]| {
        rms_norm_in_place(yr, post, eps);
        for (a, b) in xr.iter_mut().zip(yr.iter()) {
            *a += b;
        }
        if let Some(w) = next {
            rms_norm(xr, w, eps, or);
        }
    };
    let y = &mut y[..x.len()];
    if x.len() > dim {
        let rows = x
            .par_chunks_exact_mut(dim)
            .zip(y.par_chunks_exact_mut(dim))
            .zip(out.par_chunks_exact_mut(dim));
        rows.for_each(|((xr, yr), or)| row(xr, yr, or));
    } else {
        row(x, y, out);
    }
}
