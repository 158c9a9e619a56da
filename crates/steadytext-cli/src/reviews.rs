//! `steadytext reviews analyze`: batch review analysis, JSONL in, JSONL out.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use steadytext_schema::prompts::ReviewInput;
use steadytext_schema::{Analyst, Rating};

use crate::Cli;

#[derive(Debug, Subcommand)]
pub enum ReviewsCommand {
    /// Analyse reviews: sentiment, one-sentence summary, up to 3 themes.
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Input JSONL: one `{"id", "text", "rating"?}` object per line.
    #[arg(long)]
    pub input: PathBuf,
    /// Output JSONL (appended to; ids already present are skipped, so a rerun resumes).
    #[arg(long)]
    pub output: PathBuf,
    /// Seed (part of every cache key).
    #[arg(long, default_value_t = steadytext_core::DEFAULT_SEED)]
    pub seed: u64,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Debug, Deserialize)]
struct InputLine {
    id: serde_json::Value,
    text: String,
    #[serde(default)]
    rating: Option<i64>,
}

fn id_key(id: &serde_json::Value) -> String {
    id.to_string()
}

/// Ids already written to `output` (a torn last line from a crash is ignored and redone).
fn done_ids(output: &PathBuf) -> Result<HashSet<String>> {
    let mut done = HashSet::new();
    if let Ok(f) = std::fs::File::open(output) {
        for line in BufReader::new(f).lines() {
            let line = line.with_context(|| format!("reading {}", output.display()))?;
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if let Some(id) = v.get("id") {
                    done.insert(id_key(id));
                }
            }
        }
    }
    Ok(done)
}

pub async fn run(cli: &Cli, cmd: &ReviewsCommand) -> Result<()> {
    let ReviewsCommand::Analyze(args) = cmd;
    let input = std::fs::read_to_string(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?;
    let lines: Vec<(usize, &str)> = input
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let done = done_ids(&args.output)?;
    // A torn last line (no newline) would glue onto the next record: terminate it first.
    let needs_newline = std::fs::read(&args.output)
        .map(|b| !b.is_empty() && b.last() != Some(&b'\n'))
        .unwrap_or(false);
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.output)
        .with_context(|| format!("opening {}", args.output.display()))?;
    if needs_newline {
        writeln!(out)?;
    }

    let engine = cli.engine_builder().lazy(true).build()?;
    let opts = steadytext_core::GenerateOptions::default()
        .seed(args.seed)
        .use_cache(!args.no_cache);
    let analyst = Analyst::new(&engine).with_options(opts);

    let bar = ProgressBar::new(lines.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} reviews  {elapsed} (eta {eta}) {msg}")
            .expect("valid template"),
    );
    let (mut analysed, mut skipped, mut malformed) = (0usize, 0usize, 0usize);
    for (line_no, line) in lines {
        bar.inc(1);
        let parsed: InputLine = match serde_json::from_str(line) {
            Ok(p) => p,
            Err(e) => {
                malformed += 1;
                bar.println(format!(
                    "{}:{line_no}: skipped malformed line: {e}",
                    args.input.display()
                ));
                continue;
            }
        };
        if done.contains(&id_key(&parsed.id)) {
            skipped += 1;
            continue;
        }
        let rating = match parsed.rating.map(Rating::try_from).transpose() {
            Ok(r) => r,
            Err(e) => {
                malformed += 1;
                bar.println(format!("{}:{line_no}: skipped: {e}", args.input.display()));
                continue;
            }
        };
        let review = ReviewInput {
            rating,
            title: None,
            text: &parsed.text,
        };
        let a = analyst.review(&review).await.with_context(|| {
            format!(
                "{}:{line_no}: analysing review {}",
                args.input.display(),
                parsed.id
            )
        })?;
        let row = serde_json::json!({
            "id": parsed.id,
            "sentiment": a.sentiment,
            "sentiment_score": a.sentiment_score,
            "summary": a.summary,
            "themes": a.themes,
            "needs_human_review": a.human_review.needed,
            "human_review_reasons": a.human_review.reasons,
            "prompt_version": a.prompt_version,
        });
        writeln!(out, "{row}")?;
        out.flush()?;
        analysed += 1;
    }
    bar.finish_and_clear();
    eprintln!(
        "analysed {analysed}, already done {skipped}, malformed {malformed} -> {}",
        args.output.display()
    );
    Ok(())
}
