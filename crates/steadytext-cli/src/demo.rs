//! `steadytext demo`: the seed's sample scenario through every analysis, printed as a report.

use anyhow::Result;
use clap::Args;
use steadytext_schema::faithfulness::Grounding;
use steadytext_schema::playbooks::{ChosenBy, ChosenPlay};
use steadytext_schema::recommendations::Recommendation;
use steadytext_schema::scenario::{run_scenario, seed_sample, ScenarioReport};
use steadytext_schema::{
    Analyst, AnalyzedTicket, CustomerInsight, ExecutiveSummary, RetentionStrategy, ReviewAnalysis,
    SegmentProfile,
};

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
    let classifier = cli.classifier(engine.cache().clone())?;
    let analyst = match &classifier {
        Some((e, s)) => Analyst::new(&engine).with_classifier(e, s.clone()),
        None => Analyst::new(&engine),
    };
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

/// A review's themes with their category and polarity: `"broke" (defects & durability, negative)`.
fn themes(a: &steadytext_schema::ReviewAnalysis) -> String {
    if a.aspects.is_empty() {
        return a.themes.join(", ");
    }
    let taxonomy = steadytext_schema::taxonomy::Taxonomy::default();
    a.aspects
        .iter()
        .map(|x| {
            let label = taxonomy
                .get(&x.category)
                .map_or(x.category.as_str(), |c| c.label.as_str());
            format!("\"{}\" ({label}, {})", x.phrase, x.polarity)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The report as text.
pub fn render(r: &ScenarioReport) -> String {
    let mut s = String::new();
    s.push_str("== Review analysis (on insert) ==\n");
    for (id, a) in &r.reviews {
        render_review(&mut s, *id, a);
    }
    s.push_str("\n== Support tickets ==\n");
    for (id, t) in &r.tickets {
        render_ticket(&mut s, *id, t);
    }
    render_dashboard(&mut s, &r.dashboard);
    s.push_str("\n== Churn risk ==\n");
    for (id, risk) in &r.churn {
        s.push_str(&format!("customer {id}: risk {:.2}\n", risk.score));
    }
    render_retention(&mut s, &r.retention);
    render_segments(&mut s, &r.segments);
    render_recommendations(&mut s, 1, &r.recommendations.recommendations);
    render_executive(&mut s, &r.executive);
    s
}

/// One review's analysis: sentiment, the quoted summary and themes, the human-review flag.
pub fn render_review(out: &mut String, id: i32, a: &ReviewAnalysis) {
    out.push_str(&format!(
        "review {id}: {} ({:+.1}){}\n  summary (quoted): {}\n  themes (quoted):  {}\n",
        a.sentiment,
        a.sentiment_score,
        review_flag(a.human_review.needed, &reasons(&a.human_review.reasons)),
        a.summary,
        themes(a)
    ));
}

/// One ticket's triage: the closed-set decisions, the quoted cause, the playbook resolution,
/// the rules that fired.
pub fn render_ticket(out: &mut String, id: i32, t: &AnalyzedTicket) {
    let a = &t.analysis;
    out.push_str(&format!(
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

/// How a free-text field is labelled: nothing for model prose that passed the faithfulness
/// check, a fallback marker for the facts shown in its place.
pub fn grounding_label(grounding: Grounding) -> &'static str {
    match grounding {
        Grounding::Checked => "",
        Grounding::Fallback => "[facts; the model's text failed the grounding check] ",
    }
}

/// Retention strategies: the chosen actions, then the text (checked prose or the facts).
pub fn render_retention(out: &mut String, strategies: &[RetentionStrategy]) {
    for strategy in strategies {
        out.push_str(&format!(
            "  retention for customer {} (risk {:.2}):\n",
            strategy.customer_id, strategy.risk.score
        ));
        render_actions(out, &strategy.actions);
        out.push_str(&format!(
            "    {}{}\n",
            grounding_label(strategy.grounding),
            without_listed_actions(&strategy.strategy, strategy.grounding)
        ));
    }
}

/// A fallback's facts without its "Recommended actions:" line (the actions are listed
/// separately); checked prose as it is.
fn without_listed_actions(text: &str, grounding: Grounding) -> &str {
    match grounding {
        Grounding::Fallback => text
            .split_once("\nRecommended actions:")
            .map_or(text, |(facts, _)| facts),
        Grounding::Checked => text,
    }
}

/// Chosen playbook actions, one a line, with how they were chosen.
pub fn render_actions(out: &mut String, actions: &[ChosenPlay]) {
    for a in actions {
        let by = match a.chosen_by {
            ChosenBy::Rules => "rules",
            ChosenBy::ModelScore => "rules + model score",
        };
        out.push_str(&format!(
            "    - {}: {} [play {}, {by}]\n",
            a.title, a.action, a.play
        ));
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
                "  - {}: {} (impact: {}) [play {}]\n",
                m.name, m.description, m.expected_impact, m.play
            ));
        }
    }
}

/// The recommendations section for one customer.
pub fn render_recommendations(out: &mut String, customer: i32, recs: &[Recommendation]) {
    out.push_str(&format!(
        "\n== Recommendations for customer {customer} ==\n"
    ));
    if recs.is_empty() {
        out.push_str("none\n");
    }
    if !recs
        .iter()
        .any(|r| r.recommendation_type == steadytext_schema::RecommendationType::Product)
    {
        out.push_str(&format!(
            "(no product recommendation: no product the customer has not reviewed is rated {} or more)\n",
            steadytext_schema::recommendations::MIN_PRODUCT_RATING
        ));
    }
    for r in recs {
        let basis = match (&r.product_id, &r.play) {
            (Some(p), _) => format!(" [product {p} from the reviews]"),
            (None, Some(play)) => format!(" [play {play}]"),
            (None, None) => String::new(),
        };
        out.push_str(&format!(
            "[{}] {} — {}: {}{basis}\n",
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
        without_listed_actions(&executive.insights, executive.grounding)
    ));
    if !executive.actions.is_empty() {
        out.push_str("  actions:\n");
        render_actions(out, &executive.actions);
    }
}
