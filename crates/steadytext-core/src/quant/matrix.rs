//! Quantised weight matrices and their row-parallel product with quantised activations.
//!
//! A [`QMatrix`] holds `rows × cols` weights as blocks of 32 along each row. [`matmul`] multiplies
//! one or several matrices (whose outputs are concatenated, e.g. the q, k and v projections)
//! with `tokens` activation rows in one parallel pass: rows are split into fixed chunks spread over
//! the rayon pool, and within a chunk each weight row is read once for up to four tokens at a
//! time. Every output element is computed by the same kernel operations whatever the number of
//! tokens, the tile it falls in or the thread that runs it (see [`super::dot`]), so results are
//! bit-identical across batch sizes and thread counts.

use rayon::prelude::*;

use super::blocks::{ActBlock, BlockQ4, BlockQ8, QK};
use super::dot::{dot_q4, dot_q8, Isa};

/// Weight storage of a [`QMatrix`].
#[derive(Debug, Clone)]
pub enum QData {
    /// Four-bit blocks (from Q4_0, Q4_1, Q4_K).
    Q4(Vec<BlockQ4>),
    /// Eight-bit blocks (from Q8_0, or re-quantised from anything else).
    Q8(Vec<BlockQ8>),
}

/// A `rows × cols` weight matrix, row-major in blocks of 32.
#[derive(Debug, Clone)]
pub struct QMatrix {
    rows: usize,
    cols: usize,
    data: QData,
}

/// Rows per parallel task.
const ROW_CHUNK: usize = 16;

impl QMatrix {
    /// Wrap `data` as a `rows × cols` matrix; `cols` must be a multiple of 32 and the block
    /// count must be `rows · cols / 32`.
    pub fn new(rows: usize, cols: usize, data: QData) -> Option<Self> {
        let blocks = match &data {
            QData::Q4(b) => b.len(),
            QData::Q8(b) => b.len(),
        };
        (cols.is_multiple_of(QK) && blocks == rows * cols / QK).then_some(Self { rows, cols, data })
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
            QData::Q4(b) => std::mem::size_of_val(b.as_slice()),
            QData::Q8(b) => std::mem::size_of_val(b.as_slice()),
        }
    }

    /// The storage.
    pub fn data(&self) -> &QData {
        &self.data
    }

    /// Row `r` dequantised into `out` (`cols` values), e.g. an embedding lookup.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let bpr = self.cols / QK;
        match &self.data {
            QData::Q4(b) => {
                for (blk, o) in b[r * bpr..(r + 1) * bpr]
                    .iter()
                    .zip(out.chunks_exact_mut(QK))
                {
                    o.copy_from_slice(&blk.dequantize());
                }
            }
            QData::Q8(b) => {
                for (blk, o) in b[r * bpr..(r + 1) * bpr]
                    .iter()
                    .zip(out.chunks_exact_mut(QK))
                {
                    o.copy_from_slice(&blk.dequantize());
                }
            }
        }
    }

    /// Rows `rows` dotted with up to four activation rows; `out[t][i]` for row `rows.start + i`.
    fn rows_times<const T: usize>(
        &self,
        isa: Isa,
        rows: std::ops::Range<usize>,
        acts: [&[ActBlock]; T],
        mut emit: impl FnMut(usize, [f32; T]),
    ) {
        let bpr = self.cols / QK;
        for r in rows {
            let v = match &self.data {
                QData::Q4(b) => dot_q4::<T>(isa, &b[r * bpr..(r + 1) * bpr], acts),
                QData::Q8(b) => dot_q8::<T>(isa, &b[r * bpr..(r + 1) * bpr], acts),
            };
            emit(r, v);
        }
    }
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements of the output (distinct rows of distinct matrices).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// # Safety
    /// `i` must be inside the output and written by one task only.
    unsafe fn write(&self, i: usize, v: f32) {
        *self.0.add(i) = v;
    }
}

/// `out[t · out_stride + offset_p + r] = parts[p] row r · x[t]` for every part `p` (its output
/// columns start at the sum of the previous parts' rows), every row `r` and token `t`.
///
/// `x` holds `tokens` rows of `cols / 32` activation blocks; every part has the same `cols`.
///
/// ```
/// use steadytext_core::quant::{matmul, quantize_activations, ActBlock, Isa, QMatrix};
/// let w = QMatrix::quantize_q8(2, 32, &[[1.0f32; 32], [0.5; 32]].concat()).unwrap();
/// let mut x = vec![ActBlock::default(); 1];
/// quantize_activations(&[1.0; 32], &mut x);
/// let mut out = vec![0.0; 2];
/// matmul(Isa::detect(), &[&w], &x, 1, &mut out, 2);
/// assert!((out[0] - 32.0).abs() < 0.1 && (out[1] - 16.0).abs() < 0.1);
/// ```
pub fn matmul(
    isa: Isa,
    parts: &[&QMatrix],
    x: &[ActBlock],
    tokens: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let cols = parts.first().map_or(0, |p| p.cols);
    assert!(parts.iter().all(|p| p.cols == cols), "parts differ in cols");
    let bpr = cols / QK;
    assert_eq!(x.len(), tokens * bpr, "activation shape");
    let total_rows: usize = parts.iter().map(|p| p.rows).sum();
    assert!(total_rows <= out_stride, "out_stride too small");
    assert!(out.len() >= tokens.saturating_sub(1) * out_stride + total_rows);
    // Task list: (part, first row) of every chunk, with the part's column offset.
    let mut chunk_starts = Vec::with_capacity(parts.len() + 1);
    let mut n_chunks = 0;
    for p in parts {
        chunk_starts.push(n_chunks);
        n_chunks += p.rows.div_ceil(ROW_CHUNK);
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
    let act_row = |t: usize| &x[t * bpr..(t + 1) * bpr];
    (0..n_chunks).into_par_iter().for_each(|c| {
        let p = chunk_starts.partition_point(|&s| s <= c) - 1;
        let part = parts[p];
        let first = (c - chunk_starts[p]) * ROW_CHUNK;
        let rows = first..(first + ROW_CHUNK).min(part.rows);
        let col0 = offsets[p];
        let write = |t: usize, r: usize, v: f32| {
            // SAFETY: (t, col0 + r) is inside `out` (asserted above) and owned by this task alone.
            unsafe { ptr.write(t * out_stride + col0 + r, v) };
        };
        let mut t = 0;
        while t < tokens {
            match tokens - t {
                1 => {
                    part.rows_times::<1>(isa, rows.clone(), [act_row(t)], |r, v| write(t, r, v[0]));
                    t += 1;
                }
                2 => {
                    part.rows_times::<2>(
                        isa,
                        rows.clone(),
                        [act_row(t), act_row(t + 1)],
                        |r, v| {
                            write(t, r, v[0]);
                            write(t + 1, r, v[1]);
                        },
                    );
                    t += 2;
                }
                3 => {
                    let a = [act_row(t), act_row(t + 1), act_row(t + 2)];
                    part.rows_times::<3>(isa, rows.clone(), a, |r, v| {
                        for (i, &vi) in v.iter().enumerate() {
                            write(t + i, r, vi);
                        }
                    });
                    t += 3;
                }
                _ => {
                    let a = [act_row(t), act_row(t + 1), act_row(t + 2), act_row(t + 3)];
                    part.rows_times::<4>(isa, rows.clone(), a, |r, v| {
                        for (i, &vi) in v.iter().enumerate() {
                            write(t + i, r, vi);
                        }
                    });
                    t += 4;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::blocks::quantize_activations;

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
        let (a, b) = (matrix(37, 64, 1), matrix(50, 64, 2));
        let tokens = 7;
        let xs: Vec<f32> = (0..tokens * 64)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let mut x = vec![ActBlock::default(); tokens * 2];
        quantize_activations(&xs, &mut x);
        let stride = 90;
        let mut all = vec![0f32; tokens * stride];
        matmul(isa, &[&a, &b], &x, tokens, &mut all, stride);
        for t in 0..tokens {
            let mut one = vec![0f32; 87];
            matmul(isa, &[&a, &b], &x[t * 2..t * 2 + 2], 1, &mut one, 87);
            let mut only_b = vec![0f32; 50];
            matmul(isa, &[&b], &x[t * 2..t * 2 + 2], 1, &mut only_b, 50);
            for r in 0..87 {
                assert_eq!(one[r].to_bits(), all[t * stride + r].to_bits());
            }
            for r in 0..50 {
                assert_eq!(only_b[r].to_bits(), all[t * stride + 37 + r].to_bits());
            }
        }
    }

    #[test]
    fn shape_checks() {
        assert!(QMatrix::quantize_q8(2, 30, &[0.0; 60]).is_none());
        assert!(QMatrix::new(2, 32, QData::Q8(vec![BlockQ8::default(); 3])).is_none());
    }
}
