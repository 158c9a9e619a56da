//! Quantised weights and the integer SIMD kernels that multiply them.
//!
//! - [`blocks`]: in-memory block layouts and conversion from GGUF's Q4_0, Q4_1, Q4_K and Q8_0.
//! - [`dot`]: dot-product kernels (AVX-512 VNNI, AVX2, portable; bit-identical to each other).
//! - [`matrix`]: [`QMatrix`] and the row-parallel [`matmul`].

pub mod blocks;
pub mod dot;
pub mod matrix;

pub use blocks::{quantize_activations, ActBlock, BlockQ4, BlockQ8, QK};
pub use dot::Isa;
pub use matrix::{matmul, QData, QMatrix};
