//! Activations quantised per token, as the kernels read them.
//!
//! Each token's row of `width` values becomes `width / 32` blocks of 32 signed bytes in the
//! kernels' interleaved layout (see [`super::interleave`]), with the blocks' scales `d`, scaled
//! sums `s = d·Σq` (for offset terms, as llama.cpp's Q8_1) and integer sums `Σq`.
//!
//! Tokens are stored in *tiles* of up to [`Activations::tile`] consecutive tokens (the last tile
//! takes what is left), the unit one kernel call multiplies with a weight row. Inside a tile of
//! `n` tokens the rows sit side by side: entry `k·n + t` of the tile's vectors is vector `k` of
//! token `t`, and the scales (padded per token with zeros to a multiple of [`GROUP`]) are stored
//! per group of eight blocks, token after token: entry `g·n + 8t + l` is block `g + l` of token
//! `t`. So a kernel reaches every token of a tile from one base address at constant offsets.

#[cfg(target_arch = "x86_64")]
use super::blocks::quantize_32_avx2;
use super::blocks::{quantize_32, QK};
use super::dot::Isa;
use super::interleave::{scatter, slot, subgroup_of, subgroups};

/// Blocks per group whose scales a kernel loads at once.
pub const GROUP: usize = 8;

/// Quantised activation rows (one per token), in tiles.
#[derive(Debug, Clone)]
pub struct Activations {
    tokens: usize,
    blocks: usize,
    padded: usize,
    tile: usize,
    qs: Vec<[i8; 32]>,
    d: Vec<f32>,
    s: Vec<f32>,
    sum: Vec<i32>,
}

impl Default for Activations {
    fn default() -> Self {
        Self::new()
    }
}

/// One tile: `n` consecutive tokens side by side (see the [module docs](self)).
#[derive(Debug, Clone, Copy)]
pub struct ActTile<'a> {
    /// Vectors: entry `k·n + t` is vector `k` (in the row's interleaved order) of token `t`.
    pub qs: &'a [[i8; 32]],
    /// Scales: entry `g·n + 8t + l` is block `g + l` (`g` a multiple of [`GROUP`]) of token `t`.
    pub d: &'a [f32],
    /// `d · Σq` per block, indexed as `d`.
    pub s: &'a [f32],
    /// `Σq` per block, indexed as `d`.
    pub sum: &'a [i32],
    /// Tokens in the tile.
    pub n: usize,
    /// Blocks per token.
    pub blocks: usize,
}

impl<'a> ActTile<'a> {
    /// Token `t` of the tile.
    pub fn row(self, t: usize) -> ActRow<'a> {
        assert!(t < self.n);
        ActRow { tile: self, t }
    }

    /// Scale entries per token (blocks rounded up to a multiple of [`GROUP`]).
    pub fn padded(&self) -> usize {
        self.d.len() / self.n
    }
}

/// One token of a tile.
#[derive(Debug, Clone, Copy)]
pub struct ActRow<'a> {
    tile: ActTile<'a>,
    t: usize,
}

impl ActRow<'_> {
    /// Vector `k` of the row (in its interleaved order).
    #[inline(always)]
    pub fn vector(&self, k: usize) -> &[i8; 32] {
        &self.tile.qs[k * self.tile.n + self.t]
    }

    #[inline(always)]
    fn at(&self, b: usize) -> usize {
        (b - b % GROUP) * self.tile.n + GROUP * self.t + b % GROUP
    }

    /// Scale of block `b` (zero past the last block, up to the padding).
    #[inline(always)]
    pub fn d(&self, b: usize) -> f32 {
        self.tile.d[self.at(b)]
    }

    /// `d · Σq` of block `b`.
    #[inline(always)]
    pub fn s(&self, b: usize) -> f32 {
        self.tile.s[self.at(b)]
    }

    /// `Σq` of block `b`.
    #[inline(always)]
    pub fn sum(&self, b: usize) -> i32 {
        self.tile.sum[self.at(b)]
    }

    /// Value `i` of block `b`.
    pub fn value(&self, b: usize, i: usize) -> i8 {
        let (o, n) = subgroup_of(self.tile.blocks, b);
        let s = slot(n, b - o, i);
        self.vector(o + s / 32)[s % 32]
    }
}

impl Activations {
    /// An empty buffer with tiles of [`Isa::max_tile`] for this CPU.
    pub fn new() -> Self {
        Self::with_tile(Isa::detect().max_tile())
    }

    /// An empty buffer with tiles of up to `tile` tokens (1 to 8).
    pub fn with_tile(tile: usize) -> Self {
        assert!((1..=8).contains(&tile), "tiles hold 1 to 8 tokens");
        Self {
            tokens: 0,
            blocks: 0,
            padded: 0,
            tile,
            qs: Vec::new(),
            d: Vec::new(),
            s: Vec::new(),
            sum: Vec::new(),
        }
    }

    /// Quantise `x`, rows of `width` values (a multiple of 32), reusing this buffer.
    ///
    /// ```
    /// use steadytext_core::quant::Activations;
    /// let mut a = Activations::new();
    /// a.quantize(&[0.5; 64], 32);
    /// assert_eq!((a.tokens(), a.blocks()), (2, 1));
    /// let row = a.tile_of(1).row(a.tile_of(1).n - 1);
    /// assert!((row.d(0) * row.value(0, 0) as f32 - 0.5).abs() < 1e-3);
    /// ```
    pub fn quantize(&mut self, x: &[f32], width: usize) {
        assert!(width > 0 && width.is_multiple_of(QK) && x.len().is_multiple_of(width));
        self.tokens = x.len() / width;
        self.blocks = width / QK;
        self.padded = self.blocks.next_multiple_of(GROUP);
        self.qs.resize(self.tokens * self.blocks, [0; 32]);
        // Padding entries must read as zero; every other entry is written below.
        for v in [&mut self.d, &mut self.s] {
            v.clear();
            v.resize(self.tokens * self.padded, 0.0);
        }
        self.sum.clear();
        self.sum.resize(self.tokens * self.padded, 0);
        #[cfg(target_arch = "x86_64")]
        if Isa::detect() != Isa::Portable {
            // SAFETY: `Isa` names a SIMD set only when the CPU has AVX2 and FMA.
            return unsafe { self.fill_avx2(x, width) };
        }
        self.fill(x, width, quantize_32)
    }

    /// [`Activations::fill`] with AVX2 (the same operations, so the same bits).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fill_avx2(&mut self, x: &[f32], width: usize) {
        // SAFETY: this function runs only on CPUs with AVX2; blocks hold 32 values.
        self.fill(x, width, |b| unsafe { quantize_32_avx2(b) })
    }

    /// Quantise every row of `x` (blocks by `quantize`) into the buffers sized by
    /// [`Activations::quantize`].
    #[inline(always)]
    fn fill(&mut self, x: &[f32], width: usize, quantize: impl Fn(&[f32]) -> (f32, [i8; 32], i32)) {
        let (blocks, padded) = (self.blocks, self.padded);
        for (tok, row) in x.chunks_exact(width).enumerate() {
            let t0 = tok - tok % self.tile;
            let n = self.tile.min(self.tokens - t0);
            let t = tok - t0;
            let qs = &mut self.qs[t0 * blocks..];
            let at = t0 * padded;
            for (o, len) in subgroups(blocks) {
                let mut natural = [[0i8; 32]; GROUP];
                for (j, q_out) in natural[..len].iter_mut().enumerate() {
                    let b = o + j;
                    let (d, q, sum) = quantize(&row[b * QK..(b + 1) * QK]);
                    *q_out = q;
                    let e = at + (b - b % GROUP) * n + GROUP * t + b % GROUP;
                    self.d[e] = d;
                    self.s[e] = d * sum as f32;
                    self.sum[e] = sum;
                }
                let mut vectors = [[0i8; 32]; GROUP];
                scatter(&natural[..len], &mut vectors[..len]);
                for (v, vec) in vectors[..len].iter().enumerate() {
                    qs[(o + v) * n + t] = *vec;
                }
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

    /// The most tokens a tile holds.
    pub fn tile(&self) -> usize {
        self.tile
    }

    /// The tile starting at token `t0` (a multiple of [`Activations::tile`]).
    pub fn tile_of(&self, t0: usize) -> ActTile<'_> {
        let t0 = t0 - t0 % self.tile;
        assert!(t0 < self.tokens);
        let n = self.tile.min(self.tokens - t0);
        let (nb, np) = (self.blocks, self.padded);
        ActTile {
            qs: &self.qs[t0 * nb..(t0 + n) * nb],
            d: &self.d[t0 * np..(t0 + n) * np],
            s: &self.s[t0 * np..(t0 + n) * np],
            sum: &self.sum[t0 * np..(t0 + n) * np],
            n,
            blocks: nb,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_within_half_a_step_and_pad_with_zeros() {
        // 10 blocks per row: one full (interleaved) group and two blocks after it; 7 tokens in
        // tiles of 3 (3, 3, 1).
        let w = 320;
        let tokens = 7;
        let x: Vec<f32> = (0..tokens * w)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.173 * (1 + i % 5) as f32)
            .collect();
        let mut a = Activations::with_tile(3);
        a.quantize(&x, w);
        assert_eq!((a.tokens(), a.blocks()), (7, 10));
        for tok in 0..tokens {
            let tile = a.tile_of(tok);
            assert_eq!(tile.n, if tok < 6 { 3 } else { 1 });
            assert_eq!(tile.padded(), 16);
            let r = tile.row(tok % 3);
            assert!((10..16).all(|b| r.d(b) == 0.0 && r.s(b) == 0.0 && r.sum(b) == 0));
            for b in 0..10 {
                let sum: i32 = (0..32).map(|k| r.value(b, k) as i32).sum();
                assert_eq!(r.sum(b), sum);
                assert_eq!(r.s(b), r.d(b) * sum as f32);
                for k in 0..32 {
                    let v = x[tok * w + b * 32 + k];
                    assert!((r.d(b) * r.value(b, k) as f32 - v).abs() <= r.d(b) * 0.5 + 1e-6);
                }
            }
        }
        a.quantize(&[0.0; 32], 32);
        assert_eq!(a.tile_of(0).row(0).d(0), 0.0);
    }
}
