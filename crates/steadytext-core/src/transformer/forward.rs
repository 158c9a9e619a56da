//! The forward pass over a batch of sequences, each at its own position.
//!
//! All tokens of all sequences in a step go through every matrix together (one weight pass per
//! layer, many tokens per weight row); attention runs per sequence and head. Each output depends
//! only on its own sequence: the matmul kernels compute every element with the same operations
//! whatever the batch, and attention reads only the sequence's own KV cache. So a request's
//! logits are bit-identical whether it runs alone or batched with others, at any thread count.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::quant::{matmul, Activations, Isa, QMatrix};

use super::attention::{attend, Group};
use super::math::{rms_norm, silu_mul};
use super::weights::LlamaWeights;

/// Keys and values of one sequence, every layer, positions `0 .. len`.
///
/// Each KV head of each layer has its own contiguous `len × head_dim` array, so attention
/// streams through one head's keys and values in order.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// Per (layer, KV head), at `layer · heads + head`: `len × head_dim` keys.
    pub(super) k: Vec<Vec<f32>>,
    /// Values, as `k`.
    pub(super) v: Vec<Vec<f32>>,
    /// KV heads per layer.
    pub(super) heads: usize,
    pub(super) len: usize,
}

impl KvCache {
    /// An empty cache for `layers` layers (laid out for the model on first use).
    pub fn new(layers: usize) -> Self {
        Self::with_heads(layers, 1)
    }

    pub(super) fn with_heads(layers: usize, heads: usize) -> Self {
        Self {
            k: vec![Vec::new(); layers * heads],
            v: vec![Vec::new(); layers * heads],
            heads,
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
        let width = kv_dim / self.heads.max(1);
        for part in self.k.iter_mut().chain(self.v.iter_mut()) {
            part.truncate(self.len * width);
        }
    }

    /// Reserve room for `more` positions.
    pub fn reserve(&mut self, more: usize, kv_dim: usize) {
        let width = kv_dim / self.heads.max(1);
        for part in self.k.iter_mut().chain(self.v.iter_mut()) {
            part.reserve(more * width);
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
    /// Compute only these rows of the output head (the tokens a constraint allows next); the
    /// others are `-inf`. Each computed logit has exactly the bits it has in a full step, so a
    /// decoder that masks the other tokens anyway decides the same.
    pub rows: Option<&'a [u32]>,
}

/// The work buffers of one step, kept between steps so a step allocates nothing once they have
/// grown to its size. Every element a step reads was written earlier in the same step.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    x: Vec<f32>,
    xn: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate_up: Vec<f32>,
    hidden: Vec<f32>,
    last: Vec<f32>,
    logits: Vec<f32>,
    acts: Activations,
    spans: Vec<Span>,
}

/// `v` as a slice of `n` elements (new elements zero, old ones left as they are).
pub(super) fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}

/// Where one sequence's tokens sit in a step.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    /// First row of this sequence in the step's token matrix.
    pub row: usize,
    /// Number of new tokens.
    pub n: usize,
    /// Position of the first new token.
    pub pos: usize,
}

/// Check a step's sequences against a model (`layers` blocks of `kv_heads` KV heads, `context`
/// positions, `vocab` tokens), lay out their KV caches and return where each one's tokens sit
/// (into `spans`) and the step's total token count. The rules every architecture shares.
pub(super) fn plan_step(
    seqs: &mut [SeqStep<'_>],
    spans: &mut Vec<Span>,
    (layers, kv_heads, kv_dim): (usize, usize, usize),
    context: usize,
    vocab: usize,
) -> Result<usize> {
    spans.clear();
    let mut total = 0;
    for s in seqs.iter() {
        if s.tokens.is_empty() {
            return Err(Error::Inference("a sequence step has no tokens".into()));
        }
        let end = s.kv.len + s.tokens.len();
        if end > context {
            return Err(Error::ContextOverflow {
                prompt_tokens: end,
                max_tokens: 0,
                context,
            });
        }
        if let Some(&bad) = s.tokens.iter().find(|&&t| t as usize >= vocab) {
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
        if s.kv.heads != kv_heads || s.kv.k.len() != layers * kv_heads {
            if !s.kv.is_empty() {
                return Err(Error::Inference(
                    "a KV cache filled by another model".into(),
                ));
            }
            *s.kv = KvCache::with_heads(layers, kv_heads);
        }
        s.kv.reserve(s.tokens.len(), kv_dim);
    }
    Ok(total)
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
        let (dim, kv_dim, hd) = (c.dim, c.kv_dim(), c.head_dim);
        let Scratch {
            x,
            xn,
            qkv,
            attn,
            proj,
            gate_up,
            hidden,
            last,
            logits,
            acts,
            spans,
        } = scratch;
        let shape = (c.layers, c.kv_heads, kv_dim);
        let total = plan_step(seqs, spans, shape, c.context, c.vocab)?;
        let spans: &[Span] = spans;

        // Residual stream: one row per token.
        let x = sized(x, total * dim);
        for (s, span) in seqs.iter().zip(spans) {
            for (i, &t) in s.tokens.iter().enumerate() {
                let row = &mut x[(span.row + i) * dim..(span.row + i + 1) * dim];
                self.embed.dequantize_row(t as usize, row);
            }
        }

        let qkv_w = dim + 2 * kv_dim;
        let xn = sized(xn, total * dim);
        let qkv = sized(qkv, total * qkv_w);
        let attn = sized(attn, total * dim);
        let proj = sized(proj, total * dim);
        let gate_up = sized(gate_up, total * 2 * c.ffn_dim);
        let hidden = sized(hidden, total * c.ffn_dim);
        let isa = self.isa;

        // Each block ends by adding its output to the residual stream and normalising the
        // result for the next block, in one pass over the rows.
        if let Some(first) = self.layers.first() {
            add_then_norm(x, None, Some((&first.attn_norm, c.eps)), dim, xn);
        }
        for (l, layer) in self.layers.iter().enumerate() {
            // Attention block (`xn` holds the normalised input).
            acts.quantize(xn, dim);
            let parts = [&layer.qkv[0], &layer.qkv[1], &layer.qkv[2]];
            matmul(isa, &parts, acts, qkv, qkv_w);
            // Rotary embedding on q and k, then append k and v to each sequence's cache.
            for (s, span) in seqs.iter_mut().zip(spans) {
                for i in 0..span.n {
                    let row = &mut qkv[(span.row + i) * qkv_w..(span.row + i + 1) * qkv_w];
                    for h in row[..dim + kv_dim].chunks_exact_mut(hd) {
                        self.rope.apply(h, span.pos + i);
                    }
                    for h in 0..c.kv_heads {
                        let (k, v) = (dim + h * hd, dim + kv_dim + h * hd);
                        s.kv.k[l * c.kv_heads + h].extend_from_slice(&row[k..k + hd]);
                        s.kv.v[l * c.kv_heads + h].extend_from_slice(&row[v..v + hd]);
                    }
                }
            }
            let shape = AttnShape {
                heads: c.heads,
                kv_heads: c.kv_heads,
                head_dim: hd,
                q_dim: dim,
                kv_dim,
            };
            step_attention(isa, l, shape, None, seqs, spans, qkv, attn);
            acts.quantize(attn, dim);
            matmul(isa, &[&layer.o], acts, proj, dim);
            add_then_norm(x, Some(proj), Some((&layer.ffn_norm, c.eps)), dim, xn);

            // Feed-forward block.
            acts.quantize(xn, dim);
            let parts = [&layer.gate_up[0], &layer.gate_up[1]];
            let f = c.ffn_dim;
            matmul(isa, &parts, acts, gate_up, 2 * f);
            for_rows(hidden, f, gate_up, 2 * f, |h, gu| {
                silu_mul(isa, h, &gu[..f], &gu[f..]);
            });
            acts.quantize(hidden, f);
            matmul(isa, &[&layer.down], acts, proj, dim);
            let next = self.layers.get(l + 1).map(|n| (&n.attn_norm[..], c.eps));
            add_then_norm(x, Some(proj), next, dim, xn);
        }
        for (s, span) in seqs.iter_mut().zip(spans) {
            s.kv.len = span.pos + span.n;
        }

        // Logits for the last token of each sequence that wants them.
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        let out = (&self.out_norm[..], c.eps, head);
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

/// The attention shape of a model: query heads, KV heads, head width, and where q, k and v sit
/// in a row of the step's `qkv` matrix (`q_dim` query values, then `kv_dim` keys and values).
#[derive(Debug, Clone, Copy)]
pub(super) struct AttnShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub q_dim: usize,
    pub kv_dim: usize,
}

/// Causal grouped-query attention of every new token of every sequence in layer `layer`, over
/// the last `window` positions when given (else all), into `out` (`tokens × q_dim`), one
/// parallel task per (token, KV head). The one attention schedule of every architecture.
#[allow(clippy::too_many_arguments)]
pub(super) fn step_attention(
    isa: Isa,
    layer: usize,
    shape: AttnShape,
    window: Option<usize>,
    seqs: &[SeqStep<'_>],
    spans: &[Span],
    qkv: &[f32],
    out: &mut [f32],
) {
    let AttnShape {
        heads,
        kv_heads,
        head_dim: hd,
        q_dim,
        kv_dim,
    } = shape;
    let qkv_w = q_dim + 2 * kv_dim;
    let group = heads / kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    // (sequence index, token index within the step) of every token row.
    let rows: Vec<(usize, usize)> = spans
        .iter()
        .enumerate()
        .flat_map(|(s, sp)| (0..sp.n).map(move |i| (s, i)))
        .collect();
    // One task per (token, KV head): the query heads sharing it, which are consecutive.
    let width = group * hd;
    out.par_chunks_exact_mut(width)
        .enumerate()
        .for_each(|(task, o)| {
            let (row, kvh) = (task / kv_heads, task % kv_heads);
            let (s, i) = rows[row];
            let upto = spans[s].pos + i + 1;
            let from = window.map_or(0, |w| upto.saturating_sub(w));
            let q0 = row * qkv_w + kvh * width;
            let cache = layer * kv_heads + kvh;
            let heads = Group {
                q: &qkv[q0..q0 + width],
                head_dim: hd,
                keys: &seqs[s].kv.k[cache][from * hd..],
                values: &seqs[s].kv.v[cache][from * hd..],
                stride: hd,
                offset: 0,
                upto: upto - from,
                scale,
            };
            SCORES.with_borrow_mut(|scores| attend(isa, heads, scores, o));
        });
}

/// The logits after the last token of each sequence that wants them ([`SeqStep::logits`]; an
/// empty vector for the others): that token's residual row normalised with `out = (norm, eps,
/// head)`, times the output head — every row of it in one batched product, or only the rows a
/// sequence asks for ([`SeqStep::rows`]; the others `-inf`). `bufs` are the step's work
/// buffers.
pub(super) fn step_logits(
    isa: Isa,
    seqs: &[SeqStep<'_>],
    spans: &[Span],
    x: &[f32],
    dim: usize,
    (norm, eps, head): (&[f32], f32, &QMatrix),
    (acts, last, logits): (&mut Activations, &mut Vec<f32>, &mut Vec<f32>),
) -> Vec<Vec<f32>> {
    let vocab = head.rows();
    let normed = |i: usize, out: &mut [f32]| {
        let span = spans[i];
        let r = span.row + span.n - 1;
        rms_norm(&x[r * dim..(r + 1) * dim], norm, eps, out);
    };
    // Every row of the head, for the sequences that want them all, in one product.
    let full: Vec<usize> = (0..seqs.len())
        .filter(|&i| seqs[i].logits && seqs[i].rows.is_none())
        .collect();
    let n = full.len();
    let last = sized(last, n * dim);
    for (k, &i) in full.iter().enumerate() {
        normed(i, &mut last[k * dim..(k + 1) * dim]);
    }
    acts.quantize(last, dim);
    let logits = sized(logits, n * vocab);
    if n > 0 {
        matmul(isa, &[head], acts, logits, vocab);
    }
    let mut rows = logits.chunks_exact(vocab);
    let mut one = vec![0f32; dim];
    (0..seqs.len())
        .map(|i| match (seqs[i].logits, seqs[i].rows) {
            (false, _) => Vec::new(),
            (true, None) => rows.next().map(<[f32]>::to_vec).unwrap_or_default(),
            (true, Some(wanted)) => {
                normed(i, &mut one);
                let mut a = Activations::new();
                a.quantize(&one, dim);
                let mut out = vec![f32::NEG_INFINITY; vocab];
                head.rows_into(isa, wanted, &a, &mut out);
                out
            }
        })
        .collect()
}

thread_local! {
    /// Attention scores of the (token, KV head) a thread is working on, kept between tasks.
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `f(a_row, b_row)` for every row of `a` (`wa` wide) and `b` (`wb` wide), the rows spread
/// over the pool when there are several (each row's result is the same either way).
pub(super) fn for_rows(
    a: &mut [f32],
    wa: usize,
    b: &[f32],
    wb: usize,
    f: impl Fn(&mut [f32], &[f32]) + Sync,
) {
    if a.len() > wa {
        let rows = a.par_chunks_exact_mut(wa).zip(b.par_chunks_exact(wb));
        rows.for_each(|(x, y)| f(x, y));
    } else {
        a.chunks_exact_mut(wa)
            .zip(b.chunks_exact(wb))
            .for_each(|(x, y)| f(x, y));
    }
}

/// Row by row: `x += y` (with `y`), then `out = rms_norm(x)` (with `norm`), the rows spread over
/// the pool when there are several (each row's result is the same either way).
pub(super) fn add_then_norm(
    x: &mut [f32],
    y: Option<&[f32]>,
    norm: Option<(&[f32], f32)>,
    dim: usize,
    out: &mut [f32],
) {
    let row = |t: usize, xr: &mut [f32], or: &mut [f32]| {
        if let Some(y) = y {
            for (a, b) in xr.iter_mut().zip(&y[t * dim..(t + 1) * dim]) {
                *a += b;
            }
        }
        if let Some((w, eps)) = norm {
            rms_norm(xr, w, eps, or);
        }
    };
    if x.len() > dim {
        let rows = x
            .par_chunks_exact_mut(dim)
            .zip(out.par_chunks_exact_mut(dim));
        rows.enumerate().for_each(|(t, (xr, or))| row(t, xr, or));
    } else {
        let rows = x.chunks_exact_mut(dim).zip(out.chunks_exact_mut(dim));
        rows.enumerate().for_each(|(t, (xr, or))| row(t, xr, or));
    }
}
