//! Review analysis end to end (sentiment, summary, themes) on the real default model, cold and
//! as a memory-cache hit. Run on an idle machine:
//!
//! ```sh
//! scripts/fetch-model && cargo bench --features schema --bench analysis
//! ```

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use steadytext::cache::{Cache, MemoryStore};
use steadytext::{Backend, Engine};
use steadytext_schema::prompts::ReviewInput;
use steadytext_schema::{Analyst, Rating};

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(
        Engine::builder()
            .build_backend()
            .expect("run scripts/fetch-model first"),
    );
    let review = ReviewInput {
        rating: Some(Rating::new(3).unwrap()),
        title: Some("Decent but could be better"),
        text: "The product works as advertised but the shipping took forever and the packaging was damaged. The product itself is okay for the price.",
    };

    let cold = Engine::new(backend.clone(), Cache::disabled());
    let mut g = c.benchmark_group("review_analysis");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("end_to_end_cold", |b| {
        b.iter(|| rt.block_on(Analyst::new(&cold).review(&review)).unwrap())
    });
    g.finish();

    let cached = Engine::new(
        backend,
        Cache::new(vec![Arc::new(MemoryStore::new(8 << 20))]),
    );
    rt.block_on(Analyst::new(&cached).review(&review)).unwrap();
    c.bench_function("review_analysis/cached", |b| {
        b.iter(|| rt.block_on(Analyst::new(&cached).review(&review)).unwrap())
    });
}

criterion_group!(analysis, benches);
criterion_main!(analysis);
