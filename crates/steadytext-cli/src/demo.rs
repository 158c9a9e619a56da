//! `steadytext demo`: the seed's sample scenario through every analysis, printed as a report.

use anyhow::Result;
use clap::Args;
use steadytext_schema::scenario::{run_scenario, seed_sample, ScenarioReport};
use steadytext_schema::Analyst;

use crate::Cli;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Run the scenario on this PostgreSQL database instead of in memory (migrates, loads the
    /// seed's sample idempotently, analyses the queued jobs, runs every seed function).
    #[arg(long)]
    pub database_url: Option<String>,
}

pub async fn run(cli: &Cli, args: &DemoArgs) -> Result<()> {
    if let Some(url) = &args.database_url {
        let db = crate::db::DbArgs {
            database_url: url.clone(),
        };
        return crate::db::demo(cli, &db, args.json).await;
    }
    let engine = cli.engine_builder().lazy(true).build()?;
    let analyst = Analyst::new(&engine);
    let now = chrono::Utc::now();
    eprintln!(
        "running the seed scenario (3 customers, 3 reviews, 2 tickets) on the local model..."
    );
    let report = run_scenario(&analyst, seed_sample(now), now).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn review_flag(needed: bool, reasons: &[String]) -> String {
    if needed {
        format!("  [needs human review: {}]", reasons.join(", "))
    } else {
        String::new()
    }
}

fn reasons<T: serde::Serialize>(r: &[T]) -> Vec<String> {
    r.iter()
        .map(|x| {
            serde_json::to_value(x)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        })
        .collect()
}

/// The report as text.
pub fn render(r: &ScenarioReport) -> String {
    let mut s = String::new();
    s.push_str("== Review analysis (on insert) ==\n");
    for (id, a) in &r.reviews {
        s.push_str(&format!(
            "review {id}: {} ({:+.1}){}\n  summary: {}\n  themes:  {}\n",
            a.sentiment,
            a.sentiment_score,
            review_flag(a.human_review.needed, &reasons(&a.human_review.reasons)),
            a.summary,
            a.themes.join(", ")
        ));
    }
    s.push_str("\n== Support tickets ==\n");
    for (id, t) in &r.tickets {
        let a = &t.analysis;
        s.push_str(&format!(
            "ticket {}: priority {}, urgency {}, sentiment {}, follow-up {}{}\n  root cause: {}\n  resolution: {}\n  tags: {}\n",
            id,
            t.priority,
            a.urgency,
            a.sentiment,
            a.follow_up_needed,
            review_flag(t.human_review.needed, &reasons(&t.human_review.reasons)),
            a.root_cause,
            a.suggested_resolution,
            a.tags.join(", ")
        ));
    }
    s.push_str("\n== Sentiment dashboard ==\n");
    for d in &r.dashboard {
        let v = serde_json::to_value(d).unwrap_or_default();
        s.push_str(&format!(
            "customer {}: status {}, avg sentiment {}, interactions {}, issues {}\n  insight: {}\n",
            v["snapshot"]["customer_id"],
            v["snapshot"]["status"].as_str().unwrap_or("?"),
            v["snapshot"]["avg_sentiment"],
            v["snapshot"]["interaction_count"],
            v["snapshot"]["issue_count"],
            v["insight"].as_str().unwrap_or_default()
        ));
    }
    s.push_str("\n== Churn risk ==\n");
    for (id, risk) in &r.churn {
        s.push_str(&format!("customer {id}: risk {:.2}\n", risk.score));
    }
    for strategy in &r.retention {
        let v = serde_json::to_value(strategy).unwrap_or_default();
        s.push_str(&format!(
            "  retention strategy for customer {}: {}\n",
            v["customer_id"],
            v["strategy"].as_str().unwrap_or_default()
        ));
    }
    s.push_str("\n== Segments ==\n");
    for seg in &r.segments {
        s.push_str(&format!(
            "{} ({} customers): {}\n",
            seg.segment_name, seg.customer_count, seg.ai_profile
        ));
        for m in &seg.strategies.strategies {
            s.push_str(&format!(
                "  - {}: {} (impact: {})\n",
                m.name, m.description, m.expected_impact
            ));
        }
    }
    s.push_str("\n== Recommendations for customer 1 ==\n");
    for rec in &r.recommendations.recommendations {
        s.push_str(&format!(
            "[{}] {} — {}: {}\n",
            rec.priority, rec.recommendation_type, rec.title, rec.description
        ));
    }
    s.push_str("\n== Executive summary ==\n");
    let v = serde_json::to_value(&r.executive).unwrap_or_default();
    s.push_str(&format!(
        "{}\n{}\n",
        v["stats"],
        v["insights"].as_str().unwrap_or_default()
    ));
    s
}
