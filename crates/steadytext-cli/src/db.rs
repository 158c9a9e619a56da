//! The PostgreSQL commands: `db migrate`, `worker`, `queue stats`, and `demo --database-url`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use steadytext_core::Engine;
use steadytext_pg::{
    AnalysisJobHandler, Intelligence, PgCache, Store, StoreOptions, Worker, WorkerConfig,
};

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
}

/// Several worker processes on one machine should each get a share of the cores
/// (`RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1` for two workers on two cores): measured on a
/// 2-core machine, 12 distinct reviews took 26 s with one default worker, 62 s with two default
/// workers (oversubscribed) and 22 s with two single-threaded workers.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Jobs run at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Lease of a claimed job in seconds: a killed worker's job is claimable again after this.
    #[arg(long, default_value_t = 60.0)]
    pub lease: f64,
    /// Longest idle wait between claims without a notification, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub poll_interval: f64,
    /// On SIGINT/SIGTERM, how long a job in progress may still run before it is released.
    #[arg(long, default_value_t = 30.0)]
    pub shutdown_grace: f64,
    /// Attempts before a job is dead-lettered.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
    /// Do not use the database's shared result cache.
    #[arg(long)]
    pub no_pg_cache: bool,
}

fn secs(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("invalid --{what} {s}"))
}

async fn connect(db: &DbArgs, max_connections: u32) -> Result<Store> {
    let store = Store::connect_with(
        &db.database_url,
        &StoreOptions {
            max_connections,
            ..StoreOptions::default()
        },
    )
    .await?;
    store.migrate().await?;
    Ok(store)
}

/// The CLI's engine (model and cache options as every command), plus the database cache tier.
fn engine(cli: &Cli, store: &Store, pg_cache: bool) -> Result<Engine> {
    let builder = cli.engine_builder();
    let mut cache = builder.build_cache();
    if pg_cache {
        cache = cache.with_tier(Arc::new(PgCache::new(store.pool().clone())));
    }
    let backend = builder.build_backend()?;
    Ok(Engine::new(Arc::new(backend), cache))
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

pub async fn queue(_cli: &Cli, cmd: &QueueCommand) -> Result<()> {
    match cmd {
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
    let concurrency = args.concurrency.max(1);
    let store = connect(&args.db, 2 * concurrency as u32 + 4).await?;
    let engine = engine(cli, &store, !args.no_pg_cache)?;
    let intel = Arc::new(Intelligence::new(store.clone(), engine));
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
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// `steadytext demo --database-url URL`: the seed's tutorial end to end on a real database.
pub async fn demo(cli: &Cli, db: &DbArgs, json: bool) -> Result<()> {
    let store = connect(db, 6).await?;
    let engine = engine(cli, &store, true)?;
    let intel = Arc::new(Intelligence::new(store.clone(), engine));
    let mut out = String::new();
    let started = Instant::now();

    let load = intel.load_seed_sample().await?;
    eprintln!(
        "seed sample: {} customers, {} reviews, {} tickets inserted (the rest already there)",
        load.customers, load.reviews, load.tickets
    );
    let processed = intel.process_pending().await?;
    eprintln!(
        "analysed {} queued reviews/tickets ({} failed)",
        processed.completed, processed.failed
    );
    let churn = intel.calculate_churn_risk().await?;
    let segments = intel.analyze_customer_segments().await?;
    let dashboard = intel.sentiment_dashboard().await?;
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
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
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
                "{}: priority {}, sentiment {}, follow-up {}\n  root cause: {}\n  resolution: {}\n  tags: {}\n",
                t.ticket_number.as_deref().unwrap_or("?"),
                t.priority.map_or("-".into(), |p| p.to_string()),
                a.sentiment,
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
            "customer {}: risk {:.2}, factors {}\n  retention: {}\n",
            c.customer_id,
            c.risk.score,
            serde_json::to_string(&c.risk.factors)?,
            c.strategy
        ));
    }
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
    print!("{out}");
    Ok(())
}
