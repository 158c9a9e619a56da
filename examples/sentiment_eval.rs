//! Sentiment quality by domain: fit on one labelled domain, report every other one separately.
//!
//! ```sh
//! scripts/fetch-eval-data --all-domains   # vaderSentiment's Amazon, movie, tweet and news sets
//! cargo run --release --features schema --example sentiment_eval             # the report
//! cargo run --release --features schema --example sentiment_eval -- --explore  # every method
//! cargo run --release --features schema --example sentiment_eval -- --per-split 250 --explore
//! ```
//!
//! Data: `data/eval/sentiment/{amazon,movies,tweets,news}.jsonl` (`scripts/fetch-eval-data`),
//! rows `{"text", "label", "split"}`, each domain split train / test by a hash of its source id.
//! Methods are fitted on the Amazon *train* split only (the home domain); every other domain is
//! held out whole, and its *test* split is reported. A method is judged by the held-out domains.
//!
//! `--explore` adds the candidates that were measured to pick the default (the prompt variants,
//! raw argmax, fitted biases, 3- and 40-feature logistic regressions) and in-domain fits (train
//! and test of the same domain: what `steadytext calibrate sentiment` can reach with labels
//! from the target domain). All model calls go through the cache; a rerun is fast.

use std::io::BufRead;

use anyhow::{Context, Result};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use steadytext::{Engine, GenerateOptions};
use steadytext_schema::calibrate::{fit_sentiment, LabelledText};
use steadytext_schema::prompts::{PromptBuilder, ReviewInput};
use steadytext_schema::sentiment_fit::{cross_validate, fit_bias, fit_linear, Linear, Metrics};
use steadytext_schema::sentiment_model::{self, Calibration, Provenance, FEATURE_WORDS};
use steadytext_schema::{Polarity, SentimentModel};

const CLASSES: [&str; 3] = ["positive", "neutral", "negative"];
const DOMAINS: [&str; 4] = ["amazon", "movies", "tweets", "news"];
const HOME: &str = "amazon";

struct Row {
    text: String,
    label: usize,
    train: bool,
}

fn load(path: &str) -> Result<Vec<Row>> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("{path}: run scripts/fetch-eval-data --all-domains"))?;
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

/// A prompt variant: its few-shot head (the row's text and "\nSentiment:" follow).
struct Variant {
    name: &'static str,
    head: String,
    item: &'static str,
}

const GENERIC: &str = "Classify the sentiment of each text as positive, neutral or negative.\n\n\
Text: what a wonderful surprise, i enjoyed every minute of it.\nSentiment: positive\n\n\
Text: the office opens at nine on weekdays.\nSentiment: neutral\n\n\
Text: this is the worst decision they could have made.\nSentiment: negative\n\n\
Text: the report was published on tuesday.\nSentiment: neutral\n\n\
Text: i am so happy with how it turned out.\nSentiment: positive\n\n\
Text: nobody answered my calls and i am fed up.\nSentiment: negative\n\n";

/// Next-token log-probabilities of the feature words after `head item: text\nSentiment:`.
async fn features(
    engine: &Engine,
    v: &Variant,
    text: &str,
    opts: &GenerateOptions,
) -> Result<Vec<f64>> {
    let words: Vec<String> = FEATURE_WORDS.iter().map(|w| format!(" {w}")).collect();
    let prompt = format!(
        "{}{}: {}\nSentiment:",
        v.head,
        v.item,
        engine.untrusted(text)
    );
    Ok(engine.next_token_logprobs(&prompt, &words, opts).await?)
}

fn labels3(f: &[f64]) -> Vec<f64> {
    f[..3].to_vec()
}

/// `f` minus the content-free label scores (the three labels only).
fn minus(f: &[f64], cf: &[f64]) -> Vec<f64> {
    (0..3).map(|k| f[k] - cf[k]).collect()
}

struct Table {
    lines: Vec<String>,
}

impl Table {
    fn new() -> Self {
        let mut head = "| method | fitted on |".to_string();
        let mut rule = "|---|---|".to_string();
        for d in DOMAINS {
            head.push_str(&format!(" {d} acc | {d} F1 |"));
            rule.push_str("---|---|");
        }
        Self {
            lines: vec![head, rule],
        }
    }

    fn row(&mut self, name: &str, fitted: &str, m: &[Metrics]) {
        let mut line = format!("| {name} | {fitted} |");
        for x in m {
            line.push_str(&format!(" {:.3} | {:.3} |", x.accuracy, x.macro_f1));
        }
        self.lines.push(line);
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let explore = args.iter().any(|a| a == "--explore");
    let labels_only = args.iter().any(|a| a == "--labels-only");
    let write_default = args
        .iter()
        .position(|a| a == "--write-default")
        .map(|i| args.get(i + 1).cloned().context("--write-default PATH"))
        .transpose()?;
    let per_split: usize = match args.iter().position(|a| a == "--per-split") {
        Some(i) => args
            .get(i + 1)
            .context("--per-split N")?
            .parse()
            .context("--per-split N")?,
        None => usize::MAX,
    };
    let dir = args
        .iter()
        .enumerate()
        .find(|(i, a)| {
            !a.starts_with("--")
                && (*i == 0 || !["--per-split", "--write-default"].contains(&args[i - 1].as_str()))
        })
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| "data/eval/sentiment".into());
    let data: Vec<Vec<Row>> = DOMAINS
        .iter()
        .map(|d| {
            if write_default.is_some() && *d != HOME {
                return Ok(Vec::new()); // only the home domain is fitted on
            }
            let rows = load(&format!("{dir}/{d}.jsonl"))?;
            // The first `per_split` rows of each split (files are shuffled once, seeded).
            let (mut train, mut test) = (0, 0);
            Ok(rows
                .into_iter()
                .filter(|r| {
                    let n = if r.train { &mut train } else { &mut test };
                    *n += 1;
                    *n <= per_split
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    let engine = Engine::builder().build()?;
    let opts = GenerateOptions::default().chat(false);

    let mut variants = vec![Variant {
        name: "product few-shot",
        head: sentiment_model::FEW_SHOT.to_string(),
        item: "Review",
    }];
    if explore {
        variants.push(Variant {
            name: "generic few-shot",
            head: GENERIC.to_string(),
            item: "Text",
        });
    }

    let mut table = Table::new();
    let test_truth: Vec<Vec<usize>> = data
        .iter()
        .map(|rows| rows.iter().filter(|r| !r.train).map(|r| r.label).collect())
        .collect();
    table.row(
        "majority class of the test split",
        "-",
        &test_truth
            .iter()
            .map(|t| Metrics::majority(t).1)
            .collect::<Vec<_>>(),
    );

    for v in &variants {
        // Features of every row of every domain (cached), a few in flight.
        let mut feats: Vec<Vec<Vec<f64>>> = Vec::new();
        for (d, rows) in DOMAINS.iter().zip(&data) {
            let f: Vec<Vec<f64>> = stream::iter(rows.iter())
                .map(|r| features(&engine, v, &r.text, &opts))
                .buffered(8)
                .try_collect()
                .await?;
            eprintln!("{}: {d}: {} rows", v.name, f.len());
            feats.push(f);
        }
        let mut cf = [0.0; 3];
        for t in sentiment_model::CONTENT_FREE {
            let f = features(&engine, v, t, &opts).await?;
            let p = steadytext_schema::sentiment_fit::softmax([f[0], f[1], f[2]]);
            for k in 0..3 {
                cf[k] += p[k] / sentiment_model::CONTENT_FREE.len() as f64;
            }
        }
        let cf: Vec<f64> = cf.iter().map(|p| p.ln()).collect();
        let home = DOMAINS
            .iter()
            .position(|d| *d == HOME)
            .expect("home domain");
        let split = |d: usize, train: bool, map: &dyn Fn(&[f64]) -> Vec<f64>| {
            let (x, y): (Vec<Vec<f64>>, Vec<usize>) = data[d]
                .iter()
                .zip(&feats[d])
                .filter(|(r, _)| r.train == train)
                .map(|(r, f)| (map(f), r.label))
                .unzip();
            (x, y)
        };
        let eval_all = |map: &dyn Fn(&[f64]) -> Vec<f64>, model: &Linear| -> Vec<Metrics> {
            (0..DOMAINS.len())
                .map(|d| {
                    let (x, y) = split(d, false, map);
                    let pred: Vec<usize> = x.iter().map(|r| model.predict(r)).collect();
                    Metrics::new(&y, &pred)
                })
                .collect()
        };
        let raw = |f: &[f64]| labels3(f);
        let cfree = |f: &[f64]| minus(f, &cf);
        let all40 = |f: &[f64]| f.to_vec();
        let name = |m: &str| format!("{}: {m}", v.name);

        if let Some(path) = &write_default {
            // The built-in calibration: 40 word scores, class-balanced logistic regression,
            // fitted on the home domain's train split only. With `--labels-only`: the 3 label
            // scores, logistic regression (what transfers best on Gemma 3 270M; README).
            type Map<'a> = &'a dyn Fn(&[f64]) -> Vec<f64>;
            let (map, words, balance, how): (Map<'_>, &[&str], f64, &str) = if labels_only {
                (&raw, &FEATURE_WORDS[..3], 1.0, " --labels-only")
            } else {
                (&all40, &FEATURE_WORDS[..], 10.0, "")
            };
            let (x, y) = split(home, true, map);
            let fit = |x: &[Vec<f64>], y: &[usize]| fit_linear(x, y, balance);
            let cv = cross_validate(&x, &y, 5, fit);
            let model = engine
                .backend()
                .identity()
                .split('/')
                .take(3)
                .collect::<Vec<_>>();
            let c = Calibration {
                format: sentiment_model::CALIBRATION_FORMAT,
                prompt: sentiment_model::SENTIMENT_PROMPT_VERSION.into(),
                features: words.iter().map(|w| w.to_string()).collect(),
                content_free: false,
                linear: fit(&x, &y),
                provenance: Provenance {
                    fitted_on: if labels_only {
                        format!(
                            "vaderSentiment 3.3.2 Amazon review sentences (scripts/fetch-eval-data), \
                             train split, {} rows, scored by {}; examples/sentiment_eval.rs \
                             --write-default{how}",
                            x.len(),
                            model.join("/")
                        )
                    } else {
                        format!(
                            "vaderSentiment 3.3.2 Amazon review sentences (scripts/fetch-eval-data), \
                             train split, {} rows; examples/sentiment_eval.rs --write-default",
                            x.len()
                        )
                    },
                    examples: x.len(),
                    cross_validated: Some(cv),
                },
            };
            std::fs::write(path, serde_json::to_string_pretty(&c)? + "\n")?;
            eprintln!("wrote {path} ({})", c.id());
            return Ok(());
        }
        if v.name == "product few-shot" {
            let builtin = SentimentModel::default();
            let c = builtin.calibration();
            assert!(c.features == FEATURE_WORDS && !c.content_free);
            table.row(
                &name(&format!(
                    "built-in calibration {}",
                    builtin.calibration_id()
                )),
                HOME,
                &eval_all(&all40, &c.linear),
            );
            // What `steadytext calibrate sentiment` fits on each domain's train split.
            let prompts = PromptBuilder::new();
            let mut m = Vec::new();
            for rows in &data {
                let examples: Vec<LabelledText> = rows
                    .iter()
                    .filter(|r| r.train)
                    .map(|r| LabelledText {
                        text: r.text.clone(),
                        rating: None,
                        label: Polarity::from_index(r.label).expect("a class"),
                    })
                    .collect();
                let report =
                    fit_sentiment(&engine, &prompts, &builtin, &examples, 5, 8, "train").await?;
                let fitted = SentimentModel::new(report.chosen().calibration.clone())?;
                eprintln!("calibrate: chose {}", report.chosen().name);
                let test: Vec<&Row> = rows.iter().filter(|r| !r.train).collect();
                let mut pred = Vec::new();
                for r in &test {
                    let review = ReviewInput {
                        rating: None,
                        title: None,
                        text: &r.text,
                    };
                    let p = fitted
                        .probabilities_of(&engine, &prompts, &review, &GenerateOptions::default())
                        .await?;
                    pred.push(steadytext_schema::sentiment_fit::argmax(p));
                }
                let truth: Vec<usize> = test.iter().map(|r| r.label).collect();
                m.push(Metrics::new(&truth, &pred));
            }
            table.row(
                "`calibrate sentiment` on the domain's own train split",
                "each domain's train",
                &m,
            );
        }
        if explore {
            table.row(
                &name("content-free calibrated argmax"),
                "none",
                &eval_all(&cfree, &Linear::identity_plus([0.0; 3])),
            );
            table.row(
                &name("raw argmax of the label scores"),
                "none",
                &eval_all(&raw, &Linear::identity_plus([0.0; 3])),
            );
            let (x, y) = split(home, true, &raw);
            table.row(
                &name("label scores + fitted bias"),
                HOME,
                &eval_all(&raw, &fit_bias(&x, &y, 1.0)),
            );
            table.row(
                &name("3-feature logistic"),
                HOME,
                &eval_all(&raw, &fit_linear(&x, &y, 1.0)),
            );
            let (x, y) = split(home, true, &all40);
            table.row(
                &name("40-feature logistic (class-balanced)"),
                HOME,
                &eval_all(&all40, &fit_linear(&x, &y, 10.0)),
            );
            // In-domain fits: what labels from the target domain can reach.
            for (label, map, fit) in [
                (
                    "bias on content-free scores",
                    &cfree as &dyn Fn(&[f64]) -> Vec<f64>,
                    &(|x: &[Vec<f64>], y: &[usize]| fit_bias(x, y, 1.0))
                        as &dyn Fn(&[Vec<f64>], &[usize]) -> Linear,
                ),
                ("3-feature logistic", &raw, &|x, y| fit_linear(x, y, 1.0)),
                ("40-feature logistic", &all40, &|x, y| {
                    fit_linear(x, y, 10.0)
                }),
            ] {
                let m: Vec<Metrics> = (0..DOMAINS.len())
                    .map(|d| {
                        let (x, y) = split(d, true, map);
                        let model = fit(&x, &y);
                        let (tx, ty) = split(d, false, map);
                        let pred: Vec<usize> = tx.iter().map(|r| model.predict(r)).collect();
                        Metrics::new(&ty, &pred)
                    })
                    .collect();
                table.row(&name(label), "each domain's train", &m);
            }
        }
    }
    println!("Test splits; accuracy and macro-F1 (positive / neutral / negative).\n");
    for l in &table.lines {
        println!("{l}");
    }
    Ok(())
}
