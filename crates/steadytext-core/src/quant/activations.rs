//! Activations quantised per token, as the kernels read them.
//!
//! Each token's row of `width` values becomes `width / 32` blocks of 32 signed bytes, stored in
//! the kernels' interleaved layout (see [`super::interleave`]), with the blocks' scales `d`,
//! scaled sums `s = d·Σq` (for offset terms, as llama.cpp's Q8_1) and integer sums `Σq` kept in
//! separate arrays padded with zeros to a multiple of eight, so a kernel reads eight blocks' scales
//! with one load.

use super::blocks::{quantize_32, QK};
use super::interleave::{byte_at, scatter, subgroups};

/// Blocks per group whose scales a kernel loads at once.
pub const GROUP: usize = 8;

/// Quantised activation rows (one per token).
#[derive(Debug, Clone, Default)]
pub struct Activations {
    tokens: usize,
    blocks: usize,
    padded: usize,
    qs: Vec<[i8; 32]>,
    d: Vec<f32>,
    s: Vec<f32>,
    sum: Vec<i32>,
}

/// One token's quantised row.
#[derive(Debug, Clone, Copy)]
pub struct ActRow<'a> {
    /// Values, 32 per block, in the kernels' layout (read one with [`ActRow::value`]).
    pub qs: &'a [[i8; 32]],
    /// Scales, padded with zeros to a multiple of [`GROUP`].
    pub d: &'a [f32],
    /// `d · Σq` per block, padded likewise.
    pub s: &'a [f32],
    /// `Σq` per block, padded likewise.
    pub sum: &'a [i32],
}

impl ActRow<'_> {
    /// Value `i` of block `b`.
    pub fn value(&self, b: usize, i: usize) -> i8 {
        byte_at(self.qs, b, i)
    }
}

impl Activations {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Quantise `x`, rows of `width` values (a multiple of 32), reusing this buffer.
    ///
    /// ```
    /// use steadytext_core::quant::Activations;
    /// let mut a = Activations::new();
    /// a.quantize(&[0.5; 64], 32);
    /// assert_eq!((a.tokens(), a.blocks()), (2, 1));
    /// assert!((a.row(1).d[0] * a.row(1).value(0, 0) as f32 - 0.5).abs() < 1e-3);
    /// ```
    pub fn quantize(&mut self, x: &[f32], width: usize) {
        assert!(width > 0 && width.is_multiple_of(QK) && x.len().is_multiple_of(width));
        self.tokens = x.len() / width;
        self.blocks = width / QK;
        self.padded = self.blocks.next_multiple_of(GROUP);
        self.qs.resize(self.tokens * self.blocks, [0; 32]);
        self.d.clear();
        self.s.clear();
        self.sum.clear();
        self.d.resize(self.tokens * self.padded, 0.0);
        self.s.resize(self.tokens * self.padded, 0.0);
        self.sum.resize(self.tokens * self.padded, 0);
        for (t, row) in x.chunks_exact(width).enumerate() {
            let qs = &mut self.qs[t * self.blocks..(t + 1) * self.blocks];
            let at = t * self.padded;
            for (o, n) in subgroups(self.blocks) {
                let mut natural = [[0i8; 32]; GROUP];
                for (j, q_out) in natural[..n].iter_mut().enumerate() {
                    let b = o + j;
                    let (d, q, sum) = quantize_32(&row[b * QK..(b + 1) * QK]);
                    *q_out = q;
                    self.d[at + b] = d;
                    self.s[at + b] = d * sum as f32;
                    self.sum[at + b] = sum;
                }
                scatter(&natural[..n], &mut qs[o..o + n]);
            }
        }
    }

    /// Rows held.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Blocks per row.
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// Row `t`.
    pub fn row(&self, t: usize) -> ActRow<'_> {
        ActRow {
            qs: &self.qs[t * self.blocks..(t + 1) * self.blocks],
            d: &self.d[t * self.padded..(t + 1) * self.padded],
            s: &self.s[t * self.padded..(t + 1) * self.padded],
            sum: &self.sum[t * self.padded..(t + 1) * self.padded],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_within_half_a_step_and_pad_with_zeros() {
        // 10 blocks per row: one full (interleaved) group and two blocks after it.
        let w = 320;
        let x: Vec<f32> = (0..3 * w)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.173 * (1 + i % 5) as f32)
            .collect();
        let mut a = Activations::new();
        a.quantize(&x, w);
        assert_eq!((a.tokens(), a.blocks()), (3, 10));
        for t in 0..3 {
            let r = a.row(t);
            assert_eq!((r.d.len(), r.s.len(), r.sum.len()), (16, 16, 16));
            assert!(r.d[10..].iter().chain(&r.s[10..]).all(|&v| v == 0.0));
            for b in 0..10 {
                let sum: i32 = (0..32).map(|k| r.value(b, k) as i32).sum();
                assert_eq!(r.sum[b], sum);
                assert_eq!(r.s[b], r.d[b] * sum as f32);
                for k in 0..32 {
                    let v = x[t * w + b * 32 + k];
                    assert!((r.d[b] * r.value(b, k) as f32 - v).abs() <= r.d[b] * 0.5 + 1e-6);
                }
            }
        }
        a.quantize(&[0.0; 32], 32);
        assert_eq!(a.row(0).d[0], 0.0);
    }
}
