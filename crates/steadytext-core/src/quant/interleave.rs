//! The interleaved block layout shared by weights and activations.
//!
//! A row's blocks are split into *subgroups*: as many groups of eight ([`GROUP`]) as fit, then
//! at most one each of four, two and one block (a row of 18 blocks: 8, 8, 2). A subgroup of `n`
//! blocks is stored as `n` vectors of 32 bytes, and each 4-byte lane of a vector holds four
//! consecutive values of one block: lane `l` belongs to block `l mod n` ([`slot`]). One integer
//! multiply-add of a weight vector with the activation vector at the same place (four byte
//! products summed per 32-bit lane, `vpdpbusd` / `vpmaddubsw`) so adds to each lane only products
//! of one block. For a group of eight that leaves each block's exact integer dot product in its
//! own lane with no horizontal reduction, ready to be scaled by the eight blocks' scales at once;
//! a smaller subgroup needs one to three lane folds.
//!
//! Four-bit weights put vectors `2c` and `2c + 1` of a subgroup in the low and high nibbles of the
//! same 32 bytes, so one load and two masks give both; a lone block keeps GGUF's order (byte `i`
//! holds value `i` in its low nibble and value `i + 16` in its high one), which is this layout
//! split in two 16-byte halves.

use super::activations::GROUP;
use super::blocks::{BlockQ4, BlockQ8};

/// Position of value `i` (0..32) of block `j` (0..n) among the `32·n` values of a subgroup of
/// `n` blocks (`n` = 8, 4, 2 or 1).
///
/// ```
/// use steadytext_core::quant::interleave::slot;
/// assert_eq!((slot(8, 0, 0), slot(8, 1, 0), slot(8, 0, 4), slot(8, 7, 31)), (0, 4, 32, 255));
/// assert_eq!((slot(2, 1, 0), slot(2, 0, 4), slot(1, 0, 17)), (4, 8, 17));
/// ```
#[inline(always)]
pub const fn slot(n: usize, j: usize, i: usize) -> usize {
    let per_vector = GROUP / n; // lanes of one block in a vector
    let unit = i / 4;
    let lane = (unit % per_vector) * n + j;
    (unit / per_vector) * 32 + lane * 4 + i % 4
}

/// Blocks of a row that belong to full groups of eight.
#[inline(always)]
pub const fn full_blocks(blocks: usize) -> usize {
    blocks / GROUP * GROUP
}

/// The subgroups `(first block, blocks)` of a row of `blocks` blocks, in order.
pub fn subgroups(blocks: usize) -> impl Iterator<Item = (usize, usize)> {
    let full = full_blocks(blocks);
    let tail = blocks - full;
    (0..full).step_by(GROUP).map(|o| (o, GROUP)).chain(
        [4, 2, 1]
            .into_iter()
            .filter(move |&n| tail & n != 0)
            .map(move |n| (full + (tail & !(2 * n - 1)), n)),
    )
}

/// The subgroup `(first block, blocks)` holding block `b` of a row of `blocks` blocks.
pub fn subgroup_of(blocks: usize, b: usize) -> (usize, usize) {
    subgroups(blocks)
        .find(|&(o, n)| (o..o + n).contains(&b))
        .expect("block inside the row")
}

fn q4_value(b: &BlockQ4, i: usize) -> u8 {
    if i < 16 {
        b.qs[i] & 0x0F
    } else {
        b.qs[i - 16] >> 4
    }
}

/// One row of four-bit blocks in the kernels' layout (as many 16-byte entries as blocks).
pub fn pack_q4_row(blocks: &[BlockQ4]) -> Vec<[u8; 16]> {
    let mut out = Vec::with_capacity(blocks.len());
    pack_q4_row_into(blocks, &mut out);
    out
}

/// [`pack_q4_row`], appended to `out`.
pub fn pack_q4_row_into(blocks: &[BlockQ4], out: &mut Vec<[u8; 16]>) {
    for (o, n) in subgroups(blocks.len()) {
        let sub = &blocks[o..o + n];
        match n {
            8 => pack_q4_subgroup::<8>(sub, out),
            4 => pack_q4_subgroup::<4>(sub, out),
            2 => pack_q4_subgroup::<2>(sub, out),
            _ => out.push(sub[0].qs),
        }
    }
}

/// A subgroup of `N` ≥ 2 four-bit blocks: vectors `2c` (low nibbles) and `2c + 1` (high
/// nibbles) share 32 bytes; byte `4l + e` holds, of block `l mod N`, the values that [`slot`]
/// puts there.
fn pack_q4_subgroup<const N: usize>(sub: &[BlockQ4], out: &mut Vec<[u8; 16]>) {
    let per_vector = GROUP / N;
    for c in 0..N / 2 {
        let mut bytes = [0u8; 32];
        for l in 0..GROUP {
            let (b, unit) = (&sub[l % N], l / N);
            for e in 0..4 {
                let lo = q4_value(b, (2 * c * per_vector + unit) * 4 + e);
                let hi = q4_value(b, ((2 * c + 1) * per_vector + unit) * 4 + e);
                bytes[4 * l + e] = lo | (hi << 4);
            }
        }
        out.push(bytes[..16].try_into().expect("16 bytes"));
        out.push(bytes[16..].try_into().expect("16 bytes"));
    }
}

/// Block `b`'s nibbles in GGUF's order, from a row packed by [`pack_q4_row`].
pub fn unpack_q4(row: &[[u8; 16]], b: usize) -> [u8; 16] {
    let (o, n) = subgroup_of(row.len(), b);
    if n == 1 {
        return row[o];
    }
    let value = |i: usize| {
        let s = slot(n, b - o, i);
        let (c, r) = (s / 64, s % 64);
        let byte = 32 * c + r % 32;
        let q = row[o + byte / 16][byte % 16];
        if r < 32 {
            q & 0x0F
        } else {
            q >> 4
        }
    };
    std::array::from_fn(|i| value(i) | (value(i + 16) << 4))
}

/// One row of eight-bit blocks in the kernels' layout (as many 32-byte entries as blocks).
pub fn pack_q8_row(blocks: &[BlockQ8]) -> Vec<[i8; 32]> {
    let mut out = Vec::with_capacity(blocks.len());
    pack_q8_row_into(blocks, &mut out);
    out
}

/// [`pack_q8_row`], appended to `out`.
pub fn pack_q8_row_into(blocks: &[BlockQ8], out: &mut Vec<[i8; 32]>) {
    for (o, n) in subgroups(blocks.len()) {
        let mut natural = [[0i8; 32]; GROUP];
        for (q, b) in natural.iter_mut().zip(&blocks[o..o + n]) {
            *q = b.qs;
        }
        let start = out.len();
        out.resize(start + n, [0i8; 32]);
        scatter(&natural[..n], &mut out[start..]);
    }
}

/// `n` blocks of 32 values in natural order into one subgroup's `n` vectors.
#[inline(always)]
pub fn scatter(blocks: &[[i8; 32]], out: &mut [[i8; 32]]) {
    let n = blocks.len();
    let per_vector = GROUP / n;
    for (j, b) in blocks.iter().enumerate() {
        for unit in 0..8 {
            let lane = (unit % per_vector) * n + j;
            let v = &mut out[unit / per_vector];
            v[lane * 4..lane * 4 + 4].copy_from_slice(&b[unit * 4..unit * 4 + 4]);
        }
    }
}

/// Value `i` of block `b` from a row of 32-byte entries in the kernels' layout (packed eight-bit
/// weights, or quantised activations).
#[inline]
pub fn byte_at(row: &[[i8; 32]], b: usize, i: usize) -> i8 {
    let (o, n) = subgroup_of(row.len(), b);
    let s = slot(n, b - o, i);
    row[o + s / 32][s % 32]
}

/// Block `b`'s 32 values in natural order, from a row of 32-byte entries in the kernels' layout
/// (its subgroup found once, not per value as [`byte_at`] does).
pub fn unpack_q8(row: &[[i8; 32]], b: usize) -> [i8; 32] {
    let (o, n) = subgroup_of(row.len(), b);
    std::array::from_fn(|i| {
        let s = slot(n, b - o, i);
        row[o + s / 32][s % 32]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_permutations() {
        for n in [8, 4, 2, 1] {
            let mut seen = vec![false; 32 * n];
            for j in 0..n {
                for i in 0..32 {
                    assert!(!seen[slot(n, j, i)]);
                    seen[slot(n, j, i)] = true;
                }
            }
        }
    }

    #[test]
    fn subgroups_cover_the_row_in_order() {
        for blocks in 1..40 {
            let mut next = 0;
            for (o, n) in subgroups(blocks) {
                assert_eq!(o, next);
                assert!([8, 4, 2, 1].contains(&n));
                next += n;
            }
            assert_eq!(next, blocks);
        }
        let v: Vec<_> = subgroups(18).collect();
        assert_eq!(v, [(0, 8), (8, 8), (16, 2)]);
    }

    #[test]
    fn packed_rows_unpack_to_their_blocks() {
        for nb in [1usize, 2, 3, 7, 8, 18, 23] {
            let q4: Vec<BlockQ4> = (0..nb as u8)
                .map(|b| BlockQ4 {
                    d: 1.0,
                    m: 0.0,
                    qs: std::array::from_fn(|i| b.wrapping_mul(31).wrapping_add(i as u8 * 17)),
                })
                .collect();
            let packed = pack_q4_row(&q4);
            assert_eq!(packed.len(), nb);
            for (j, b) in q4.iter().enumerate() {
                assert_eq!(unpack_q4(&packed, j), b.qs, "{nb} blocks, block {j}");
            }
            let q8: Vec<BlockQ8> = (0..nb as i32)
                .map(|b| BlockQ8 {
                    d: 1.0,
                    qs: std::array::from_fn(|i| ((b * 37 + i as i32 * 11) % 255 - 127) as i8),
                })
                .collect();
            let packed = pack_q8_row(&q8);
            for (j, b) in q8.iter().enumerate() {
                assert_eq!(unpack_q8(&packed, j), b.qs);
                for i in 0..32 {
                    assert_eq!(byte_at(&packed, j, i), b.qs[i]);
                }
            }
        }
    }
}
