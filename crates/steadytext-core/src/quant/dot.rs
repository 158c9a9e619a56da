//! Dot products of one quantised weight row with up to four activation rows.
//!
//! Blocks are taken in groups of eight ([`GROUP`]). For a group, the eight scale products
//! `d_w·d_a` are formed with one vector multiply, and the offset terms `m_w·s_a` go into eight
//! per-lane accumulators with one fused multiply-add. Then, per block, eight exact integer partial
//! sums (lane `l` covers values `4l .. 4l+3` of the block's 32 bytes) are converted to `f32` and
//! added to eight per-lane accumulators with one fused multiply-add by the block's scale product.
//! At the end both sets of lanes are reduced in a fixed tree order. The portable kernel performs
//! exactly these operations, so AVX2, AVX-512 VNNI and portable results are bit-identical; and
//! because each output goes through the same operations whichever tile it is computed in (1, 2, 3
//! or 4 activation rows), results never depend on batch size or thread count.

use super::activations::{ActRow, GROUP};

/// One row of four-bit weights (`w = d·q + m`): 16 bytes of nibbles per block (low nibble =
/// value `j`, high nibble = value `j + 16`), and `d`, `m` per block padded with zeros to a
/// multiple of [`GROUP`].
#[derive(Debug, Clone, Copy)]
pub struct Q4Row<'a> {
    /// Packed nibbles per block.
    pub qs: &'a [[u8; 16]],
    /// Scales (padded).
    pub d: &'a [f32],
    /// Offsets (padded).
    pub m: &'a [f32],
}

/// One row of eight-bit weights (`w = d·q`), scales padded as in [`Q4Row`].
#[derive(Debug, Clone, Copy)]
pub struct Q8Row<'a> {
    /// Values per block.
    pub qs: &'a [[i8; 32]],
    /// Scales (padded).
    pub d: &'a [f32],
}

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

fn check_shapes<const T: usize>(blocks: usize, padded: usize, a: &[ActRow<'_>; T]) {
    assert!(padded.is_multiple_of(GROUP) && padded >= blocks && padded < blocks + GROUP);
    for x in a {
        assert!(x.qs.len() == blocks && x.d.len() == padded && x.s.len() == padded);
    }
}

/// `w · a[t]` for each `t`, four-bit weights.
#[inline]
pub fn dot_q4<const T: usize>(isa: Isa, w: Q4Row<'_>, a: [ActRow<'_>; T]) -> [f32; T] {
    check_shapes(w.qs.len(), w.d.len(), &a);
    assert_eq!(w.m.len(), w.d.len());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::detect`/`supported` only return these when the CPU has the features;
        // shapes checked above.
        Isa::Avx2 => unsafe { x86::dot_q4_avx2(w, a) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => unsafe { x86::dot_q4_vnni(w, a) },
        _ => dot_q4_portable(w, a),
    }
}

/// `w · a[t]` for each `t`, eight-bit weights.
#[inline]
pub fn dot_q8<const T: usize>(isa: Isa, w: Q8Row<'_>, a: [ActRow<'_>; T]) -> [f32; T] {
    check_shapes(w.qs.len(), w.d.len(), &a);
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
pub fn dot_q4_portable<const T: usize>(w: Q4Row<'_>, a: [ActRow<'_>; T]) -> [f32; T] {
    let nb = w.qs.len();
    let mut acc = [[0f32; 8]; T];
    let mut accm = [[0f32; 8]; T];
    for g in (0..w.d.len()).step_by(GROUP) {
        let mut sc = [[0f32; 8]; T];
        for t in 0..T {
            for l in 0..8 {
                sc[t][l] = w.d[g + l] * a[t].d[g + l];
                accm[t][l] = w.m[g + l].mul_add(a[t].s[g + l], accm[t][l]);
            }
        }
        for j in 0..GROUP.min(nb - g) {
            let b = g + j;
            let mut wv = [0i32; 32];
            for k in 0..16 {
                wv[k] = (w.qs[b][k] & 0x0F) as i32;
                wv[k + 16] = (w.qs[b][k] >> 4) as i32;
            }
            for t in 0..T {
                for l in 0..8 {
                    let mut s = 0i32;
                    for k in 4 * l..4 * l + 4 {
                        s += wv[k] * a[t].qs[b][k] as i32;
                    }
                    acc[t][l] = sc[t][j].mul_add(s as f32, acc[t][l]);
                }
            }
        }
    }
    std::array::from_fn(|t| reduce_lanes(acc[t]) + reduce_lanes(accm[t]))
}

/// The portable eight-bit kernel.
#[allow(clippy::needless_range_loop)] // indices mirror the SIMD lanes
pub fn dot_q8_portable<const T: usize>(w: Q8Row<'_>, a: [ActRow<'_>; T]) -> [f32; T] {
    let nb = w.qs.len();
    let mut acc = [[0f32; 8]; T];
    for g in (0..w.d.len()).step_by(GROUP) {
        let mut sc = [[0f32; 8]; T];
        for t in 0..T {
            for l in 0..8 {
                sc[t][l] = w.d[g + l] * a[t].d[g + l];
            }
        }
        for j in 0..GROUP.min(nb - g) {
            let b = g + j;
            for t in 0..T {
                for l in 0..8 {
                    let mut s = 0i32;
                    for k in 4 * l..4 * l + 4 {
                        s += w.qs[b][k] as i32 * a[t].qs[b][k] as i32;
                    }
                    acc[t][l] = sc[t][j].mul_add(s as f32, acc[t][l]);
                }
            }
        }
    }
    std::array::from_fn(|t| reduce_lanes(acc[t]))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{reduce_lanes, ActRow, Q4Row, Q8Row, GROUP};
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
    unsafe fn load_bytes(q: &[i8; 32]) -> __m256i {
        _mm256_loadu_si256(q.as_ptr() as *const __m256i)
    }

    /// Scale products of one group for every activation row: `sc[t][l] = d_w[g+l]·d_a[t][g+l]`.
    #[inline(always)]
    unsafe fn group_scales<const T: usize>(
        d: &[f32],
        a: &[ActRow<'_>; T],
        g: usize,
    ) -> [[f32; 8]; T] {
        let dw = _mm256_loadu_ps(d.as_ptr().add(g));
        let mut sc = [[0f32; 8]; T];
        for t in 0..T {
            let da = _mm256_loadu_ps(a[t].d.as_ptr().add(g));
            _mm256_storeu_ps(sc[t].as_mut_ptr(), _mm256_mul_ps(dw, da));
        }
        sc
    }

    macro_rules! q4_kernel {
        ($name:ident, $features:literal, $sums:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const T: usize>(
                w: Q4Row<'_>,
                a: [ActRow<'_>; T],
            ) -> [f32; T] {
                let nb = w.qs.len();
                let mut acc = [_mm256_setzero_ps(); T];
                let mut accm = [_mm256_setzero_ps(); T];
                let mut g = 0;
                while g < w.d.len() {
                    let sc = group_scales(w.d, &a, g);
                    let mw = _mm256_loadu_ps(w.m.as_ptr().add(g));
                    for t in 0..T {
                        let sa = _mm256_loadu_ps(a[t].s.as_ptr().add(g));
                        accm[t] = _mm256_fmadd_ps(mw, sa, accm[t]);
                    }
                    for b in g..(g + GROUP).min(nb) {
                        let wv = expand_nibbles(w.qs.get_unchecked(b));
                        for t in 0..T {
                            let p = $sums(wv, load_bytes(a[t].qs.get_unchecked(b)));
                            let s = _mm256_broadcast_ss(sc[t].get_unchecked(b - g));
                            acc[t] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[t]);
                        }
                    }
                    g += GROUP;
                }
                std::array::from_fn(|t| reduce_lanes(lanes(acc[t])) + reduce_lanes(lanes(accm[t])))
            }
        };
    }

    macro_rules! q8_kernel {
        ($name:ident, $features:literal, $sums:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const T: usize>(
                w: Q8Row<'_>,
                a: [ActRow<'_>; T],
            ) -> [f32; T] {
                let nb = w.qs.len();
                let mut acc = [_mm256_setzero_ps(); T];
                let mut g = 0;
                while g < w.d.len() {
                    let sc = group_scales(w.d, &a, g);
                    for b in g..(g + GROUP).min(nb) {
                        // |w| as the unsigned operand, w's sign moved onto the activations.
                        let wq = load_bytes(w.qs.get_unchecked(b));
                        let wabs = _mm256_sign_epi8(wq, wq);
                        for t in 0..T {
                            let av = _mm256_sign_epi8(load_bytes(a[t].qs.get_unchecked(b)), wq);
                            let p = $sums(wabs, av);
                            let s = _mm256_broadcast_ss(sc[t].get_unchecked(b - g));
                            acc[t] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[t]);
                        }
                    }
                    g += GROUP;
                }
                std::array::from_fn(|t| reduce_lanes(lanes(acc[t])))
            }
        };
    }

    /// Unsigned × signed bytes, four products per i32 lane (AVX2: two steps, exact here since no
    /// i16 pair sum can saturate: |15·127·2| and |128·127·2| < 32768).
    #[inline(always)]
    unsafe fn sums_avx2(u: __m256i, s: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }

    #[inline(always)]
    unsafe fn sums_vnni(u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
    }

    q4_kernel!(dot_q4_avx2, "avx2,fma", sums_avx2);
    q4_kernel!(dot_q4_vnni, "avx2,fma,avx512vnni,avx512vl", sums_vnni);
    q8_kernel!(dot_q8_avx2, "avx2,fma", sums_avx2);
    q8_kernel!(dot_q8_vnni, "avx2,fma,avx512vnni,avx512vl", sums_vnni);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::activations::Activations;
    use crate::quant::blocks::{BlockQ4, BlockQ8};
    use proptest::prelude::*;

    /// Blocks as a row: scales padded to the group size.
    struct Q4Owned {
        qs: Vec<[u8; 16]>,
        d: Vec<f32>,
        m: Vec<f32>,
    }

    fn q4_row(blocks: &[BlockQ4]) -> Q4Owned {
        let padded = blocks.len().next_multiple_of(GROUP);
        let mut d: Vec<f32> = blocks.iter().map(|b| b.d).collect();
        let mut m: Vec<f32> = blocks.iter().map(|b| b.m).collect();
        d.resize(padded, 0.0);
        m.resize(padded, 0.0);
        Q4Owned {
            qs: blocks.iter().map(|b| b.qs).collect(),
            d,
            m,
        }
    }

    /// The straightforward reference: dequantise both sides and sum in f64.
    fn reference(w: &[[f32; 32]], a: ActRow<'_>) -> f64 {
        w.iter()
            .enumerate()
            .map(|(b, wd)| {
                (0..32)
                    .map(|k| wd[k] as f64 * (a.d[b] as f64 * a.qs[b][k] as f64))
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
            let blocks: Vec<BlockQ4> = scales.iter().enumerate().map(|(i, &(d, m))| {
                let mut qs = [0u8; 16];
                for (j, q) in qs.iter_mut().enumerate() { *q = nib[(i * 16 + j) % nib.len()]; }
                BlockQ4 { d, m, qs }
            }).collect();
            let owned = q4_row(&blocks);
            let w = Q4Row { qs: &owned.qs, d: &owned.d, m: &owned.m };
            let n = blocks.len() * 32;
            let mut acts = Activations::new();
            acts.quantize(&xs[..4 * n], n);
            let rows = [acts.row(0), acts.row(1), acts.row(2), acts.row(3)];
            let deq: Vec<[f32; 32]> = blocks.iter().map(BlockQ4::dequantize).collect();
            let scale: f64 = blocks.iter().map(|b| (b.d.abs() * 15.0 + b.m.abs()) as f64 * 32.0 * 4.0).sum();
            let portable = dot_q4_portable::<4>(w, rows);
            for isa in Isa::supported() {
                let got4 = dot_q4::<4>(isa, w, rows);
                for t in 0..4 {
                    prop_assert!(close(got4[t], reference(&deq, rows[t]), scale));
                    // bit-identical across instruction sets and tile sizes
                    prop_assert_eq!(got4[t].to_bits(), portable[t].to_bits());
                    prop_assert_eq!(got4[t].to_bits(), dot_q4::<1>(isa, w, [rows[t]])[0].to_bits());
                }
                let got3 = dot_q4::<3>(isa, w, [rows[1], rows[2], rows[3]]);
                prop_assert_eq!(got3[2].to_bits(), got4[3].to_bits());
            }
        }

        #[test]
        fn q8_kernels_match_the_reference_and_each_other(
            qs in proptest::collection::vec(-127i8..=127, 32..400),
            ds in proptest::collection::vec(0.0f32..0.05, 1..24),
            xs in proptest::collection::vec(-4.0f32..4.0, 32 * 24 * 3),
        ) {
            let blocks: Vec<BlockQ8> = ds.iter().enumerate().map(|(i, &d)| {
                let mut q = [0i8; 32];
                for (j, v) in q.iter_mut().enumerate() { *v = qs[(i * 32 + j) % qs.len()]; }
                BlockQ8 { d, qs: q }
            }).collect();
            let mut d: Vec<f32> = blocks.iter().map(|b| b.d).collect();
            d.resize(blocks.len().next_multiple_of(GROUP), 0.0);
            let wqs: Vec<[i8; 32]> = blocks.iter().map(|b| b.qs).collect();
            let w = Q8Row { qs: &wqs, d: &d };
            let n = blocks.len() * 32;
            let mut acts = Activations::new();
            acts.quantize(&xs[..3 * n], n);
            let rows = [acts.row(0), acts.row(1), acts.row(2)];
            let deq: Vec<[f32; 32]> = blocks.iter().map(BlockQ8::dequantize).collect();
            let scale: f64 = blocks.iter().map(|b| b.d as f64 * 127.0 * 32.0 * 4.0).sum();
            let portable = dot_q8_portable::<3>(w, rows);
            for isa in Isa::supported() {
                let got = dot_q8::<3>(isa, w, rows);
                for t in 0..3 {
                    prop_assert!(close(got[t], reference(&deq, rows[t]), scale));
                    prop_assert_eq!(got[t].to_bits(), portable[t].to_bits());
                    prop_assert_eq!(got[t].to_bits(), dot_q8::<1>(isa, w, [rows[t]])[0].to_bits());
                }
            }
        }
    }
}
