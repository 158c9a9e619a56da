//! Block layouts of quantised weights and activations, and conversion from GGUF's formats.
//!
//! Weights are repacked at load into two in-memory layouts with `f32` scales, so every kernel
//! reads its scales with one load and no half-float conversion:
//!
//! - [`BlockQ4`]: 32 four-bit values `q` with `w = d·q + m`. GGUF's Q4_1 maps onto it directly,
//!   Q4_0 (`w = d·(q − 8)`) with `m = −8d`, and each 32-value sub-block of Q4_K
//!   (`w = d·sc·q − dmin·mn`) with `d = d·sc`, `m = −dmin·mn`. All three conversions are exact:
//!   the products of a half-float and a 6-bit integer fit in an `f32`.
//! - [`BlockQ8`]: 32 eight-bit values with `w = d·q`. GGUF's Q8_0 maps onto it directly, and
//!   Q5_0 (`w = d·(q − 16)`, five-bit `q`) exactly with `q − 16` as the byte. Q6_K
//!   (`w = d·sc·(q − 32)` with one scale per 16 values) maps exactly onto *two* eight-bit
//!   matrices whose sum it is ([`from_q6_k_halves`]): one holds every first half of a 32-value
//!   block, the other every second half. Any other format is dequantised and re-quantised to
//!   eight bits (lossy; the loader names each such tensor).
//!
//! Activations are quantised per token in [`super::Activations`].

use half::f16;

/// Values per block (every layout here).
pub const QK: usize = 32;

/// 32 four-bit weights: `w[i] = d·q[i] + m`; byte `j` of `qs` holds value `j` in its low nibble
/// and value `j + 16` in its high nibble (GGUF's order).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[repr(C)]
pub struct BlockQ4 {
    /// Scale.
    pub d: f32,
    /// Offset.
    pub m: f32,
    /// Packed nibbles.
    pub qs: [u8; 16],
}

/// 32 eight-bit weights: `w[i] = d·q[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[repr(C)]
pub struct BlockQ8 {
    /// Scale.
    pub d: f32,
    /// Values.
    pub qs: [i8; 32],
}

impl BlockQ4 {
    /// The 32 weights as `f32`.
    pub fn dequantize(&self) -> [f32; QK] {
        let mut out = [0f32; QK];
        for j in 0..16 {
            out[j] = self.d * (self.qs[j] & 0x0F) as f32 + self.m;
            out[j + 16] = self.d * (self.qs[j] >> 4) as f32 + self.m;
        }
        out
    }
}

impl BlockQ8 {
    /// The 32 weights as `f32`.
    pub fn dequantize(&self) -> [f32; QK] {
        let mut out = [0f32; QK];
        for (o, &q) in out.iter_mut().zip(self.qs.iter()) {
            *o = self.d * q as f32;
        }
        out
    }

    /// Quantise 32 values (scale = max |x| / 127, round to nearest).
    pub fn quantize(x: &[f32]) -> Self {
        let (d, qs, _) = quantize_32(x);
        Self { d, qs }
    }
}

/// Quantise 32 values to bytes: `(d, q, Σq)` with `d = max|x| / 127`, round to nearest.
#[inline(always)]
pub(crate) fn quantize_32(x: &[f32]) -> (f32, [i8; 32], i32) {
    debug_assert_eq!(x.len(), QK);
    let amax = x.iter().fold(0f32, |a, &v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; 32];
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(x) {
        // Round half away from zero without a libm call (`as` truncates toward zero).
        let y = (v * id).clamp(-127.0, 127.0);
        let r = (y + 0.5f32.copysign(y)) as i8;
        *q = r;
        sum += r as i32;
    }
    (d, qs, sum)
}

/// [`quantize_32`] on AVX2: the same operations on eight values at a time, so the same bits
/// (for finite inputs; the maximum is order-free and the rounding is the same truncation).
///
/// # Safety
/// The CPU has AVX2; `x` holds 32 values.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn quantize_32_avx2(x: &[f32]) -> (f32, [i8; 32], i32) {
    use std::arch::x86_64::*;
    debug_assert_eq!(x.len(), QK);
    let sign = _mm256_set1_ps(-0.0);
    let v: [__m256; 4] = std::array::from_fn(|i| _mm256_loadu_ps(x.as_ptr().add(8 * i)));
    let abs = |v: __m256| _mm256_andnot_ps(sign, v);
    let m = _mm256_max_ps(
        _mm256_max_ps(abs(v[0]), abs(v[1])),
        _mm256_max_ps(abs(v[2]), abs(v[3])),
    );
    let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    let d = amax / 127.0;
    let id = _mm256_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
    let (lo, hi) = (_mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
    let q: [__m256i; 4] = std::array::from_fn(|i| {
        let y = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[i], id), lo), hi);
        // y + copysign(0.5, y), truncated toward zero.
        let half = _mm256_or_ps(_mm256_and_ps(y, sign), _mm256_set1_ps(0.5));
        _mm256_cvttps_epi32(_mm256_add_ps(y, half))
    });
    let s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let sum = _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01)));
    // Packing works per 128-bit half: [q0 lo, q1 lo, q0 hi, q1 hi] as i16, then bytes in the
    // order (q0 lo, q1 lo, q2 lo, q3 lo, q0 hi, ...); one permutation of 4-byte units fixes it.
    let w01 = _mm256_packs_epi32(q[0], q[1]);
    let w23 = _mm256_packs_epi32(q[2], q[3]);
    let b = _mm256_packs_epi16(w01, w23);
    let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    let mut qs = [0i8; 32];
    _mm256_storeu_si256(qs.as_mut_ptr() as *mut __m256i, b);
    (d, qs, sum)
}

fn half_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

/// GGUF Q4_0 blocks (18 bytes: f16 d, 16 bytes of nibbles) as [`BlockQ4`].
pub fn from_q4_0(bytes: &[u8]) -> Vec<BlockQ4> {
    bytes
        .chunks_exact(18)
        .map(|b| {
            let d = half_at(b, 0);
            let mut qs = [0u8; 16];
            qs.copy_from_slice(&b[2..18]);
            BlockQ4 { d, m: -8.0 * d, qs }
        })
        .collect()
}

/// GGUF Q4_1 blocks (20 bytes: f16 d, f16 m, 16 bytes of nibbles) as [`BlockQ4`].
pub fn from_q4_1(bytes: &[u8]) -> Vec<BlockQ4> {
    bytes
        .chunks_exact(20)
        .map(|b| {
            let mut qs = [0u8; 16];
            qs.copy_from_slice(&b[4..20]);
            BlockQ4 {
                d: half_at(b, 0),
                m: half_at(b, 2),
                qs,
            }
        })
        .collect()
}

/// GGUF Q8_0 blocks (34 bytes: f16 d, 32 signed bytes) as [`BlockQ8`].
pub fn from_q8_0(bytes: &[u8]) -> Vec<BlockQ8> {
    bytes
        .chunks_exact(34)
        .map(|b| {
            let mut qs = [0i8; 32];
            for (q, &v) in qs.iter_mut().zip(&b[2..34]) {
                *q = v as i8;
            }
            BlockQ8 {
                d: half_at(b, 0),
                qs,
            }
        })
        .collect()
}

/// GGUF Q5_0 blocks (22 bytes: f16 d, 4 bytes of fifth bits, 16 bytes of nibbles;
/// `w = d·(q − 16)`) as [`BlockQ8`] with `q − 16` in each byte (exact).
pub fn from_q5_0(bytes: &[u8]) -> Vec<BlockQ8> {
    bytes
        .chunks_exact(22)
        .map(|b| {
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            let mut qs = [0i8; 32];
            for j in 0..16 {
                let lo = (b[6 + j] & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
                let hi = (b[6 + j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
                qs[j] = lo as i8 - 16;
                qs[j + 16] = hi as i8 - 16;
            }
            BlockQ8 {
                d: half_at(b, 0),
                qs,
            }
        })
        .collect()
}

/// GGUF Q6_K super-blocks (210 bytes: 128 bytes of low nibbles, 64 of high bit pairs, 16 signed
/// scales, f16 d, for 256 values `w = d·sc[k]·(q − 32)` with scale `k` for values `16k ..
/// 16k + 16`) as two lists of [`BlockQ8`] whose sum is the matrix, exactly: in the first, each
/// 32-value block holds its first 16 values (scale `d·sc[2b]`) and zeros; in the second, zeros
/// and its last 16 values (scale `d·sc[2b + 1]`). A half-float times an 8-bit scale is exact in
/// `f32`.
pub fn from_q6_k_halves(bytes: &[u8]) -> (Vec<BlockQ8>, Vec<BlockQ8>) {
    let n = bytes.len() / 210 * 8;
    let (mut first, mut second) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for sb in bytes.chunks_exact(210) {
        let (ql, qh, sc) = (&sb[..128], &sb[128..192], &sb[192..208]);
        let d = half_at(sb, 208);
        let mut q = [0i8; 256];
        for half in 0..2 {
            let (ql, qh) = (&ql[64 * half..], &qh[32 * half..]);
            let y = &mut q[128 * half..];
            for l in 0..32 {
                let v = |low: u8, shift: u32| (low | (((qh[l] >> shift) & 3) << 4)) as i8 - 32;
                y[l] = v(ql[l] & 0x0F, 0);
                y[l + 32] = v(ql[l + 32] & 0x0F, 2);
                y[l + 64] = v(ql[l] >> 4, 4);
                y[l + 96] = v(ql[l + 32] >> 4, 6);
            }
        }
        for b in 0..8 {
            let mut lo = [0i8; 32];
            let mut hi = [0i8; 32];
            lo[..16].copy_from_slice(&q[32 * b..32 * b + 16]);
            hi[16..].copy_from_slice(&q[32 * b + 16..32 * b + 32]);
            first.push(BlockQ8 {
                d: d * sc[2 * b] as i8 as f32,
                qs: lo,
            });
            second.push(BlockQ8 {
                d: d * sc[2 * b + 1] as i8 as f32,
                qs: hi,
            });
        }
    }
    (first, second)
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K super-block (ggml's `get_scale_min_k4`).
fn q4k_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// GGUF Q4_K super-blocks (144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes
/// of nibbles for 256 values) as 8 [`BlockQ4`]s each.
pub fn from_q4_k(bytes: &[u8]) -> Vec<BlockQ4> {
    let mut out = Vec::with_capacity(bytes.len() / 144 * 8);
    for sb in bytes.chunks_exact(144) {
        let d = half_at(sb, 0);
        let dmin = half_at(sb, 2);
        let scales = &sb[4..16];
        let qs = &sb[16..144];
        // 4 chunks of 64 values: 32 bytes, low nibbles = sub-block 2c, high = sub-block 2c+1.
        for c in 0..4 {
            let bytes32 = &qs[c * 32..c * 32 + 32];
            for half in 0..2 {
                let j = 2 * c + half;
                let (sc, mn) = q4k_scale_min(j, scales);
                let nib = |i: usize| -> u8 {
                    if half == 0 {
                        bytes32[i] & 0x0F
                    } else {
                        bytes32[i] >> 4
                    }
                };
                let mut packed = [0u8; 16];
                for (i, p) in packed.iter_mut().enumerate() {
                    *p = nib(i) | (nib(i + 16) << 4);
                }
                out.push(BlockQ4 {
                    d: d * sc as f32,
                    m: -(dmin * mn as f32),
                    qs: packed,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::k_quants::{self, GgmlType};
    use proptest::prelude::*;

    /// Our conversion and ggml's own dequantisation (candle's port) give the same values.
    fn same_values<B: GgmlType>(bytes: &[u8], ours: Vec<f32>) {
        let n = bytes.len() / std::mem::size_of::<B>();
        assert_eq!(n * std::mem::size_of::<B>(), bytes.len());
        let mut blocks: Vec<B> = Vec::with_capacity(n);
        // SAFETY: ggml's blocks are plain bytes and half floats (every bit pattern is a value);
        // the vector has room for `n` of them and is aligned for them.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                blocks.as_mut_ptr() as *mut u8,
                bytes.len(),
            );
            blocks.set_len(n);
        }
        let mut want = vec![0f32; ours.len()];
        B::to_float(&blocks, &mut want);
        for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= b.abs() * 1e-6, "value {i}: {a} vs {b}");
        }
    }

    fn pseudo_random_bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect()
    }

    /// Overwrite the f16 scale at `at` of every `size`-byte block with a small normal value.
    fn tame_scales(bytes: &mut [u8], size: usize, at: usize) {
        for (i, b) in bytes.chunks_exact_mut(size).enumerate() {
            let d = f16::from_f32(0.01 + i as f32 * 1e-4)
                .to_bits()
                .to_le_bytes();
            b[at..at + 2].copy_from_slice(&d);
        }
    }

    #[test]
    fn q5_0_converts_exactly() {
        let mut bytes = pseudo_random_bytes(22 * 8, 5);
        tame_scales(&mut bytes, 22, 0);
        let ours: Vec<f32> = from_q5_0(&bytes)
            .iter()
            .flat_map(|b| b.dequantize())
            .collect();
        same_values::<k_quants::BlockQ5_0>(&bytes, ours);
    }

    #[test]
    fn q6_k_halves_sum_to_the_matrix() {
        let mut bytes = pseudo_random_bytes(210 * 3, 6);
        tame_scales(&mut bytes, 210, 208);
        let (a, b) = from_q6_k_halves(&bytes);
        let ours: Vec<f32> = a
            .iter()
            .zip(&b)
            .flat_map(|(a, b)| {
                let (x, y) = (a.dequantize(), b.dequantize());
                (0..QK).map(move |i| x[i] + y[i])
            })
            .collect();
        same_values::<k_quants::BlockQ6K>(&bytes, ours);
    }

    proptest! {
        #[test]
        fn quantize_32_is_the_same_on_avx2(x in proptest::collection::vec(-8.0f32..8.0, 32), zero in 0usize..40) {
            let mut x = x;
            if zero == 39 { x.fill(0.0) } else if zero < 32 { x[zero] = 0.0 }
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 checked; 32 values.
                let (d, q, s) = unsafe { quantize_32_avx2(&x) };
                let (d0, q0, s0) = quantize_32(&x);
                prop_assert_eq!((d.to_bits(), q, s), (d0.to_bits(), q0, s0));
            }
        }

        #[test]
        fn q8_quantize_is_close(x in proptest::collection::vec(-8.0f32..8.0, 32)) {
            let b = BlockQ8::quantize(&x);
            for (w, v) in b.dequantize().iter().zip(&x) {
                prop_assert!((w - v).abs() <= b.d * 0.5 + 1e-6);
            }
        }
    }
}
