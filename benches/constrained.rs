//! Constrained-generation benchmarks on the real default model (run on an idle machine):
//! choice among the seed's 5 sentiment labels, the seed's ticket analysis as JSON, constraint
//! compile time and the per-token mask cost.
//!
//! ```sh
//! scripts/fetch-model && cargo bench --bench constrained
//! ```

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use steadytext::constraint::{ConstraintCompiler, MatcherConstraint};
use steadytext::decode::TokenConstraint;
use steadytext::{Backend, Cache, Constraint, Engine, GenerateOptions};

const REVIEW: &str = "Classify sentiment of this review (rating 3/5): The product works as advertised \
but the shipping took forever and the packaging was damaged. The product itself is okay for the price.";
const TICKET: &str =
    "Analyze support ticket: Subject: Late delivery, Description: My order was supposed \
to arrive last week but still hasnt been delivered. Tracking shows no updates., Category: shipping";
const LABELS: [&str; 5] = [
    "very_positive",
    "positive",
    "neutral",
    "negative",
    "very_negative",
];

fn ticket_schema() -> serde_json::Value {
    json!({
        "urgency": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "sentiment": {"type": "string", "enum": ["angry", "frustrated", "neutral", "satisfied", "happy"]},
        "root_cause": {"type": "string"},
        "suggested_resolution": {"type": "string"},
        "follow_up_needed": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}}
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backend = Arc::new(
        Engine::builder()
            .build_backend()
            .expect("model loads (run scripts/fetch-model first)"),
    );
    let engine = Engine::new(backend.clone() as Arc<dyn Backend>, Cache::disabled());
    let opts = GenerateOptions::default();

    let mut g = c.benchmark_group("constrained_call");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    g.bench_function("choice_5_sentiment_labels", |b| {
        b.iter(|| rt.block_on(engine.choice(REVIEW, &LABELS, &opts)).unwrap())
    });
    g.bench_function("json_seed_ticket", |b| {
        b.iter(|| {
            rt.block_on(engine.generate_json(TICKET, &ticket_schema(), &opts))
                .unwrap()
        })
    });
    g.finish();

    let tokenizer = backend.tokenizer().unwrap();
    let compiler = ConstraintCompiler::new(tokenizer, tokenizer.vocab_size()).unwrap();
    let ticket = Constraint::JsonSchema(ticket_schema());
    let mut g = c.benchmark_group("constraint");
    g.bench_function("compile_seed_ticket_schema", |b| {
        b.iter(|| compiler.compile(&ticket).unwrap())
    });
    g.bench_function("compile_date_regex", |b| {
        b.iter(|| {
            compiler
                .compile(&Constraint::Regex(r"\d{4}-\d{2}-\d{2}".into()))
                .unwrap()
        })
    });
    // Per-token cost: mask + consume over a realistic ticket answer.
    let answer = rt
        .block_on(engine.generate_json(TICKET, &ticket_schema(), &opts))
        .unwrap();
    let text = serde_json::to_string(&answer)
        .unwrap()
        .replace("\",\"", "\", \"")
        .replace("\":", "\": ")
        .replace(",\"", ", \"");
    let ids = tokenizer.encode(&text).unwrap();
    let template = compiler.matcher(&ticket).unwrap();
    let vocab = tokenizer.vocab_size();
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("mask_and_consume_per_token", |b| {
        let mut logits = vec![0f32; vocab];
        b.iter(|| {
            let mut m = MatcherConstraint::new(template.deep_clone());
            for &t in &ids {
                if m.is_stopped() {
                    break;
                }
                m.mask(&mut logits).unwrap();
                m.consume(t).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(constrained, benches);
criterion_main!(constrained);
