//! One query head's causal attention over its KV head's cache.
//!
//! The arithmetic is fixed (and the same as [`super::math::dot`] and [`super::math::softmax`]):
//! each score is a dot product over eight lanes reduced in a fixed order, times the scale; the
//! softmax is the one in `math`; each output element sums `w_p · v_p` over positions in order,
//! starting from zero. Only the schedule changes with the instruction set: with AVX2, the heads
//! of a group and several positions run side by side (independent sums, so more of them are in
//! flight) and output vectors stay in registers. Multiplications and additions are never fused,
//! so every instruction set gives the same bits.

use crate::quant::Isa;

use super::math::{dot, softmax_in_place};

/// The query heads that share one KV head (grouped-query attention), and that KV head's cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Group<'a> {
    /// The queries: the group's heads one after another, `head_dim` values each.
    pub q: &'a [f32],
    /// Values per head.
    pub head_dim: usize,
    /// The layer's keys, `stride` values per position.
    pub keys: &'a [f32],
    /// The layer's values, laid out as `keys`.
    pub values: &'a [f32],
    /// Values per position in `keys` and `values`.
    pub stride: usize,
    /// Where this KV head starts inside a position.
    pub offset: usize,
    /// Positions attended to (`0 .. upto`).
    pub upto: usize,
    /// Score scale (`1/√head_dim`).
    pub scale: f32,
}

/// For each head `h` of the group: `out_h = Σ_p softmax(scale · q_h·k_p)_p · v_p`, with `out`
/// laid out as `q` and `scores` as work space. Each key and value is read once for the whole
/// group.
pub(crate) fn attend(isa: Isa, g: Group<'_>, scores: &mut Vec<f32>, out: &mut [f32]) {
    let hd = g.head_dim;
    assert!(hd > 0 && g.q.len().is_multiple_of(hd) && out.len() == g.q.len());
    assert!(g.offset + hd <= g.stride);
    assert!(g.keys.len() >= g.upto * g.stride && g.values.len() >= g.upto * g.stride);
    let heads = g.q.len() / hd;
    scores.clear();
    scores.resize(heads * g.upto, 0.0);
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable && hd.is_multiple_of(8) {
        // SAFETY: `Isa` names a SIMD set only when the CPU has AVX2 and FMA; shapes checked
        // above.
        return unsafe { x86::attend(g, scores, out) };
    }
    let _ = isa;
    for (h, (s, o)) in scores
        .chunks_exact_mut(g.upto.max(1))
        .zip(out.chunks_exact_mut(hd))
        .enumerate()
    {
        let q = &g.q[h * hd..(h + 1) * hd];
        for (p, s) in s.iter_mut().enumerate().take(g.upto) {
            *s = dot(q, &g.keys[p * g.stride + g.offset..][..hd]) * g.scale;
        }
        let s = &mut s[..g.upto];
        softmax_in_place(s);
        o.fill(0.0);
        for (p, &w) in s.iter().enumerate() {
            let v = &g.values[p * g.stride + g.offset..][..hd];
            for (o, &x) in o.iter_mut().zip(v) {
                *o += w * x;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::math::{reduce8, softmax_in_place};
    use super::Group;
    use crate::quant::dot::lanes;

    /// [`super::attend`] for a head size that is a multiple of eight. Groups of up to four
    /// heads run together (sized so their accumulators stay in sixteen registers); larger
    /// groups run head by head.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `g` is in bounds for `upto` positions, `scores` holds
    /// `heads · upto` entries and `out` as many values as `g.q`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn attend(g: Group<'_>, scores: &mut [f32], out: &mut [f32]) {
        let hd = g.head_dim;
        match g.q.len() / hd {
            1 => heads::<1, 4, 8>(&g, scores, out),
            2 => heads::<2, 4, 4>(&g, scores, out),
            3 => heads::<3, 3, 2>(&g, scores, out),
            4 => heads::<4, 2, 2>(&g, scores, out),
            n => {
                for h in 0..n {
                    let one = Group {
                        q: &g.q[h * hd..(h + 1) * hd],
                        ..g
                    };
                    let s = &mut scores[h * g.upto..(h + 1) * g.upto];
                    heads::<1, 4, 8>(&one, s, &mut out[h * hd..(h + 1) * hd]);
                }
            }
        }
    }

    /// `G` heads: scores `P` positions at a time, the weighted sum `N` vectors at a time.
    #[inline(always)]
    unsafe fn heads<const G: usize, const P: usize, const N: usize>(
        g: &Group<'_>,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        let (hd, upto) = (g.head_dim, g.upto);
        let q = g.q.as_ptr();
        let key = |p: usize| g.keys.as_ptr().add(p * g.stride + g.offset);
        let mut p = 0;
        while p < upto {
            let n = (upto - p).min(P);
            // Past the last position, a valid one is read again and its sums dropped.
            let k: [_; P] = std::array::from_fn(|j| key(p + j % n));
            let mut acc = [[_mm256_setzero_ps(); P]; G];
            for c in (0..hd).step_by(8) {
                let kv: [__m256; P] = std::array::from_fn(|j| _mm256_loadu_ps(k[j].add(c)));
                for (h, acc) in acc.iter_mut().enumerate() {
                    let qv = _mm256_loadu_ps(q.add(h * hd + c));
                    for j in 0..P {
                        acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(qv, kv[j]));
                    }
                }
            }
            for (h, acc) in acc.iter().enumerate() {
                for j in 0..n {
                    scores[h * upto + p + j] = reduce8(lanes(acc[j])) * g.scale;
                }
            }
            p += n;
        }
        for s in scores.chunks_exact_mut(upto).take(G) {
            softmax_in_place(s);
        }
        let vectors = hd / 8;
        let mut v0 = 0;
        while v0 + N <= vectors {
            weighted::<G, N>(g, scores, out.as_mut_ptr(), 8 * v0);
            v0 += N;
        }
        while v0 < vectors {
            weighted::<G, 1>(g, scores, out.as_mut_ptr(), 8 * v0);
            v0 += 1;
        }
    }

    /// For each head `h`: `out[h·hd + from + e] = Σ_p scores[h·upto + p] · v_p[from + e]` for
    /// `8·N` elements, summed over `p` in order.
    #[inline(always)]
    unsafe fn weighted<const G: usize, const N: usize>(
        g: &Group<'_>,
        scores: &[f32],
        out: *mut f32,
        from: usize,
    ) {
        let (hd, upto) = (g.head_dim, g.upto);
        let mut acc = [[_mm256_setzero_ps(); N]; G];
        for p in 0..upto {
            let v = g.values.as_ptr().add(p * g.stride + g.offset + from);
            let vv: [__m256; N] = std::array::from_fn(|i| _mm256_loadu_ps(v.add(8 * i)));
            for (h, acc) in acc.iter_mut().enumerate() {
                let w = _mm256_set1_ps(*scores.get_unchecked(h * upto + p));
                for i in 0..N {
                    acc[i] = _mm256_add_ps(acc[i], _mm256_mul_ps(w, vv[i]));
                }
            }
        }
        for (h, acc) in acc.iter().enumerate() {
            for (i, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(h * hd + from + 8 * i), *a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::math::softmax;
    use super::*;

    /// The plain computation for one head: one dot product per position, softmax, weighted
    /// sum.
    fn plain(g: Group<'_>, h: usize) -> Vec<f32> {
        let hd = g.head_dim;
        let q = &g.q[h * hd..(h + 1) * hd];
        let mut s: Vec<f32> = (0..g.upto)
            .map(|p| dot(q, &g.keys[p * g.stride + g.offset..][..hd]) * g.scale)
            .collect();
        softmax(&mut s);
        let mut out = vec![0f32; hd];
        for (p, &w) in s.iter().enumerate() {
            for (e, o) in out.iter_mut().enumerate() {
                *o += w * g.values[p * g.stride + g.offset + e];
            }
        }
        out
    }

    #[test]
    fn every_instruction_set_and_group_size_matches_the_plain_computation_bit_for_bit() {
        let cases = [
            (64, 3, 1),
            (64, 3, 7),
            (64, 2, 33),
            (128, 1, 9),
            (20, 2, 6),
            (64, 5, 10),
        ];
        for (hd, group, upto) in cases {
            let kv_heads = 2;
            let stride = hd * kv_heads;
            let val = |i: usize, s: u64| ((i as u64 * 2654435761 + s) % 1000) as f32 / 250.0 - 2.0;
            let keys: Vec<f32> = (0..upto * stride).map(|i| val(i, 1)).collect();
            let values: Vec<f32> = (0..upto * stride).map(|i| val(i, 2)).collect();
            let q: Vec<f32> = (0..group * hd).map(|i| val(i, 3)).collect();
            let g = Group {
                q: &q,
                head_dim: hd,
                keys: &keys,
                values: &values,
                stride,
                offset: hd,
                upto,
                scale: 1.0 / (hd as f32).sqrt(),
            };
            let want: Vec<f32> = (0..group).flat_map(|h| plain(g, h)).collect();
            for isa in Isa::supported() {
                let mut out = vec![0f32; group * hd];
                attend(isa, g, &mut Vec::new(), &mut out);
                let same = out
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{} at head size {hd}, group {group}, {upto} positions",
                    isa.name()
                );
            }
        }
    }
}
