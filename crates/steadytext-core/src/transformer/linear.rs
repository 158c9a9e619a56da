//! A projection whose weights are one quantised matrix, or the exact sum of two (how a Q6_K
//! tensor runs on the eight-bit kernels: [`crate::quant::blocks::from_q6_k_halves`]).

use crate::quant::{matmul, Activations, Isa, QMatrix};

/// One projection: `parts` of equal shape whose products are summed (one or two).
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    parts: Vec<QMatrix>,
}

impl Linear {
    /// A projection of one matrix.
    pub fn one(m: QMatrix) -> Self {
        Self { parts: vec![m] }
    }

    /// A projection that is the sum of two matrices of the same shape.
    pub fn sum_of(a: QMatrix, b: QMatrix) -> Self {
        debug_assert_eq!((a.rows(), a.cols()), (b.rows(), b.cols()));
        Self { parts: vec![a, b] }
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.parts[0].rows()
    }

    /// Bytes of weights in memory.
    pub fn bytes(&self) -> usize {
        self.parts.iter().map(QMatrix::bytes).sum()
    }
}

/// `out[t · stride + o_i + r]` = row `r` of projection `i` times token `t` of `x`, where `o_i`
/// is the sum of the previous projections' rows: one parallel pass over every matrix (as
/// [`matmul`]). A two-part projection's outputs go to `wide` first and are summed part 0 + part
/// 1, the same order for every token, so results do not depend on the batch.
pub(crate) fn project(
    isa: Isa,
    linears: &[&Linear],
    x: &Activations,
    out: &mut [f32],
    stride: usize,
    wide: &mut Vec<f32>,
) {
    let parts: Vec<&QMatrix> = linears.iter().flat_map(|l| l.parts.iter()).collect();
    if parts.len() == linears.len() {
        return matmul(isa, &parts, x, out, stride);
    }
    let width: usize = parts.iter().map(|p| p.rows()).sum();
    let tokens = x.tokens();
    wide.resize(tokens * width, 0.0);
    matmul(isa, &parts, x, wide, width);
    for t in 0..tokens {
        let (src, dst) = (&wide[t * width..(t + 1) * width], &mut out[t * stride..]);
        let (mut from, mut to) = (0, 0);
        for l in linears {
            let n = l.rows();
            let d = &mut dst[to..to + n];
            d.copy_from_slice(&src[from..from + n]);
            for p in 1..l.parts.len() {
                let s = &src[from + p * n..from + (p + 1) * n];
                for (a, b) in d.iter_mut().zip(s) {
                    *a += b;
                }
            }
            from += l.parts.len() * n;
            to += n;
        }
    }
}
