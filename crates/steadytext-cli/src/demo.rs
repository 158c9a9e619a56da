//! `steadytext demo`: the seed's sample scenario through every analysis, printed as a report.

use anyhow::Result;
use clap::Args;
use steadytext_schema::faithfulness::Grounding;
use steadytext_schema::recommendations::Recommendation;
use steadytext_schema::scenario::{run_scenario, seed_sample, ScenarioReport};
use steadytext_schema::{Analyst, CustomerInsight, ExecutiveSummary, SegmentProfile};

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
    /// With --database-url: model calls kept in flight in bulk runs, 1 to 256 (results do not
    /// depend on it).
    #[arg(long, default_value_t = steadytext_pg::DEFAULT_CONCURRENCY, value_parser = crate::numbers::concurrency)]
    pub concurrency: usize,
    /// No progress bar or status lines on stderr (they are hidden anyway when stderr is not a
    /// terminal).
    #[arg(short, long)]
    pub quiet: bool,
}

pub async fn run(cli: &Cli, args: &DemoArgs) -> Result<()> {
    if let Some(url) = &args.database_url {
        let db = crate::db::DbArgs {
            database_url: url.clone(),
        };
        return crate::db::demo(cli, &db, args).await;
    }
    let engine = cli.engine_builder().lazy(true).build()?;
    let analyst = Analyst::new(&engine);
    let now = chrono::Utc::now();
    eprintln!(
        "running the seed scenario (3 customers, 3 reviews, 2 tickets) on {}...",
        cli.backend.describe()
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
            "ticket {}: priority {}, urgency {}, sentiment {}, category {}, follow-up {}{}\n  root cause (quoted): \"{}\"\n  resolution (playbook): {}\n  tags: {}\n  rules: {}\n",
            id,
            t.priority,
            a.urgency,
            a.sentiment,
            a.category,
            a.follow_up_needed,
            review_flag(t.human_review.needed, &reasons(&t.human_review.reasons)),
            a.root_cause,
            a.suggested_resolution,
            a.tags.join(", "),
            a.rules.join("; ")
        ));
    }
    render_dashboard(&mut s, &r.dashboard);
    s.push_str("\n== Churn risk ==\n");
    for (id, risk) in &r.churn {
        s.push_str(&format!("customer {id}: risk {:.2}\n", risk.score));
    }
    for strategy in &r.retention {
        s.push_str(&format!(
            "  retention strategy for customer {}: {}{}\n",
            strategy.customer_id,
            grounding_label(strategy.grounding),
            strategy.strategy
        ));
    }
    render_segments(&mut s, &r.segments);
    render_recommendations(&mut s, 1, &r.recommendations.recommendations);
    render_executive(&mut s, &r.executive);
    s
}

/// How a free-text field is labelled: nothing for model prose that passed the faithfulness
/// check, a fallback marker for the facts shown in its place.
pub fn grounding_label(grounding: Grounding) -> &'static str {
    match grounding {
        Grounding::Checked => "",
        Grounding::Fallback => "[facts; the model's text failed the grounding check] ",
    }
}

/// The sentiment dashboard section (shared by the in-memory and the database demo).
pub fn render_dashboard(out: &mut String, rows: &[CustomerInsight]) {
    out.push_str("\n== Sentiment dashboard ==\n");
    for d in rows {
        let s = &d.snapshot;
        out.push_str(&format!(
            "customer {}: {}, avg sentiment {}, {} interactions, {} issues\n  insight: {}{}\n",
            s.customer_id,
            s.status,
            s.avg_sentiment.map_or("n/a".into(), |v| format!("{v:+.2}")),
            s.interaction_count,
            s.issue_count,
            grounding_label(d.grounding),
            d.insight
        ));
    }
}

/// The segments section.
pub fn render_segments(out: &mut String, segments: &[SegmentProfile]) {
    out.push_str("\n== Segments ==\n");
    for seg in segments {
        out.push_str(&format!(
            "{} ({} customers): {}{}\n",
            seg.segment_name,
            seg.customer_count,
            grounding_label(seg.grounding),
            seg.ai_profile
        ));
        for m in &seg.strategies.strategies {
            out.push_str(&format!(
                "  - {}: {} (impact: {})\n",
                m.name, m.description, m.expected_impact
            ));
        }
    }
}

/// The recommendations section for one customer.
pub fn render_recommendations(out: &mut String, customer: i32, recs: &[Recommendation]) {
    out.push_str(&format!(
        "\n== Recommendations for customer {customer} ==\n"
    ));
    for r in recs {
        out.push_str(&format!(
            "[{}] {} — {}: {}\n",
            r.priority, r.recommendation_type, r.title, r.description
        ));
    }
}

/// The executive summary section.
pub fn render_executive(out: &mut String, executive: &ExecutiveSummary) {
    let e = &executive.stats;
    out.push_str(&format!(
        "\n== Executive summary ==\n{} customers, {} at high risk, avg LTV {}, {} reviews (avg {}), {} open tickets\n{}{}\n",
        e.total_customers,
        e.high_risk_customers,
        e.avg_lifetime_value.map_or("n/a".into(), |v| format!("${v:.2}")),
        e.total_reviews,
        e.avg_rating.map_or("n/a".into(), |v| format!("{v:.1}")),
        e.open_tickets,
        grounding_label(executive.grounding),
        executive.insights
    ));
}
