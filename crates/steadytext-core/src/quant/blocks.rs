//! Block layouts of quantised weights and activations, and conversion from GGUF's formats.
//!
//! Weights are repacked at load into two in-memory layouts with `f32` scales, so every kernel
//! reads its scales with one load and no half-float conversion:
//!
//! - [`BlockQ4`]: 32 four-bit values `q` with `w = d·q + m`. GGUF's Q4_1 maps onto it directly,
//!   Q4_0 (`w = d·(q − 8)`) with `m = −8d`, and each 32-value sub-block of Q4_K
//!   (`w = d·sc·q − dmin·mn`) with `d = d·sc`, `m = −dmin·mn`. All three conversions are exact:
//!   the products of a half-float and a 6-bit integer fit in an `f32`.
//! - [`BlockQ8`]: 32 eight-bit values with `w = d·q` (GGUF's Q8_0). Any other format is
//!   dequantised and re-quantised to it (lossy; the load variant names it).
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
    use proptest::prelude::*;

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
