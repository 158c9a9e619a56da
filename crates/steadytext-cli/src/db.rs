//! The PostgreSQL commands: `db migrate`, `worker`, `queue stats`, `queue drain`, and
//! `demo --database-url` (`review list` / `review label`: [`crate::review_cmd`]).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use steadytext_core::Engine;
use steadytext_pg::{
    AnalysisJobHandler, Intelligence, PgCache, Progress, Store, StoreOptions, Worker, WorkerConfig,
};

use crate::demo::DemoArgs;
use crate::Cli;

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the embedded migrations (the seed schema, the job queue, the cache tables).
    Migrate(DbArgs),
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Job counts by state.
    Stats {
        #[command(flatten)]
        db: DbArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run every queued job now (review and ticket analyses, the SQL surface's work), several
    /// model calls in flight, then exit (a one-off backfill; `worker` keeps running and waits
    /// for more).
    Drain(DrainArgs),
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Model calls kept in flight, 1 to 256 (results do not depend on it).
    #[arg(long, default_value_t = steadytext_pg::DEFAULT_CONCURRENCY, value_parser = crate::numbers::concurrency)]
    pub concurrency: usize,
    /// No progress bar or status lines on stderr (hidden anyway when stderr is not a terminal).
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not use the database's shared result cache.
    #[arg(long)]
    pub no_pg_cache: bool,
}

/// Bulk-run progress on stderr: one bar, restarted at each stage. Hidden with `--quiet`, and
/// by indicatif when stderr is not a terminal.
pub(crate) struct BarProgress {
    bar: ProgressBar,
    stage: Mutex<String>,
    quiet: bool,
}

impl BarProgress {
    pub(crate) fn new(quiet: bool) -> Arc<Self> {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template("{msg:>20} {bar:30} {pos}/{len}  {elapsed} (eta {eta})")
                .expect("valid template"),
        );
        Arc::new(Self {
            bar,
            stage: Mutex::new(String::new()),
            quiet,
        })
    }

    /// A status line on stderr, above the bar (nothing with `--quiet`).
    fn say(&self, line: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("{line}"));
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for BarProgress {
    fn update(&self, stage: &str, done: u64, total: u64) {
        let mut current = self.stage.lock().unwrap_or_else(|e| e.into_inner());
        if done == 0 || current.as_str() != stage {
            stage.clone_into(&mut current);
            self.bar.reset();
            self.bar.set_message(stage.to_string());
        }
        self.bar.set_length(total);
        self.bar.set_position(done);
    }
}

/// Several worker processes on one machine should each get a share of the cores
/// (`RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1` for two workers on two cores): measured on a
/// 2-core machine, 12 distinct reviews took 26 s with one default worker, 62 s with two default
/// workers (oversubscribed) and 22 s with two single-threaded workers.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Jobs run at once, 1 to 256.
    #[arg(long, default_value_t = 1, value_parser = crate::numbers::concurrency)]
    pub concurrency: usize,
    /// Lease of a claimed job in seconds (greater than 0, at most a week): a killed worker's
    /// job is claimable again after this.
    #[arg(long, default_value_t = 60.0, value_parser = crate::numbers::seconds)]
    pub lease: f64,
    /// Longest idle wait between claims without a notification, in seconds (greater than 0, at
    /// most a week).
    #[arg(long, default_value_t = 5.0, value_parser = crate::numbers::seconds)]
    pub poll_interval: f64,
    /// On SIGINT/SIGTERM, how long a job in progress may still run before it is released, in
    /// seconds (0 to a week).
    #[arg(long, default_value_t = 30.0, value_parser = crate::numbers::seconds_or_zero)]
    pub shutdown_grace: f64,
    /// Attempts before a job is dead-lettered.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
    /// Do not use the database's shared result cache.
    #[arg(long)]
    pub no_pg_cache: bool,
    /// Classify review sentiment with this calibration file always. Default: the database's
    /// active calibration (`steadytext calibrate sentiment --database-url`), re-read before
    /// each review, so an activation applies without a restart; none active: the built-in one.
    #[arg(long)]
    pub calibration: Option<std::path::PathBuf>,
}

fn secs(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("invalid --{what} {s}"))
}

/// Connect and apply the migrations.
pub(crate) async fn connect(db: &DbArgs, max_connections: u32) -> Result<Store> {
    connect_url(&db.database_url, max_connections).await
}

/// Connect to `url` and apply the migrations.
pub async fn connect_url(url: &str, max_connections: u32) -> Result<Store> {
    let store = Store::connect_with(
        url,
        &StoreOptions {
            max_connections,
            ..StoreOptions::default()
        },
    )
    .await?;
    store.migrate().await?;
    Ok(store)
}

/// [`Intelligence`] over `engine`, with review sentiment on `--sentiment-model` when given
/// (sharing `engine`'s cache tiers).
pub(crate) fn intelligence(cli: &Cli, store: Store, engine: Engine) -> Result<Intelligence> {
    let classifier = cli.classifier(engine.cache().clone())?;
    let intel = Intelligence::new(store, engine);
    Ok(match classifier {
        Some((e, s)) => intel.with_classifier(e, s),
        None => intel,
    })
}

/// The CLI's engine (model and cache options as every command), plus the database cache tier.
pub(crate) fn engine(cli: &Cli, store: &Store, pg_cache: bool) -> Result<Engine> {
    let builder = cli.engine_builder();
    let mut cache = builder.build_cache();
    if pg_cache {
        cache = cache.with_tier(Arc::new(PgCache::new(store.pool().clone())));
    }
    // The selected backend (--backend local|http); never a silent substitute.
    Ok(builder.build_with_cache(cache)?)
}

pub async fn db(_cli: &Cli, cmd: &DbCommand) -> Result<()> {
    match cmd {
        DbCommand::Migrate(db) => {
            connect(db, 2).await?;
            println!("migrated {}", steadytext_pg::redact_url(&db.database_url));
        }
    }
    Ok(())
}

pub async fn queue(cli: &Cli, cmd: &QueueCommand) -> Result<()> {
    match cmd {
        QueueCommand::Drain(args) => drain(cli, args).await?,
        QueueCommand::Stats { db, json } => {
            let store = connect(db, 2).await?;
            let s = store.queue().stats().await?;
            if *json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                println!(
                    "pending {} (ready {})\nleased  {} (expired {})\ndone    {}\ndead    {}",
                    s.pending, s.ready, s.leased, s.expired, s.done, s.dead
                );
            }
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    eprintln!("shutting down: finishing jobs in progress...");
}

pub async fn worker(cli: &Cli, args: &WorkerArgs) -> Result<()> {
    let concurrency = args.concurrency.clamp(1, crate::numbers::MAX_CONCURRENCY);
    let pinned = match &args.calibration {
        Some(path) => Some(crate::calibrate_cmd::load_calibration(path)?),
        None => None,
    };
    let store = connect(&args.db, bulk_pool_size(concurrency) + concurrency as u32).await?;
    let engine = engine(cli, &store, !args.no_pg_cache)?;
    let mut intel = intelligence(cli, store.clone(), engine)?;
    if let Some(model) = pinned {
        eprintln!("review sentiment: calibration {}", model.calibration_id());
        intel = intel.with_sentiment(model);
    }
    let intel = Arc::new(intel);
    let config = WorkerConfig {
        concurrency,
        lease: secs(args.lease, "lease")?,
        poll_interval: secs(args.poll_interval, "poll-interval")?,
        shutdown_grace: secs(args.shutdown_grace, "shutdown-grace")?,
        max_attempts: args.max_attempts,
        kinds: AnalysisJobHandler::KINDS.map(String::from).to_vec(),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(store, Arc::new(AnalysisJobHandler::new(intel)), config);
    eprintln!(
        "worker {} running (concurrency {concurrency}); SIGINT/SIGTERM stops it",
        worker.id()
    );
    let started = Instant::now();
    let report = worker.run(shutdown_signal()).await?;
    eprintln!(
        "worker stopped after {:.1}s: {} completed, {} retried, {} dead, {} released",
        started.elapsed().as_secs_f64(),
        report.completed,
        report.retried,
        report.dead,
        report.released
    );
    // The report on stdout; a reader that has gone away (a closed pipe) is no error of the
    // worker's, whose jobs are all finished or released by now.
    let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Pool size for a bulk run with `concurrency` model calls in flight (each may read its rows
/// while the others wait on the model).
pub(crate) fn bulk_pool_size(concurrency: usize) -> u32 {
    (concurrency.clamp(1, 32) as u32) + 4
}

/// `steadytext queue drain`: the queued analyses, batched, with progress.
async fn drain(cli: &Cli, args: &DrainArgs) -> Result<()> {
    let store = connect(&args.db, bulk_pool_size(args.concurrency)).await?;
    let engine = engine(cli, &store, !args.no_pg_cache)?;
    let progress = BarProgress::new(args.quiet);
    let intel = Arc::new(
        intelligence(cli, store, engine)?
            .with_concurrency(args.concurrency)
            .with_progress(progress.clone()),
    );
    let started = Instant::now();
    let processed = intel.process_pending().await;
    progress.finish();
    let processed = processed?;
    progress.say(&format!(
        "ran {} queued jobs ({} failed) in {:.1}s",
        processed.completed,
        processed.failed,
        started.elapsed().as_secs_f64()
    ));
    println!("{}", serde_json::to_string(&processed)?);
    Ok(())
}

/// `steadytext demo --database-url URL`: the seed's tutorial end to end on a real database.
pub async fn demo(cli: &Cli, db: &DbArgs, args: &DemoArgs) -> Result<()> {
    let store = connect(db, bulk_pool_size(args.concurrency)).await?;
    let engine = engine(cli, &store, true)?;
    let progress = BarProgress::new(args.quiet);
    let intel = Arc::new(
        intelligence(cli, store.clone(), engine)?
            .with_concurrency(args.concurrency)
            .with_progress(progress.clone()),
    );
    let report = demo_report(&intel, &progress, args.json).await;
    progress.finish();
    print!("{}", report?);
    Ok(())
}

/// Run every seed function on the database; the report as text or JSON.
async fn demo_report(
    intel: &Arc<Intelligence>,
    progress: &BarProgress,
    json: bool,
) -> Result<String> {
    let store = &intel.store;
    let mut out = String::new();
    let started = Instant::now();

    let load = intel.load_seed_sample().await?;
    progress.say(&format!(
        "seed sample: {} customers, {} reviews, {} tickets inserted (the rest already there)",
        load.customers, load.reviews, load.tickets
    ));
    let t = Instant::now();
    let processed = intel.process_pending().await?;
    progress.say(&format!(
        "ran {} queued jobs ({} failed) in {:.1}s",
        processed.completed,
        processed.failed,
        t.elapsed().as_secs_f64()
    ));
    let timed = |what: &str, n: usize, since: Instant| {
        progress.say(&format!(
            "{what}: {n} in {:.1}s",
            since.elapsed().as_secs_f64()
        ));
    };
    let t = Instant::now();
    let churn = intel.calculate_churn_risk().await?;
    timed("churn risk, customers above 0.3", churn.len(), t);
    let t = Instant::now();
    let segments = intel.analyze_customer_segments().await?;
    timed("segment profiles", segments.len(), t);
    let t = Instant::now();
    let dashboard = intel.sentiment_dashboard().await?;
    timed("dashboard insights", dashboard.len(), t);
    let (john,): (i32,) =
        steadytext_pg::sqlx::query_as("SELECT id FROM customers WHERE email = $1")
            .bind("john.doe@email.com")
            .fetch_one(store.pool())
            .await?;
    let recommendations = intel.customer_recommendations(john, 5).await?;
    let executive = intel.executive_summary().await?;
    let trends = intel
        .sentiment_trends(steadytext_pg::TrendBucket::Day)
        .await?;
    let reviews = steadytext_pg::rows::reviews(store.pool(), None).await?;
    let tickets = steadytext_pg::rows::tickets(store.pool(), None).await?;
    let stats = store.queue().stats().await?;

    if json {
        let report = serde_json::json!({
            "reviews": reviews, "tickets": tickets, "churn": churn, "segments": segments,
            "dashboard": dashboard, "recommendations": recommendations, "executive": executive,
            "trends": trends, "queue": stats,
        });
        return Ok(serde_json::to_string_pretty(&report)? + "\n");
    }

    out.push_str("== Reviews (analysed by the queue) ==\n");
    for r in &reviews {
        out.push_str(&format!(
            "review {} (rating {}): {}\n  summary: {}\n  themes:  {}\n",
            r.id,
            r.rating.map_or("-".into(), |x| x.to_string()),
            r.sentiment
                .map_or("(not analysed)".into(), |s| s.to_string()),
            r.ai_summary.as_deref().unwrap_or(""),
            r.key_themes.as_deref().unwrap_or(&[]).join(", ")
        ));
    }
    out.push_str("\n== Support tickets ==\n");
    for t in &tickets {
        match &t.ai_analysis {
            Some(a) => out.push_str(&format!(
                "{}: priority {}, sentiment {}, category {}, follow-up {}\n  root cause (quoted): \"{}\"\n  resolution (playbook): {}\n  tags: {}\n",
                t.ticket_number.as_deref().unwrap_or("?"),
                t.priority.map_or("-".into(), |p| p.to_string()),
                a.sentiment,
                if a.category.is_empty() { "-" } else { &a.category },
                a.follow_up_needed,
                a.root_cause,
                a.suggested_resolution,
                a.tags.join(", ")
            )),
            None => out.push_str(&format!(
                "{}: (not analysed)\n",
                t.ticket_number.as_deref().unwrap_or("?")
            )),
        }
    }
    out.push_str("\n== Churn risk (above 0.3) ==\n");
    if churn.is_empty() {
        out.push_str("no customer above 0.3\n");
    }
    for c in &churn {
        out.push_str(&format!(
            "customer {}: risk {:.2}, factors {}\n",
            c.customer_id,
            c.risk.score,
            serde_json::to_string(&c.risk.factors)?,
        ));
    }
    crate::demo::render_retention(&mut out, &churn);
    crate::demo::render_segments(&mut out, &segments);
    crate::demo::render_dashboard(&mut out, &dashboard);
    out.push_str("\n== Sentiment trend (per day) ==\n");
    for t in &trends {
        out.push_str(&format!(
            "{} {:<8} {:+.2} over {} interactions\n",
            t.bucket_start.format("%Y-%m-%d"),
            t.segment.as_deref().unwrap_or("-"),
            t.avg_sentiment,
            t.interactions
        ));
    }
    crate::demo::render_recommendations(&mut out, john, &recommendations.recommendations);
    crate::demo::render_executive(&mut out, &executive);
    out.push_str(&format!(
        "\n(queue: {} done, {} pending, {} dead; {:.1}s)\n",
        stats.done,
        stats.pending,
        stats.dead,
        started.elapsed().as_secs_f64()
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pool_sizes_do_not_overflow() {
        assert_eq!(super::bulk_pool_size(usize::MAX), 36);
        assert_eq!(super::bulk_pool_size(0), 5);
    }
}
