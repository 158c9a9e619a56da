//! `steadytext analyze ...`: the seed's analyses on whatever rows the database holds (no
//! sample data inserted): churn, segments, dashboard, executive summary, a customer's
//! recommendations, one ticket, one review. The model runs in this process, never in
//! PostgreSQL; what the seed's functions store is stored the same way.

use std::sync::Arc;

use anyhow::Result;
use clap::{Args, Subcommand};
use steadytext_pg::Intelligence;

use crate::db::{bulk_pool_size, connect, engine, BarProgress, DbArgs};
use crate::demo::{
    render_dashboard, render_executive, render_recommendations, render_retention, render_review,
    render_segments, render_ticket,
};
use crate::Cli;

#[derive(Debug, Subcommand)]
pub enum AnalyzeCommand {
    /// Score every customer's churn risk (stored in customers.churn_risk_score) and write
    /// retention strategies for those at risk (what `SELECT calculate_churn_risk()` returns).
    Churn(AnalyzeArgs),
    /// Profile every segment with 3 marketing strategies (stored in
    /// customer_segments_analysis, as `SELECT analyze_customer_segments()`).
    Segments(AnalyzeArgs),
    /// Every customer's sentiment dashboard row with its insight.
    Dashboard(AnalyzeArgs),
    /// The executive summary: the company's numbers and the actions they call for.
    Executive(AnalyzeArgs),
    /// A customer's recommendations: products from the data, retention and upsell plays.
    Recommendations(RecommendationArgs),
    /// Triage one support ticket (stored in support_tickets.ai_analysis).
    Ticket(RowArgs),
    /// Analyse one product review (stored in product_reviews).
    Review(RowArgs),
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Model calls in flight at once.
    #[arg(long, default_value_t = steadytext_pg::DEFAULT_CONCURRENCY, value_parser = crate::numbers::concurrency)]
    pub concurrency: usize,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RecommendationArgs {
    /// The customer's id (`customers.id`).
    #[arg(long)]
    pub customer: i32,
    /// At most this many recommendations.
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
    #[command(flatten)]
    pub common: AnalyzeArgs,
}

#[derive(Debug, Args)]
pub struct RowArgs {
    /// The row's id.
    pub id: i32,
    #[command(flatten)]
    pub common: AnalyzeArgs,
}

fn common(cmd: &AnalyzeCommand) -> &AnalyzeArgs {
    match cmd {
        AnalyzeCommand::Churn(a)
        | AnalyzeCommand::Segments(a)
        | AnalyzeCommand::Dashboard(a)
        | AnalyzeCommand::Executive(a) => a,
        AnalyzeCommand::Recommendations(r) => &r.common,
        AnalyzeCommand::Ticket(r) | AnalyzeCommand::Review(r) => &r.common,
    }
}

pub async fn run(cli: &Cli, cmd: &AnalyzeCommand) -> Result<()> {
    let args = common(cmd);
    let store = connect(&args.db, bulk_pool_size(args.concurrency)).await?;
    let engine = engine(cli, &store, true)?;
    let progress = BarProgress::new(args.quiet || args.json);
    let intel = Arc::new(
        crate::db::intelligence(cli, store, engine)?
            .with_concurrency(args.concurrency)
            .with_progress(progress.clone()),
    );
    let out = report(&intel, cmd, args.json).await;
    progress.finish();
    print!("{}", out?);
    Ok(())
}

fn json(v: &impl serde::Serialize) -> Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(v)?))
}

async fn report(intel: &Intelligence, cmd: &AnalyzeCommand, as_json: bool) -> Result<String> {
    let mut s = String::new();
    match cmd {
        AnalyzeCommand::Churn(_) => {
            let reports = intel.calculate_churn_risk().await?;
            let scores = intel.churn_scores().await?;
            if as_json {
                let scores: Vec<_> = scores
                    .iter()
                    .map(|(c, r)| serde_json::json!({"customer_id": c.id, "risk": r}))
                    .collect();
                return json(&serde_json::json!({"scores": scores, "retention": reports}));
            }
            s.push_str("== Churn risk ==\n");
            for (c, risk) in &scores {
                s.push_str(&format!("customer {}: risk {:.2}\n", c.id, risk.score));
            }
            render_retention(&mut s, &reports);
        }
        AnalyzeCommand::Segments(_) => {
            let profiles = intel.analyze_customer_segments().await?;
            if as_json {
                return json(&profiles);
            }
            render_segments(&mut s, &profiles);
        }
        AnalyzeCommand::Dashboard(_) => {
            let rows = intel.sentiment_dashboard().await?;
            if as_json {
                return json(&rows);
            }
            render_dashboard(&mut s, &rows);
        }
        AnalyzeCommand::Executive(_) => {
            let summary = intel.executive_summary().await?;
            if as_json {
                return json(&summary);
            }
            render_executive(&mut s, &summary);
        }
        AnalyzeCommand::Recommendations(r) => {
            let recs = intel.customer_recommendations(r.customer, r.limit).await?;
            if as_json {
                return json(&recs);
            }
            render_recommendations(&mut s, r.customer, &recs.recommendations);
        }
        AnalyzeCommand::Ticket(r) => {
            let t = intel.analyze_ticket(r.id).await?;
            if as_json {
                return json(&t);
            }
            render_ticket(&mut s, r.id, &t);
        }
        AnalyzeCommand::Review(r) => {
            let a = intel.analyze_review(r.id).await?;
            if as_json {
                return json(&a);
            }
            render_review(&mut s, r.id, &a);
        }
    }
    Ok(s)
}
