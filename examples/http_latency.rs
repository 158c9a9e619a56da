//! Per-call latency, local backend vs an inference server (with and without llama-server's
//! prompt cache), uncached: `generate` of 32 tokens and
//! one review analysis (sentiment, summary, themes). Start a server first, e.g.
//! `scripts/llama-server build && scripts/llama-server start 8089`, then (idle machine, one
//! thread on each side):
//!
//! ```sh
//! RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1 cargo run --release --features http,schema \
//!     --example http_latency -- http://127.0.0.1:8089 [ROUNDS]
//! ```

use std::sync::Arc;
use std::time::Instant;

use steadytext::http::{HttpBackend, HttpConfig};
use steadytext::{Backend, Cache, Engine, GenerateOptions};
use steadytext_schema::prompts::ReviewInput;
use steadytext_schema::{Analyst, Rating};

const PROMPTS: &[&str] = &[
    "Summarize in one sentence: great product, slow shipping.",
    "Write a haiku about the sea.",
    "List three uses of a paperclip.",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn measure(name: &str, backend: Arc<dyn Backend>, rounds: usize) -> anyhow::Result<()> {
    let engine = Engine::new(backend, Cache::disabled());
    let opts = GenerateOptions::default().max_tokens(32);
    // Warm-up (first-call costs such as lazy loading are not per-call latency).
    engine.generate("Hello.", &opts).await?;
    let mut generate = Vec::new();
    let mut tokens = 0;
    for _ in 0..rounds {
        for p in PROMPTS {
            let t = Instant::now();
            let g = engine.generate(p, &opts).await?;
            generate.push(t.elapsed().as_secs_f64() * 1e3);
            tokens += g.completion_tokens;
        }
    }
    let review = ReviewInput {
        rating: Some(Rating::new(3)?),
        title: Some("Decent but could be better"),
        text: "The product works as advertised but the shipping took forever and the packaging was damaged. The product itself is okay for the price.",
    };
    let analyst = Analyst::new(&engine);
    let mut analysis = Vec::new();
    let mut sentiment = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        analyst.review(&review).await?;
        analysis.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        analyst.review_sentiment(&review).await?;
        sentiment.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "{name}: generate 32 tokens median {:.0} ms over {} calls ({:.1} tokens/call); review analysis median {:.0} ms over {} calls (of which the sentiment step {:.0} ms)",
        median(generate.clone()),
        generate.len(),
        tokens as f64 / generate.len() as f64,
        median(analysis.clone()),
        analysis.len(),
        median(sentiment.clone()),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8089".into());
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(3);
    let http: Arc<dyn Backend> = Arc::new(HttpBackend::connect(HttpConfig::new(&url)).await?);
    measure(&format!("http ({url})"), http, rounds).await?;
    // llama-server's prompt cache: a shared prompt prefix (the few-shot sentiment prompt) is not
    // recomputed; faster, but not bit-for-bit guaranteed (see HttpConfig::reuse_prompt_cache).
    let reuse: Arc<dyn Backend> =
        Arc::new(HttpBackend::connect(HttpConfig::new(&url).reuse_prompt_cache(true)).await?);
    measure(&format!("http ({url}), prompt cache reused"), reuse, rounds).await?;
    let local: Arc<dyn Backend> =
        Arc::new(tokio::task::spawn_blocking(|| Engine::builder().build_backend()).await??);
    measure("local", local, rounds).await?;
    Ok(())
}
