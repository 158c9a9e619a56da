//! The native runtime's kernels and forward pass (run on an idle machine):
//!
//! - `matmul/<format>/<tokens>`: one weight matrix of the default model's FFN shape
//!   (1536 × 576) times 1, 8 or 64 activation rows, per instruction set; throughput is weight
//!   bytes streamed per second.
//! - `forward/prefill_64`, `forward/decode_step`, `forward/batch8_step`: the real default model.
//!
//! ```sh
//! scripts/fetch-model && cargo bench --bench kernels
//! ```

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use steadytext::model::LanguageModel;
use steadytext::quant::{
    blocks::{from_q4_1, from_q8_0},
    matmul, Activations, Isa, QData, QMatrix,
};
use steadytext::transformer::{KvCache, NativeModel, SeqStep, Weights};

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// GGUF-format blocks with sane half-float scales.
fn gguf_blocks(block_bytes: usize, n: usize, scale_fields: usize) -> Vec<u8> {
    let mut b = bytes(block_bytes * n, 7);
    for blk in b.chunks_exact_mut(block_bytes) {
        for f in 0..scale_fields {
            // 0.01 as f16 = 0x211F
            blk[2 * f] = 0x1F;
            blk[2 * f + 1] = 0x21;
        }
    }
    b
}

fn kernels(c: &mut Criterion) {
    let (rows, cols) = (1536, 576);
    let n_blocks = rows * cols / 32;
    let q4 = QMatrix::new(
        rows,
        cols,
        QData::Q4(from_q4_1(&gguf_blocks(20, n_blocks, 2))),
    )
    .unwrap();
    let q8 = QMatrix::new(
        rows,
        cols,
        QData::Q8(from_q8_0(&gguf_blocks(34, n_blocks, 1))),
    )
    .unwrap();
    let mut g = c.benchmark_group("matmul");
    g.sample_size(30).measurement_time(Duration::from_secs(3));
    for (name, m) in [("q4_1", &q4), ("q8_0", &q8)] {
        for tokens in [1usize, 8, 64] {
            let x: Vec<f32> = bytes(tokens * cols, 3)
                .iter()
                .map(|&b| b as f32 / 64.0 - 2.0)
                .collect();
            let mut acts = Activations::new();
            acts.quantize(&x, cols);
            let mut out = vec![0f32; tokens * rows];
            g.throughput(Throughput::Bytes(m.bytes() as u64));
            for isa in Isa::supported() {
                let id = BenchmarkId::new(format!("{name}/{}", isa.name()), tokens);
                g.bench_with_input(id, &tokens, |b, _| {
                    b.iter(|| matmul(isa, &[m], &acts, &mut out, rows))
                });
            }
        }
    }
    g.finish();
}

fn forward(c: &mut Criterion) {
    let path = steadytext::resolve_model(None).expect("run scripts/fetch-model first");
    let weights = Arc::new(Weights::load(&path).unwrap());
    let prompt: Vec<u32> = (0..64).map(|i| 1000 + 37 * i).collect();
    let mut g = c.benchmark_group("forward");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(64));
    g.bench_function("prefill_64", |b| {
        let mut m = NativeModel::new(weights.clone());
        b.iter(|| m.forward(&prompt, 0).unwrap())
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode_step", |b| {
        let mut m = NativeModel::new(weights.clone());
        m.forward(&prompt, 0).unwrap();
        b.iter(|| m.forward(&[2000], 64).unwrap())
    });
    g.throughput(Throughput::Elements(8));
    g.bench_function("batch8_step", |b| {
        let mut caches: Vec<KvCache> = (0..8).map(|_| KvCache::default()).collect();
        for kv in caches.iter_mut() {
            weights
                .forward(&mut [SeqStep {
                    kv,
                    tokens: &prompt,
                    logits: false,
                    rows: None,
                }])
                .unwrap();
        }
        b.iter(|| {
            for kv in caches.iter_mut() {
                kv.truncate(64, weights.kv_dim());
            }
            let tok = [2000u32];
            let mut steps: Vec<SeqStep<'_>> = caches
                .iter_mut()
                .map(|kv| SeqStep {
                    kv,
                    tokens: &tok,
                    logits: true,
                    rows: None,
                })
                .collect();
            weights.forward(&mut steps).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, kernels, forward);
criterion_main!(benches);
