//! The forward pass over a batch of sequences, each at its own position.
//!
//! All tokens of all sequences in a step go through every matrix together (one weight pass per
//! layer, many tokens per weight row); attention runs per sequence and head. Each output depends
//! only on its own sequence: the matmul kernels compute every element with the same operations
//! whatever the batch, and attention reads only the sequence's own KV cache. So a request's
//! logits are bit-identical whether it runs alone or batched with others, at any thread count.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::quant::{matmul, Activations};

use super::math::{dot, rms_norm, silu, softmax};
use super::weights::LlamaWeights;

/// Keys and values of one sequence, every layer, positions `0 .. len`.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// Per layer: `len × kv_dim` keys.
    k: Vec<Vec<f32>>,
    /// Per layer: `len × kv_dim` values.
    v: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// An empty cache for `layers` layers.
    pub fn new(layers: usize) -> Self {
        Self {
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
            len: 0,
        }
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No positions held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drop every position from `len` on (keeps the allocation).
    pub fn truncate(&mut self, len: usize, kv_dim: usize) {
        self.len = self.len.min(len);
        for layer in self.k.iter_mut().chain(self.v.iter_mut()) {
            layer.truncate(self.len * kv_dim);
        }
    }

    /// Reserve room for `more` positions.
    pub fn reserve(&mut self, more: usize, kv_dim: usize) {
        for layer in self.k.iter_mut().chain(self.v.iter_mut()) {
            layer.reserve(more * kv_dim);
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.k
            .iter()
            .chain(self.v.iter())
            .map(|l| l.capacity() * 4)
            .sum()
    }
}

/// One sequence's part of a batched step: its cache and the tokens that follow it.
#[derive(Debug)]
pub struct SeqStep<'a> {
    /// The sequence's KV cache (extended by `tokens`).
    pub kv: &'a mut KvCache,
    /// Tokens at positions `kv.len() ..`.
    pub tokens: &'a [u32],
    /// Compute the logits after the last token (skip for a prompt chunk that is not the last).
    pub logits: bool,
}

#[derive(Clone, Copy)]
struct Span {
    /// First row of this sequence in the step's token matrix.
    row: usize,
    /// Number of new tokens.
    n: usize,
    /// Position of the first new token.
    pos: usize,
}

impl LlamaWeights {
    /// Run one step over several sequences; returns, per sequence, the logits after its last
    /// token (an empty vector where [`SeqStep::logits`] is false). Every sequence needs at least
    /// one token and must fit in the context.
    ///
    /// The step runs on a thread of rayon's pool, so its ~150 parallel loops split work between
    /// the pool's threads directly; called from outside, each of them would instead be handed
    /// over to the pool and waited for, two thread wake-ups per loop.
    pub fn forward(&self, seqs: &mut [SeqStep<'_>]) -> Result<Vec<Vec<f32>>> {
        rayon::scope(|_| self.forward_in_pool(seqs))
    }

    fn forward_in_pool(&self, seqs: &mut [SeqStep<'_>]) -> Result<Vec<Vec<f32>>> {
        let c = &self.config;
        let (dim, kv_dim, hd) = (c.dim, c.kv_dim(), c.head_dim);
        let mut spans = Vec::with_capacity(seqs.len());
        let mut total = 0;
        for s in seqs.iter() {
            if s.tokens.is_empty() {
                return Err(Error::Inference("a sequence step has no tokens".into()));
            }
            let end = s.kv.len + s.tokens.len();
            if end > c.context {
                return Err(Error::ContextOverflow {
                    prompt_tokens: end,
                    max_tokens: 0,
                    context: c.context,
                });
            }
            if let Some(&bad) = s.tokens.iter().find(|&&t| t as usize >= c.vocab) {
                return Err(Error::Inference(format!(
                    "token id {bad} outside the vocabulary"
                )));
            }
            spans.push(Span {
                row: total,
                n: s.tokens.len(),
                pos: s.kv.len,
            });
            total += s.tokens.len();
        }
        for s in seqs.iter_mut() {
            if s.kv.k.len() != c.layers {
                *s.kv = KvCache::new(c.layers);
            }
            s.kv.reserve(s.tokens.len(), kv_dim);
        }

        // Residual stream: one row per token.
        let mut x = vec![0f32; total * dim];
        for (s, span) in seqs.iter().zip(&spans) {
            for (i, &t) in s.tokens.iter().enumerate() {
                let row = &mut x[(span.row + i) * dim..(span.row + i + 1) * dim];
                self.embed.dequantize_row(t as usize, row);
            }
        }

        let qkv_w = dim + 2 * kv_dim;
        let mut xn = vec![0f32; total * dim];
        let mut acts = Activations::new();
        let mut qkv = vec![0f32; total * qkv_w];
        let mut attn = vec![0f32; total * dim];
        let mut proj = vec![0f32; total * dim];
        let mut gate_up = vec![0f32; total * 2 * c.ffn_dim];
        let mut hidden = vec![0f32; total * c.ffn_dim];
        let isa = self.isa;

        for (l, layer) in self.layers.iter().enumerate() {
            // Attention block.
            norm_rows(&x, &layer.attn_norm, c.eps, dim, &mut xn);
            acts.quantize(&xn, dim);
            let parts = [&layer.qkv[0], &layer.qkv[1], &layer.qkv[2]];
            matmul(isa, &parts, &acts, &mut qkv, qkv_w);
            // Rotary embedding on q and k, then append k and v to each sequence's cache.
            for (s, span) in seqs.iter_mut().zip(&spans) {
                for i in 0..span.n {
                    let row = &mut qkv[(span.row + i) * qkv_w..(span.row + i + 1) * qkv_w];
                    for h in row[..dim + kv_dim].chunks_exact_mut(hd) {
                        self.rope.apply(h, span.pos + i);
                    }
                    s.kv.k[l].extend_from_slice(&row[dim..dim + kv_dim]);
                    s.kv.v[l].extend_from_slice(&row[dim + kv_dim..]);
                }
            }
            self.attention(l, seqs, &spans, &qkv, &mut attn);
            acts.quantize(&attn, dim);
            matmul(isa, &[&layer.o], &acts, &mut proj, dim);
            add_in_place(&mut x, &proj);

            // Feed-forward block.
            norm_rows(&x, &layer.ffn_norm, c.eps, dim, &mut xn);
            acts.quantize(&xn, dim);
            let parts = [&layer.gate_up[0], &layer.gate_up[1]];
            let f = c.ffn_dim;
            matmul(isa, &parts, &acts, &mut gate_up, 2 * f);
            for (h, gu) in hidden.chunks_exact_mut(f).zip(gate_up.chunks_exact(2 * f)) {
                for ((o, &g), &u) in h.iter_mut().zip(&gu[..f]).zip(&gu[f..]) {
                    *o = silu(g) * u;
                }
            }
            acts.quantize(&hidden, f);
            matmul(isa, &[&layer.down], &acts, &mut proj, dim);
            add_in_place(&mut x, &proj);
        }
        for (s, span) in seqs.iter_mut().zip(&spans) {
            s.kv.len = span.pos + span.n;
        }

        // Logits for the last token of each sequence that wants them.
        let wanted: Vec<usize> = (0..seqs.len()).filter(|&i| seqs[i].logits).collect();
        let n = wanted.len();
        let mut last = vec![0f32; n * dim];
        for (i, span) in wanted.iter().map(|&s| spans[s]).enumerate() {
            let r = span.row + span.n - 1;
            rms_norm(
                &x[r * dim..(r + 1) * dim],
                &self.out_norm,
                c.eps,
                &mut last[i * dim..(i + 1) * dim],
            );
        }
        acts.quantize(&last, dim);
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        let mut logits = vec![0f32; n * c.vocab];
        if n > 0 {
            matmul(isa, &[head], &acts, &mut logits, c.vocab);
        }
        let mut rows = logits.chunks_exact(c.vocab);
        Ok((0..seqs.len())
            .map(|i| {
                if seqs[i].logits {
                    rows.next().map(<[f32]>::to_vec).unwrap_or_default()
                } else {
                    Vec::new()
                }
            })
            .collect())
    }

    /// Causal grouped-query attention of every new token of every sequence, into `out`
    /// (`tokens × dim`), one parallel task per (token, head).
    fn attention(
        &self,
        layer: usize,
        seqs: &[SeqStep<'_>],
        spans: &[Span],
        qkv: &[f32],
        out: &mut [f32],
    ) {
        let c = &self.config;
        let (dim, kv_dim, hd) = (c.dim, c.kv_dim(), c.head_dim);
        let qkv_w = dim + 2 * kv_dim;
        let group = c.heads / c.kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        // (sequence index, token index within the step) of every token row.
        let rows: Vec<(usize, usize)> = spans
            .iter()
            .enumerate()
            .flat_map(|(s, sp)| (0..sp.n).map(move |i| (s, i)))
            .collect();
        out.par_chunks_exact_mut(hd)
            .enumerate()
            .for_each_init(Vec::new, |scores, (task, o)| {
                let (row, h) = (task / c.heads, task % c.heads);
                let (s, i) = rows[row];
                let span = spans[s];
                let q = &qkv[row * qkv_w + h * hd..row * qkv_w + (h + 1) * hd];
                let kvh = h / group;
                let keys = &seqs[s].kv.k[layer];
                let values = &seqs[s].kv.v[layer];
                let upto = span.pos + i + 1;
                scores.clear();
                for p in 0..upto {
                    let k = &keys[p * kv_dim + kvh * hd..p * kv_dim + (kvh + 1) * hd];
                    scores.push(dot(q, k) * scale);
                }
                softmax(scores);
                o.fill(0.0);
                for (p, &w) in scores.iter().enumerate() {
                    let v = &values[p * kv_dim + kvh * hd..p * kv_dim + (kvh + 1) * hd];
                    for (od, &vd) in o.iter_mut().zip(v) {
                        *od += w * vd;
                    }
                }
            });
    }
}

fn norm_rows(x: &[f32], w: &[f32], eps: f32, dim: usize, out: &mut [f32]) {
    for (xr, or) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        rms_norm(xr, w, eps, or);
    }
}

fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
