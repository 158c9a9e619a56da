//! The grounding report: how much of what the analyses show is quoted from its input or
//! checked against its facts, before and after grounding, measured side by side in one run.
//!
//! ```sh
//! scripts/fetch-eval-data --whole-reviews          # 40 whole Amazon reviews (vaderSentiment sdist)
//! cargo run --release --features schema --example grounding_eval -- data/eval/whole_reviews.jsonl
//! ```
//!
//! Reviews: "before" is the previous method run here on the same model — a free one-sentence
//! summary (`PromptBuilder::review_summary`, stop at a newline) and free theme labels (the
//! previous prompt, JSON `{"themes": [string ≤ 40 chars, ≤ 3]}`); "after" is
//! `Analyst::review` (themes quoted through an `enum` of the review's phrases, a quoted
//! summary). Per method: share of themes quoted verbatim, summary novel-word rate (content
//! words absent from the review), summaries with a number or name not in the review, looping
//! summaries. Business texts (the seed scenario's retention strategies, dashboard insights and
//! executive summary, as `steadytext demo`): the model's prose, and what is shown now
//! (checked prose or the labelled facts fallback), each checked against its prompt's facts.
//! All model calls go through the cache: a rerun is fast.
//!
//! `--speed` instead times both review methods uncached, side by side in one run: the first
//! 30 reviews, 8 analyses in flight (as `queue drain --concurrency 8`), each method including
//! the sentiment choice; it prints reviews per second.

use std::io::BufRead;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use steadytext::{Engine, GenerateOptions};
use steadytext_schema::analysis::{first_sentence, ANALYSIS_REPEAT_PENALTY};
use steadytext_schema::faithfulness::{check, Grounding, Unfaithful};
use steadytext_schema::prompts::{PromptBuilder, ReviewInput};
use steadytext_schema::quote::{content_words, is_quoted};
use steadytext_schema::scenario::{run_scenario, seed_sample};
use steadytext_schema::Analyst;

/// What one method produced for one review.
struct Output {
    summary: String,
    themes: Vec<String>,
}

#[derive(Default)]
struct Tally {
    reviews: usize,
    themes: usize,
    quoted: usize,
    summary_words: usize,
    novel_words: usize,
    invented: usize,
    loops: usize,
}

impl Tally {
    fn add(&mut self, text: &str, out: &Output) {
        self.reviews += 1;
        self.themes += out.themes.len();
        self.quoted += out.themes.iter().filter(|t| is_quoted(t, text)).count();
        let source: std::collections::HashSet<String> = content_words(text).into_iter().collect();
        let words = content_words(&out.summary);
        self.summary_words += words.len();
        self.novel_words += words.iter().filter(|w| !source.contains(*w)).count();
        match check(&out.summary, text, "") {
            Err(Unfaithful::Number(_) | Unfaithful::Name(_)) => self.invented += 1,
            Err(Unfaithful::Loop(_)) => self.loops += 1,
            _ => {}
        }
    }

    fn row(&self, name: &str) -> String {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        format!(
            "| {name} | {} | {:.2} ({}/{}) | {:.2} | {} | {} |",
            self.reviews,
            ratio(self.quoted, self.themes),
            self.quoted,
            self.themes,
            ratio(self.novel_words, self.summary_words),
            self.invented,
            self.loops,
        )
    }
}

/// The previous review method: free summary, free theme labels.
async fn before(engine: &Engine, text: &str) -> Result<Output> {
    let prompts = PromptBuilder::new();
    let review = ReviewInput {
        rating: None,
        title: None,
        text,
    };
    let base = GenerateOptions::default().repeat_penalty(ANALYSIS_REPEAT_PENALTY);
    let p = prompts.review_summary(&review);
    let mut o = base.clone().max_tokens(50);
    o.stop = vec!["\n".into()];
    let summary = first_sentence(&engine.generate(p.as_str(), &o).await?.text);
    let themes_prompt = format!(
        "List up to 3 key themes of this customer review, each a short phrase of one to three words.\nReview: {}",
        prompts.redacted_text(text)
    );
    let schema = json!({
        "type": "object",
        "properties": {"themes": {"type": "array", "maxItems": 3,
            "items": {"type": "string", "minLength": 1, "maxLength": 40}}},
        "required": ["themes"], "additionalProperties": false
    });
    let v = engine
        .generate_json(&themes_prompt, &schema, &base.clone().max_tokens(48))
        .await?;
    let themes = v["themes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Output { summary, themes })
}

async fn after(analyst: &Analyst<'_>, text: &str) -> Result<Output> {
    let a = analyst
        .review(&ReviewInput {
            rating: None,
            title: None,
            text,
        })
        .await?;
    Ok(Output {
        summary: a.summary,
        themes: a.themes,
    })
}

#[derive(Default)]
struct TextTally {
    texts: usize,
    numbers: usize,
    names: usize,
    claims: usize,
    loops: usize,
    fallbacks: usize,
}

impl TextTally {
    fn add(&mut self, text: &str, facts: &str, prompt: &str) {
        self.texts += 1;
        match check(text, facts, prompt) {
            Err(Unfaithful::Number(_)) => self.numbers += 1,
            Err(Unfaithful::Name(_)) => self.names += 1,
            Err(Unfaithful::Claim(_)) => self.claims += 1,
            Err(Unfaithful::Loop(_)) => self.loops += 1,
            _ => {}
        }
    }

    fn row(&self, name: &str, fallbacks: bool) -> String {
        let f = if fallbacks {
            self.fallbacks.to_string()
        } else {
            "–".into()
        };
        format!(
            "| {name} | {} | {} | {} | {} | {} | {f} |",
            self.texts, self.numbers, self.names, self.claims, self.loops
        )
    }
}

/// Reviews per second of each method, uncached, 8 in flight.
async fn speed(texts: &[String]) -> Result<()> {
    use futures_util::stream::{self, TryStreamExt};
    let backend = Engine::builder().build_shared_backend()?;
    let engine = Engine::new(backend, steadytext_core::Cache::disabled());
    let analyst = Analyst::new(&engine);
    let texts = &texts[..texts.len().min(30)];
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    println!(
        "{} reviews, {} characters on average, 8 in flight, uncached",
        texts.len(),
        chars / texts.len().max(1)
    );
    // How much model work the grounded method does per review (cached engine: counts only).
    let counting = Engine::builder().build()?;
    let counter = Analyst::new(&counting);
    let (mut aspects, mut by_model, mut sentences) = (0, 0, 0);
    for text in texts {
        let review = ReviewInput {
            rating: None,
            title: None,
            text,
        };
        let a = counter.review_aspects(&review).await?;
        aspects += a.len();
        by_model += a
            .iter()
            .filter(|x| x.categorised_by == steadytext_schema::aspects::CategorisedBy::Model)
            .count();
        let mut s: Vec<&str> = a
            .iter()
            .filter_map(|x| steadytext_schema::quote::sentence_containing(text, &x.phrase))
            .collect();
        s.dedup();
        sentences += s.len();
    }
    println!(
        "per review: {:.2} aspects, {:.2} categorised by the model, {:.2} sentences classified",
        aspects as f64 / texts.len() as f64,
        by_model as f64 / texts.len() as f64,
        sentences as f64 / texts.len() as f64
    );
    for round in 0..2 {
        for method in ["before", "after"] {
            let started = std::time::Instant::now();
            stream::iter(texts.iter().map(Ok::<_, anyhow::Error>))
                .map_ok(|text| {
                    let (engine, analyst) = (&engine, &analyst);
                    async move {
                        let review = ReviewInput {
                            rating: None,
                            title: None,
                            text,
                        };
                        if method == "before" {
                            analyst.review_sentiment(&review).await?;
                            before(engine, text).await?;
                        } else {
                            // The grounded analysis runs its own sentiment call.
                            after(analyst, text).await?;
                        }
                        Ok::<_, anyhow::Error>(())
                    }
                })
                .try_buffer_unordered(8)
                .try_collect::<Vec<()>>()
                .await?;
            let s = started.elapsed().as_secs_f64();
            println!(
                "round {} {method}: {:.1} s, {:.2} reviews/s",
                round + 1,
                s,
                texts.len() as f64 / s
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let speed_mode = args.iter().any(|a| a == "--speed");
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "data/eval/whole_reviews.jsonl".into());
    let f = std::fs::File::open(&path)
        .with_context(|| format!("{path}: run scripts/fetch-eval-data --whole-reviews"))?;
    let mut texts = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let v: Value = serde_json::from_str(&line?)?;
        texts.push(v["text"].as_str().context("text")?.to_string());
    }
    if speed_mode {
        return speed(&texts).await;
    }
    let engine = Engine::builder().build()?;
    let analyst = Analyst::new(&engine);

    let (mut old, mut new) = (Tally::default(), Tally::default());
    let mut examples = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        eprintln!("review {}/{}", i + 1, texts.len());
        let b = before(&engine, text).await?;
        let a = after(&analyst, text).await?;
        old.add(text, &b);
        new.add(text, &a);
        if examples.len() < 3 {
            examples.push((b, a));
        }
    }
    println!("# Grounding report ({} reviews from {path})\n", texts.len());
    println!("| reviews | n | themes quoted | summary novel-word rate | summaries with invented numbers/names | looping summaries |");
    println!("|---|---|---|---|---|---|");
    println!("{}", old.row("before (free summary, free labels)"));
    println!("{}", new.row("after (quoted themes, quoted summary)"));
    for (i, (b, a)) in examples.iter().enumerate() {
        println!(
            "\nreview {}:\n  before: {:?} {:?}\n  after:  {:?} {:?}",
            i + 1,
            b.summary,
            b.themes,
            a.summary,
            a.themes
        );
    }

    // Business texts of the seed scenario: the model's prose (what was shown before the
    // check) and what is shown now, each checked against its prompt's facts.
    let now = chrono::Utc::now();
    let report = run_scenario(&analyst, seed_sample(now), now).await?;
    let prompts = PromptBuilder::new();
    let mut texts = Vec::new();
    for r in &report.retention {
        texts.push((
            prompts.retention_strategy(&r.risk, &r.actions),
            r.strategy.clone(),
            r.grounding,
        ));
    }
    for d in &report.dashboard {
        texts.push((
            prompts.customer_insight(&d.snapshot),
            d.insight.clone(),
            d.grounding,
        ));
    }
    let e = &report.executive;
    texts.push((
        prompts.executive_summary(&e.stats, &e.actions),
        e.insights.clone(),
        e.grounding,
    ));
    let (mut prose, mut shown) = (TextTally::default(), TextTally::default());
    let base = GenerateOptions::default().repeat_penalty(ANALYSIS_REPEAT_PENALTY);
    for (prompt, text, grounding) in &texts {
        let o = base
            .clone()
            .max_tokens(prompt.max_tokens().unwrap_or(200) as usize);
        let raw = engine.generate(prompt.as_str(), &o).await?.text;
        prose.add(&raw, prompt.facts(), prompt.as_str());
        shown.add(text, prompt.facts(), prompt.as_str());
        if *grounding == Grounding::Fallback {
            shown.fallbacks += 1;
        }
    }
    println!("\n| business texts (seed scenario: retention, dashboard, executive) | texts | invented numbers | invented names | claims the facts do not make | loops | fallbacks used |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "{}",
        prose.row("model prose (shown before the check)", false)
    );
    println!("{}", shown.row("shown now", true));
    Ok(())
}
