//! Element-wise and reduction helpers of the transformer, written so the compiler vectorises
//! them without reordering any floating-point sum (fixed eight-lane partial sums, fixed
//! reduction order), so results depend on the inputs alone.

/// Sum of `a[i]·b[i]` over eight fixed lanes, reduced in a fixed order.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut lanes = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
        lanes[l] += x * y;
    }
    reduce8(lanes)
}

/// The fixed reduction order of eight lanes.
#[inline(always)]
pub(crate) fn reduce8(l: [f32; 8]) -> f32 {
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// `out = x / rms(x) · w` with `rms(x) = sqrt(mean(x²) + eps)`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let ss = dot(x, x);
    let inv = 1.0 / (ss / x.len() as f32 + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * inv * g;
    }
}

/// [`rms_norm`] in place: `x = x / rms(x) · w` (the same operations, so the same bits).
pub fn rms_norm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    let ss = dot(x, x);
    let inv = 1.0 / (ss / x.len() as f32 + eps).sqrt();
    for (v, &g) in x.iter_mut().zip(w) {
        *v = *v * inv * g;
    }
}

/// `e^x` to within ~2 ulp for |x| < 87 (Cephes' polynomial), branch-free so loops over it
/// vectorise; saturates outside the `f32` range.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let x = x.clamp(-87.3, 88.3);
    let n = (x * LOG2E + MAGIC) - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let pow2 = f32::from_bits((((n as i32) + 127) as u32) << 23);
    y * pow2
}

/// `x · sigmoid(x)`.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// `out[i] = silu(gate[i]) · up[i]`; with AVX2 eight at a time (the same operations, so the same
/// bits).
pub fn silu_mul(isa: crate::quant::Isa, out: &mut [f32], gate: &[f32], up: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa != crate::quant::Isa::Portable {
        // SAFETY: `Isa` names a SIMD set only when the CPU has AVX2 and FMA.
        return unsafe { silu_mul_avx2(out, gate, up) };
    }
    let _ = isa;
    silu_mul_any(out, gate, up)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn silu_mul_avx2(out: &mut [f32], gate: &[f32], up: &[f32]) {
    silu_mul_any(out, gate, up)
}

#[inline(always)]
fn silu_mul_any(out: &mut [f32], gate: &[f32], up: &[f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = silu(g) * u;
    }
}

/// GELU, tanh approximation (`gelu_pytorch_tanh`, ggml's `gelu`):
/// `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`, with `tanh(y) = 1 − 2/(e^{2y} + 1)` on
/// [`exp`].
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF: f32 = 0.044_715;
    let y = SQRT_2_OVER_PI * x * (1.0 + COEF * x * x);
    let tanh = 1.0 - 2.0 / (exp(2.0 * y) + 1.0);
    0.5 * x * (1.0 + tanh)
}

/// `out[i] = gelu(gate[i]) · up[i]` (GeGLU); with AVX2 eight at a time (the same operations, so
/// the same bits).
pub fn gelu_mul(isa: crate::quant::Isa, out: &mut [f32], gate: &[f32], up: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa != crate::quant::Isa::Portable {
        // SAFETY: `Isa` names a SIMD set only when the CPU has AVX2 and FMA.
        return unsafe { gelu_mul_avx2(out, gate, up) };
    }
    let _ = isa;
    gelu_mul_any(out, gate, up)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_mul_avx2(out: &mut [f32], gate: &[f32], up: &[f32]) {
    gelu_mul_any(out, gate, up)
}

#[inline(always)]
fn gelu_mul_any(out: &mut [f32], gate: &[f32], up: &[f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = gelu(g) * u;
    }
}

/// Softmax in place.
#[cfg(test)]
pub fn softmax(x: &mut [f32]) {
    softmax_in_place(x)
}

/// [`softmax`], inlined into its caller (so it is compiled for the caller's instruction set).
#[inline(always)]
pub(crate) fn softmax_in_place(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in x.iter_mut() {
        *v = exp(*v - max);
    }
    let mut lanes = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            lanes[l] += c[l];
        }
    }
    for (l, v) in chunks.remainder().iter().enumerate() {
        lanes[l] += v;
    }
    let inv = 1.0 / reduce8(lanes);
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// Rotary embedding tables: `cos`/`sin` of `pos · base^(−2i/d)` for every position and pair.
#[derive(Debug, Clone)]
pub struct Rope {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    /// Tables for `positions` positions of heads with `dim` rotated dimensions.
    pub fn new(dim: usize, base: f32, positions: usize) -> Self {
        let half = dim / 2;
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            for i in 0..half {
                let theta = (base as f64).powf(-2.0 * i as f64 / dim as f64);
                let a = p as f64 * theta;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        Self { half, cos, sin }
    }

    /// Rotate the pairs `(x[i], x[i + d/2])` of one head (the "NeoX" convention, Gemma's).
    pub fn apply_halves(&self, head: &mut [f32], pos: usize) {
        let c = &self.cos[pos * self.half..(pos + 1) * self.half];
        let s = &self.sin[pos * self.half..(pos + 1) * self.half];
        let (lo, hi) = head.split_at_mut(self.half);
        for i in 0..self.half {
            let (a, b) = (lo[i], hi[i]);
            lo[i] = a * c[i] - b * s[i];
            hi[i] = a * s[i] + b * c[i];
        }
    }

    /// Rotate consecutive pairs `(x[2i], x[2i+1])` of one head (GGUF's llama convention).
    pub fn apply(&self, head: &mut [f32], pos: usize) {
        let c = &self.cos[pos * self.half..(pos + 1) * self.half];
        let s = &self.sin[pos * self.half..(pos + 1) * self.half];
        for i in 0..self.half {
            let (a, b) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = a * c[i] - b * s[i];
            head[2 * i + 1] = a * s[i] + b * c[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn exp_is_close_to_std(x in -80.0f32..80.0) {
            let (got, want) = (exp(x), x.exp());
            prop_assert!(((got - want) / want).abs() < 4e-7, "{x}: {got} vs {want}");
        }

        #[test]
        fn softmax_sums_to_one(v in proptest::collection::vec(-30.0f32..30.0, 1..300)) {
            let mut v = v;
            softmax(&mut v);
            let s: f32 = v.iter().sum();
            prop_assert!((s - 1.0).abs() < 1e-4);
            prop_assert!(v.iter().all(|&p| (0.0..=1.0).contains(&p)));
        }
    }

    #[test]
    fn silu_is_the_same_on_every_instruction_set() {
        let g: Vec<f32> = (0..67).map(|i| (i as f32 - 33.0) * 0.37).collect();
        let u: Vec<f32> = (0..67).map(|i| 1.0 - i as f32 * 0.01).collect();
        let want: Vec<f32> = g.iter().zip(&u).map(|(&g, &u)| silu(g) * u).collect();
        for isa in crate::quant::Isa::supported() {
            let mut out = vec![0f32; 67];
            silu_mul(isa, &mut out, &g, &u);
            assert!(out
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn gelu_is_close_to_the_erf_form_and_the_same_on_every_instruction_set() {
        for (x, want) in [
            (0.0f32, 0.0f32),
            (1.0, 0.841_192),
            (-1.0, -0.158_808),
            (3.0, 2.996_363),
        ] {
            assert!((gelu(x) - want).abs() < 1e-4, "gelu({x}) = {}", gelu(x));
        }
        let g: Vec<f32> = (0..67).map(|i| (i as f32 - 33.0) * 0.37).collect();
        let u: Vec<f32> = (0..67).map(|i| 1.0 - i as f32 * 0.01).collect();
        let want: Vec<f32> = g.iter().zip(&u).map(|(&g, &u)| gelu(g) * u).collect();
        for isa in crate::quant::Isa::supported() {
            let mut out = vec![0f32; 67];
            gelu_mul(isa, &mut out, &g, &u);
            assert!(out
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn rope_halves_rotates_the_two_halves_together() {
        let r = Rope::new(4, 10000.0, 2);
        let mut h = [1.0, 0.0, 0.0, 0.0];
        r.apply_halves(&mut h, 1);
        // pair (x0, x2) turns by 1 radian
        assert!((h[0] - 1f32.cos()).abs() < 1e-6 && (h[2] - 1f32.sin()).abs() < 1e-6);
        assert_eq!(h[1], 0.0);
    }

    #[test]
    fn dot_matches_a_plain_sum() {
        let a: Vec<f32> = (0..67).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..67).map(|i| 1.0 - i as f32 * 0.01).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) as f64 - want).abs() < 1e-2);
    }

    #[test]
    fn rope_at_zero_is_identity_and_preserves_norm() {
        let r = Rope::new(8, 10000.0, 4);
        let mut h = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        r.apply(&mut h, 0);
        assert_eq!(h, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        r.apply(&mut h, 3);
        let n: f32 = h.iter().map(|v| v * v).sum();
        assert!((n - 204.0).abs() < 1e-3);
    }
}
