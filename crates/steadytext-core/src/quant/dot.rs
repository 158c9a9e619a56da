//! Dot products of one quantised weight row with up to four activation rows.
//!
//! Every kernel computes, per 32-value block, eight exact integer partial sums (lane `l` covers
//! values `4l .. 4l+3` of the block's 32 bytes), converts them to `f32` and adds them to eight
//! per-lane accumulators with one fused multiply-add by `d_w·d_a`; offset terms (`m·s`) go to a
//! separate scalar sum. At the end the lanes are reduced in a fixed tree order. The portable
//! kernel performs exactly these operations, so AVX2, AVX-512 VNNI and portable results are
//! bit-identical, and because each output goes through the same operations whichever tile it is
//! computed in (1, 2, 3 or 4 activation rows), results never depend on batch size or threads.

use super::blocks::{ActBlock, BlockQ4, BlockQ8};

/// Instruction sets the kernels can use, detected once at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust (any CPU).
    Portable,
    /// AVX2 + FMA.
    Avx2,
    /// AVX2 + FMA with AVX-512 VNNI (`vpdpbusd` on 256-bit registers).
    Avx512Vnni,
}

impl Isa {
    /// The best instruction set this CPU supports (`STEADYTEXT_ISA=portable|avx2` lowers it).
    pub fn detect() -> Isa {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            let best = Self::best_supported();
            match std::env::var("STEADYTEXT_ISA").as_deref() {
                Ok("portable") => Isa::Portable,
                Ok("avx2") if best != Isa::Portable => Isa::Avx2,
                _ => best,
            }
        })
    }

    /// Every instruction set this CPU supports, best last.
    pub fn supported() -> Vec<Isa> {
        let mut v = vec![Isa::Portable];
        let best = Self::best_supported();
        if best != Isa::Portable {
            v.push(Isa::Avx2);
        }
        if best == Isa::Avx512Vnni {
            v.push(Isa::Avx512Vnni);
        }
        v
    }

    fn best_supported() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                if is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl") {
                    return Isa::Avx512Vnni;
                }
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// A short name (`portable`, `avx2`, `avx512vnni`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }
}

/// The fixed reduction of eight lanes: (l_i + l_{i+4}), then pairs (0,2), (1,3), then the two.
#[inline(always)]
fn reduce_lanes(l: [f32; 8]) -> f32 {
    let s = [l[0] + l[4], l[1] + l[5], l[2] + l[6], l[3] + l[7]];
    let t = [s[0] + s[2], s[1] + s[3]];
    t[0] + t[1]
}

/// `w · a[t]` for each `t`, four-bit weights. Every slice of `a` has `w.len()` blocks.
#[inline]
pub fn dot_q4<const T: usize>(isa: Isa, w: &[BlockQ4], a: [&[ActBlock]; T]) -> [f32; T] {
    for x in &a {
        assert_eq!(x.len(), w.len(), "activation row length");
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::detect` only returns these when the CPU has the features; lengths checked.
        Isa::Avx2 => unsafe { x86::dot_q4_avx2(w, a) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => unsafe { x86::dot_q4_vnni(w, a) },
        _ => dot_q4_portable(w, a),
    }
}

/// `w · a[t]` for each `t`, eight-bit weights. Every slice of `a` has `w.len()` blocks.
#[inline]
pub fn dot_q8<const T: usize>(isa: Isa, w: &[BlockQ8], a: [&[ActBlock]; T]) -> [f32; T] {
    for x in &a {
        assert_eq!(x.len(), w.len(), "activation row length");
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_q4`.
        Isa::Avx2 => unsafe { x86::dot_q8_avx2(w, a) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => unsafe { x86::dot_q8_vnni(w, a) },
        _ => dot_q8_portable(w, a),
    }
}

/// The portable four-bit kernel (the same operations as the SIMD ones, lane by lane).
#[allow(clippy::needless_range_loop)] // indices mirror the SIMD lanes
pub fn dot_q4_portable<const T: usize>(w: &[BlockQ4], a: [&[ActBlock]; T]) -> [f32; T] {
    let mut acc = [[0f32; 8]; T];
    let mut accm = [0f32; T];
    for (b, wb) in w.iter().enumerate() {
        // Byte k of the expanded block: k < 16 -> low nibble of qs[k], else high nibble of qs[k-16].
        let mut wv = [0i32; 32];
        for j in 0..16 {
            wv[j] = (wb.qs[j] & 0x0F) as i32;
            wv[j + 16] = (wb.qs[j] >> 4) as i32;
        }
        for t in 0..T {
            let ab = &a[t][b];
            let scale = wb.d * ab.d;
            for (l, lane) in acc[t].iter_mut().enumerate() {
                let mut s = 0i32;
                for k in 4 * l..4 * l + 4 {
                    s += wv[k] * ab.qs[k] as i32;
                }
                *lane = scale.mul_add(s as f32, *lane);
            }
            accm[t] += wb.m * ab.s;
        }
    }
    std::array::from_fn(|t| reduce_lanes(acc[t]) + accm[t])
}

/// The portable eight-bit kernel.
#[allow(clippy::needless_range_loop)] // indices mirror the SIMD lanes
pub fn dot_q8_portable<const T: usize>(w: &[BlockQ8], a: [&[ActBlock]; T]) -> [f32; T] {
    let mut acc = [[0f32; 8]; T];
    for (b, wb) in w.iter().enumerate() {
        for t in 0..T {
            let ab = &a[t][b];
            let scale = wb.d * ab.d;
            for (l, lane) in acc[t].iter_mut().enumerate() {
                let mut s = 0i32;
                for k in 4 * l..4 * l + 4 {
                    s += wb.qs[k] as i32 * ab.qs[k] as i32;
                }
                *lane = scale.mul_add(s as f32, *lane);
            }
        }
    }
    std::array::from_fn(|t| reduce_lanes(acc[t]))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{reduce_lanes, ActBlock, BlockQ4, BlockQ8};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn lanes(v: __m256) -> [f32; 8] {
        let mut out = [0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), v);
        out
    }

    /// Expand 16 bytes of nibbles into 32 bytes: low nibbles, then high nibbles.
    #[inline(always)]
    unsafe fn expand_nibbles(qs: &[u8; 16]) -> __m256i {
        let m4 = _mm_set1_epi8(0x0F);
        let v = _mm_loadu_si128(qs.as_ptr() as *const __m128i);
        let lo = _mm_and_si128(v, m4);
        let hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
        _mm256_set_m128i(hi, lo)
    }

    #[inline(always)]
    unsafe fn load_act(a: &ActBlock) -> __m256i {
        _mm256_loadu_si256(a.qs.as_ptr() as *const __m256i)
    }

    macro_rules! q4_kernel {
        ($name:ident, $features:literal, $lane_sums:expr) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const T: usize>(
                w: &[BlockQ4],
                a: [&[ActBlock]; T],
            ) -> [f32; T] {
                let mut acc = [_mm256_setzero_ps(); T];
                let mut accm = [0f32; T];
                for (b, wb) in w.iter().enumerate() {
                    let wv = expand_nibbles(&wb.qs);
                    for t in 0..T {
                        let ab = a[t].get_unchecked(b);
                        let p: __m256i = $lane_sums(wv, load_act(ab));
                        acc[t] = _mm256_fmadd_ps(
                            _mm256_set1_ps(wb.d * ab.d),
                            _mm256_cvtepi32_ps(p),
                            acc[t],
                        );
                        accm[t] += wb.m * ab.s;
                    }
                }
                std::array::from_fn(|t| reduce_lanes(lanes(acc[t])) + accm[t])
            }
        };
    }

    macro_rules! q8_kernel {
        ($name:ident, $features:literal, $lane_sums:expr) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const T: usize>(
                w: &[BlockQ8],
                a: [&[ActBlock]; T],
            ) -> [f32; T] {
                let mut acc = [_mm256_setzero_ps(); T];
                for (b, wb) in w.iter().enumerate() {
                    let wq = _mm256_loadu_si256(wb.qs.as_ptr() as *const __m256i);
                    let wabs = _mm256_sign_epi8(wq, wq);
                    for t in 0..T {
                        let ab = a[t].get_unchecked(b);
                        let signed_a = _mm256_sign_epi8(load_act(ab), wq);
                        let p: __m256i = $lane_sums(wabs, signed_a);
                        acc[t] = _mm256_fmadd_ps(
                            _mm256_set1_ps(wb.d * ab.d),
                            _mm256_cvtepi32_ps(p),
                            acc[t],
                        );
                    }
                }
                std::array::from_fn(|t| reduce_lanes(lanes(acc[t])))
            }
        };
    }

    /// Unsigned × signed bytes, four products per i32 lane (AVX2: two steps, exact here since
    /// no i16 pair sum can saturate: |15·127·2| and |128·127·2| < 32768).
    #[inline(always)]
    unsafe fn lane_sums_avx2(u: __m256i, s: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }

    #[inline(always)]
    unsafe fn lane_sums_vnni(u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
    }

    q4_kernel!(dot_q4_avx2, "avx2,fma", |u, s| lane_sums_avx2(u, s));
    q4_kernel!(dot_q4_vnni, "avx2,fma,avx512vnni,avx512vl", |u, s| {
        lane_sums_vnni(u, s)
    });
    q8_kernel!(dot_q8_avx2, "avx2,fma", |u, s| lane_sums_avx2(u, s));
    q8_kernel!(dot_q8_vnni, "avx2,fma,avx512vnni,avx512vl", |u, s| {
        lane_sums_vnni(u, s)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::blocks::quantize_activations;
    use proptest::prelude::*;

    fn q4_blocks(seed: &[u8], scales: &[(f32, f32)]) -> Vec<BlockQ4> {
        scales
            .iter()
            .enumerate()
            .map(|(i, &(d, m))| {
                let mut qs = [0u8; 16];
                for (j, q) in qs.iter_mut().enumerate() {
                    *q = seed[(i * 16 + j) % seed.len()];
                }
                BlockQ4 { d, m, qs }
            })
            .collect()
    }

    fn acts(x: &[f32]) -> Vec<ActBlock> {
        let mut a = vec![ActBlock::default(); x.len() / 32];
        quantize_activations(x, &mut a);
        a
    }

    /// The straightforward reference: dequantise both sides and sum in f64.
    fn reference_q4(w: &[BlockQ4], a: &[ActBlock]) -> f64 {
        w.iter()
            .zip(a)
            .map(|(wb, ab)| {
                let wd = wb.dequantize();
                (0..32)
                    .map(|k| wd[k] as f64 * (ab.d as f64 * ab.qs[k] as f64))
                    .sum::<f64>()
            })
            .sum()
    }

    fn reference_q8(w: &[BlockQ8], a: &[ActBlock]) -> f64 {
        w.iter()
            .zip(a)
            .map(|(wb, ab)| {
                (0..32)
                    .map(|k| wb.d as f64 * wb.qs[k] as f64 * (ab.d as f64 * ab.qs[k] as f64))
                    .sum::<f64>()
            })
            .sum()
    }

    fn close(got: f32, want: f64, scale: f64) -> bool {
        (got as f64 - want).abs() <= 1e-4 * scale + 1e-5
    }

    proptest! {
        #[test]
        fn q4_kernels_match_the_reference_and_each_other(
            nib in proptest::collection::vec(any::<u8>(), 16..200),
            scales in proptest::collection::vec((0.0f32..0.2, -1.0f32..1.0), 1..24),
            xs in proptest::collection::vec(-4.0f32..4.0, 32 * 24 * 4),
        ) {
            let w = q4_blocks(&nib, &scales);
            let n = w.len() * 32;
            let rows: Vec<Vec<ActBlock>> = (0..4).map(|t| acts(&xs[t * n..(t + 1) * n])).collect();
            let a4 = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
            let scale: f64 = w.iter().map(|b| (b.d.abs() * 15.0 + b.m.abs()) as f64 * 32.0 * 4.0).sum();
            for isa in Isa::supported() {
                let got4 = dot_q4::<4>(isa, &w, a4);
                let portable = dot_q4_portable::<4>(&w, a4);
                for t in 0..4 {
                    prop_assert!(close(got4[t], reference_q4(&w, &rows[t]), scale));
                    // bit-identical across instruction sets and tile sizes
                    prop_assert_eq!(got4[t].to_bits(), portable[t].to_bits());
                    prop_assert_eq!(got4[t].to_bits(), dot_q4::<1>(isa, &w, [&rows[t][..]])[0].to_bits());
                }
                let got2 = dot_q4::<2>(isa, &w, [&rows[2][..], &rows[3][..]]);
                prop_assert_eq!(got2[1].to_bits(), got4[3].to_bits());
            }
        }

        #[test]
        fn q8_kernels_match_the_reference_and_each_other(
            qs in proptest::collection::vec(-127i8..=127, 32..400),
            ds in proptest::collection::vec(0.0f32..0.05, 1..24),
            xs in proptest::collection::vec(-4.0f32..4.0, 32 * 24 * 3),
        ) {
            let w: Vec<BlockQ8> = ds.iter().enumerate().map(|(i, &d)| {
                let mut q = [0i8; 32];
                for (j, v) in q.iter_mut().enumerate() { *v = qs[(i * 32 + j) % qs.len()]; }
                BlockQ8 { d, qs: q }
            }).collect();
            let n = w.len() * 32;
            let rows: Vec<Vec<ActBlock>> = (0..3).map(|t| acts(&xs[t * n..(t + 1) * n])).collect();
            let a3 = [&rows[0][..], &rows[1][..], &rows[2][..]];
            let scale: f64 = w.iter().map(|b| b.d as f64 * 127.0 * 32.0 * 4.0).sum();
            for isa in Isa::supported() {
                let got = dot_q8::<3>(isa, &w, a3);
                let portable = dot_q8_portable::<3>(&w, a3);
                for t in 0..3 {
                    prop_assert!(close(got[t], reference_q8(&w, &rows[t]), scale));
                    prop_assert_eq!(got[t].to_bits(), portable[t].to_bits());
                    prop_assert_eq!(got[t].to_bits(), dot_q8::<1>(isa, &w, [&rows[t][..]])[0].to_bits());
                }
            }
        }
    }
}
