//! `steadytext calibrate sentiment`: fit the review-sentiment calibration to labelled examples
//! (a JSONL file, or the human verdicts in a database), print its cross-validated quality next
//! to the current calibration's on the same examples, and write it (`--output`) or activate it
//! for the database (`--database-url`; only when it is not worse than the active one).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use steadytext_pg::calibrations::Activation;
use steadytext_schema::calibrate::{fit_sentiment, FitReport};
use steadytext_schema::sentiment_fit::Metrics;
use steadytext_schema::{PromptBuilder, SentimentModel};

use crate::Cli;

#[derive(Debug, Subcommand)]
pub enum CalibrateCommand {
    /// Fit the review-sentiment calibration to labelled examples.
    ///
    /// With `--labels FILE.jsonl` (lines `{"text", "label": positive|neutral|negative,
    /// "rating"?}`): fits, prints the comparison and writes `--output CAL` (use it with
    /// `reviews analyze --calibration CAL` or `worker --calibration CAL`).
    ///
    /// With `--database-url URL`: fits on the human verdicts of review sentiment stored there
    /// and activates the result for that database (running workers pick it up), unless it
    /// cross-validates worse than the active calibration on the same verdicts (exit status 1,
    /// nothing changed).
    Sentiment(SentimentArgs),
}

#[derive(Debug, Args)]
pub struct SentimentArgs {
    /// Labelled examples, JSON lines.
    #[arg(
        long,
        conflicts_with = "database_url",
        required_unless_present = "database_url"
    )]
    pub labels: Option<PathBuf>,
    /// Fit on this database's human verdicts and activate the result there.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Write the fitted calibration here (JSON). Required with --labels.
    #[arg(long, required_unless_present = "database_url")]
    pub output: Option<PathBuf>,
    /// The calibration to compare against (default: the built-in one; with --database-url, the
    /// database's active one).
    #[arg(long)]
    pub current: Option<PathBuf>,
    /// Cross-validation folds, 2 to 10.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(2..=10))]
    pub folds: u8,
    /// Model calls kept in flight (results do not depend on it).
    #[arg(long, default_value_t = 8, value_parser = crate::numbers::concurrency)]
    pub concurrency: usize,
}

/// Read a calibration file.
pub fn load_calibration(path: &std::path::Path) -> Result<SentimentModel> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading calibration {}", path.display()))?;
    let calibration = steadytext_schema::sentiment_model::Calibration::from_json(&text)
        .with_context(|| format!("calibration {}", path.display()))?;
    Ok(SentimentModel::new(calibration)?)
}

fn row(name: &str, m: &Metrics) -> String {
    format!("  {name:<44} {:>8.3} {:>9.3}", m.accuracy, m.macro_f1)
}

fn print_report(report: &FitReport) {
    let [p, n, g] = report.counts;
    eprintln!(
        "{} examples (positive {p}, neutral {n}, negative {g}); {}-fold cross-validation",
        p + n + g,
        report.folds
    );
    eprintln!("  {:<44} {:>8} {:>9}", "", "accuracy", "macro-F1");
    eprintln!("{}", row("always the majority label", &report.majority));
    eprintln!(
        "{}",
        row(
            &format!("current {} (not cross-validated)", report.current.0),
            &report.current.1
        )
    );
    for (i, c) in report.candidates.iter().enumerate() {
        let mark = if i == report.chosen { " <- chosen" } else { "" };
        eprintln!(
            "{}{mark}",
            row(&format!("fitted: {} (cv)", c.name), &c.cross_validated)
        );
    }
}

pub async fn run(cli: &Cli, cmd: &CalibrateCommand) -> Result<()> {
    let CalibrateCommand::Sentiment(args) = cmd;
    let engine = cli.engine_builder().build()?;
    let current = match &args.current {
        Some(path) => Some(load_calibration(path)?),
        None => None,
    };
    let prompts = PromptBuilder::new();
    if let Some(path) = &args.labels {
        let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let examples = steadytext_schema::calibrate::parse_labels(BufReader::new(file))
            .with_context(|| path.display().to_string())?;
        let current = current.unwrap_or_default();
        let report = fit_sentiment(
            &engine,
            &prompts,
            &current,
            &examples,
            usize::from(args.folds),
            args.concurrency,
            &format!("{} labelled examples of {}", examples.len(), path.display()),
        )
        .await?;
        print_report(&report);
        let out = args
            .output
            .as_ref()
            .expect("clap requires --output with --labels");
        write_calibration(out, &report)?;
        return Ok(());
    }
    let url = args
        .database_url
        .as_deref()
        .expect("clap requires a source");
    let store = crate::db::connect_url(url, 4).await?;
    // The comparison is against the database's active calibration unless --current names one.
    let mut intel = steadytext_pg::Intelligence::new(store.clone(), engine);
    if let Some(c) = current {
        intel = intel.with_sentiment(c);
    }
    let (_, report) = steadytext_pg::calibrations::fit_from_verdicts(
        &intel,
        usize::from(args.folds),
        args.concurrency,
    )
    .await?;
    print_report(&report);
    if let Some(out) = &args.output {
        write_calibration(out, &report)?;
    }
    match steadytext_pg::calibrations::activate_if_not_worse(&store, &report).await? {
        Activation::Refused { gain } => bail!(
            "not activated: the fitted calibration cross-validates at macro-F1 {:.3}, {:.3} below \
             the current {} ({:.3}) on the same {} verdicts",
            report.chosen().cross_validated.macro_f1,
            -gain,
            report.current.0,
            report.current.1.macro_f1,
            report.current.1.n
        ),
        Activation::Activated { id, requeued } => eprintln!(
            "activated {id} ({:+.3} macro-F1 over {}); {requeued} reviews analysed under \
             another calibration queued for re-analysis",
            report.gain(),
            report.current.0
        ),
    }
    Ok(())
}

fn write_calibration(out: &std::path::Path, report: &FitReport) -> Result<()> {
    let c = &report.chosen().calibration;
    let json = serde_json::to_string_pretty(c)?;
    std::fs::write(out, json + "\n").with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} ({})", out.display(), c.id());
    Ok(())
}
