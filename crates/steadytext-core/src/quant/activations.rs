//! Activations quantised per token, as the kernels read them.
//!
//! Each token's row of `width` values becomes `width / 32` blocks of 32 signed bytes, with the
//! blocks' scales `d` and scaled sums `s = d·Σq` (for offset terms, as llama.cpp's Q8_1) kept in
//! separate arrays padded with zeros to a multiple of eight, so a kernel reads eight blocks' scales
//! with one load.

use super::blocks::{quantize_32, QK};

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
}

/// One token's quantised row.
#[derive(Debug, Clone, Copy)]
pub struct ActRow<'a> {
    /// Values, 32 per block.
    pub qs: &'a [[i8; 32]],
    /// Scales, padded with zeros to a multiple of [`GROUP`].
    pub d: &'a [f32],
    /// `d · Σq` per block, padded likewise.
    pub s: &'a [f32],
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
    /// assert!((a.row(1).d[0] * a.row(1).qs[0][0] as f32 - 0.5).abs() < 1e-3);
    /// ```
    pub fn quantize(&mut self, x: &[f32], width: usize) {
        assert!(width > 0 && width.is_multiple_of(QK) && x.len().is_multiple_of(width));
        self.tokens = x.len() / width;
        self.blocks = width / QK;
        self.padded = self.blocks.next_multiple_of(GROUP);
        self.qs.resize(self.tokens * self.blocks, [0; 32]);
        self.d.clear();
        self.s.clear();
        self.d.resize(self.tokens * self.padded, 0.0);
        self.s.resize(self.tokens * self.padded, 0.0);
        for (t, row) in x.chunks_exact(width).enumerate() {
            for (b, chunk) in row.chunks_exact(QK).enumerate() {
                let (d, q, sum) = quantize_32(chunk);
                self.qs[t * self.blocks + b] = q;
                self.d[t * self.padded + b] = d;
                self.s[t * self.padded + b] = d * sum as f32;
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_within_half_a_step_and_pad_with_zeros() {
        let x: Vec<f32> = (0..3 * 64)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.173)
            .collect();
        let mut a = Activations::new();
        a.quantize(&x, 64);
        assert_eq!((a.tokens(), a.blocks()), (3, 2));
        for t in 0..3 {
            let r = a.row(t);
            assert_eq!((r.d.len(), r.s.len()), (GROUP, GROUP));
            assert!(r.d[2..].iter().chain(&r.s[2..]).all(|&v| v == 0.0));
            for b in 0..2 {
                let sum: i32 = r.qs[b].iter().map(|&q| q as i32).sum();
                assert_eq!(r.s[b], r.d[b] * sum as f32);
                for (k, q) in r.qs[b].iter().enumerate() {
                    let v = x[t * 64 + b * 32 + k];
                    assert!((r.d[b] * *q as f32 - v).abs() <= r.d[b] * 0.5 + 1e-6);
                }
            }
        }
        a.quantize(&[0.0; 32], 32);
        assert_eq!(a.row(0).d[0], 0.0);
    }
}
