//! Quantised weights and the integer SIMD kernels that multiply them.
//!
//! - [`blocks`]: block layouts and conversion from GGUF's Q4_0, Q4_1, Q4_K and Q8_0.
//! - [`activations`]: activations quantised per token.
//! - [`interleave`]: the layout of eight blocks that lets the kernels skip horizontal sums.
//! - [`dot`]: dot-product kernels (AVX-512 VNNI, AVX2, portable; bit-identical to each other).
//! - [`matrix`]: [`QMatrix`] and the row-parallel [`matmul`].

pub mod activations;
pub mod blocks;
pub mod dot;
pub mod interleave;
pub mod matrix;

pub use activations::{ActRow, ActTile, Activations};
pub use blocks::{BlockQ4, BlockQ8, QK};
pub use dot::Isa;
pub use matrix::{matmul, QData, QMatrix};
