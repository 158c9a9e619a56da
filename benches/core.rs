//! Inference-core benchmarks on the real default model (run on an idle machine):
//! generate 32 tokens cold, the same call as a memory-tier and a disk-tier cache hit, and
//! tokenization.
//!
//! ```sh
//! scripts/fetch-model && cargo bench --bench core
//! ```

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use steadytext::cache::{Cache, DiskStore, MemoryStore};
use steadytext::{Backend, Engine, GenerateOptions, LocalBackend};

const PROMPT: &str =
    "Summarize this customer review in one sentence: The product works as advertised \
but the shipping took forever and the packaging was damaged.";

fn backend() -> Arc<LocalBackend> {
    Arc::new(
        Engine::builder()
            .build_backend()
            .expect("model loads (run scripts/fetch-model first)"),
    )
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backend = backend();
    let opts = GenerateOptions::default().max_tokens(32);

    let mut g = c.benchmark_group("generate");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let cold = Engine::new(backend.clone() as Arc<dyn Backend>, Cache::disabled());
    g.bench_function("cold_32_tokens", |b| {
        b.iter(|| rt.block_on(cold.generate(PROMPT, &opts)).unwrap())
    });
    g.finish();

    let dir = tempfile::tempdir().unwrap();
    let memory = Engine::new(
        backend.clone() as Arc<dyn Backend>,
        Cache::new(vec![Arc::new(MemoryStore::new(1 << 20))]),
    );
    let disk = Engine::new(
        backend.clone() as Arc<dyn Backend>,
        Cache::new(vec![Arc::new(DiskStore::new(dir.path()))]),
    );
    rt.block_on(memory.generate(PROMPT, &opts)).unwrap();
    rt.block_on(disk.generate(PROMPT, &opts)).unwrap();
    let mut g = c.benchmark_group("cache_hit");
    g.bench_function("memory", |b| {
        b.iter(|| assert!(rt.block_on(memory.generate(PROMPT, &opts)).unwrap().cached))
    });
    g.bench_function("disk", |b| {
        b.iter(|| assert!(rt.block_on(disk.generate(PROMPT, &opts)).unwrap().cached))
    });
    g.finish();

    let tokenizer = backend.tokenizer().unwrap();
    let chat = backend.render_chat(PROMPT).unwrap();
    c.bench_function("tokenize_chat_prompt", |b| {
        b.iter(|| tokenizer.encode(&chat).unwrap())
    });
}

criterion_group!(core, benches);
criterion_main!(core);
