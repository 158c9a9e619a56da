//! `steadytext`: a thin command-line front over steadytext-core.

mod analyze_cmd;
mod backend_args;
mod bench;
mod cache_cmd;
mod calibrate_cmd;
mod constrained;
mod db;
mod demo;
mod generate;
mod numbers;
mod review_cmd;
mod reviews;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Deterministic, cached text generation with a small local LLM.
#[derive(Debug, Parser)]
#[command(name = "steadytext", version, about)]
pub struct Cli {
    /// Model file (GGUF). Default: $STEADYTEXT_MODEL, else the model cache dir.
    #[arg(long, global = true, env = "STEADYTEXT_MODEL")]
    pub model: Option<PathBuf>,

    /// Cache directory. Default: $STEADYTEXT_CACHE_DIR, else $XDG_CACHE_HOME/steadytext/cache.
    #[arg(long, global = true, env = "STEADYTEXT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Classify review sentiment on this model (a name such as `gemma3-270m`, or a GGUF path),
    /// in-process, with the calibration that ships for it; every other analysis stays on
    /// --model. Default: sentiment on --model too.
    #[arg(long, global = true, env = "STEADYTEXT_SENTIMENT_MODEL")]
    pub sentiment_model: Option<PathBuf>,

    #[command(flatten)]
    pub backend: backend_args::BackendArgs,

    /// More logging (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate text for a prompt.
    Generate(generate::GenerateArgs),
    /// Choose one of the given options (prints it; `--json` adds every option's score).
    Choice(constrained::ChoiceArgs),
    /// Generate one JSON value valid against a schema.
    Json(constrained::JsonArgs),
    /// Generate text that fully matches a regular expression.
    Regex(constrained::RegexArgs),
    /// Batch review analysis.
    #[command(subcommand)]
    Reviews(reviews::ReviewsCommand),
    /// Fit a calibration to labelled examples (the feedback loop).
    #[command(subcommand)]
    Calibrate(calibrate_cmd::CalibrateCommand),
    /// Run the seed's customer-intelligence scenario through every analysis and print a report.
    Demo(demo::DemoArgs),
    /// Run one of the seed's analyses on the rows a database holds (PostgreSQL): churn,
    /// segments, dashboard, executive, recommendations, ticket, review.
    #[command(subcommand)]
    Analyze(analyze_cmd::AnalyzeCommand),
    /// Inspect or clear the result cache.
    #[command(subcommand)]
    Cache(cache_cmd::CacheCommand),
    /// Human review of stored analyses (PostgreSQL): the queue of what needs a person, and
    /// verdicts that no re-analysis overwrites.
    #[command(subcommand)]
    Review(review_cmd::ReviewCommand),
    /// Database administration (PostgreSQL).
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Run the database queue's jobs until SIGINT/SIGTERM: review and ticket analyses, the seed
    /// SQL functions' and views' work, async SQL requests.
    Worker(db::WorkerArgs),
    /// Inspect the database job queue.
    #[command(subcommand)]
    Queue(db::QueueCommand),
    /// Measure the inference core on this machine (load, prefill, decode, batched decode,
    /// choice, cache hits, peak memory).
    Bench(bench::BenchArgs),
}

impl Cli {
    /// An engine builder configured from the global options.
    pub fn engine_builder(&self) -> steadytext_core::EngineBuilder {
        let mut b = steadytext_core::Engine::builder();
        if let Some(m) = &self.model {
            b = b.model_path(m);
        }
        if let Some(d) = &self.cache_dir {
            b = b.cache_dir(d);
        }
        self.backend.apply(b)
    }

    /// The engine and calibration of `--sentiment-model`, if given: the model in this
    /// process, over `cache` (the result cache of the command's main engine).
    pub fn classifier(
        &self,
        cache: std::sync::Arc<steadytext_core::Cache>,
    ) -> anyhow::Result<Option<(steadytext_core::Engine, steadytext_schema::SentimentModel)>> {
        let Some(model) = &self.sentiment_model else {
            return Ok(None);
        };
        let backend = steadytext_core::Engine::builder()
            .model_path(model)
            .lazy(true)
            .build_shared_backend()?;
        let engine = steadytext_core::Engine::with_shared_cache(backend, cache);
        let identity = engine.backend().identity().to_string();
        let sentiment =
            steadytext_schema::SentimentModel::shipped_for(&identity).ok_or_else(|| {
                anyhow::anyhow!(
                    "no sentiment calibration ships for {} ({identity}); models with one: {}",
                    model.display(),
                    steadytext_schema::sentiment_model::SHIPPED_CALIBRATIONS
                        .iter()
                        .map(|(_, name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        eprintln!(
            "review sentiment on {} (calibration {})",
            model.display(),
            sentiment.calibration_id()
        );
        Ok(Some((engine, sentiment)))
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEADYTEXT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    if let Err(e) = cli.backend.validate() {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
        match &cli.command {
            Command::Generate(args) => done(generate::run(&cli, args).await),
            Command::Choice(args) => done(constrained::choice(&cli, args).await),
            Command::Json(args) => done(constrained::json(&cli, args).await),
            Command::Regex(args) => done(constrained::regex(&cli, args).await),
            Command::Cache(cmd) => done(cache_cmd::run(&cli, cmd).await),
            // 0, or 3 when some lines were recorded as errors (see `reviews`).
            Command::Reviews(cmd) => reviews::run(&cli, cmd).await,
            Command::Demo(args) => done(demo::run(&cli, args).await),
            Command::Calibrate(cmd) => done(calibrate_cmd::run(&cli, cmd).await),
            Command::Db(cmd) => done(db::db(&cli, cmd).await),
            Command::Review(cmd) => done(review_cmd::run(cmd).await),
            Command::Analyze(cmd) => done(analyze_cmd::run(&cli, cmd).await),
            Command::Worker(args) => done(db::worker(&cli, args).await),
            Command::Queue(cmd) => done(db::queue(&cli, cmd).await),
            Command::Bench(args) => done(bench::run(&cli, args).await),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
