//! Dot products of one quantised weight row with up to eight activation rows.
//!
//! Blocks are stored interleaved in subgroups of eight (and, at the end of a row, four, two or
//! one; see [`super::interleave`]), so integer multiply-adds leave each block's exact integer dot
//! product in its own 32-bit lane. Per group of eight blocks and activation row the kernel then
//! does, on eight lanes at once (lane `j` = block `j` of the group):
//!
//! ```text
//! acc[j] = fma(d_w[j]·d_a[j], isum[j], acc[j])      // the block's scaled dot product
//! acc[j] = fma(m_w[j], s_a[j], acc[j])              // four-bit offsets: m·(d_a·Σq_a)
//! ```
//!
//! and at the end reduces the eight lanes in a fixed tree order. Blocks after the last full group
//! get their integer sums by folding lanes (exact) and go through the same two steps as one more
//! group, with zero scales and sums in the lanes they do not fill. Integer sums are exact in any order, and every
//! instruction set (AVX-512 VNNI, AVX2, portable) performs the same floating-point operations in
//! the same order, so results are bit-identical across them; each output goes through the same
//! operations whichever tile (1 to 8 activation rows) it is computed in, so results never depend
//! on batch size or thread count.

use super::activations::{ActRow, ActTile, GROUP};
use super::interleave::{full_blocks, subgroups};

/// One row of four-bit weights (`w = d·q + m`) in the kernels' layout
/// ([`super::interleave::pack_q4_row`]), with `d`, `m` per block padded with zeros to a multiple
/// of [`GROUP`].
#[derive(Debug, Clone, Copy)]
pub struct Q4Row<'a> {
    /// Packed nibbles, 16 bytes per block.
    pub qs: &'a [[u8; 16]],
    /// Scales (padded).
    pub d: &'a [f32],
    /// Offsets (padded).
    pub m: &'a [f32],
}

/// One row of eight-bit weights (`w = d·q`) in the kernels' layout
/// ([`super::interleave::pack_q8_row`]), scales padded as in [`Q4Row`].
#[derive(Debug, Clone, Copy)]
pub struct Q8Row<'a> {
    /// Values, 32 per block.
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

    /// The most activation rows one kernel call takes on this instruction set (its registers
    /// hold two accumulators per row). Tiling never changes a result.
    pub fn max_tile(self) -> usize {
        match self {
            Isa::Avx512Vnni => 8,
            _ => 4,
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

fn check_shapes<const T: usize>(blocks: usize, padded: usize, a: &ActTile<'_>) {
    assert!(padded.is_multiple_of(GROUP) && padded >= blocks && padded < blocks + GROUP);
    assert!(a.n == T && a.blocks == blocks && a.qs.len() == T * blocks);
    assert!(a.d.len() == T * padded && a.s.len() == T * padded && a.sum.len() == T * padded);
}

/// Rows of a four-bit matrix as the kernels walk them: row `r` is `qs[r·blocks ..]`, with scales
/// and offsets at `d[r·padded ..]`, `m[r·padded ..]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Q4Rows<'a> {
    pub qs: &'a [[u8; 16]],
    pub d: &'a [f32],
    pub m: &'a [f32],
    pub blocks: usize,
    pub padded: usize,
}

impl<'a> Q4Rows<'a> {
    /// # Safety
    /// Row `r` exists.
    #[inline(always)]
    unsafe fn row(&self, r: usize) -> Q4Row<'a> {
        let (nb, np) = (self.blocks, self.padded);
        // SAFETY: the caller promises row `r` exists.
        unsafe {
            Q4Row {
                qs: self.qs.get_unchecked(r * nb..(r + 1) * nb),
                d: self.d.get_unchecked(r * np..(r + 1) * np),
                m: self.m.get_unchecked(r * np..(r + 1) * np),
            }
        }
    }
}

/// Rows of an eight-bit matrix, as [`Q4Rows`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Q8Rows<'a> {
    pub qs: &'a [[i8; 32]],
    pub d: &'a [f32],
    pub blocks: usize,
    pub padded: usize,
}

impl<'a> Q8Rows<'a> {
    /// # Safety
    /// Row `r` exists.
    #[inline(always)]
    unsafe fn row(&self, r: usize) -> Q8Row<'a> {
        let (nb, np) = (self.blocks, self.padded);
        // SAFETY: the caller promises row `r` exists.
        unsafe {
            Q8Row {
                qs: self.qs.get_unchecked(r * nb..(r + 1) * nb),
                d: self.d.get_unchecked(r * np..(r + 1) * np),
            }
        }
    }
}

/// `w · a.row(t)` for each token `t` of a tile of `T`, four-bit weights.
pub fn dot_q4<const T: usize>(isa: Isa, w: Q4Row<'_>, a: ActTile<'_>) -> [f32; T] {
    check_shapes::<T>(w.qs.len(), w.d.len(), &a);
    assert_eq!(w.m.len(), w.d.len());
    let m = Q4Rows {
        qs: w.qs,
        d: w.d,
        m: w.m,
        blocks: w.qs.len(),
        padded: w.d.len(),
    };
    let mut out = [0f32; T];
    // SAFETY: shapes checked above; one row, written to `out[t]`.
    unsafe { q4_rows::<T>(isa, m, 0..1, a, out.as_mut_ptr(), 1) };
    out
}

/// Rows `rows` of `m` times token `t` of the tile `a`, written to `out[t · stride + r]`.
///
/// # Safety
/// The rows exist; the tile holds `T` tokens of `m.blocks` blocks, and `m` and the tile pad
/// their scales to the same multiple of [`GROUP`] (as [`super::QMatrix`] and
/// [`super::Activations`] build them); `out` is valid for every element written and no one else
/// writes them.
#[inline(always)]
pub(crate) unsafe fn q4_rows<const T: usize>(
    isa: Isa,
    m: Q4Rows<'_>,
    rows: std::ops::Range<usize>,
    a: ActTile<'_>,
    out: *mut f32,
    stride: usize,
) {
    // SAFETY: `Isa::detect`/`supported` only return the SIMD sets when the CPU has them; the
    // rest is the caller's promise.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::dot_q4_avx2::<T>(m, rows, a, out, stride),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => x86::dot_q4_vnni::<T>(m, rows, a, out, stride),
            _ => portable_rows(rows, out, stride, |r| dot_q4_portable::<T>(m.row(r), a)),
        }
    }
}

/// `row(r)[t]` written to `out[t · stride + r]` for every row.
///
/// # Safety
/// `out` is valid for every element written.
#[inline(always)]
unsafe fn portable_rows<const T: usize>(
    rows: std::ops::Range<usize>,
    out: *mut f32,
    stride: usize,
    row: impl Fn(usize) -> [f32; T],
) {
    for r in rows {
        for (t, v) in row(r).into_iter().enumerate() {
            // SAFETY: the caller's promise.
            unsafe { *out.add(t * stride + r) = v };
        }
    }
}

/// `w · a.row(t)` for each token `t` of a tile of `T`, eight-bit weights.
pub fn dot_q8<const T: usize>(isa: Isa, w: Q8Row<'_>, a: ActTile<'_>) -> [f32; T] {
    check_shapes::<T>(w.qs.len(), w.d.len(), &a);
    let m = Q8Rows {
        qs: w.qs,
        d: w.d,
        blocks: w.qs.len(),
        padded: w.d.len(),
    };
    let mut out = [0f32; T];
    // SAFETY: shapes checked above; one row, written to `out[t]`.
    unsafe { q8_rows::<T>(isa, m, 0..1, a, out.as_mut_ptr(), 1) };
    out
}

/// [`q4_rows`] for eight-bit weights.
///
/// # Safety
/// As for [`q4_rows`].
#[inline(always)]
pub(crate) unsafe fn q8_rows<const T: usize>(
    isa: Isa,
    m: Q8Rows<'_>,
    rows: std::ops::Range<usize>,
    a: ActTile<'_>,
    out: *mut f32,
    stride: usize,
) {
    // SAFETY: as in `q4_rows`.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::dot_q8_avx2::<T>(m, rows, a, out, stride),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => x86::dot_q8_vnni::<T>(m, rows, a, out, stride),
            _ => portable_rows(rows, out, stride, |r| dot_q8_portable::<T>(m.row(r), a)),
        }
    }
}

/// Four-bit value `i` of a block in GGUF's nibble order.
#[inline(always)]
fn nibble(qs: &[u8; 16], i: usize) -> i32 {
    if i < 16 {
        (qs[i] & 0x0F) as i32
    } else {
        (qs[i - 16] >> 4) as i32
    }
}

/// Four-bit value at byte `byte` of vector `v` of the subgroup at block `o` with `n` blocks.
#[inline(always)]
fn q4_at(qs: &[[u8; 16]], o: usize, n: usize, v: usize, byte: usize) -> i32 {
    if n == 1 {
        return nibble(&qs[o], byte);
    }
    let e = qs[o + 2 * (v / 2) + byte / 16][byte % 16];
    (if v.is_multiple_of(2) {
        e & 0x0F
    } else {
        e >> 4
    }) as i32
}

/// Exact integer dot products per block for the scale group at block `g`: `isum[t][j]` is block
/// `g + j` times activation row `t`; `wq(o, n, v, byte)` reads a weight.
#[inline(always)]
fn group_sums<const T: usize>(
    nb: usize,
    g: usize,
    a: &[ActRow<'_>; T],
    wq: impl Fn(usize, usize, usize, usize) -> i32,
) -> [[i32; 8]; T] {
    let mut isum = [[0i32; 8]; T];
    // Subgroups never straddle a group of eight: full groups are one, the tail lies in the last.
    let in_group = subgroups(nb)
        .skip(g / GROUP)
        .take_while(|&(o, _)| o < g + GROUP);
    for (o, n) in in_group {
        for v in 0..n {
            for byte in 0..32 {
                let j = o - g + (byte / 4) % n;
                let w = wq(o, n, v, byte);
                for t in 0..T {
                    isum[t][j] += w * a[t].vector(o + v)[byte] as i32;
                }
            }
        }
    }
    isum
}

/// The portable four-bit kernel (the same floating-point operations as the SIMD ones).
#[allow(clippy::needless_range_loop)] // indices mirror the SIMD lanes
pub fn dot_q4_portable<const T: usize>(w: Q4Row<'_>, a: ActTile<'_>) -> [f32; T] {
    let nb = w.qs.len();
    let a: [ActRow<'_>; T] = std::array::from_fn(|t| a.row(t));
    let mut acc = [[0f32; 8]; T];
    for g in (0..w.d.len()).step_by(GROUP) {
        let isum = group_sums(nb, g, &a, |o, n, v, byte| q4_at(w.qs, o, n, v, byte));
        for t in 0..T {
            for l in 0..8 {
                let sc = w.d[g + l] * a[t].d(g + l);
                acc[t][l] = sc.mul_add(isum[t][l] as f32, acc[t][l]);
                acc[t][l] = w.m[g + l].mul_add(a[t].s(g + l), acc[t][l]);
            }
        }
    }
    let mut out = [0f32; T];
    for t in 0..T {
        out[t] = reduce_lanes(acc[t]);
    }
    out
}

/// The portable eight-bit kernel.
#[allow(clippy::needless_range_loop)] // indices mirror the SIMD lanes
pub fn dot_q8_portable<const T: usize>(w: Q8Row<'_>, a: ActTile<'_>) -> [f32; T] {
    let nb = w.qs.len();
    let a: [ActRow<'_>; T] = std::array::from_fn(|t| a.row(t));
    let mut acc = [[0f32; 8]; T];
    for g in (0..w.d.len()).step_by(GROUP) {
        let isum = group_sums(nb, g, &a, |o, _, v, byte| w.qs[o + v][byte] as i32);
        for t in 0..T {
            for l in 0..8 {
                let sc = w.d[g + l] * a[t].d(g + l);
                acc[t][l] = sc.mul_add(isum[t][l] as f32, acc[t][l]);
            }
        }
    }
    let mut out = [0f32; T];
    for t in 0..T {
        out[t] = reduce_lanes(acc[t]);
    }
    out
}

/// The eight lanes of a 256-bit vector.
///
/// # Safety
/// The CPU has AVX.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn lanes(v: std::arch::x86_64::__m256) -> [f32; 8] {
    let mut out = [0f32; 8];
    // SAFETY: the caller promises AVX; `out` holds eight values.
    unsafe { std::arch::x86_64::_mm256_storeu_ps(out.as_mut_ptr(), v) };
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{full_blocks, lanes, reduce_lanes, ActTile, Q4Row, Q4Rows, Q8Row, Q8Rows, GROUP};
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// [`reduce_lanes`] of each accumulator. Eight of them are reduced together by transposing
    /// as they are summed: each addition is one of `reduce_lanes`, with the same operands.
    #[inline(always)]
    unsafe fn reduce_tile<const T: usize>(acc: [__m256; T]) -> [f32; T] {
        let mut out = [0f32; T];
        if T != 8 {
            for t in 0..T {
                out[t] = reduce_lanes(lanes(acc[t]));
            }
            return out;
        }
        // Lanes i and i + 4 of two accumulators: [a_lo + a_hi, b_lo + b_hi].
        let halves = |a: __m256, b: __m256| {
            let lo = _mm256_permute2f128_ps(a, b, 0x20);
            _mm256_add_ps(lo, _mm256_permute2f128_ps(a, b, 0x31))
        };
        let (s01, s23) = (halves(acc[0], acc[1]), halves(acc[2], acc[3]));
        let (s45, s67) = (halves(acc[4], acc[5]), halves(acc[6], acc[7]));
        // Per 128-bit lane [x0 + x2, x1 + x3, y0 + y2, y1 + y3].
        let pairs = |x: __m256, y: __m256| {
            let a = _mm256_shuffle_ps(x, y, 0b01_00_01_00);
            _mm256_add_ps(a, _mm256_shuffle_ps(x, y, 0b11_10_11_10))
        };
        let (t0, t1) = (pairs(s01, s23), pairs(s45, s67));
        // Per 128-bit lane [x0 + x1, x2 + x3, y0 + y1, y2 + y3]: tokens 0, 2, 4, 6 | 1, 3, 5, 7.
        let a = _mm256_shuffle_ps(t0, t1, 0b10_00_10_00);
        let r = lanes(_mm256_add_ps(a, _mm256_shuffle_ps(t0, t1, 0b11_01_11_01)));
        for (i, t) in [0, 2, 4, 6, 1, 3, 5, 7].into_iter().enumerate() {
            out[t] = r[i];
        }
        out
    }

    #[inline(always)]
    unsafe fn load32<E>(p: *const E) -> __m256i {
        _mm256_loadu_si256(p as *const __m256i)
    }

    /// The per-block sums of a subgroup of `n` < 8 blocks (lane `l` holds part of block
    /// `l mod n`), folded (exactly) and placed in lanes `off .. off + n` of a vector that is zero
    /// elsewhere.
    #[inline(always)]
    unsafe fn place_folded(v: __m256i, n: usize, off: usize) -> __m256i {
        let mut s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        if n <= 2 {
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b11_10_11_10));
        }
        if n == 1 {
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_01_01_01));
        }
        // Lanes 0 .. n of `s` hold the sums; lanes 4 .. 8 of `wide` are zero.
        let wide = _mm256_set_m128i(_mm_setzero_si128(), s);
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let rel = _mm256_sub_epi32(lane, _mm256_set1_epi32(off as i32));
        let inside = _mm256_and_si256(
            _mm256_cmpgt_epi32(rel, _mm256_set1_epi32(-1)),
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), rel),
        );
        let idx = _mm256_blendv_epi8(_mm256_set1_epi32(7), rel, inside);
        _mm256_permutevar8x32_epi32(wide, idx)
    }

    /// The subgroups after the last full group: `(offset from it, blocks)`.
    #[inline(always)]
    fn tail_parts(rest: usize) -> [(usize, usize); 3] {
        [(0, rest & 4), (rest & 4, rest & 2), (rest & 6, rest & 1)]
    }

    /// A natural-order block of nibbles as 32 bytes: low nibbles, then high nibbles.
    #[inline(always)]
    unsafe fn expand_nibbles(qs: &[u8; 16]) -> __m256i {
        let m4 = _mm_set1_epi8(0x0F);
        let v = _mm_loadu_si128(qs.as_ptr() as *const __m128i);
        let lo = _mm_and_si128(v, m4);
        let hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
        _mm256_set_m128i(hi, lo)
    }

    /// `acc += (d_w·d_a)·isum`, then, with offsets, `acc += m_w·s_a`, on one group's lanes.
    #[inline(always)]
    unsafe fn scale_group(
        acc: __m256,
        isum: __m256i,
        dw: __m256,
        mw: Option<__m256>,
        d: *const f32,
        s: *const f32,
    ) -> __m256 {
        let sc = _mm256_mul_ps(dw, _mm256_loadu_ps(d));
        let acc = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(isum), acc);
        match mw {
            Some(mw) => _mm256_fmadd_ps(mw, _mm256_loadu_ps(s), acc),
            None => acc,
        }
    }

    // ---- AVX2: `vpmaddubsw` (u8 × i8 pairs into i16) and `vpmaddwd` (i16 pairs into i32).

    /// Four-bit weights (0..15) times bytes: one vector's pair sums added in 16 bits. Exact:
    /// eight vectors of pair sums reach at most 8·2·15·127 = 30480 < 32768.
    #[inline(always)]
    unsafe fn q4_step_avx2(isum: __m256i, u: __m256i, s: __m256i) -> __m256i {
        _mm256_add_epi16(isum, _mm256_maddubs_epi16(u, s))
    }

    #[inline(always)]
    unsafe fn q4_finish_avx2(isum: __m256i) -> __m256i {
        _mm256_madd_epi16(isum, _mm256_set1_epi16(1))
    }

    /// Eight-bit weights: |w| as the unsigned operand, w's sign moved onto the activations (no
    /// pair sum can saturate: 2·128·127 < 32768).
    #[inline(always)]
    unsafe fn q8_prep_avx2(wq: __m256i) -> __m256i {
        _mm256_sign_epi8(wq, wq)
    }

    #[inline(always)]
    unsafe fn q8_step_avx2(isum: __m256i, prep: __m256i, wq: __m256i, s: __m256i) -> __m256i {
        let p = _mm256_maddubs_epi16(prep, _mm256_sign_epi8(s, wq));
        _mm256_add_epi32(isum, _mm256_madd_epi16(p, _mm256_set1_epi16(1)))
    }

    #[inline(always)]
    unsafe fn q8_fix_avx2(isum: __m256i, _sum: *const i32) -> __m256i {
        isum
    }

    // ---- AVX-512 VNNI: `vpdpbusd` (u8 × i8, four products per i32 lane, accumulated).

    #[inline(always)]
    unsafe fn q4_step_vnni(isum: __m256i, u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(isum, u, s)
    }

    #[inline(always)]
    unsafe fn q4_finish_vnni(isum: __m256i) -> __m256i {
        isum
    }

    /// Eight-bit weights shifted to unsigned (`w + 128`); [`q8_fix_vnni`] takes `128·Σa` back.
    #[inline(always)]
    unsafe fn q8_prep_vnni(wq: __m256i) -> __m256i {
        _mm256_xor_si256(wq, _mm256_set1_epi8(-128))
    }

    #[inline(always)]
    unsafe fn q8_step_vnni(isum: __m256i, prep: __m256i, _wq: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(isum, prep, s)
    }

    #[inline(always)]
    unsafe fn q8_fix_vnni(isum: __m256i, sum: *const i32) -> __m256i {
        let sums = _mm256_loadu_si256(sum as *const __m256i);
        _mm256_sub_epi32(isum, _mm256_slli_epi32(sums, 7))
    }

    /// Tail subgroups (no per-block sums to correct with): |w| · (a with w's sign).
    #[inline(always)]
    unsafe fn q8_tail_step_vnni(isum: __m256i, wabs: __m256i, wq: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(isum, wabs, _mm256_sign_epi8(s, wq))
    }

    macro_rules! q4_kernel {
        ($name:ident, $row:ident, $features:literal, $step:ident, $finish:ident) => {
            /// Rows `rows` of `m` times `a`, into `out[t · stride + r]`.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const T: usize>(
                m: Q4Rows<'_>,
                rows: Range<usize>,
                a: ActTile<'_>,
                out: *mut f32,
                stride: usize,
            ) {
                for r in rows {
                    let v = $row::<T>(m.row(r), a);
                    for t in 0..T {
                        *out.add(t * stride + r) = v[t];
                    }
                }
            }

            #[inline(always)]
            unsafe fn $row<const T: usize>(w: Q4Row<'_>, a: ActTile<'_>) -> [f32; T] {
                let nb = w.qs.len();
                // Every token of the tile at constant offsets from one base (see
                // `ActTile`): vector `k` of token `t` at `k·T + t`, scales at `g·T + 8t`.
                let (aq, ad, as_) = (a.qs.as_ptr(), a.d.as_ptr(), a.s.as_ptr());
                let full = full_blocks(nb);
                let m4 = _mm256_set1_epi8(0x0F);
                let mut acc = [_mm256_setzero_ps(); T];
                let mut g = 0;
                while g < full {
                    let mut isum = [_mm256_setzero_si256(); T];
                    let ab = aq.add(g * T);
                    for c in 0..4 {
                        let p = load32(w.qs.as_ptr().add(g + 2 * c));
                        let lo = _mm256_and_si256(p, m4);
                        let hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
                        for t in 0..T {
                            isum[t] = $step(isum[t], lo, load32(ab.add(2 * c * T + t)));
                            isum[t] = $step(isum[t], hi, load32(ab.add((2 * c + 1) * T + t)));
                        }
                    }
                    let dw = _mm256_loadu_ps(w.d.as_ptr().add(g));
                    let mw = _mm256_loadu_ps(w.m.as_ptr().add(g));
                    for t in 0..T {
                        let (d, s) = (ad.add(g * T + 8 * t), as_.add(g * T + 8 * t));
                        acc[t] = scale_group(acc[t], $finish(isum[t]), dw, Some(mw), d, s);
                    }
                    g += GROUP;
                }
                if full < nb {
                    let mut tail = [_mm256_setzero_si256(); T];
                    for (off, n) in tail_parts(nb - full) {
                        if n == 0 {
                            continue;
                        }
                        let o = full + off;
                        let ab = aq.add(o * T);
                        let mut isum = [_mm256_setzero_si256(); T];
                        if n == 1 {
                            let wv = expand_nibbles(w.qs.get_unchecked(o));
                            for t in 0..T {
                                isum[t] = $step(isum[t], wv, load32(ab.add(t)));
                            }
                        }
                        for c in 0..n / 2 {
                            let p = load32(w.qs.as_ptr().add(o + 2 * c));
                            let lo = _mm256_and_si256(p, m4);
                            let hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
                            for t in 0..T {
                                isum[t] = $step(isum[t], lo, load32(ab.add(2 * c * T + t)));
                                isum[t] = $step(isum[t], hi, load32(ab.add((2 * c + 1) * T + t)));
                            }
                        }
                        for t in 0..T {
                            let sums = place_folded($finish(isum[t]), n, off);
                            tail[t] = _mm256_add_epi32(tail[t], sums);
                        }
                    }
                    let dw = _mm256_loadu_ps(w.d.as_ptr().add(full));
                    let mw = _mm256_loadu_ps(w.m.as_ptr().add(full));
                    for t in 0..T {
                        let isum = tail[t];
                        let (d, s) = (ad.add(full * T + 8 * t), as_.add(full * T + 8 * t));
                        acc[t] = scale_group(acc[t], isum, dw, Some(mw), d, s);
                    }
                }
                reduce_tile(acc)
            }
        };
    }

    macro_rules! q8_kernel {
        (
            $name:ident,
            $row:ident,
            $features:literal,
            $prep:ident,
            $step:ident,
            $fix:ident,
            $tail_step:ident
        ) => {
            /// Rows `rows` of `m` times `a`, into `out[t · stride + r]`.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const T: usize>(
                m: Q8Rows<'_>,
                rows: Range<usize>,
                a: ActTile<'_>,
                out: *mut f32,
                stride: usize,
            ) {
                for r in rows {
                    let v = $row::<T>(m.row(r), a);
                    for t in 0..T {
                        *out.add(t * stride + r) = v[t];
                    }
                }
            }

            #[inline(always)]
            unsafe fn $row<const T: usize>(w: Q8Row<'_>, a: ActTile<'_>) -> [f32; T] {
                let nb = w.qs.len();
                // Tile offsets as in the four-bit kernel.
                let (aq, ad, asum) = (a.qs.as_ptr(), a.d.as_ptr(), a.sum.as_ptr());
                let full = full_blocks(nb);
                let mut acc = [_mm256_setzero_ps(); T];
                let mut g = 0;
                while g < full {
                    let mut isum = [_mm256_setzero_si256(); T];
                    for k in g..g + GROUP {
                        let wq = load32(w.qs.as_ptr().add(k));
                        let prep = $prep(wq);
                        let ab = aq.add(k * T);
                        for t in 0..T {
                            isum[t] = $step(isum[t], prep, wq, load32(ab.add(t)));
                        }
                    }
                    let dw = _mm256_loadu_ps(w.d.as_ptr().add(g));
                    for t in 0..T {
                        let e = g * T + 8 * t;
                        let isum = $fix(isum[t], asum.add(e));
                        acc[t] = scale_group(acc[t], isum, dw, None, ad.add(e), ad.add(e));
                    }
                    g += GROUP;
                }
                if full < nb {
                    let mut tail = [_mm256_setzero_si256(); T];
                    for (off, n) in tail_parts(nb - full) {
                        if n == 0 {
                            continue;
                        }
                        let o = full + off;
                        let mut isum = [_mm256_setzero_si256(); T];
                        for v in o..o + n {
                            let wq = load32(w.qs.as_ptr().add(v));
                            let wabs = _mm256_sign_epi8(wq, wq);
                            let ab = aq.add(v * T);
                            for t in 0..T {
                                isum[t] = $tail_step(isum[t], wabs, wq, load32(ab.add(t)));
                            }
                        }
                        for t in 0..T {
                            tail[t] = _mm256_add_epi32(tail[t], place_folded(isum[t], n, off));
                        }
                    }
                    let dw = _mm256_loadu_ps(w.d.as_ptr().add(full));
                    for t in 0..T {
                        let isum = tail[t];
                        let d = ad.add(full * T + 8 * t);
                        acc[t] = scale_group(acc[t], isum, dw, None, d, d);
                    }
                }
                reduce_tile(acc)
            }
        };
    }

    q4_kernel!(
        dot_q4_avx2,
        row_q4_avx2,
        "avx2,fma",
        q4_step_avx2,
        q4_finish_avx2
    );
    q4_kernel!(
        dot_q4_vnni,
        row_q4_vnni,
        "avx2,fma,avx512vnni,avx512vl",
        q4_step_vnni,
        q4_finish_vnni
    );
    q8_kernel!(
        dot_q8_avx2,
        row_q8_avx2,
        "avx2,fma",
        q8_prep_avx2,
        q8_step_avx2,
        q8_fix_avx2,
        q8_step_avx2
    );
    q8_kernel!(
        dot_q8_vnni,
        row_q8_vnni,
        "avx2,fma,avx512vnni,avx512vl",
        q8_prep_vnni,
        q8_step_vnni,
        q8_fix_vnni,
        q8_tail_step_vnni
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::activations::Activations;
    use crate::quant::blocks::{BlockQ4, BlockQ8};
    use crate::quant::interleave::{pack_q4_row, pack_q8_row};
    use proptest::prelude::*;

    /// Blocks as a row in the kernels' layout, scales padded to the group size.
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
            qs: pack_q4_row(blocks),
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
                    .map(|k| wd[k] as f64 * (a.d(b) as f64 * a.value(b, k) as f64))
                    .sum::<f64>()
            })
            .sum()
    }

    /// `x` quantised in tiles of `tile` tokens.
    fn quantized(x: &[f32], width: usize, tile: usize) -> Activations {
        let mut a = Activations::with_tile(tile);
        a.quantize(x, width);
        a
    }

    fn close(got: f32, want: f64, scale: f64) -> bool {
        (got as f64 - want).abs() <= 1e-4 * scale + 1e-5
    }

    proptest! {
        #[test]
        fn q4_kernels_match_the_reference_and_each_other(
            nib in proptest::collection::vec(any::<u8>(), 16..200),
            scales in proptest::collection::vec((0.0f32..0.2, -1.0f32..1.0), 1..40),
            xs in proptest::collection::vec(-4.0f32..4.0, 32 * 40 * 8),
        ) {
            let blocks: Vec<BlockQ4> = scales.iter().enumerate().map(|(i, &(d, m))| {
                let mut qs = [0u8; 16];
                for (j, q) in qs.iter_mut().enumerate() { *q = nib[(i * 16 + j) % nib.len()]; }
                BlockQ4 { d, m, qs }
            }).collect();
            let owned = q4_row(&blocks);
            let w = Q4Row { qs: &owned.qs, d: &owned.d, m: &owned.m };
            let n = blocks.len() * 32;
            let acts = quantized(&xs[..8 * n], n, 8);
            let (tile, three) = (acts.tile_of(0), quantized(&xs[n..4 * n], n, 3));
            let deq: Vec<[f32; 32]> = blocks.iter().map(BlockQ4::dequantize).collect();
            let scale: f64 = blocks.iter().map(|b| (b.d.abs() * 15.0 + b.m.abs()) as f64 * 32.0 * 4.0).sum();
            let portable = dot_q4_portable::<8>(w, tile);
            for isa in Isa::supported() {
                let got8 = dot_q4::<8>(isa, w, tile);
                for t in 0..8 {
                    prop_assert!(close(got8[t], reference(&deq, tile.row(t)), scale));
                    // bit-identical across instruction sets and tile sizes
                    prop_assert_eq!(got8[t].to_bits(), portable[t].to_bits());
                    let one = quantized(&xs[t * n..(t + 1) * n], n, 1);
                    prop_assert_eq!(got8[t].to_bits(), dot_q4::<1>(isa, w, one.tile_of(0))[0].to_bits());
                }
                let got3 = dot_q4::<3>(isa, w, three.tile_of(0));
                prop_assert_eq!(got3[2].to_bits(), got8[3].to_bits());
            }
        }

        #[test]
        fn q8_kernels_match_the_reference_and_each_other(
            qs in proptest::collection::vec(-128i8..=127, 32..400),
            ds in proptest::collection::vec(0.0f32..0.05, 1..40),
            xs in proptest::collection::vec(-4.0f32..4.0, 32 * 40 * 5),
        ) {
            let blocks: Vec<BlockQ8> = ds.iter().enumerate().map(|(i, &d)| {
                let mut q = [0i8; 32];
                for (j, v) in q.iter_mut().enumerate() { *v = qs[(i * 32 + j) % qs.len()]; }
                BlockQ8 { d, qs: q }
            }).collect();
            let mut d: Vec<f32> = blocks.iter().map(|b| b.d).collect();
            d.resize(blocks.len().next_multiple_of(GROUP), 0.0);
            let wqs = pack_q8_row(&blocks);
            let w = Q8Row { qs: &wqs, d: &d };
            let n = blocks.len() * 32;
            let acts = quantized(&xs[..5 * n], n, 5);
            let tile = acts.tile_of(0);
            let deq: Vec<[f32; 32]> = blocks.iter().map(BlockQ8::dequantize).collect();
            let scale: f64 = blocks.iter().map(|b| b.d as f64 * 128.0 * 32.0 * 4.0).sum();
            let portable = dot_q8_portable::<5>(w, tile);
            for isa in Isa::supported() {
                let got = dot_q8::<5>(isa, w, tile);
                for t in 0..5 {
                    prop_assert!(close(got[t], reference(&deq, tile.row(t)), scale));
                    prop_assert_eq!(got[t].to_bits(), portable[t].to_bits());
                    let one = quantized(&xs[t * n..(t + 1) * n], n, 1);
                    prop_assert_eq!(got[t].to_bits(), dot_q8::<1>(isa, w, one.tile_of(0))[0].to_bits());
                }
            }
        }
    }
}
