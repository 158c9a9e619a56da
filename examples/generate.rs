//! Deterministic, cached generation with the default local model.
//!
//! ```sh
//! scripts/fetch-model && cargo run --example generate -- "Summarize: great product, slow shipping."
//! ```

use std::time::Instant;

use steadytext::{Engine, GenerateOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Summarize this customer review in one sentence: the product works as advertised but the shipping took forever.".into());
    let engine = Engine::builder().build()?;
    let opts = GenerateOptions::default().max_tokens(48);

    for attempt in 1..=2 {
        let start = Instant::now();
        let g = engine.generate(&prompt, &opts).await?;
        println!(
            "[{attempt}] {:>8.2} ms  cached={:<5} tokens={:<3} {:?}\n    {}",
            start.elapsed().as_secs_f64() * 1e3,
            g.cached,
            g.completion_tokens,
            g.finish_reason,
            g.text
        );
    }
    Ok(())
}
