//! Quantised weight matrices and their row-parallel product with quantised activations.
//!
//! A [`QMatrix`] holds `rows × cols` weights as blocks of 32 along each row. [`matmul`] multiplies
//! one or several matrices (whose outputs are concatenated, e.g. the q, k and v projections)
//! with `tokens` activation rows in one parallel pass: rows are split into fixed chunks spread over
//! the rayon pool, and within a chunk each weight row is read once per tile of the activations
//! (up to eight tokens side by side; [`Activations::tile`]). Every output element is computed by the same kernel operations
//! whatever the number of tokens, the tile it falls in or the thread that runs it (see
//! [`super::dot`]), so results are bit-identical across batch sizes and thread counts.

use rayon::prelude::*;

use super::activations::{ActTile, Activations, GROUP};
use super::blocks::{BlockQ4, BlockQ8, QK};
use super::dot::{q4_rows, q8_rows, Isa, Q4Rows, Q8Rows};
use super::interleave::{pack_q4_row_into, pack_q8_row_into, unpack_q4, unpack_q8};

/// Weights handed to [`QMatrix::new`], as blocks.
#[derive(Debug, Clone)]
pub enum QData {
    /// Four-bit blocks (from Q4_0, Q4_1, Q4_K).
    Q4(Vec<BlockQ4>),
    /// Eight-bit blocks (from Q8_0, or re-quantised from anything else).
    Q8(Vec<BlockQ8>),
}

/// Weights as the kernels read them: values per block in the interleaved layout of
/// [`super::interleave`], scales (and offsets) in separate arrays padded per row to a multiple of
/// eight blocks.
#[derive(Debug, Clone)]
enum Packed {
    Q4 {
        qs: Vec<[u8; 16]>,
        d: Vec<f32>,
        m: Vec<f32>,
    },
    Q8 {
        qs: Vec<[i8; 32]>,
        d: Vec<f32>,
    },
}

/// A `rows × cols` weight matrix, row-major in blocks of 32.
#[derive(Debug, Clone)]
pub struct QMatrix {
    rows: usize,
    cols: usize,
    /// Blocks per row.
    blocks: usize,
    /// Scale entries per row (`blocks` rounded up to a multiple of eight).
    padded: usize,
    data: Packed,
}

/// Rows per parallel task, at least: a task is worth its scheduling cost.
const MIN_ROW_CHUNK: usize = 16;

/// Parallel tasks per thread per call: enough to balance uneven progress, few enough that
/// scheduling stays cheap (a decode step makes ~120 calls).
const TASKS_PER_THREAD: usize = 4;

/// Per-row scale arrays padded with zeros to `padded` entries.
fn padded_scales(values: impl Iterator<Item = f32>, blocks: usize, padded: usize) -> Vec<f32> {
    let values: Vec<f32> = values.collect();
    let rows = values.len() / blocks.max(1);
    let mut out = vec![0f32; rows * padded];
    for (r, chunk) in values.chunks_exact(blocks.max(1)).enumerate() {
        out[r * padded..r * padded + blocks].copy_from_slice(chunk);
    }
    out
}

/// Put every row of `blocks`-block rows in the kernels' layout, in place (a row's packing only
/// moves values between its own blocks).
fn repack_in_place<B, Q: Copy>(
    b: &mut [B],
    blocks: usize,
    pack: fn(&[B], &mut Vec<Q>),
    set: fn(&mut B, Q),
) {
    let mut row = Vec::with_capacity(blocks);
    for chunk in b.chunks_exact_mut(blocks) {
        row.clear();
        pack(chunk, &mut row);
        for (x, &q) in chunk.iter_mut().zip(&row) {
            set(x, q);
        }
    }
}

impl QMatrix {
    /// Wrap `data` as a `rows × cols` matrix; `cols` must be a multiple of 32 and the block
    /// count must be `rows · cols / 32`.
    pub fn new(rows: usize, cols: usize, data: QData) -> Option<Self> {
        let n = match &data {
            QData::Q4(b) => b.len(),
            QData::Q8(b) => b.len(),
        };
        if cols == 0 || !cols.is_multiple_of(QK) || n != rows * cols / QK {
            return None;
        }
        let blocks = cols / QK;
        let padded = blocks.next_multiple_of(GROUP);
        // Each row is repacked in place (a permutation of its own blocks' values), so the final
        // collect can reuse the blocks' allocation.
        let data = match data {
            QData::Q4(mut b) => {
                repack_in_place(&mut b, blocks, pack_q4_row_into, |x, q| x.qs = q);
                Packed::Q4 {
                    d: padded_scales(b.iter().map(|x| x.d), blocks, padded),
                    m: padded_scales(b.iter().map(|x| x.m), blocks, padded),
                    qs: b.into_iter().map(|x| x.qs).collect(),
                }
            }
            QData::Q8(mut b) => {
                repack_in_place(&mut b, blocks, pack_q8_row_into, |x, q| x.qs = q);
                Packed::Q8 {
                    d: padded_scales(b.iter().map(|x| x.d), blocks, padded),
                    qs: b.into_iter().map(|x| x.qs).collect(),
                }
            }
        };
        Some(Self {
            rows,
            cols,
            blocks,
            padded,
            data,
        })
    }

    /// Quantise an `f32` row-major matrix to eight bits.
    pub fn quantize_q8(rows: usize, cols: usize, values: &[f32]) -> Option<Self> {
        if !cols.is_multiple_of(QK) || values.len() != rows * cols {
            return None;
        }
        let blocks = values.chunks_exact(QK).map(BlockQ8::quantize).collect();
        Self::new(rows, cols, QData::Q8(blocks))
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes of weights in memory.
    pub fn bytes(&self) -> usize {
        match &self.data {
            Packed::Q4 { qs, d, m } => {
                std::mem::size_of_val(qs.as_slice()) + 4 * (d.len() + m.len())
            }
            Packed::Q8 { qs, d } => std::mem::size_of_val(qs.as_slice()) + 4 * d.len(),
        }
    }

    /// Row `r` dequantised into `out` (`cols` values), e.g. an embedding lookup.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let (nb, np) = (self.blocks, self.padded);
        for (b, o) in out.chunks_exact_mut(QK).enumerate().take(nb) {
            let v = match &self.data {
                Packed::Q4 { qs, d, m } => BlockQ4 {
                    d: d[r * np + b],
                    m: m[r * np + b],
                    qs: unpack_q4(&qs[r * nb..(r + 1) * nb], b),
                }
                .dequantize(),
                Packed::Q8 { qs, d } => {
                    let row = &qs[r * nb..(r + 1) * nb];
                    BlockQ8 {
                        d: d[r * np + b],
                        qs: unpack_q8(row, b),
                    }
                    .dequantize()
                }
            };
            o.copy_from_slice(&v);
        }
    }
}

impl QMatrix {
    /// `out[r]` = row `r` times the single activation row of `x`, for each `r` in `rows`
    /// (others untouched): the same kernel as [`matmul`], so the same bits as there. For a
    /// handful of rows of a large matrix (the tokens a constraint allows, out of a 262k-row
    /// head).
    ///
    /// # Panics
    /// When `x` does not hold one row of this matrix's width, `out` is shorter than the
    /// matrix's rows, or a row is out of range.
    pub fn rows_into(&self, isa: Isa, rows: &[u32], x: &Activations, out: &mut [f32]) {
        assert!(
            x.tokens() == 1 && self.blocks == x.blocks(),
            "one activation row of the width"
        );
        assert!(out.len() >= self.rows, "out shorter than the rows");
        let ptr = OutPtr(out.as_mut_ptr());
        let a = x.tile_of(0);
        for &r in rows {
            let r = r as usize;
            assert!(r < self.rows, "row {r} out of range");
            tile::<1>(self, isa, r..r + 1, a, 0, ptr, self.rows, 0);
        }
    }
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements of the output (distinct rows of distinct matrices).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// `out[t · out_stride + offset_p + r] = parts[p] row r · x[t]` for every part `p` (its output
/// columns start at the sum of the previous parts' rows), every row `r` and token `t`.
///
/// Every part has `cols` equal to the activations' width.
///
/// ```
/// use steadytext_core::quant::{matmul, Activations, Isa, QMatrix};
/// let w = QMatrix::quantize_q8(2, 32, &[[1.0f32; 32], [0.5; 32]].concat()).unwrap();
/// let mut x = Activations::new();
/// x.quantize(&[1.0; 32], 32);
/// let mut out = vec![0.0; 2];
/// matmul(Isa::detect(), &[&w], &x, &mut out, 2);
/// assert!((out[0] - 32.0).abs() < 0.1 && (out[1] - 16.0).abs() < 0.1);
/// ```
pub fn matmul(isa: Isa, parts: &[&QMatrix], x: &Activations, out: &mut [f32], out_stride: usize) {
    let tokens = x.tokens();
    assert!(
        parts.iter().all(|p| p.blocks == x.blocks()),
        "weight cols and activation width differ"
    );
    let total_rows: usize = parts.iter().map(|p| p.rows).sum();
    assert!(total_rows <= out_stride, "out_stride too small");
    assert!(out.len() >= tokens.saturating_sub(1) * out_stride + total_rows);
    // Task list: (part, first row) of every chunk, with the part's column offset. The chunking
    // only decides which thread computes a row, never how, so it cannot change a result.
    let threads = rayon::current_num_threads().max(1);
    let row_chunk = total_rows
        .div_ceil(threads * TASKS_PER_THREAD)
        .next_multiple_of(MIN_ROW_CHUNK)
        .max(MIN_ROW_CHUNK);
    let mut chunk_starts = Vec::with_capacity(parts.len() + 1);
    let mut n_chunks = 0;
    for p in parts {
        chunk_starts.push(n_chunks);
        n_chunks += p.rows.div_ceil(row_chunk);
    }
    let offsets: Vec<usize> = parts
        .iter()
        .scan(0, |acc, p| {
            let o = *acc;
            *acc += p.rows;
            Some(o)
        })
        .collect();
    let ptr = OutPtr(out.as_mut_ptr());
    (0..n_chunks).into_par_iter().for_each(|c| {
        let p = chunk_starts.partition_point(|&s| s <= c) - 1;
        let part = parts[p];
        let first = (c - chunk_starts[p]) * row_chunk;
        let rows = first..(first + row_chunk).min(part.rows);
        let col0 = offsets[p];
        let mut t = 0;
        while t < tokens {
            let a = x.tile_of(t);
            let r = rows.clone();
            match a.n {
                1 => tile::<1>(part, isa, r, a, t, ptr, out_stride, col0),
                2 => tile::<2>(part, isa, r, a, t, ptr, out_stride, col0),
                3 => tile::<3>(part, isa, r, a, t, ptr, out_stride, col0),
                4 => tile::<4>(part, isa, r, a, t, ptr, out_stride, col0),
                5 => tile::<5>(part, isa, r, a, t, ptr, out_stride, col0),
                6 => tile::<6>(part, isa, r, a, t, ptr, out_stride, col0),
                7 => tile::<7>(part, isa, r, a, t, ptr, out_stride, col0),
                _ => tile::<8>(part, isa, r, a, t, ptr, out_stride, col0),
            }
            t += a.n;
        }
    });
}

/// Rows `rows` of `part` times the tile `acts` (activation rows `t0 .. t0 + T`), written to
/// `out`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<const T: usize>(
    part: &QMatrix,
    isa: Isa,
    rows: std::ops::Range<usize>,
    acts: ActTile<'_>,
    t0: usize,
    out: OutPtr,
    out_stride: usize,
    col0: usize,
) {
    let (blocks, padded) = (part.blocks, part.padded);
    // SAFETY: `rows` are rows of `part`; the tile holds `T` tokens (the caller matched on
    // `acts.n`) with the part's block count (asserted by `matmul`), and both pad their scales to
    // the next multiple of GROUP; every (t0 + t, col0 + r)
    // is inside `out` (asserted by `matmul`) and written by this task alone.
    unsafe {
        let base = out.0.add(t0 * out_stride + col0);
        match &part.data {
            Packed::Q4 { qs, d, m } => {
                let m = Q4Rows {
                    qs,
                    d,
                    m,
                    blocks,
                    padded,
                };
                q4_rows::<T>(isa, m, rows, acts, base, out_stride)
            }
            Packed::Q8 { qs, d } => {
                let m = Q8Rows {
                    qs,
                    d,
                    blocks,
                    padded,
                };
                q8_rows::<T>(isa, m, rows, acts, base, out_stride)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, seed: u32) -> QMatrix {
        let v: Vec<f32> = (0..rows * cols)
            .map(|i| {
                (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 200) as f32
                    / 100.0
                    - 1.0
            })
            .collect();
        QMatrix::quantize_q8(rows, cols, &v).unwrap()
    }

    #[test]
    fn batch_size_and_parts_never_change_an_output() {
        let isa = Isa::detect();
        let (a, b) = (matrix(37, 320, 1), matrix(50, 320, 2));
        let tokens = 7;
        let xs: Vec<f32> = (0..tokens * 320)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let stride = 90;
        let mut all = vec![0f32; tokens * stride];
        let mut x = Activations::new();
        x.quantize(&xs, 320);
        matmul(isa, &[&a, &b], &x, &mut all, stride);
        // Any tiling of the same tokens (8: one tile of 7; 3: 3 + 3 + 1) gives the same bits.
        for tile in [3, 8] {
            let mut other = vec![0f32; tokens * stride];
            let mut x = Activations::with_tile(tile);
            x.quantize(&xs, 320);
            matmul(isa, &[&a, &b], &x, &mut other, stride);
            assert!(other
                .iter()
                .zip(&all)
                .all(|(p, q)| p.to_bits() == q.to_bits()));
        }
        for t in 0..tokens {
            let mut one_x = Activations::new();
            one_x.quantize(&xs[t * 320..(t + 1) * 320], 320);
            let mut one = vec![0f32; 87];
            matmul(isa, &[&a, &b], &one_x, &mut one, 87);
            let mut only_b = vec![0f32; 50];
            matmul(isa, &[&b], &one_x, &mut only_b, 50);
            for r in 0..87 {
                assert_eq!(one[r].to_bits(), all[t * stride + r].to_bits());
            }
            for r in 0..50 {
                assert_eq!(only_b[r].to_bits(), all[t * stride + 37 + r].to_bits());
            }
        }
    }

    #[test]
    fn dequantized_rows_round_trip() {
        let m = matrix(3, 320, 5);
        let mut row = vec![0f32; 320];
        m.dequantize_row(2, &mut row);
        assert!(row.iter().all(|v| v.abs() <= 1.01));
    }

    #[test]
    fn shape_checks() {
        assert!(QMatrix::quantize_q8(2, 30, &[0.0; 60]).is_none());
        assert!(QMatrix::new(2, 32, QData::Q8(vec![BlockQ8::default(); 3])).is_none());
    }
}
