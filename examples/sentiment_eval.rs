//! Sentiment quality of the review analysis on a labelled, held-out review set.
//!
//! ```sh
//! scripts/fetch-eval-data data/eval/reviews.jsonl        # vaderSentiment's Amazon review sentences
//! cargo run --release --features schema --example sentiment_eval -- data/eval/reviews.jsonl        # report
//! cargo run --release --features schema --example sentiment_eval -- data/eval/reviews.jsonl --fit  # refit
//! ```
//!
//! Rows carry a `split` (train / test). `--fit` fits the calibration of
//! `steadytext_schema::SentimentModel` on the train split only and prints the Rust source of
//! `crates/steadytext-schema/src/sentiment_calibration.rs`. The report shows, for train and test
//! separately: the majority class, the seed's approach (a choice among its five labels with its
//! prompt, mapped to three classes) and the calibrated classifier `reviews analyze` uses, with
//! accuracy, macro-F1 and the test confusion matrix. All model calls go through the cache, so a
//! rerun is fast.

use std::io::BufRead;

use anyhow::{Context, Result};
use steadytext::{Engine, GenerateOptions};
use steadytext_schema::prompts::{PromptBuilder, ReviewInput};
use steadytext_schema::sentiment_model::SentimentModel;
use steadytext_schema::{Polarity, ReviewSentiment};

const CLASSES: [&str; 3] = ["positive", "neutral", "negative"];

struct Row {
    text: String,
    label: usize,
    train: bool,
}

fn load(path: &str) -> Result<Vec<Row>> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("{path}: run scripts/fetch-eval-data"))?;
    let mut rows = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let label = CLASSES
            .iter()
            .position(|c| Some(*c) == v["label"].as_str())
            .context("label")?;
        rows.push(Row {
            text: v["text"].as_str().context("text")?.to_string(),
            label,
            train: v["split"] == "train",
        });
    }
    Ok(rows)
}

fn polarity_index(s: ReviewSentiment) -> usize {
    match s.polarity() {
        Polarity::Positive => 0,
        Polarity::Neutral => 1,
        Polarity::Negative => 2,
    }
}

/// accuracy, macro-F1, confusion[truth][predicted]
fn metrics(truth: &[usize], pred: &[usize]) -> (f64, f64, [[usize; 3]; 3]) {
    let mut m = [[0usize; 3]; 3];
    for (&t, &p) in truth.iter().zip(pred) {
        m[t][p] += 1;
    }
    let acc = (0..3).map(|i| m[i][i]).sum::<usize>() as f64 / truth.len().max(1) as f64;
    let f1 = (0..3)
        .map(|c| {
            let tp = m[c][c] as f64;
            let fp: f64 = (0..3).filter(|&t| t != c).map(|t| m[t][c] as f64).sum();
            let fneg: f64 = (0..3).filter(|&p| p != c).map(|p| m[c][p] as f64).sum();
            if tp == 0.0 {
                0.0
            } else {
                2.0 * tp / (2.0 * tp + fp + fneg)
            }
        })
        .sum::<f64>()
        / 3.0;
    (acc, f1, m)
}

/// Multinomial logistic regression on standardised features, full-batch gradient descent with L2
/// (deterministic: fixed order, fixed iterations).
fn fit(x: &[Vec<f64>], y: &[usize], l2: f64) -> (Vec<f64>, Vec<f64>, Vec<[f64; 3]>, [f64; 3]) {
    let d = x[0].len();
    let n = x.len() as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let std: Vec<f64> = (0..d)
        .map(|j| {
            (x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n)
                .sqrt()
                .max(1e-6)
        })
        .collect();
    let xs: Vec<Vec<f64>> = x
        .iter()
        .map(|r| (0..d).map(|j| (r[j] - mean[j]) / std[j]).collect())
        .collect();
    let mut w = vec![[0f64; 3]; d];
    let mut b = [0f64; 3];
    let lr = 0.1;
    for _ in 0..4000 {
        let mut gw = vec![[0f64; 3]; d];
        let mut gb = [0f64; 3];
        for (r, &t) in xs.iter().zip(y) {
            let mut z = b;
            for j in 0..d {
                for k in 0..3 {
                    z[k] += r[j] * w[j][k];
                }
            }
            let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e = z.map(|v| (v - m).exp());
            let s: f64 = e.iter().sum();
            for k in 0..3 {
                let g = e[k] / s - if k == t { 1.0 } else { 0.0 };
                gb[k] += g;
                for j in 0..d {
                    gw[j][k] += g * r[j];
                }
            }
        }
        for k in 0..3 {
            b[k] -= lr * gb[k] / n;
            for j in 0..d {
                w[j][k] -= lr * (gw[j][k] + l2 * w[j][k]) / n;
            }
        }
    }
    (mean, std, w, b)
}

fn print_table(name: &str, truth: &[usize], pred: &[usize]) -> [[usize; 3]; 3] {
    let (acc, f1, m) = metrics(truth, pred);
    println!("| {name} | {} | {acc:.3} | {f1:.3} |", truth.len());
    m
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .map(String::as_str)
        .unwrap_or("data/eval/reviews.jsonl");
    let do_fit = args.iter().any(|a| a == "--fit");
    let rows = load(path)?;
    let engine = Engine::builder().build()?;
    let prompts = PromptBuilder::new();
    let opts = GenerateOptions::default();

    // Features for every row (cached).
    let mut feats = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let review = ReviewInput {
            rating: None,
            title: None,
            text: &r.text,
        };
        feats.push(SentimentModel::features(&engine, &prompts, &review, &opts).await?);
        if (i + 1) % 100 == 0 {
            eprintln!("features: {}/{}", i + 1, rows.len());
        }
    }
    let (train, test): (Vec<usize>, Vec<usize>) = (0..rows.len()).partition(|&i| rows[i].train);

    if do_fit {
        let x: Vec<Vec<f64>> = train.iter().map(|&i| feats[i].clone()).collect();
        let y: Vec<usize> = train.iter().map(|&i| rows[i].label).collect();
        let (mean, std, w, b) = fit(&x, &y, 10.0);
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.6}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "//! Fitted by `examples/sentiment_eval.rs --fit` on the train split ({} rows) of",
            x.len()
        );
        println!("//! `scripts/fetch-eval-data` (vaderSentiment 3.3.2 Amazon review sentences). Do not edit by hand.\n");
        println!("use crate::sentiment_model::Calibration;\n");
        println!("pub(crate) const CALIBRATION: Calibration = Calibration {{");
        println!("    mean: &[{}],", fmt(&mean));
        println!("    std: &[{}],", fmt(&std));
        println!("    weights: &[");
        for row in &w {
            println!("        [{:.6}, {:.6}, {:.6}],", row[0], row[1], row[2]);
        }
        println!("    ],");
        println!("    bias: [{:.6}, {:.6}, {:.6}],", b[0], b[1], b[2]);
        println!("}};");
        return Ok(());
    }

    let model = SentimentModel::default();
    let labels = ReviewSentiment::LABELS;
    let mut seed_pred = vec![0usize; rows.len()];
    let mut ours_pred = vec![0usize; rows.len()];
    for (i, r) in rows.iter().enumerate() {
        let (label, _) = SentimentModel::label(model.probabilities(&feats[i]), None);
        ours_pred[i] = polarity_index(label);
        if !r.train {
            // The seed's call, verbatim: its prompt and a choice among its five labels.
            let c = engine
                .choice(
                    &format!("Classify sentiment of this review: {}", r.text),
                    labels,
                    &opts,
                )
                .await?;
            seed_pred[i] = polarity_index(c.choice.parse()?);
        }
    }
    for (split, idx) in [("train", &train), ("test", &test)] {
        let truth: Vec<usize> = idx.iter().map(|&i| rows[i].label).collect();
        let majority = (0..3)
            .max_by_key(|&c| truth.iter().filter(|&&t| t == c).count())
            .unwrap_or(0);
        println!("\n### {split} split\n\n| method | n | accuracy | macro-F1 |\n|---|---|---|---|");
        print_table("majority class", &truth, &vec![majority; truth.len()]);
        if split == "test" {
            print_table(
                "seed: choice of 5 labels, seed prompt",
                &truth,
                &idx.iter().map(|&i| seed_pred[i]).collect::<Vec<_>>(),
            );
        }
        let m = print_table(
            "calibrated few-shot (reviews analyze)",
            &truth,
            &idx.iter().map(|&i| ours_pred[i]).collect::<Vec<_>>(),
        );
        if split == "test" {
            println!(
                "\nconfusion (rows = truth, columns = predicted: positive, neutral, negative)"
            );
            for (c, row) in CLASSES.iter().zip(m) {
                println!("  {c:>8}: {:>4} {:>4} {:>4}", row[0], row[1], row[2]);
            }
        }
    }
    Ok(())
}
