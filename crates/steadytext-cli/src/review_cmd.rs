//! `steadytext review list` and `steadytext review label`: the human-review queue and verdicts
//! in the database (see `steadytext_pg::human_review`).

use anyhow::Result;
use clap::{Args, Subcommand};
use steadytext_pg::human_review::{self, NewVerdict, QueueItem, SubjectKind, Verdict};

use crate::db::{connect, DbArgs};

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// What needs a person, oldest first, and why.
    List(ListArgs),
    /// Record a human verdict: from then on the seed's column shows VALUE and no re-analysis
    /// overwrites it.
    Label(LabelArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Show at most N entries (at least 1).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// Print JSON (an array of entries).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LabelArgs {
    /// What the verdict is about: review, ticket or churn.
    #[arg(value_parser = parse_kind)]
    pub kind: SubjectKind,
    /// The review id, ticket id or customer id.
    pub id: String,
    /// The field: review: sentiment; ticket: urgency, sentiment, category; churn:
    /// churn_risk_score.
    pub field: String,
    /// The human's value (a label of the field's closed set, or a number from 0 to 1 for
    /// churn_risk_score).
    pub value: String,
    /// Who decides (recorded with the verdict).
    #[arg(long)]
    pub reviewer: String,
    /// Why (recorded with the verdict).
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// Print the recorded verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_kind(s: &str) -> Result<SubjectKind, String> {
    s.parse::<SubjectKind>().map_err(|e| e.to_string())
}

pub async fn run(cmd: &ReviewCommand) -> Result<()> {
    match cmd {
        ReviewCommand::List(args) => list(args).await,
        ReviewCommand::Label(args) => label(args).await,
    }
}

async fn list(args: &ListArgs) -> Result<()> {
    let store = connect(&args.db, 2).await?;
    let items = human_review::review_queue(store.pool(), Some(args.limit as usize)).await?;
    if args.json {
        let entries: Vec<serde_json::Value> = items
            .iter()
            .map(|item| {
                let mut v = serde_json::to_value(item)?;
                if let Some(m) = v.as_object_mut() {
                    m.insert("fields".into(), serde_json::json!(item.fields()));
                }
                Ok(v)
            })
            .collect::<Result<_, serde_json::Error>>()?;
        println!("{}", serde_json::to_string(&entries)?);
        return Ok(());
    }
    print!("{}", render_queue(&items));
    Ok(())
}

async fn label(args: &LabelArgs) -> Result<()> {
    if args.reviewer.trim().is_empty() {
        anyhow::bail!("--reviewer must name who decides (it is recorded with the verdict)");
    }
    let store = connect(&args.db, 2).await?;
    let id = human_review::record_verdict(
        store.pool(),
        &NewVerdict {
            subject_kind: args.kind,
            subject_id: args.id.clone(),
            field: args.field.clone(),
            value: args.value.clone(),
            reviewer: args.reviewer.clone(),
            note: args.note.clone(),
        },
    )
    .await?;
    let verdict = human_review::verdict(store.pool(), id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("verdict {id} was recorded but cannot be read back"))?;
    if args.json {
        println!("{}", serde_json::to_string(&verdict)?);
    } else {
        println!("{}", render_verdict(&verdict));
    }
    Ok(())
}

/// `s` safe to print on a terminal: control characters (escape sequences, carriage returns)
/// and bidirectional overrides from untrusted text become U+FFFD.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// `{"a": "x", "b": null}` as `a=x b=-`.
fn pairs(v: &serde_json::Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "-".into(),
                    other => other.to_string(),
                };
                format!("{k}={}", printable(&v))
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => "-".into(),
    }
}

fn render_queue(items: &[QueueItem]) -> String {
    if items.is_empty() {
        return "nothing needs a human review\n".into();
    }
    let mut out = String::new();
    for item in items {
        let reasons: Vec<&str> = item.reasons.iter().map(|r| r.as_str()).collect();
        out.push_str(&format!(
            "{} {}: {} (waiting since {})\n    {}\n    ai: {}  now: {}\n    prompt {}, model {}, calibration {}\n",
            item.subject_kind,
            printable(&item.subject_id),
            reasons.join(", "),
            item.changed_at.format("%Y-%m-%d %H:%M:%S UTC"),
            printable(&item.subject_text),
            pairs(&item.ai_values),
            pairs(&item.current_values),
            printable(&item.prompt_version),
            printable(&item.model_id),
            item.calibration_id.as_deref().map_or("-".into(), printable),
        ));
        let field = match item.fields().as_slice() {
            [] => None,
            [one] => Some(one.to_string()),
            many => Some(format!("{{{}}}", many.join("|"))),
        };
        if let Some(field) = field {
            out.push_str(&format!(
                "    label: steadytext review label {} {} {field} VALUE --reviewer NAME\n",
                item.subject_kind,
                printable(&item.subject_id),
            ));
        }
    }
    out
}

fn render_verdict(v: &Verdict) -> String {
    format!(
        "recorded verdict {}: {} {} {}: {} -> {} (by {} at {})",
        v.id,
        v.subject_kind,
        printable(&v.subject_id),
        v.field,
        v.value_before.as_deref().map_or("-".into(), printable),
        printable(&v.value_after),
        printable(&v.reviewer),
        v.decided_at.format("%Y-%m-%d %H:%M:%S UTC"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_cannot_drive_the_terminal() {
        assert_eq!(
            printable("ok\x1b[2Jgone\r\u{202E}x"),
            "ok\u{FFFD}[2Jgone\u{FFFD}\u{FFFD}x"
        );
        assert_eq!(printable("José — fine"), "José — fine");
    }

    #[test]
    fn value_pairs() {
        assert_eq!(
            pairs(&serde_json::json!({"urgency": "low", "category": null})),
            "urgency=low category=-"
        );
        assert_eq!(pairs(&serde_json::json!({})), "-");
        assert_eq!(
            pairs(&serde_json::json!({"churn_risk_score": 0.75})),
            "churn_risk_score=0.75"
        );
    }
}
